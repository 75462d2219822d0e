package ray

import (
	"context"

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
