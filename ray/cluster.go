package ray

import (
	"context"
	"slices"
	"strings"

	"github.com/raygo/raygo/internal/ids"

	"github.com/raygo/raygo/internal/pb"
)

// ClusterResources returns the total resources of the cluster's alive
// nodes, like Ray's ray.cluster_resources().
func ClusterResources(ctx context.Context) (map[string]float64, error) {
	return sumNodes(ctx, func(n *pb.NodeInfo) *pb.Resources { return n.GetTotal() })
}

// AvailableResources returns the resources of the cluster's alive nodes
// not in use, as last reported by each node (about every 500 ms).
func AvailableResources(ctx context.Context) (map[string]float64, error) {
	return sumNodes(ctx, func(n *pb.NodeInfo) *pb.Resources { return n.GetAvailable() })
}

// Node describes one node of the cluster, as Ray's ray.nodes() does.
type Node struct {
	ID       string // NodeAffinity takes it; TaskContext.NodeID names a task's
	Address  string // the node daemon's address
	Hostname string
	Alive    bool
	// Labels are the node's (`raygo start --labels`), with NodeIDLabel.
	Labels    map[string]string
	Resources map[string]float64 // totals
	Available map[string]float64 // as last reported by the node
}

// Nodes returns the cluster's nodes, alive and dead (dead ones stay
// listed a while, as in Ray), sorted by id.
func Nodes(ctx context.Context) ([]Node, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	reply, err := cw.GCS().GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]Node, 0, len(reply.GetNodes()))
	for _, n := range reply.GetNodes() {
		id, _ := ids.FromBytes(n.GetNodeId())
		out = append(out, Node{ID: id.String(), Address: n.GetAddress(), Hostname: n.GetHostname(),
			Alive: n.GetState() == pb.NodeState_NODE_STATE_ALIVE, Labels: n.GetLabels(),
			Resources: n.GetTotal().GetAmounts(), Available: n.GetAvailable().GetAmounts()})
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func sumNodes(ctx context.Context, pick func(*pb.NodeInfo) *pb.Resources) (map[string]float64, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	reply, err := cw.GCS().GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, n := range reply.GetNodes() {
		for k, v := range pick(n).GetAmounts() {
			out[k] += v
		}
	}
	return out, nil
}
