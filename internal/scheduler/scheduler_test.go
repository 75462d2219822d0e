package scheduler

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/raygo/raygo/internal/resources"
)

type set = resources.Set

const (
	cpu = resources.CPU
	gpu = resources.GPU
)

// node returns an alive node with the given total and used amounts.
func node(id string, total, used set) Node {
	avail := total.Clone()
	avail.Sub(used)
	return Node{ID: id, Address: id + ":1", Total: total, Available: avail, Alive: true}
}

func dead(n Node) Node { n.Alive = false; return n }

func labelled(n Node, kv ...string) Node {
	n.Labels = map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		n.Labels[kv[i]] = kv[i+1]
	}
	return n
}

func cpus(n float64) set { return set{cpu: n} }

func TestPick(t *testing.T) {
	var (
		idle4  = func(id string) Node { return node(id, cpus(4), nil) }
		gpuBox = func(id string, used set) Node { return node(id, set{cpu: 8, gpu: 2}, used) }
		oneCPU = Request{Resources: cpus(1)}
	)
	tests := []struct {
		name  string
		nodes []Node
		local string
		req   Request
		cfg   *Config // nil: DefaultConfig()
		tie   uint64
		want  Decision
	}{
		// Default: packing locally, then spreading.
		{"local below threshold", []Node{idle4("a"), idle4("local")}, "local", oneCPU, nil, 0, Decision{"local", Place}},
		{"local reaches threshold: least utilized remote",
			[]Node{node("local", cpus(4), cpus(1)), node("a", cpus(4), cpus(1)), idle4("b")}, "local", oneCPU, nil, 0, Decision{"b", Place}},
		{"threshold is after placement, strictly below",
			[]Node{node("local", cpus(2), nil), node("a", cpus(8), nil)}, "local", oneCPU, nil, 0, Decision{"a", Place}},
		{"empty request scores overall utilization", []Node{node("local", cpus(1), cpus(1)), idle4("a")}, "local", Request{}, nil, 0, Decision{"a", Place}},
		{"zero request on a busy-free local", []Node{idle4("local"), idle4("a")}, "local", Request{Resources: set{cpu: 0}}, nil, 7, Decision{"local", Place}},
		{"top-k: tie 0 takes the least utilized",
			tenNodes(), "", oneCPU, nil, 0, Decision{"n0", Place}},
		{"top-k: tie 1 takes the second of k=2",
			tenNodes(), "", oneCPU, nil, 1, Decision{"n1", Place}},
		{"top-k: tie wraps at k",
			tenNodes(), "", oneCPU, nil, 2, Decision{"n0", Place}},
		{"top-k: TopKMin widens k",
			tenNodes(), "", oneCPU, &Config{SpreadThreshold: 0.5, TopKFraction: 0.2, TopKMin: 4}, 3, Decision{"n3", Place}},
		{"top-k: only below-threshold nodes count",
			[]Node{node("a", cpus(4), cpus(3)), node("b", cpus(4), nil), node("c", cpus(10), cpus(8))}, "", oneCPU,
			&Config{SpreadThreshold: 0.5, TopKFraction: 1}, 5, Decision{"b", Place}},
		{"all above threshold: lowest utilization",
			[]Node{node("a", cpus(4), cpus(3)), node("b", cpus(4), cpus(2)), node("local", cpus(4), cpus(3))}, "local", oneCPU, nil, 0, Decision{"b", Place}},
		{"all above threshold: tie picks among equals",
			[]Node{node("a", cpus(4), cpus(2)), node("b", cpus(4), cpus(2)), node("c", cpus(4), cpus(3))}, "", oneCPU, nil, 1, Decision{"b", Place}},
		{"critical resource is the most utilized kind",
			[]Node{node("a", set{cpu: 4, "mem": 10}, set{"mem": 9}), node("b", set{cpu: 4, "mem": 10}, set{cpu: 2})}, "",
			Request{Resources: set{cpu: 1, "mem": 1}}, nil, 0, Decision{"b", Place}},
		{"zero Config picks the least utilized, not local",
			[]Node{node("local", cpus(4), cpus(1)), idle4("a")}, "local", oneCPU, &Config{}, 0, Decision{"a", Place}},
		{"dead local is skipped", []Node{dead(idle4("local")), idle4("a")}, "local", oneCPU, nil, 0, Decision{"a", Place}},
		{"unknown local", []Node{idle4("a"), idle4("b")}, "nope", oneCPU, nil, 0, Decision{"a", Place}},
		{"input order does not matter", []Node{idle4("c"), idle4("b"), idle4("a")}, "", oneCPU, nil, 0, Decision{"a", Place}},

		// Default: steering GPU-less work off GPU nodes.
		{"GPU-less request avoids an idle local GPU node",
			[]Node{gpuBox("local", nil), node("cpu", cpus(4), cpus(3))}, "local", oneCPU, nil, 0, Decision{"cpu", Place}},
		{"GPU-less request uses a GPU node when CPU nodes are full",
			[]Node{gpuBox("local", nil), node("cpu", cpus(4), cpus(4))}, "local", oneCPU, nil, 0, Decision{"local", Place}},
		{"GPU request goes to the GPU node",
			[]Node{idle4("local"), gpuBox("g", nil)}, "local", Request{Resources: set{cpu: 1, gpu: 1}}, nil, 0, Decision{"g", Place}},
		{"fractional GPU fits a partly used GPU node",
			[]Node{gpuBox("g1", set{gpu: 2}), gpuBox("g2", set{gpu: 1.5})}, "", Request{Resources: set{gpu: 0.5}}, nil, 0, Decision{"g2", Place}},

		// Default: queueing.
		{"no room: queue locally",
			[]Node{node("local", cpus(4), cpus(4)), node("a", cpus(4), cpus(4))}, "local", oneCPU, nil, 0, Decision{"local", Queue}},
		{"no room, local infeasible: queue on least utilized",
			[]Node{node("local", cpus(1), cpus(1)), node("a", cpus(8), cpus(8)), node("b", cpus(8), cpus(7.5))}, "local",
			Request{Resources: cpus(2)}, nil, 0, Decision{"b", Queue}},
		{"no room, local infeasible: GPU-less queues on a CPU node",
			[]Node{node("local", set{"x": 1}, nil), gpuBox("g", set{cpu: 8}), node("c", cpus(2), cpus(2))}, "local",
			oneCPU, nil, 0, Decision{"c", Queue}},
		{"no room, oversubscribed nodes: queue on the least behind",
			[]Node{node("a", cpus(4), cpus(6)), node("b", cpus(4), cpus(5))}, "", oneCPU, nil, 0, Decision{"b", Queue}},

		// Infeasible.
		{"GPU on CPU-only nodes", []Node{idle4("local"), idle4("a")}, "local", Request{Resources: set{gpu: 1}}, nil, 0, Decision{Kind: Infeasible}},
		{"more CPU than any node", []Node{idle4("local"), gpuBox("g", nil)}, "local", Request{Resources: cpus(1000)}, nil, 0, Decision{Kind: Infeasible}},
		{"unknown custom resource", []Node{idle4("local")}, "local", Request{Resources: set{cpu: 1, "TPU": 1}}, nil, 0, Decision{Kind: Infeasible}},
		{"more GPUs than any node", []Node{gpuBox("g", nil)}, "", Request{Resources: set{gpu: 3}}, nil, 0, Decision{Kind: Infeasible}},
		{"only a dead node fits", []Node{idle4("local"), dead(node("big", cpus(64), nil))}, "local", Request{Resources: cpus(32)}, nil, 0, Decision{Kind: Infeasible}},
		{"no nodes", nil, "local", oneCPU, nil, 0, Decision{Kind: Infeasible}},

		// Label selectors.
		{"labels filter",
			[]Node{idle4("local"), labelled(idle4("a"), "zone", "x", "disk", "ssd"), labelled(idle4("b"), "zone", "y")}, "local",
			Request{Resources: cpus(1), LabelSelector: map[string]string{"zone": "x"}}, nil, 0, Decision{"a", Place}},
		{"all labels must match",
			[]Node{labelled(idle4("a"), "zone", "x"), labelled(idle4("b"), "zone", "x", "disk", "ssd")}, "",
			Request{Resources: cpus(1), LabelSelector: map[string]string{"zone": "x", "disk": "ssd"}}, nil, 0, Decision{"b", Place}},
		{"no node has the labels",
			[]Node{labelled(idle4("a"), "zone", "x")}, "a",
			Request{Resources: cpus(1), LabelSelector: map[string]string{"zone": "y"}}, nil, 0, Decision{Kind: Infeasible}},

		// Spread.
		{"spread tie 0", threeNodes(), "b", Request{Resources: cpus(1), Strategy: Spread}, nil, 0, Decision{"a", Place}},
		{"spread tie 1", threeNodes(), "b", Request{Resources: cpus(1), Strategy: Spread}, nil, 1, Decision{"b", Place}},
		{"spread tie 5", threeNodes(), "b", Request{Resources: cpus(1), Strategy: Spread}, nil, 5, Decision{"c", Place}},
		{"spread skips full nodes",
			[]Node{idle4("a"), node("b", cpus(4), cpus(4)), idle4("c")}, "", Request{Resources: cpus(1), Strategy: Spread}, nil, 1, Decision{"c", Place}},
		{"spread does not avoid GPU nodes",
			[]Node{idle4("a"), gpuBox("g", nil)}, "", Request{Resources: cpus(1), Strategy: Spread}, nil, 1, Decision{"g", Place}},
		{"spread with no room queues locally",
			[]Node{node("a", cpus(4), cpus(4)), node("b", cpus(4), cpus(4))}, "b", Request{Resources: cpus(1), Strategy: Spread}, nil, 0, Decision{"b", Queue}},
		{"spread infeasible", threeNodes(), "a", Request{Resources: set{gpu: 1}, Strategy: Spread}, nil, 0, Decision{Kind: Infeasible}},

		// Node affinity.
		{"hard affinity places there", threeNodes(), "a", affinity("c", false), nil, 0, Decision{"c", Place}},
		{"hard affinity, busy node: queue there",
			[]Node{idle4("a"), node("c", cpus(4), cpus(4))}, "a", affinity("c", false), nil, 0, Decision{"c", Queue}},
		{"hard affinity, dead node", []Node{idle4("a"), dead(idle4("c"))}, "a", affinity("c", false), nil, 0, Decision{Kind: Infeasible}},
		{"hard affinity, unknown node", threeNodes(), "a", affinity("zz", false), nil, 0, Decision{Kind: Infeasible}},
		{"hard affinity, node too small",
			[]Node{idle4("a"), node("c", cpus(0.5), nil)}, "a", affinity("c", false), nil, 0, Decision{Kind: Infeasible}},
		{"hard affinity, labels do not match",
			[]Node{idle4("a"), idle4("c")}, "a",
			Request{Resources: cpus(1), Strategy: NodeAffinity, AffinityNode: "c", LabelSelector: map[string]string{"k": "v"}}, nil, 0, Decision{Kind: Infeasible}},
		{"soft affinity places there", threeNodes(), "a", affinity("c", true), nil, 0, Decision{"c", Place}},
		{"soft affinity, busy but feasible: queue there (as Ray)",
			[]Node{idle4("a"), node("c", cpus(4), cpus(4))}, "a", affinity("c", true), nil, 0, Decision{"c", Queue}},
		{"soft affinity, dead node: default policy", []Node{idle4("a"), dead(idle4("c"))}, "a", affinity("c", true), nil, 0, Decision{"a", Place}},
		{"soft affinity, node too small: default policy",
			[]Node{idle4("a"), idle4("b"), node("c", cpus(0.5), nil)}, "b", affinity("c", true), nil, 0, Decision{"b", Place}},
		{"soft affinity, nothing feasible", []Node{idle4("a")}, "a",
			Request{Resources: set{gpu: 1}, Strategy: NodeAffinity, AffinityNode: "a", AffinitySoft: true}, nil, 0, Decision{Kind: Infeasible}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			before := fmt.Sprint(tt.nodes)
			if got := Pick(tt.nodes, tt.local, tt.req, cfg, tt.tie); got != tt.want {
				t.Errorf("Pick = %v, want %v", got, tt.want)
			}
			if after := fmt.Sprint(tt.nodes); after != before {
				t.Errorf("Pick modified its input:\n%s\n%s", before, after)
			}
		})
	}
}

