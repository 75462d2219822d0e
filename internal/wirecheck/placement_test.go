package wirecheck

import (
	"errors"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/scheduler"
)

func TestPlacement(t *testing.T) {
	node := ids.New()
	zone := &pb.LabelMatch{Key: "zone", Op: pb.LabelOp_LABEL_OP_IN, Values: []string{"a"}}
	const (
		def      = pb.SchedulingStrategy_SCHEDULING_STRATEGY_DEFAULT
		spread   = pb.SchedulingStrategy_SCHEDULING_STRATEGY_SPREAD
		affinity = pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY
	)
	tests := []struct {
		name     string
		strategy pb.SchedulingStrategy
		opts     *pb.SchedulingOptions
		want     scheduler.Request
		wantErr  string
	}{
		{"default", def, nil, scheduler.Request{}, ""},
		{"spread with labels", spread, &pb.SchedulingOptions{Labels: []*pb.LabelMatch{zone}},
			scheduler.Request{Strategy: scheduler.Spread, Labels: []scheduler.LabelMatch{{Key: "zone", Op: scheduler.In, Values: []string{"a"}}}}, ""},
		{"soft affinity", affinity, &pb.SchedulingOptions{NodeId: node.Bytes(), Soft: true},
			scheduler.Request{Strategy: scheduler.NodeAffinity, AffinityNode: node.String(), AffinitySoft: true}, ""},
		{"affinity without a node", affinity, nil, scheduler.Request{}, "needs a node id"},
		{"affinity with a short id", affinity, &pb.SchedulingOptions{NodeId: []byte{1}}, scheduler.Request{}, "needs a node id"},
		{"a node without affinity", def, &pb.SchedulingOptions{NodeId: node.Bytes()}, scheduler.Request{}, "not NODE_AFFINITY"},
		{"unknown strategy", pb.SchedulingStrategy(7), nil, scheduler.Request{}, "unknown scheduling strategy"},
		{"bad selector", def, &pb.SchedulingOptions{PreferLabels: []*pb.LabelMatch{{Key: "zone", Op: pb.LabelOp_LABEL_OP_EXISTS, Values: []string{"x"}}}},
			scheduler.Request{}, "takes no values"},
		{"unknown operator", def, &pb.SchedulingOptions{Labels: []*pb.LabelMatch{{Key: "zone", Op: pb.LabelOp(9)}}},
			scheduler.Request{}, "unknown operator"},
		{"too many matches", def, &pb.SchedulingOptions{Labels: make([]*pb.LabelMatch, scheduler.MaxMatches+1)},
			scheduler.Request{}, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Placement(tt.strategy, tt.opts, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errs.ErrInvalidRequest) {
					t.Fatalf("error = %v, want an invalid-request error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want.String() || got.Strategy != tt.want.Strategy {
				t.Errorf("Placement = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A lease request with a bad selector is refused by the message check
// every gRPC server runs.
func TestLeaseRequestPlacementChecked(t *testing.T) {
	req := &pb.LeaseRequest{Strategy: pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY}
	if err := Message(req); err == nil || !strings.Contains(err.Error(), "node id") {
		t.Errorf("Message(affinity without a node) = %v", err)
	}
	spec := &pb.TaskSpec{TaskId: ids.New().Bytes(), Scheduling: &pb.SchedulingOptions{Labels: []*pb.LabelMatch{{Key: "-bad", Op: pb.LabelOp_LABEL_OP_EXISTS}}}}
	if err := TaskSpec(spec); err == nil || !strings.Contains(err.Error(), "label key") {
		t.Errorf("TaskSpec(bad selector) = %v", err)
	}
}
