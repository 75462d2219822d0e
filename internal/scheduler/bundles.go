package scheduler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/resources"
)

// GroupStrategy is how a placement group's bundles are spread over nodes
// (Ray's placement strategies).
type GroupStrategy int

const (
	// Pack puts the bundles on as few nodes as possible: one node when one
	// has room for all, else the nodes the group already uses first.
	Pack GroupStrategy = iota
	// SpreadBundles puts each bundle on a node of its own while there are
	// nodes with room, then doubles up.
	SpreadBundles
	// StrictPack puts every bundle on one node, or waits.
	StrictPack
	// StrictSpread puts every bundle on a different node, or waits.
	StrictSpread
)

func (s GroupStrategy) String() string {
	switch s {
	case Pack:
		return "PACK"
	case SpreadBundles:
		return "SPREAD"
	case StrictPack:
		return "STRICT_PACK"
	case StrictSpread:
		return "STRICT_SPREAD"
	}
	return "GroupStrategy(" + strconv.Itoa(int(s)) + ")"
}

// BundleDecision is PlaceBundles' answer. Kind is Place (Nodes holds a
// node per bundle), Queue (not now: some node, or set of nodes, could hold
// the group when work ends) or Infeasible (no alive nodes ever could);
// Reason says why for the last two, for the user.
type BundleDecision struct {
	Nodes  []string
	Kind   DecisionKind
	Reason string
}

