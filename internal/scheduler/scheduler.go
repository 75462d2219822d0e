package scheduler

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/resources"
)

// Node is a snapshot of one node as the scheduler sees it.
type Node struct {
	ID        string
	Address   string
	Total     resources.Set
	Available resources.Set // may be below zero while oversubscribed
	Labels    map[string]string
	Alive     bool
}

// Strategy selects a placement policy.
type Strategy int

const (
	// Default is Ray's hybrid policy: pack onto the local node until it is
	// SpreadThreshold utilized, then spread over the least utilized nodes.
	Default Strategy = iota
	// Spread places tasks round-robin over nodes that have room.
	Spread
	// NodeAffinity places on Request.AffinityNode; see Request.
	NodeAffinity
)

func (s Strategy) String() string {
	switch s {
	case Default:
		return "DEFAULT"
	case Spread:
		return "SPREAD"
	case NodeAffinity:
		return "NODE_AFFINITY"
	}
	return "Strategy(" + strconv.Itoa(int(s)) + ")"
}

// Request is what a task or actor asks of the scheduler.
type Request struct {
	Resources resources.Set
	Strategy  Strategy
	// AffinityNode names the node for NodeAffinity. When it is alive,
	// matches Labels and its total fits the request, the request runs
	// only there (Place, or Queue while it is busy), as in Ray. Otherwise a
	// hard affinity is Infeasible, and a soft one (AffinitySoft) falls back to
	// the Default policy.
	AffinityNode string
	AffinitySoft bool
	// Labels restricts every strategy to nodes whose labels satisfy all of
	// these matches.
	Labels []LabelMatch
	// PreferLabels narrows the choice further to the nodes that also
	// satisfy all of these, when one of them has room now; otherwise they
	// are ignored (Ray's soft label selector).
	PreferLabels []LabelMatch
}

// Config tunes the Default policy. The zero Config is usable: it never
// packs locally and picks the single least utilized node.
type Config struct {
	// SpreadThreshold is the critical-resource utilization below which a
	// node counts as lightly loaded (default 0.5).
	SpreadThreshold float64
	// TopKFraction of the candidate nodes, but at least TopKMin, are the
	// lightly loaded nodes that the tie value chooses among (defaults 0.2, 1).
	TopKFraction float64
	TopKMin      int
}

// DefaultConfig returns Ray's defaults.
func DefaultConfig() Config {
	return Config{SpreadThreshold: 0.5, TopKFraction: 0.2, TopKMin: 1}
}

// DecisionKind says what to do with a request.
type DecisionKind int

const (
	// Place: run on Decision.Node now.
	Place DecisionKind = iota + 1
	// Queue: some node could run it but none has room now; wait on
	// Decision.Node.
	Queue
	// Infeasible: no alive node's total can ever satisfy it; Decision.Node is
	// empty.
	Infeasible
)

func (k DecisionKind) String() string {
	switch k {
	case Place:
		return "Place"
	case Queue:
		return "Queue"
	case Infeasible:
		return "Infeasible"
	}
	return "DecisionKind(" + strconv.Itoa(int(k)) + ")"
}

// Decision is Pick's answer.
type Decision struct {
	Node string
	Kind DecisionKind
}

// Err returns ErrInfeasible for an Infeasible decision and nil otherwise.
func (d Decision) Err() error {
	if d.Kind == Infeasible {
		return ErrInfeasible
	}
	return nil
}

// Pick decides where req goes, given a snapshot of the nodes and the id of the
// local node (the one deciding). It reads nodes and never modifies them.
//
// Only alive nodes that match req.Labels and whose Total fits
// req.Resources are candidates; with none, the decision is Infeasible (so a
// GPU request on CPU-only nodes, or a custom resource no node has). A node has
// room when its Available fits the request. A node's utilization is, over
// the resource kinds requested, the largest (total - available)/total after
// placing the request (over all of the node's kinds for an empty request).
//
// Default (and any unknown Strategy): a request with no GPU first considers
// only nodes without GPUs, and all candidates only if none of those has room.
// Among nodes with room: the local node if its utilization is below
// cfg.SpreadThreshold; else, among the nodes below the threshold sorted by
// (utilization, ID), the first k = max(cfg.TopKMin, ⌊cfg.TopKFraction ×
// candidates⌋), of which tie % k is chosen; else the node with the lowest
// utilization, tie choosing among equals by ID.
//
// Spread: the nodes with room, sorted by ID, choose by tie % count.
//
// NodeAffinity: see Request.AffinityNode.
//
// PreferLabels, with any strategy but NodeAffinity's own node: the
// candidates are narrowed to those matching them when one of those has room.
//
// When no candidate has room the decision is Queue: on the local node if it is
// a candidate, else on the least utilized candidate (nodes without GPUs first
// for a GPU-less Default request), ties by ID.
func Pick(nodes []Node, local string, req Request, cfg Config, tie uint64) Decision {
	cands := candidates(nodes, req)
	if req.Strategy == NodeAffinity {
		i := slices.IndexFunc(cands, func(n *Node) bool { return n.ID == req.AffinityNode })
		switch {
		case i >= 0 && fitsAvailable(cands[i], req):
			return Decision{cands[i].ID, Place}
		case i >= 0:
			return Decision{cands[i].ID, Queue}
		case !req.AffinitySoft:
			return Decision{Kind: Infeasible}
		}
		// A soft affinity whose node is gone or unsuitable: fall through.
	}
	if len(cands) == 0 {
		return Decision{Kind: Infeasible}
	}
	if len(req.PreferLabels) > 0 {
		preferred := slices.DeleteFunc(slices.Clone(cands), func(n *Node) bool { return !MatchAll(n.Labels, req.PreferLabels) })
		if slices.ContainsFunc(preferred, func(n *Node) bool { return fitsAvailable(n, req) }) {
			cands = preferred
		}
	}
	if req.Strategy == Spread {
		if room := withRoom(cands, req); len(room) > 0 {
			return Decision{room[tie%uint64(len(room))].ID, Place}
		}
		return queue(cands, local, req, false)
	}

	avoidGPU := req.Resources[resources.GPU] <= 0
	if avoidGPU {
		cpuOnly := slices.DeleteFunc(slices.Clone(cands), hasGPU)
		if d, ok := hybrid(cpuOnly, local, req, cfg, tie); ok {
			return d
		}
	}
	if d, ok := hybrid(cands, local, req, cfg, tie); ok {
		return d
	}
	return queue(cands, local, req, avoidGPU)
}

