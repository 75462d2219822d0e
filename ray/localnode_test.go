package ray

import (
	"testing"

	"github.com/raygo/raygo/internal/pb"
)

func TestLocalNode(t *testing.T) {
	alive, dead := pb.NodeState_NODE_STATE_ALIVE, pb.NodeState_NODE_STATE_DEAD
	node := func(addr, hostID, hostname string, st pb.NodeState) *pb.NodeInfo {
		return &pb.NodeInfo{Address: addr, HostId: hostID, Hostname: hostname, State: st}
	}
	for _, tc := range []struct {
		name  string
		nodes []*pb.NodeInfo
		want  string // address; "" for none
	}{
		{"same host id beats same hostname", []*pb.NodeInfo{node("a", "m/net:[1]", "box", alive), node("b", "m/net:[2]", "box", alive)}, "b"},
		{"same hostname beats another host", []*pb.NodeInfo{node("a", "x", "other", alive), node("b", "y", "box", alive)}, "b"},
		{"any alive node when none is here", []*pb.NodeInfo{node("a", "x", "other", dead), node("b", "y", "other", alive)}, "b"},
		{"a dead node on this host is passed over", []*pb.NodeInfo{node("a", "m/net:[2]", "box", dead), node("b", "y", "other", alive)}, "b"},
		{"no alive node", []*pb.NodeInfo{node("a", "m/net:[2]", "box", dead)}, ""},
		{"the lowest address among equals", []*pb.NodeInfo{node("c", "x", "box", alive), node("b", "y", "box", alive), node("d", "z", "box", alive)}, "b"},
	} {
		got := localNode(tc.nodes, "m/net:[2]", "box")
		if addr := got.GetAddress(); addr != tc.want {
			t.Errorf("%s: picked %q, want %q", tc.name, addr, tc.want)
		}
	}
}