// PlaceBundles chooses a node for each bundle of a placement group, from a
// snapshot of the nodes, all or none. placed[i], when not empty, is the node
// that bundle i holds already (a group being rescheduled after a node died):
// it stays there and constrains the others (STRICT_PACK: the same node;
// STRICT_SPREAD: other nodes). placed may be nil.
//
// Bundles are placed largest first (GPUs, then CPUs) on nodes whose
// available resources fit them, counting what the group takes as it
// goes: STRICT_PACK on the least utilized node that fits them all; PACK
// likewise when one does, else each bundle on a node the group uses
// already when it fits, else on the least utilized one; STRICT_SPREAD on
// the least utilized node the group does not use yet; SPREAD likewise,
// else on the least utilized node that fits. Ties go to the lower ID.
func PlaceBundles(nodes []Node, bundles []resources.Set, placed []string, strategy GroupStrategy) BundleDecision {
	placed = slices.Clone(placed)
	if len(placed) < len(bundles) {
		placed = append(placed, make([]string, len(bundles)-len(placed))...)
	}
	// Only the resources the bundles ask for matter: a node's view keeps
	// just those (a node with many groups' bundles has many other names).
	asked := map[string]bool{}
	for _, b := range bundles {
		for k, v := range b {
			if v != 0 {
				asked[k] = true
			}
		}
	}
	alive := make([]Node, 0, len(nodes))
	for _, n := range nodes {
		if n.Alive {
			n.Total, n.Available = only(n.Total, asked), only(n.Available, asked)
			alive = append(alive, n)
		}
	}
	slices.SortFunc(alive, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	if reason := bundlesInfeasible(alive, bundles, placed, strategy); reason != "" {
		return BundleDecision{Kind: Infeasible, Reason: reason}
	}
	out, reason := assignBundles(alive, bundles, placed, strategy)
	if reason != "" {
		return BundleDecision{Kind: Queue, Reason: reason}
	}
	return BundleDecision{Nodes: out, Kind: Place}
}

// bundlesInfeasible says why no state of the alive nodes could hold the
// group ("" when one could): it tries the placement on their totals.
func bundlesInfeasible(alive []Node, bundles []resources.Set, placed []string, strategy GroupStrategy) string {
	for i, b := range bundles {
		if placed[i] == "" && !slices.ContainsFunc(alive, func(n Node) bool { return b.Fits(n.Total) }) {
			return fmt.Sprintf("bundle %d %v fits no alive node", i, b)
		}
	}
	empty := make([]Node, len(alive))
	for i, n := range alive {
		n.Available = n.Total.Clone()
		for j, b := range bundles { // what the group already holds there stays
			if placed[j] == n.ID {
				n.Available.Sub(b)
			}
		}
		empty[i] = n
	}
	if _, reason := assignBundles(empty, bundles, placed, strategy); reason != "" {
		switch strategy {
		case StrictPack:
			return "no alive node can hold all its bundles together (STRICT_PACK)"
		case StrictSpread:
			return fmt.Sprintf("STRICT_SPREAD needs %d nodes that can each hold a bundle; the cluster has %d alive nodes", len(bundles), len(alive))
		}
		return "the alive nodes cannot hold all its bundles at once"
	}
	return ""
}

// assignBundles places the unplaced bundles on alive (whose Available it
// takes them from), or says why it cannot now.
func assignBundles(alive []Node, bundles []resources.Set, placed []string, strategy GroupStrategy) ([]string, string) {
	out := slices.Clone(placed)
	order := make([]int, 0, len(bundles))
	for i := range bundles {
		if out[i] == "" {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := compareUtil(bundles[b][resources.GPU], bundles[a][resources.GPU]); c != 0 {
			return c
		}
		return compareUtil(bundles[b][resources.CPU], bundles[a][resources.CPU])
	})
	used := func(id string) bool { return slices.Contains(out, id) }
	byID := func(id string) *Node {
		i := slices.IndexFunc(alive, func(n Node) bool { return n.ID == id })
		if i < 0 {
			return nil
		}
		return &alive[i]
	}
	// best is the least utilized node that fits b and passes ok.
	best := func(b resources.Set, ok func(*Node) bool) *Node {
		var pick *Node
		pu := 0.0
		for i := range alive {
			n := &alive[i]
			if !b.Fits(n.Available) || !ok(n) {
				continue
			}
			if u := utilization(n, b); pick == nil || compareUtil(u, pu) < 0 {
				pick, pu = n, u
			}
		}
		return pick
	}
	take := func(i int, n *Node) {
		out[i] = n.ID
		n.Available.Sub(bundles[i])
	}
	if len(order) == 0 {
		return out, ""
	}
	if strategy == StrictPack || strategy == Pack {
		sum := resources.Set{}
		for _, i := range order {
			sum.Add(bundles[i])
		}
		home := ""
		for _, id := range out {
			if id != "" {
				home = id
			}
		}
		var n *Node
		if home != "" && strategy == StrictPack {
			if n = byID(home); n != nil && !sum.Fits(n.Available) {
				n = nil
			}
		} else {
			n = best(sum, func(*Node) bool { return true })
		}
		if n != nil {
			for _, i := range order {
				take(i, n)
			}
			return out, ""
		}
		if strategy == StrictPack {
			return nil, fmt.Sprintf("no node has %v available for all its bundles together (STRICT_PACK)", sum)
		}
	}
	for _, i := range order {
		b := bundles[i]
		var n *Node
		switch strategy {
		case Pack:
			if n = best(b, func(n *Node) bool { return used(n.ID) }); n == nil {
				n = best(b, func(*Node) bool { return true })
			}
		case StrictSpread:
			n = best(b, func(n *Node) bool { return !used(n.ID) })
		default: // SPREAD
			if n = best(b, func(n *Node) bool { return !used(n.ID) }); n == nil {
				n = best(b, func(*Node) bool { return true })
			}
		}
		if n == nil {
			if strategy == StrictSpread {
				return nil, fmt.Sprintf("bundle %d %v: no node the group does not use yet has it available (STRICT_SPREAD)", i, b)
			}
			return nil, fmt.Sprintf("bundle %d %v: no node has it available", i, b)
		}
		take(i, n)
	}
	return out, ""
}

// only returns the amounts of s named in keys (a new Set).
func only(s resources.Set, keys map[string]bool) resources.Set {
	out := make(resources.Set, len(keys))
	for k := range keys {
		if v, ok := s[k]; ok {
			out[k] = v
		}
	}
	return out
}