// Allowed says whether node id may hold req while it waits there: it is a
// candidate (alive, matching req.Labels, its total fits) and, for
// NodeAffinity, it is the affinity node, or the affinity is soft and that
// node is no candidate. A node daemon grants a queued request only when
// its node is allowed; otherwise it sends the request to Pick's node.
func Allowed(nodes []Node, id string, req Request) bool {
	cands := candidates(nodes, req)
	if !slices.ContainsFunc(cands, func(n *Node) bool { return n.ID == id }) {
		return false
	}
	if req.Strategy != NodeAffinity || id == req.AffinityNode {
		return true
	}
	return req.AffinitySoft && !slices.ContainsFunc(cands, func(n *Node) bool { return n.ID == req.AffinityNode })
}

// candidates returns the alive nodes matching the labels whose totals fit the
// request, sorted by ID.
func candidates(nodes []Node, req Request) []*Node {
	var out []*Node
	for i := range nodes {
		n := &nodes[i]
		if n.Alive && MatchAll(n.Labels, req.Labels) && req.Resources.Fits(n.Total) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b *Node) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func fitsAvailable(n *Node, req Request) bool { return req.Resources.Fits(n.Available) }

func withRoom(cands []*Node, req Request) []*Node {
	var out []*Node
	for _, n := range cands {
		if fitsAvailable(n, req) {
			out = append(out, n)
		}
	}
	return out
}

func hasGPU(n *Node) bool { return n.Total[resources.GPU] > 0 }

// hybrid is the Default policy over cands; false when none has room.
func hybrid(cands []*Node, local string, req Request, cfg Config, tie uint64) (Decision, bool) {
	room := withRoom(cands, req)
	if len(room) == 0 {
		return Decision{}, false
	}
	type scored struct {
		n    *Node
		util float64
	}
	var below, rest []scored
	for _, n := range room {
		s := scored{n, utilization(n, req.Resources)}
		if s.util < cfg.SpreadThreshold {
			if n.ID == local {
				return Decision{n.ID, Place}, true
			}
			below = append(below, s)
		} else {
			rest = append(rest, s)
		}
	}
	byUtil := func(a, b scored) int {
		if c := compareUtil(a.util, b.util); c != 0 {
			return c
		}
		return strings.Compare(a.n.ID, b.n.ID)
	}
	if len(below) > 0 {
		slices.SortFunc(below, byUtil)
		k := max(cfg.TopKMin, int(cfg.TopKFraction*float64(len(cands))), 1)
		k = min(k, len(below))
		return Decision{below[tie%uint64(k)].n.ID, Place}, true
	}
	slices.SortFunc(rest, byUtil)
	equal := 1
	for equal < len(rest) && compareUtil(rest[equal].util, rest[0].util) == 0 {
		equal++
	}
	return Decision{rest[tie%uint64(equal)].n.ID, Place}, true
}

// queue picks the node to wait on: local if it is a candidate, else the least
// utilized, preferring GPU-less nodes when preferCPUOnly.
func queue(cands []*Node, local string, req Request, preferCPUOnly bool) Decision {
	var best *Node
	bestUtil := 0.0
	for _, n := range cands {
		if n.ID == local {
			return Decision{n.ID, Queue}
		}
		u := utilization(n, req.Resources)
		switch {
		case best == nil:
		case preferCPUOnly && hasGPU(best) != hasGPU(n):
			if hasGPU(n) {
				continue
			}
		case compareUtil(u, bestUtil) >= 0: // cands are by ID: the first wins ties
			continue
		}
		best, bestUtil = n, u
	}
	return Decision{best.ID, Queue}
}

// utilization is the node's critical-resource utilization after placing req:
// the largest (total - available + requested)/total over the kinds req asks
// for, or over all the node's kinds when req asks for nothing.
func utilization(n *Node, req resources.Set) float64 {
	u, asked := 0.0, false
	for k, v := range req {
		if t := n.Total[k]; v > 0 && t > 0 {
			u, asked = max(u, (t-n.Available[k]+v)/t), true
		}
	}
	if !asked {
		for k, t := range n.Total {
			if t > 0 {
				u = max(u, (t-n.Available[k])/t)
			}
		}
	}
	return u
}

// compareUtil orders utilizations, treating those within rounding as equal.
func compareUtil(a, b float64) int {
	switch {
	case math.Abs(a-b) <= resources.Epsilon:
		return 0
	case a < b:
		return -1
	}
	return 1
}