func affinity(id string, soft bool) Request {
	return Request{Resources: cpus(1), Strategy: NodeAffinity, AffinityNode: id, AffinitySoft: soft}
}

func threeNodes() []Node {
	return []Node{node("c", cpus(4), nil), node("a", cpus(4), nil), node("b", cpus(4), nil)}
}

// tenNodes are n0…n9 with utilization rising by index, all below 0.5 after a
// 1-CPU placement, so k = max(1, ⌊0.2×10⌋) = 2.
func tenNodes() []Node {
	var ns []Node
	for i := range 10 {
		ns = append(ns, node(fmt.Sprintf("n%d", i), cpus(100), cpus(float64(i))))
	}
	return ns
}

// TestPickSimulation places random requests on a simulated cluster through
// Pick, checking that it never places on a node without room or returns
// Infeasible for a request some node could hold, and that Default spreads load
// once the local node is half full.
func TestPickSimulation(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	nodes := []Node{
		node("local", cpus(8), nil),
		node("w1", cpus(8), nil),
		node("w2", set{cpu: 16, gpu: 4}, nil),
		node("w3", set{cpu: 4, "TPU": 2}, nil),
	}
	reqs := []set{cpus(1), cpus(0.5), {cpu: 1, gpu: 1}, {gpu: 0.25}, {"TPU": 1}, cpus(2), {gpu: 8}, cpus(20)}
	placed := map[string]int{}
	for step := range 2000 {
		req := Request{Resources: reqs[rng.Intn(len(reqs))], Strategy: Strategy(rng.Intn(2))}
		d := Pick(nodes, "local", req, DefaultConfig(), uint64(step))
		feasible := false
		for _, n := range nodes {
			feasible = feasible || req.Resources.Fits(n.Total)
		}
		switch d.Kind {
		case Infeasible:
			if feasible {
				t.Fatalf("step %d: %v Infeasible but some node could hold it", step, req.Resources)
			}
		case Place:
			i := indexOf(nodes, d.Node)
			if !req.Resources.Fits(nodes[i].Available) {
				t.Fatalf("step %d: placed %v on %s with only %v", step, req.Resources, d.Node, nodes[i].Available)
			}
			nodes[i].Available.Sub(req.Resources)
			placed[d.Node]++
		case Queue:
			if !feasible || indexOf(nodes, d.Node) < 0 {
				t.Fatalf("step %d: bad queue decision %v for %v", step, d, req.Resources)
			}
		}
		// Finish a random node's work now and then.
		if rng.Intn(8) == 0 {
			n := &nodes[rng.Intn(len(nodes))]
			n.Available = n.Total.Clone()
		}
	}
	for _, n := range nodes {
		if placed[n.ID] == 0 {
			t.Errorf("nothing ever placed on %s: %v", n.ID, placed)
		}
	}
}

func indexOf(nodes []Node, id string) int {
	for i := range nodes {
		if nodes[i].ID == id {
			return i
		}
	}
	return -1
}

func TestDecisionErr(t *testing.T) {
	if err := (Decision{Kind: Infeasible}).Err(); !errors.Is(err, ErrInfeasible) {
		t.Errorf("Infeasible.Err() = %v", err)
	}
	if err := (Decision{"a", Queue}).Err(); err != nil {
		t.Errorf("Queue.Err() = %v", err)
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Default.String(), "DEFAULT"}, {Spread.String(), "SPREAD"}, {NodeAffinity.String(), "NODE_AFFINITY"},
		{Strategy(9).String(), "Strategy(9)"},
		{Place.String(), "Place"}, {Queue.String(), "Queue"}, {Infeasible.String(), "Infeasible"},
		{DecisionKind(0).String(), "DecisionKind(0)"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
