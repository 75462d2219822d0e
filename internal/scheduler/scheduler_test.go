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

var oneCPU = Request{Resources: cpus(1)}

func idle4(id string) Node { return node(id, cpus(4), nil) }

func TestPick(t *testing.T) {
	gpuBox := func(id string, used set) Node { return node(id, set{cpu: 8, gpu: 2}, used) }
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
			withLabels(in("zone", "x")), nil, 0, Decision{"a", Place}},
		{"all labels must match",
			[]Node{labelled(idle4("a"), "zone", "x"), labelled(idle4("b"), "zone", "x", "disk", "ssd")}, "",
			withLabels(in("zone", "x"), in("disk", "ssd")), nil, 0, Decision{"b", Place}},
		{"no node has the labels",
			[]Node{labelled(idle4("a"), "zone", "x")}, "a",
			withLabels(in("zone", "y")), nil, 0, Decision{Kind: Infeasible}},
		{"in: any of the values",
			[]Node{idle4("local"), labelled(idle4("a"), "zone", "y")}, "local",
			withLabels(in("zone", "x", "y")), nil, 0, Decision{"a", Place}},
		{"not in: a node without the label matches",
			[]Node{labelled(idle4("local"), "zone", "x"), idle4("a")}, "local",
			withLabels(LabelMatch{Key: "zone", Op: NotIn, Values: []string{"x"}}), nil, 0, Decision{"a", Place}},
		{"not in: another value matches",
			[]Node{labelled(idle4("local"), "zone", "x"), labelled(idle4("a"), "zone", "y")}, "local",
			withLabels(LabelMatch{Key: "zone", Op: NotIn, Values: []string{"x", "z"}}), nil, 0, Decision{"a", Place}},
		{"exists",
			[]Node{idle4("local"), labelled(idle4("a"), "accel", "")}, "local",
			withLabels(LabelMatch{Key: "accel", Op: Exists}), nil, 0, Decision{"a", Place}},
		{"does not exist",
			[]Node{labelled(idle4("local"), "spot", "true"), idle4("a")}, "local",
			withLabels(LabelMatch{Key: "spot", Op: DoesNotExist}), nil, 0, Decision{"a", Place}},
		{"labels and a busy matching node: queue there, not on the local node",
			[]Node{idle4("local"), labelled(node("a", cpus(4), cpus(4)), "zone", "x")}, "local",
			withLabels(in("zone", "x")), nil, 0, Decision{"a", Queue}},
		{"preferred labels with room win",
			[]Node{idle4("local"), labelled(idle4("a"), "disk", "ssd")}, "local",
			Request{Resources: cpus(1), PreferLabels: []LabelMatch{in("disk", "ssd")}}, nil, 0, Decision{"a", Place}},
		{"preferred labels, their node is full: any candidate",
			[]Node{idle4("local"), labelled(node("a", cpus(4), cpus(4)), "disk", "ssd")}, "local",
			Request{Resources: cpus(1), PreferLabels: []LabelMatch{in("disk", "ssd")}}, nil, 0, Decision{"local", Place}},
		{"preferred labels, no node has them: any candidate",
			[]Node{idle4("local"), idle4("a")}, "a",
			Request{Resources: cpus(1), PreferLabels: []LabelMatch{in("disk", "ssd")}}, nil, 0, Decision{"a", Place}},
		{"preferred labels only among the required ones",
			[]Node{labelled(idle4("local"), "disk", "ssd"), labelled(idle4("a"), "zone", "x")}, "local",
			Request{Resources: cpus(1), Labels: []LabelMatch{in("zone", "x")}, PreferLabels: []LabelMatch{in("disk", "ssd")}}, nil, 0, Decision{"a", Place}},

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
			Request{Resources: cpus(1), Strategy: NodeAffinity, AffinityNode: "c", Labels: []LabelMatch{in("k", "v")}}, nil, 0, Decision{Kind: Infeasible}},
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

func in(key string, values ...string) LabelMatch { return LabelMatch{Key: key, Op: In, Values: values} }

func withLabels(ms ...LabelMatch) Request { return Request{Resources: cpus(1), Labels: ms} }

