package ray

import (
	"fmt"

	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// LabelMatch is one condition on a node's labels (`raygo start --labels
// k=v,…`), for NodeLabels and PreferNodeLabels. Made by LabelIn,
// LabelNotIn, LabelExists and LabelDoesNotExist.
type LabelMatch struct{ m scheduler.LabelMatch }

func (m LabelMatch) String() string { return m.m.String() }

// LabelIn matches nodes whose label key has one of values.
func LabelIn(key string, values ...string) LabelMatch {
	return LabelMatch{scheduler.LabelMatch{Key: key, Op: scheduler.In, Values: values}}
}

// LabelNotIn matches nodes without the label key, or whose label has none
// of values.
func LabelNotIn(key string, values ...string) LabelMatch {
	return LabelMatch{scheduler.LabelMatch{Key: key, Op: scheduler.NotIn, Values: values}}
}

// LabelExists matches nodes that have the label key, whatever its value.
func LabelExists(key string) LabelMatch {
	return LabelMatch{scheduler.LabelMatch{Key: key, Op: scheduler.Exists}}
}

// LabelDoesNotExist matches nodes without the label key.
func LabelDoesNotExist(key string) LabelMatch {
	return LabelMatch{scheduler.LabelMatch{Key: key, Op: scheduler.DoesNotExist}}
}

// NodeIDLabel is the label every node has, with its id as the value, so a
// selector can name nodes: NodeLabels(LabelNotIn(NodeIDLabel, id)).
const NodeIDLabel = scheduler.NodeIDLabel

// NodeAffinity runs a task or actor on the node with this id (Node.ID,
// TaskContext.NodeID), as Ray's NodeAffinitySchedulingStrategy. It waits
// there while the node is busy. When the node is dead, unknown or can
// never hold the request, a hard affinity fails the task (or the actor)
// with an InfeasibleError at once, and a soft one (soft true) runs it
// elsewhere by the default policy.
func NodeAffinity(nodeID string, soft bool) StrategyOption {
	return StrategyOption{opt{func(o *options) {
		o.strategy = pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY
		o.affinityNode, o.affinitySoft = nodeID, soft
	}}}
}

// NodeLabels runs a task or actor only on nodes whose labels satisfy all
// of ms, with any strategy (Ray's label selector). A request no alive
// node matches is infeasible: it waits for such a node, reported by
// `raygo status` (or fails, with FailIfInfeasible). Repeated, the matches
// add up.
func NodeLabels(ms ...LabelMatch) StrategyOption {
	return StrategyOption{opt{func(o *options) { o.labels = append(o.labels, ms...) }}}
}

// PreferNodeLabels prefers, among the nodes allowed, those whose labels
// satisfy all of ms, when one of them has room; otherwise it has no
// effect (a soft label selector).
func PreferNodeLabels(ms ...LabelMatch) StrategyOption {
	return StrategyOption{opt{func(o *options) { o.prefer = append(o.prefer, ms...) }}}
}

// placement checks the scheduling options and makes their wire form, and
// the resources to ask for (a placement group's bundle's, for res).
func (o *options) placement(what string, res resources.Set) (tasksubmit.Placement, resources.Set, error) {
	pl := tasksubmit.Placement{Strategy: o.strategy}
	if o.group != nil || o.capture {
		if o.strategy != pb.SchedulingStrategy_SCHEDULING_STRATEGY_DEFAULT || len(o.labels) > 0 || len(o.prefer) > 0 {
			return pl, nil, fmt.Errorf("%w: %s: InPlacementGroup cannot be combined with Spread, NodeAffinity or label selectors", ErrInvalidRequest, what)
		}
		res, opts, err := o.inGroup(what, res)
		pl.Options = opts
		return pl, res, err
	}
	if o.strategy != pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY && len(o.labels) == 0 && len(o.prefer) == 0 {
		return pl, res, nil
	}
	opts := &pb.SchedulingOptions{}
	if o.strategy == pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY {
		id, ok := ids.Parse(o.affinityNode)
		if !ok {
			return pl, nil, fmt.Errorf("%w: %s: NodeAffinity(%q): not a node id (%d hex digits)", ErrInvalidRequest, what, o.affinityNode, 2*ids.Size)
		}
		opts.NodeId, opts.Soft = id.Bytes(), o.affinitySoft
	}
	var err error
	if opts.Labels, err = wireMatches(what, "NodeLabels", o.labels); err != nil {
		return pl, nil, err
	}
	if opts.PreferLabels, err = wireMatches(what, "PreferNodeLabels", o.prefer); err != nil {
		return pl, nil, err
	}
	pl.Options = opts
	return pl, res, nil
}

func wireMatches(what, option string, ms []LabelMatch) ([]*pb.LabelMatch, error) {
	plain := make([]scheduler.LabelMatch, len(ms))
	out := make([]*pb.LabelMatch, len(ms))
	for i, m := range ms {
		plain[i] = m.m
		out[i] = &pb.LabelMatch{Key: m.m.Key, Op: pb.LabelOp(m.m.Op), Values: m.m.Values}
	}
	if err := scheduler.ValidateMatches(plain); err != nil {
		return nil, fmt.Errorf("%w: %s: %s: %v", ErrInvalidRequest, what, option, err)
	}
	return out, nil
}
