// Package resources describes what a task asks for and what a node has.
//
// A [Set] maps a resource name ("CPU", "GPU", "memory" in bytes, or a custom
// name) to an amount. [Validate] checks a request before it enters the system,
// [ParseJSON] reads the CLI's --resources flag, [Detect] finds what the local
// machine offers, and [NodeResources] is the per-node ledger a node daemon uses
// to hand out resources, including specific GPU instances, to workers.
//
// Amounts are float64 at the edges (Set, the wire, users' options) and fixed
// point inside: [Units] count 1/10,000ths (whole bytes for memory), as Ray's
// FixedPoint does, so the ledger adds and subtracts exactly and always
// returns to its totals. As in Ray, a requested amount above 1 must be a
// whole number (0.5 CPU shares one CPU; 1.5 CPUs is an error).
//
// Everything here is pure except [Detect], which reads /proc, the cgroup v2
// files under /sys/fs/cgroup, and runs nvidia-smi.
//
//	n := resources.NewNodeResources(resources.Set{resources.CPU: 8, resources.GPU: 2}, nil)
//	a, ok := n.Allocate(resources.Set{resources.CPU: 1, resources.GPU: 0.5})
//	// ok == true, a.GPUIDs == []string{"0"}
//	_ = n.Release(a)
package resources
