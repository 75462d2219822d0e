package state

import (
	"testing"

	"github.com/raygo/raygo/internal/pb"
)

func TestClusterStatusOf(t *testing.T) {
	alive, dead := pb.NodeState_NODE_STATE_ALIVE, pb.NodeState_NODE_STATE_DEAD
	res := func(m map[string]float64) *pb.Resources { return &pb.Resources{Amounts: m} }
	nodes := []*pb.NodeInfo{
		{NodeId: []byte{2}, Address: "b:1", State: alive, StartUnixMs: 2, HostId: "m1", HostMemory: 100,
			Total: res(map[string]float64{"CPU": 4, "memory": 100}), Available: res(map[string]float64{"CPU": 1, "memory": 60}),
			PendingDemands: []*pb.Resources{res(map[string]float64{"CPU": 4})}},
		{NodeId: []byte{1}, Address: "a:1", State: alive, StartUnixMs: 1, HostId: "m1", HostMemory: 100,
			Total: res(map[string]float64{"CPU": 2, "memory": 100, "CPU_group_0_ab": 1}), Available: res(map[string]float64{"CPU": 2, "memory": 100}),
			PendingDemands:    []*pb.Resources{res(map[string]float64{"CPU": 4}), res(map[string]float64{"CPU": 1, "GPU": 1})},
			InfeasibleDemands: []*pb.Resources{res(map[string]float64{"GPU": 8})}},
		{NodeId: []byte{3}, Address: "c:1", State: dead, Total: res(map[string]float64{"CPU": 64})},
		{NodeId: []byte{4}, Address: "d:1", State: alive, StartUnixMs: 3, Total: res(map[string]float64{"CPU": 1})}, // no report yet
	}
	actors := []*pb.ActorInfo{
		{State: pb.ActorState_ACTOR_STATE_PENDING_CREATION, Infeasible: &pb.ErrorInfo{Request: "GPU: 8"}},
		{State: pb.ActorState_ACTOR_STATE_DEAD, Infeasible: &pb.ErrorInfo{Request: "GPU: 99"}},
	}
	st := clusterStatusOf(nodes, actors, "01")
	if st.AliveNodes != 3 || st.DeadNodes != 1 || st.Machines != 2 {
		t.Fatalf("alive %d dead %d machines %d; want 3, 1, 2", st.AliveNodes, st.DeadNodes, st.Machines)
	}
	if got := []string{st.Nodes[0].NodeID, st.Nodes[1].NodeID, st.Nodes[2].NodeID, st.Nodes[3].NodeID}; got[0] != "01" || got[1] != "02" || got[2] != "04" || got[3] != "03" {
		t.Fatalf("node order %v: want alive by start time, then dead", got)
	}
	if !st.Nodes[0].IsHeadNode || st.Nodes[1].IsHeadNode {
		t.Fatal("the head is not marked")
	}
	// CPU: 4+2+1 total, 3 used; memory of m1 counted once (100), 40 used.
	if st.ResourcesTotal["CPU"] != 7 || st.ResourcesUsed["CPU"] != 3 {
		t.Fatalf("CPU %v of %v; want 3 of 7", st.ResourcesUsed["CPU"], st.ResourcesTotal["CPU"])
	}
	if st.ResourcesTotal["memory"] != 100 || st.ResourcesUsed["memory"] != 40 {
		t.Fatalf("memory %v of %v; want 40 of 100", st.ResourcesUsed["memory"], st.ResourcesTotal["memory"])
	}
	if _, ok := st.ResourcesTotal["CPU_group_0_ab"]; ok {
		t.Fatal("a bundle resource is counted as a resource")
	}
	wantPending := []Demand{{Shape: "CPU: 4", Count: 2}, {Shape: "CPU: 1, GPU: 1", Count: 1}}
	if len(st.PendingDemands) != 2 || st.PendingDemands[0] != wantPending[0] || st.PendingDemands[1] != wantPending[1] {
		t.Fatalf("pending %v, want %v", st.PendingDemands, wantPending)
	}
	if len(st.InfeasibleDemands) != 1 || st.InfeasibleDemands[0] != (Demand{Shape: "GPU: 8", Count: 2}) {
		t.Fatalf("infeasible %v: want the node's GPU: 8 and the live actor's, as one shape (not the dead actor's)", st.InfeasibleDemands)
	}
	empty := clusterStatusOf(nil, nil, "")
	if empty.Nodes == nil || empty.PendingDemands == nil || empty.InfeasibleDemands == nil {
		t.Fatal("empty lists must be [] in JSON, not null")
	}
}
