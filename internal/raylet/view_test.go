package raylet

import (
	"slices"
	"testing"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/scheduler"
)

func TestMergeView(t *testing.T) {
	a, b, c := ids.New(), ids.New(), ids.New()
	info := func(id ids.ID, cpus float64, state pb.NodeState) *pb.NodeInfo {
		return &pb.NodeInfo{NodeId: id.Bytes(), Address: id.Short(), State: state,
			Total: &pb.Resources{Amounts: map[string]float64{"CPU": 4}}, Available: &pb.Resources{Amounts: map[string]float64{"CPU": cpus}}}
	}
	alive, dead := pb.NodeState_NODE_STATE_ALIVE, pb.NodeState_NODE_STATE_DEAD
	view := mergeView(nil, &pb.GetNodesReply{Full: true, Nodes: []*pb.NodeInfo{info(a, 4, alive), info(b, 4, alive)}})
	if len(view) != 2 {
		t.Fatalf("full view: %v", view)
	}
	// A delta: b changed, c joined, a is unchanged and kept.
	view = mergeView(view, &pb.GetNodesReply{Nodes: []*pb.NodeInfo{info(b, 1, alive), info(c, 4, alive)}})
	cpus := func(view []scheduler.Node, id ids.ID) float64 {
		i := slices.IndexFunc(view, func(n scheduler.Node) bool { return n.ID == id.String() })
		if i < 0 {
			return -1
		}
		return view[i].Available["CPU"]
	}
	if len(view) != 3 || cpus(view, a) != 4 || cpus(view, b) != 1 || cpus(view, c) != 4 {
		t.Fatalf("after a delta: %+v", view)
	}
	if !slices.IsSortedFunc(view, func(x, y scheduler.Node) int {
		if x.ID < y.ID {
			return -1
		}
		return 1
	}) {
		t.Errorf("view not sorted by id: %v", view)
	}
	// A delta with a dead node drops it; a full reply replaces all.
	view = mergeView(view, &pb.GetNodesReply{Nodes: []*pb.NodeInfo{info(a, 4, dead)}})
	if len(view) != 2 || cpus(view, a) != -1 {
		t.Fatalf("after a died: %+v", view)
	}
	view = mergeView(view, &pb.GetNodesReply{Full: true, Nodes: []*pb.NodeInfo{info(c, 2, alive)}})
	if len(view) != 1 || cpus(view, c) != 2 {
		t.Fatalf("after a full reply: %+v", view)
	}
}
