package wirecheck

import (
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// Placement checks a strategy and its options off the wire (a lease
// request's, an actor's) and returns the scheduler's request for res.
// NODE_AFFINITY needs a node id; options given with another strategy may
// only carry labels.
func Placement(strategy pb.SchedulingStrategy, o *pb.SchedulingOptions, res resources.Set) (scheduler.Request, error) {
	req := scheduler.Request{Resources: res}
	switch strategy {
	case pb.SchedulingStrategy_SCHEDULING_STRATEGY_DEFAULT:
	case pb.SchedulingStrategy_SCHEDULING_STRATEGY_SPREAD:
		req.Strategy = scheduler.Spread
	case pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY:
		id, ok := ids.FromBytes(o.GetNodeId())
		if !ok {
			return req, bad("node affinity needs a node id of %d bytes, got %d", ids.Size, len(o.GetNodeId()))
		}
		req.Strategy, req.AffinityNode, req.AffinitySoft = scheduler.NodeAffinity, id.String(), o.GetSoft()
	default:
		return req, bad("unknown scheduling strategy %d", int32(strategy))
	}
	if o == nil {
		return req, nil
	}
	if strategy != pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY && (len(o.GetNodeId()) > 0 || o.GetSoft()) {
		return req, bad("a node id is set for strategy %s, not NODE_AFFINITY", strategy)
	}
	var err error
	if req.Labels, err = labelMatches(o.GetLabels()); err != nil {
		return req, err
	}
	req.PreferLabels, err = labelMatches(o.GetPreferLabels())
	return req, err
}

// labelMatches converts and checks a selector (scheduler.ValidateMatches).
func labelMatches(list []*pb.LabelMatch) ([]scheduler.LabelMatch, error) {
	if len(list) == 0 {
		return nil, nil
	}
	if len(list) > scheduler.MaxMatches {
		return nil, bad("label selector of %d matches exceeds %d", len(list), scheduler.MaxMatches)
	}
	out := make([]scheduler.LabelMatch, len(list))
	for i, m := range list {
		out[i] = scheduler.LabelMatch{Key: m.GetKey(), Op: scheduler.LabelOp(m.GetOp()), Values: m.GetValues()}
	}
	if err := scheduler.ValidateMatches(out); err != nil {
		return nil, bad("%v", err)
	}
	return out, nil
}
