package cli

import (
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/pb"
)

// nodeID is a 16-byte node id whose short form is hex(b[10:16]).
func nodeID(short byte) []byte {
	b := make([]byte, 16)
	b[13] = short
	return b
}

func res(kv map[string]float64) *pb.Resources { return &pb.Resources{Amounts: kv} }

func TestFormatStatus(t *testing.T) {
	const gib = 1 << 30
	nodes := []*pb.NodeInfo{
		{
			// Listed second: started later.
			NodeId: nodeID(2), Address: "10.0.0.2:4000", State: pb.NodeState_NODE_STATE_ALIVE, StartUnixMs: 2000, NumWorkers: 3,
			Labels:         map[string]string{"zone": "b", "accel": "h100", "raygo.io/node-id": "00000000000000000000000000020000"},
			Total:          res(map[string]float64{"CPU": 8, "GPU": 2, "memory": 32 * gib, "widget": 2, "CPU_group_0_ab": 1, "bundle_group_ab": 1000}),
			Available:      res(map[string]float64{"CPU": 5.5, "GPU": 1.75, "memory": 24 * gib, "widget": 2}),
			PendingDemands: []*pb.Resources{res(map[string]float64{"CPU": 4}), res(map[string]float64{"GPU": 1})},
		},
		{
			NodeId: nodeID(9), Address: "10.0.0.9:4000", State: pb.NodeState_NODE_STATE_DEAD, StartUnixMs: 500,
			Total:          res(map[string]float64{"CPU": 64}),
			Available:      res(map[string]float64{"CPU": 64}),
			PendingDemands: []*pb.Resources{res(map[string]float64{"TPU": 1})}, // dead: not listed
		},
		{
			NodeId: nodeID(1), Address: "10.0.0.1:4000", State: pb.NodeState_NODE_STATE_ALIVE, StartUnixMs: 1000, NumWorkers: 1,
			Total:          res(map[string]float64{"CPU": 4, "memory": 16 * gib}),
			Available:      res(map[string]float64{"CPU": 3, "memory": 16 * gib}),
			PendingDemands: []*pb.Resources{res(map[string]float64{"CPU": 4})},
		},
	}
	want := `Nodes: 2 alive, 1 dead
 NODE          ADDRESS        STATE  CPU      GPU       MEMORY          WORKERS  CUSTOM          LABELS
 000000010000  10.0.0.1:4000  ALIVE  1.0/4.0  -         0B/16.0GiB      1        -               -
 000000020000  10.0.0.2:4000  ALIVE  2.5/8.0  0.25/2.0  8.0GiB/32.0GiB  3        widget 0.0/2.0  accel=h100,zone=b
 000000090000  10.0.0.9:4000  DEAD   -        -         -               0        -               -

Resources (alive nodes)
------------------------------------------------------------
Usage:
 3.5/12.0 CPU
 0.25/2.0 GPU
 8.0GiB/48.0GiB memory
 0.0/2.0 widget

Pending demands:
 {CPU: 4}: 2 pending
 {GPU: 1}: 1 pending
`
	if got := formatStatus(nodes, nil); got != want {
		t.Errorf("formatStatus:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatStatusEmpty(t *testing.T) {
	got := formatStatus(nil, nil)
	for _, want := range []string{"Nodes: 0 alive\n", " 0.0/0.0 CPU\n", " (no pending demands)\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("formatStatus(nil) lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "NODE") {
		t.Errorf("formatStatus(nil) prints a table header:\n%s", got)
	}
}

// TestFormatStatusSharedMachine: two nodes on one 24 GiB machine, each
// reporting the machine's memory, count it once (the status showed 47 GiB
// on a 24 GiB machine); infeasible tasks and actors are listed apart from
// the demands that wait for room.
func TestFormatStatusSharedMachine(t *testing.T) {
	const gib = 1 << 30
	node := func(id byte, usedMem float64) *pb.NodeInfo {
		return &pb.NodeInfo{
			NodeId: nodeID(id), Address: "127.0.0.1:400" + string('0'+rune(id)), State: pb.NodeState_NODE_STATE_ALIVE, StartUnixMs: int64(id),
			HostId: "machine-a", HostMemory: 24 * gib,
			Total:     res(map[string]float64{"CPU": 2, "memory": 23.5 * gib}),
			Available: res(map[string]float64{"CPU": 2, "memory": 23.5*gib - usedMem}),
		}
	}
	a, b := node(1, 2*gib), node(2, 1*gib)
	a.InfeasibleDemands = []*pb.Resources{res(map[string]float64{"CPU": 64})}
	b.PendingDemands = []*pb.Resources{res(map[string]float64{"CPU": 1})}
	other := &pb.NodeInfo{NodeId: nodeID(3), Address: "10.0.0.3:4000", State: pb.NodeState_NODE_STATE_ALIVE, StartUnixMs: 3, HostId: "machine-b", HostMemory: 8 * gib,
		Total: res(map[string]float64{"CPU": 1, "memory": 8 * gib}), Available: res(map[string]float64{"CPU": 1, "memory": 8 * gib})}
	actors := []*pb.ActorInfo{
		{State: pb.ActorState_ACTOR_STATE_PENDING_CREATION, Infeasible: &pb.ErrorInfo{Kind: pb.ErrorKind_ERROR_KIND_INFEASIBLE, Request: "{CPU: 64}"}},
		{State: pb.ActorState_ACTOR_STATE_RESTARTING, Infeasible: &pb.ErrorInfo{Kind: pb.ErrorKind_ERROR_KIND_INFEASIBLE, Request: "{GPU: 1}"}},
		{State: pb.ActorState_ACTOR_STATE_ALIVE},
	}
	got := formatStatus([]*pb.NodeInfo{a, b, other}, actors)
	for _, want := range []string{
		"Nodes: 3 alive (on 2 machines)\n",
		" 3.0GiB/32.0GiB memory (nodes sharing a machine count its memory once)\n",
		"Pending demands:\n {CPU: 1}: 1 pending\n",
		"Infeasible demands (no node can hold these; they wait for one that can: add such a node, or lower the request):\n" +
			" {CPU: 64}: 2 waiting\n {GPU: 1}: 1 waiting\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("formatStatus lacks %q:\n%s", want, got)
		}
	}
}

// TestFormatStatusCgroupNodes: nodes in memory cgroups of their own offer
// their own limits (resources.Detect), so a machine's nodes count what
// their limits add up to, never more than the machine's memory.
func TestFormatStatusCgroupNodes(t *testing.T) {
	const gib = 1 << 30
	node := func(id byte, limit float64) *pb.NodeInfo {
		return &pb.NodeInfo{
			NodeId: nodeID(id), Address: "127.0.0.1:400" + string('0'+rune(id)), State: pb.NodeState_NODE_STATE_ALIVE, StartUnixMs: int64(id),
			HostId: "machine-a", HostMemory: 24 * gib,
			Total: res(map[string]float64{"CPU": 1, "memory": limit}), Available: res(map[string]float64{"CPU": 1, "memory": limit}),
		}
	}
	for _, tc := range []struct {
		name   string
		limits []float64
		want   string
	}{
		{"two limited nodes", []float64{4 * gib, 6 * gib}, " 0B/10.0GiB memory\n"},
		{"a limited node beside an unlimited one", []float64{4 * gib, 24 * gib}, " 0B/24.0GiB memory (nodes sharing a machine count its memory once)\n"},
		{"limits above the machine together", []float64{16 * gib, 16 * gib}, " 0B/24.0GiB memory (nodes sharing a machine count its memory once)\n"},
	} {
		var nodes []*pb.NodeInfo
		for i, l := range tc.limits {
			nodes = append(nodes, node(byte(i+1), l))
		}
		if got := formatStatus(nodes, nil); !strings.Contains(got, tc.want) {
			t.Errorf("%s: formatStatus lacks %q:\n%s", tc.name, tc.want, got)
		}
	}
}

func TestFormatAmounts(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{formatAmount(0), "0.0"},
		{formatAmount(3), "3.0"},
		{formatAmount(0.25), "0.25"},
		{formatAmount(1.0 / 3), "0.3333"},
		{formatAmount(2 - 1e-12), "2.0"},
		{humanBytes(0), "0B"},
		{humanBytes(1023), "1023B"},
		{humanBytes(1536), "1.5KiB"},
		{humanBytes(15.5 * (1 << 30)), "15.5GiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