func TestAllowed(t *testing.T) {
	busyC := []Node{idle4("a"), labelled(node("c", cpus(4), cpus(4)), "zone", "x"), dead(idle4("d"))}
	tests := []struct {
		name string
		id   string
		req  Request
		want bool
	}{
		{"default: any candidate", "a", oneCPU, true},
		{"dead node", "d", oneCPU, false},
		{"unknown node", "zz", oneCPU, false},
		{"too small", "a", Request{Resources: cpus(8)}, false},
		{"labels match", "c", withLabels(in("zone", "x")), true},
		{"labels do not match", "a", withLabels(in("zone", "x")), false},
		{"hard affinity: its node", "c", affinity("c", false), true},
		{"hard affinity: another node", "a", affinity("c", false), false},
		{"soft affinity to a candidate: only it", "a", affinity("c", true), false},
		{"soft affinity to a dead node: any candidate", "a", affinity("d", true), true},
		{"hard affinity to a dead node: nowhere", "a", affinity("d", false), false},
		{"preferred labels do not restrict", "a", Request{Resources: cpus(1), PreferLabels: []LabelMatch{in("zone", "x")}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Allowed(busyC, tt.id, tt.req); got != tt.want {
				t.Errorf("Allowed(%s) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
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

// TestPickProperties checks, over random clusters with labels and random
// requests of every strategy, what holds of any decision: a placement is on
// an allowed node with room; a queue is on an allowed node; Infeasible
// comes exactly when no node is allowed to hold the request.
func TestPickProperties(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	zones := []string{"a", "b", "c"}
	randomMatch := func() LabelMatch {
		m := LabelMatch{Key: []string{"zone", "disk", "spot"}[rng.Intn(3)], Op: LabelOp(rng.Intn(4))}
		if m.Op == In || m.Op == NotIn {
			m.Values = []string{zones[rng.Intn(3)], zones[rng.Intn(3)]}
		}
		return m
	}
	for round := range 3000 {
		var nodes []Node
		for i := range 1 + rng.Intn(5) {
			total := set{cpu: float64(1 + rng.Intn(8))}
			if rng.Intn(3) == 0 {
				total[gpu] = float64(1 + rng.Intn(4))
			}
			used := set{cpu: float64(rng.Intn(9))}
			n := node(fmt.Sprintf("n%d", i), total, used)
			n.Alive = rng.Intn(6) != 0
			n.Labels = map[string]string{}
			if rng.Intn(2) == 0 {
				n.Labels["zone"] = zones[rng.Intn(3)]
			}
			if rng.Intn(3) == 0 {
				n.Labels["disk"] = zones[rng.Intn(3)]
			}
			nodes = append(nodes, n)
		}
		req := Request{Resources: set{cpu: float64(1 + rng.Intn(4))}, Strategy: Strategy(rng.Intn(3))}
		if rng.Intn(4) == 0 {
			req.Resources[gpu] = 1
		}
		for range rng.Intn(3) {
			req.Labels = append(req.Labels, randomMatch())
		}
		for range rng.Intn(2) {
			req.PreferLabels = append(req.PreferLabels, randomMatch())
		}
		if req.Strategy == NodeAffinity {
			req.AffinityNode, req.AffinitySoft = fmt.Sprintf("n%d", rng.Intn(6)), rng.Intn(2) == 0
		}
		local := nodes[0].ID
		d := Pick(nodes, local, req, DefaultConfig(), rng.Uint64())
		anyAllowed := false
		for _, n := range nodes {
			anyAllowed = anyAllowed || Allowed(nodes, n.ID, req)
		}
		switch d.Kind {
		case Infeasible:
			if anyAllowed {
				t.Fatalf("round %d: %+v Infeasible on %+v, but a node is allowed", round, req, nodes)
			}
		case Place, Queue:
			i := indexOf(nodes, d.Node)
			if i < 0 || !Allowed(nodes, d.Node, req) {
				t.Fatalf("round %d: %+v decided %v, a node not allowed, on %+v", round, req, d, nodes)
			}
			if d.Kind == Place && !req.Resources.Fits(nodes[i].Available) {
				t.Fatalf("round %d: placed %v on %s with only %v", round, req.Resources, d.Node, nodes[i].Available)
			}
		default:
			t.Fatalf("round %d: decision %v", round, d)
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
