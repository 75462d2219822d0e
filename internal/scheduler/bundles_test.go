package scheduler

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/resources"
)

func TestPlaceBundles(t *testing.T) {
	c1, c2, g1 := cpus(1), cpus(2), set{gpu: 1}
	tests := []struct {
		name     string
		nodes    []Node
		bundles  []set
		placed   []string
		strategy GroupStrategy
		want     []string
		kind     DecisionKind
		reason   string
	}{
		{"pack: one node holds all", []Node{idle4("a"), idle4("b")}, []set{c1, c1, c2}, nil, Pack, []string{"a", "a", "a"}, Place, ""},
		{"pack: the least used node", []Node{node("a", cpus(4), cpus(2)), idle4("b")}, []set{c1, c1}, nil, Pack, []string{"b", "b"}, Place, ""},
		{"pack: overflows to a second node", []Node{idle4("a"), node("b", cpus(4), cpus(2))}, []set{c2, c2, c2}, nil, Pack, []string{"a", "a", "b"}, Place, ""},
		{"strict pack: one node or wait", []Node{node("a", cpus(4), cpus(1)), node("b", cpus(4), cpus(1))}, []set{c2, c2}, nil, StrictPack, nil, Queue, "STRICT_PACK"},
		{"strict pack: never fits", []Node{idle4("a"), idle4("b")}, []set{c2, c2, c2}, nil, StrictPack, nil, Infeasible, "all its bundles together"},
		{"spread: one per node", []Node{idle4("a"), idle4("b"), idle4("c")}, []set{c1, c1, c1}, nil, SpreadBundles, []string{"a", "b", "c"}, Place, ""},
		{"spread: doubles up past the nodes", []Node{idle4("a"), idle4("b")}, []set{c1, c1, c1}, nil, SpreadBundles, []string{"a", "b", "a"}, Place, ""},
		{"strict spread: one per node", []Node{idle4("a"), idle4("b"), idle4("c")}, []set{c1, c1, c1}, nil, StrictSpread, []string{"a", "b", "c"}, Place, ""},
		{"strict spread: too few nodes", []Node{idle4("a"), idle4("b")}, []set{c1, c1, c1}, nil, StrictSpread, nil, Infeasible, "needs 3 nodes"},
		{"strict spread: a node full now", []Node{idle4("a"), node("b", cpus(4), cpus(4))}, []set{c1, c1}, nil, StrictSpread, nil, Queue, "STRICT_SPREAD"},
		{"a bundle no node can hold", []Node{idle4("a")}, []set{c1, g1}, nil, Pack, nil, Infeasible, "bundle 1 {GPU: 1} fits no alive node"},
		{"dead nodes do not count", []Node{idle4("a"), dead(idle4("b"))}, []set{c1, c1}, nil, StrictSpread, nil, Infeasible, "needs 2 nodes"},
		{"largest first", []Node{node("a", cpus(3), nil), node("b", cpus(2), nil)}, []set{c1, c2, c2}, nil, SpreadBundles, []string{"a", "a", "b"}, Place, ""},
		{"rescheduled strict spread avoids the group's nodes", []Node{idle4("a"), idle4("b"), idle4("c")}, []set{c1, c1, c1}, []string{"a", "", "c"}, StrictSpread,
			[]string{"a", "b", "c"}, Place, ""},
		{"rescheduled strict pack joins the group's node", []Node{idle4("a"), idle4("b")}, []set{c1, c1}, []string{"b", ""}, StrictPack,
			[]string{"b", "b"}, Place, ""},
		{"rescheduled strict pack: its node is full", []Node{idle4("a"), node("b", cpus(4), cpus(4))}, []set{c1, c1}, []string{"b", ""}, StrictPack,
			nil, Queue, "STRICT_PACK"},
		{"nothing to place", []Node{idle4("a")}, []set{c1}, []string{"a"}, Pack, []string{"a"}, Place, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bundles := make([]resources.Set, len(tt.bundles))
			for i, b := range tt.bundles {
				bundles[i] = resources.Set(b)
			}
			d := PlaceBundles(tt.nodes, bundles, tt.placed, tt.strategy)
			if d.Kind != tt.kind || !slices.Equal(d.Nodes, tt.want) || !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("PlaceBundles = %+v, want %v %v reason containing %q", d, tt.kind, tt.want, tt.reason)
			}
		})
	}
}

// TestPlaceBundlesProperties: over random clusters and groups, a placement
// fits what each node has available, keeps already placed bundles, and
// honours the strict strategies; Infeasible means that even idle nodes
// could not hold the group, and Queue that idle ones could.
func TestPlaceBundlesProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for round := range 4000 {
		var nodes []Node
		for i := range 1 + rng.Intn(5) {
			total := set{cpu: float64(1 + rng.Intn(6))}
			if rng.Intn(3) == 0 {
				total[gpu] = float64(1 + rng.Intn(2))
			}
			n := node(fmt.Sprintf("n%d", i), total, set{cpu: float64(rng.Intn(7))})
			n.Alive = rng.Intn(8) != 0
			nodes = append(nodes, n)
		}
		var bundles []resources.Set
		for range 1 + rng.Intn(5) {
			b := resources.Set{resources.CPU: float64(rng.Intn(3))}
			if rng.Intn(5) == 0 {
				b[resources.GPU] = 1
			}
			bundles = append(bundles, b)
		}
		strategy := GroupStrategy(rng.Intn(4))
		d := PlaceBundles(nodes, bundles, nil, strategy)
		idle := make([]Node, len(nodes))
		for i, n := range nodes {
			n.Available = n.Total.Clone()
			idle[i] = n
		}
		switch d.Kind {
		case Place:
			left := map[string]resources.Set{}
			for _, n := range nodes {
				left[n.ID] = n.Available.Clone()
			}
			for i, id := range d.Nodes {
				n := nodes[indexOf(nodes, id)]
				if !n.Alive {
					t.Fatalf("round %d: bundle %d on dead node %s", round, i, id)
				}
				left[id].Sub(bundles[i])
				for k, v := range left[id] {
					if v < min(n.Available[k], 0)-resources.Epsilon {
						t.Fatalf("round %d: %s over-committed: %v left of %v", round, id, left[id], n.Available)
					}
				}
			}
			distinct := map[string]bool{}
			for _, id := range d.Nodes {
				distinct[id] = true
			}
			if strategy == StrictPack && len(distinct) != 1 || strategy == StrictSpread && len(distinct) != len(bundles) {
				t.Fatalf("round %d: %v placed %v", round, strategy, d.Nodes)
			}
		case Queue:
			if again := PlaceBundles(idle, bundles, nil, strategy); again.Kind != Place {
				t.Fatalf("round %d: Queue (%s), but idle nodes give %+v", round, d.Reason, again)
			}
		case Infeasible:
			if again := PlaceBundles(idle, bundles, nil, strategy); again.Kind == Place {
				t.Fatalf("round %d: Infeasible (%s), but idle nodes place it: %v", round, d.Reason, again.Nodes)
			}
		}
	}
}

func TestGroupStrategyStrings(t *testing.T) {
	for s, want := range map[GroupStrategy]string{Pack: "PACK", SpreadBundles: "SPREAD", StrictPack: "STRICT_PACK", StrictSpread: "STRICT_SPREAD", 9: "GroupStrategy(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %s", int(s), s)
		}
	}
}
