package mcphost

import "github.com/raygo/raygo/internal/replicaset"

// The deciding code of hosting, pure and table-tested (decide_test.go):
// which replica a new gateway session uses. Where a replica goes and how
// long a failed one waits before its next start are replicaset's
// (internal/replicaset/decide.go).

// Restart backoff (docs/mcp-hosting.md): a replica that fails for the
// first time after running is started again at once; one that keeps
// failing waits BaseBackoff, then twice as long each time, up to
// MaxBackoff. A replica that stays ready for StableAfter has its count of
// failures reset.
const (
	BaseBackoff = replicaset.BaseBackoff
	MaxBackoff  = replicaset.MaxBackoff
	StableAfter = replicaset.StableAfter
)

// replicaLoad is what pickReplica knows of a replica.
type replicaLoad struct {
	ready    bool
	sessions int // gateway sessions routed to it
	inFlight int // requests under way
}

// pickReplica picks the replica a new (or moved) gateway session uses:
// a ready one with the fewest sessions, then the fewest requests under
// way; among equals, the one after tie (round robin). -1: none is ready.
func pickReplica(rs []replicaLoad, tie uint64) int {
	best := -1
	n := len(rs)
	for k := range n {
		i := int((tie + uint64(k)) % uint64(n))
		r := rs[i]
		if !r.ready {
			continue
		}
		if best < 0 || r.sessions < rs[best].sessions || r.sessions == rs[best].sessions && r.inFlight < rs[best].inFlight {
			best = i
		}
	}
	return best
}
