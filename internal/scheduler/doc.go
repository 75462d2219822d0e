// Package scheduler holds raygo's placement policies: given a snapshot of the
// cluster's nodes and one resource request, [Pick] decides where the request
// runs now, where it waits, or that no node can ever run it.
//
// Policies are pure: no I/O, no goroutines, no clocks, no randomness. Where Ray
// picks at random, Pick takes a caller-supplied tie value (a counter, a hash
// of the task id), so a decision can be replayed and tested.
//
//	d := scheduler.Pick(nodes, localID, scheduler.Request{
//		Resources: resources.Set{resources.CPU: 1},
//	}, scheduler.DefaultConfig(), taskSeq)
//	switch d.Kind {
//	case scheduler.Place: // lease a worker on d.Node (spill back if remote)
//	case scheduler.Queue: // wait on d.Node for resources to free up
//	case scheduler.Infeasible: // report it: no node can ever satisfy it
//	}
package scheduler
