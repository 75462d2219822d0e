package coreworker

import (
	"context"
	"time"
)

// fallbackFor is the lease fallback (tasksubmit.Config.Fallback) of a
// core worker whose node is on another host: when that node cannot be
// reached, leases are asked of another alive node. Elsewhere it is nil:
// a process on its node's host goes with its node.
func (cw *CoreWorker) fallbackFor(cfg Config) func(dead string) string {
	if !cfg.NodeElsewhere {
		return nil
	}
	return cw.otherNode
}

// otherNode is an alive node other than dead, as the control store lists
// them (the lowest address, so that every driver's choice is the same);
// "" if there is none or the store cannot be asked.
func (cw *CoreWorker) otherNode(dead string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	alive, err := cw.aliveNodes(ctx)
	if err != nil {
		return ""
	}
	pick := ""
	for a := range alive {
		if a != dead && (pick == "" || a < pick) {
			pick = a
		}
	}
	if pick != "" {
		cw.cfg.Warn("raygo: warning: the node at " + dead + " that this driver used cannot be reached; its tasks now ask the node at " + pick)
	}
	return pick
}
