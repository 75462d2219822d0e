package coreworker

import (
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/ids"
)

// argNode is the lease policy's locality (tasksubmit.Config.Locality):
// the node daemon whose object store holds most of t's argument bytes,
// counting the arguments passed by reference whose values this process
// knows to be in a store; "" when that is the local node or no argument
// is in a store. Ray's LocalityAwareLeasePolicy does the same with its
// owner's object directory: the lease is asked of that node, which keeps
// the task when it has room (the default policy packs locally) and spills
// it back otherwise.
func (cw *CoreWorker) argNode(t *taskmgr.Task) string {
	var (
		best      string
		bestBytes int64
		addrs     [4]string // most tasks' in-store arguments live on few nodes
		bytes     [4]int64
		n         int
	)
	for _, a := range t.Spec.GetArgs() {
		r := a.GetRef()
		if r == nil {
			continue
		}
		id, ok := ids.FromBytes(r.GetId())
		if !ok {
			continue
		}
		v := cw.refs.ValueOf(id)
		if !v.GetInStore() || v.GetStoreAddress() == "" {
			continue
		}
		i := 0
		for i < n && addrs[i] != v.GetStoreAddress() {
			i++
		}
		if i == n {
			if n == len(addrs) {
				continue // a fifth node: the first four decide
			}
			addrs[n] = v.GetStoreAddress()
			n++
		}
		bytes[i] += v.GetSize()
		if bytes[i] > bestBytes {
			best, bestBytes = addrs[i], bytes[i]
		}
	}
	for i := range n { // the local node wins ties: no detour
		if addrs[i] == cw.cfg.NodeAddress && bytes[i] == bestBytes {
			return ""
		}
	}
	return best
}
