package replicaset

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// The deciding code of supervision, pure and table-tested
// (decide_test.go): where a replica goes, and how long a failed one
// waits before its next start.

// Restart backoff (docs/mcp-hosting.md): a replica that fails for the
// first time after running is started again at once; one that keeps
// failing waits BaseBackoff, then twice as long each time, up to
// MaxBackoff. A replica that stays ready for StableAfter has its count of
// failures reset.
const (
	BaseBackoff = 250 * time.Millisecond
	MaxBackoff  = 30 * time.Second
	StableAfter = 10 * time.Second
)

// restartDelay is how long a slot waits before its next start after its
// failures-th failure in a row (failures ≥ 1).
func restartDelay(failures int) time.Duration {
	if failures <= 1 {
		return 0
	}
	d := BaseBackoff
	for i := 2; i < failures && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

// placeKind is what placeReplica decided.
type placeKind int

const (
	placeOn    placeKind = iota // try the nodes in order
	placeWait                   // none has the resources free now
	placeNever                  // none could ever hold them
)

// placeReplica orders the alive nodes that have want free for a new
// replica: those with the fewest replicas of this set first (spread),
// then the most free CPUs, then by id. onNode counts the set's replicas
// by node id.
func placeReplica(want resources.Set, nodes []scheduler.Node, onNode map[string]int) (placeKind, []scheduler.Node, string) {
	var order []scheduler.Node
	ever := false
	for _, n := range nodes {
		if !n.Alive {
			continue
		}
		if want.Fits(n.Total) {
			ever = true
		}
		if want.Fits(n.Available) {
			order = append(order, n)
		}
	}
	if !ever {
		var totals []string
		for _, n := range nodes {
			if n.Alive {
				totals = append(totals, ids.ShortString(n.ID)+" "+n.Total.String())
			}
		}
		if len(totals) == 0 {
			return placeNever, nil, "the cluster has no alive node"
		}
		return placeNever, nil, fmt.Sprintf("no node can ever hold a replica's resources %s (the alive nodes' totals: %s)", want, strings.Join(totals, "; "))
	}
	if len(order) == 0 {
		return placeWait, nil, fmt.Sprintf("no node has a replica's resources %s free now: waiting", want)
	}
	slices.SortStableFunc(order, func(a, b scheduler.Node) int {
		if c := cmp.Compare(onNode[a.ID], onNode[b.ID]); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Available[resources.CPU], a.Available[resources.CPU]); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return placeOn, order, ""
}
