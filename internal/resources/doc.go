// Package resources describes what a task asks for and what a node has.
//
// A [Set] maps a resource name ("CPU", "GPU", "memory" in bytes, or a custom
// name) to an amount. [Validate] checks a request before it enters the system,
// [ParseJSON] reads the CLI's --resources flag, [Detect] finds what the local
// machine offers, and [NodeResources] is the per-node ledger a node daemon uses
// to hand out resources, including specific GPU instances, to workers.
//
// Everything here is pure except [Detect], which reads /proc, the cgroup v2
// files under /sys/fs/cgroup, and runs nvidia-smi.
//
//	n := resources.NewNodeResources(resources.Set{resources.CPU: 8, resources.GPU: 2}, nil)
//	a, ok := n.Allocate(resources.Set{resources.CPU: 1, resources.GPU: 0.5})
//	// ok == true, a.GPUIDs == []string{"0"}
//	_ = n.Release(a)
package resources
