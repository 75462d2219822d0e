package raylet_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
)

// labelledCluster is a head "a" without labels, "b" with zone=x and "c"
// with zone=y and accel=h100, each with 2 CPUs.
func labelledCluster(t *testing.T) (*testCluster, []byte) {
	labels := []map[string]string{nil, {"zone": "x"}, {"zone": "y", "accel": "h100"}}
	i := 0
	c := startClusterWith(t, func(rc *raylet.Config) {
		rc.Labels = labels[i%len(labels)]
		i++
	}, resources.Set{"CPU": 2}, resources.Set{"CPU": 2}, resources.Set{"CPU": 2})
	job := c.registerJob()
	eventually(t, "three nodes in the view of the head's daemon", func() bool { return len(c.controlStoreView()) == 3 })
	return c, job
}

func selector(ms ...*pb.LabelMatch) *pb.SchedulingOptions { return &pb.SchedulingOptions{Labels: ms} }

func match(key string, op pb.LabelOp, values ...string) *pb.LabelMatch {
	return &pb.LabelMatch{Key: key, Op: op, Values: values}
}

// TestLabelSelectorsPlace: each operator sends a lease asked of the head's
// daemon to the one node that matches.
func TestLabelSelectorsPlace(t *testing.T) {
	c, job := labelledCluster(t)
	a, b, cc := c.nodes[0], c.nodes[1], c.nodes[2]
	tests := []struct {
		name string
		opts *pb.SchedulingOptions
		want *raylet.Raylet
	}{
		{"in", selector(match("zone", pb.LabelOp_LABEL_OP_IN, "x")), b},
		{"in, any value", selector(match("zone", pb.LabelOp_LABEL_OP_IN, "q", "y")), cc},
		{"not in", selector(match("zone", pb.LabelOp_LABEL_OP_NOT_IN, "x", "y")), a},
		{"exists", selector(match("accel", pb.LabelOp_LABEL_OP_EXISTS)), cc},
		{"does not exist", selector(match("zone", pb.LabelOp_LABEL_OP_DOES_NOT_EXIST)), a},
		{"two matches", selector(match("zone", pb.LabelOp_LABEL_OP_EXISTS), match("accel", pb.LabelOp_LABEL_OP_DOES_NOT_EXIST)), b},
		{"node id label", selector(match("raygo.io/node-id", pb.LabelOp_LABEL_OP_IN, b.NodeID().String())), b},
		{"preferred, with room", &pb.SchedulingOptions{PreferLabels: []*pb.LabelMatch{match("zone", pb.LabelOp_LABEL_OP_IN, "y")}}, cc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.settle()
			req := cpuLease(job, 1)
			req.Scheduling = tt.opts
			reply, at, err := c.lease(testCtx(t), a.Address(), req)
			if err != nil || len(reply.GetLeaseId()) == 0 {
				t.Fatalf("lease: %v, %v", reply, err)
			}
			if at != tt.want.Address() {
				t.Errorf("granted at %s, want %s", at, tt.want.Address())
			}
			c.giveBack(c.byAddress(at), [][]byte{reply.GetLeaseId()})
		})
	}
}

// settle waits until every node reports all of its resources available
// and the daemons have seen that (each spillback takes room from the
// spiller's view of the target until the target reports again).
func (c *testCluster) settle() {
	c.t.Helper()
	eventually(c.t, "all resources available", func() bool {
		for _, n := range c.controlStoreView() {
			if !resources.Set(n.GetTotal().GetAmounts()).Fits(resources.Set(n.GetAvailable().GetAmounts())) {
				return false
			}
		}
		return true
	})
	time.Sleep(250 * time.Millisecond) // two heartbeats, each followed by a refresh of the view
}

func (c *testCluster) byAddress(addr string) *raylet.Raylet {
	for _, r := range c.nodes {
		if r.Address() == addr {
			return r
		}
	}
	c.t.Fatalf("no node at %s", addr)
	return nil
}

// TestLabelledLeaseWaitsForItsNode: a request only a busy node matches
// waits for that node, even where it was asked and there is room (a
// queued request used to be granted wherever it was queued once it fit).
func TestLabelledLeaseWaitsForItsNode(t *testing.T) {
	c, job := labelledCluster(t)
	a, b := c.nodes[0], c.nodes[1]
	held := c.holdAt(b, job, 2)
	done := make(chan string, 1)
	go func() {
		req := cpuLease(job, 1)
		req.Scheduling = selector(match("zone", pb.LabelOp_LABEL_OP_IN, "x"))
		reply, at, err := c.lease(testCtx(t), a.Address(), req)
		if err != nil || len(reply.GetLeaseId()) == 0 {
			at = "error"
		}
		done <- at
	}()
	select {
	case at := <-done:
		t.Fatalf("granted at %s while the only matching node (%s) was full; a=%s", at, b.Address(), a.Address())
	case <-time.After(500 * time.Millisecond):
	}
	c.giveBack(b, held)
	select {
	case at := <-done:
		if at != b.Address() {
			t.Fatalf("granted at %s, want %s", at, b.Address())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not granted after the matching node freed")
	}
}

// TestNodeAffinity: hard affinity runs on its node and waits for it; to an
// unknown node it fails at once with an error naming the node; a soft one
// to an unknown node runs elsewhere.
func TestNodeAffinity(t *testing.T) {
	c, job := labelledCluster(t)
	a, cc := c.nodes[0], c.nodes[2]
	affinity := func(id ids.ID, soft bool) *pb.LeaseRequest {
		req := cpuLease(job, 1)
		req.Strategy = pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY
		req.Scheduling = &pb.SchedulingOptions{NodeId: id.Bytes(), Soft: soft}
		req.FailIfInfeasible = !soft
		return req
	}
	reply, at, err := c.lease(testCtx(t), a.Address(), affinity(cc.NodeID(), false))
	if err != nil || at != cc.Address() {
		t.Fatalf("hard affinity to c: granted at %s (%v), want %s", at, err, cc.Address())
	}
	held := append(c.holdAt(cc, job, 1), reply.GetLeaseId())

	ctx, cancel := context.WithTimeout(testCtx(t), 500*time.Millisecond)
	defer cancel()
	if reply, at, err := c.lease(ctx, a.Address(), affinity(cc.NodeID(), false)); err == nil {
		t.Fatalf("hard affinity to a full node granted at %s: %v", at, reply)
	}
	if reply, at, err := c.lease(ctx, a.Address(), affinity(cc.NodeID(), true)); err == nil {
		t.Fatalf("soft affinity to a full, alive node granted at %s (Ray waits there): %v", at, reply)
	}
	c.giveBack(cc, held)

	gone := ids.New()
	_, _, err = c.lease(testCtx(t), a.Address(), affinity(gone, false))
	var ie *errs.InfeasibleError
	if !errors.As(err, &ie) || !errors.Is(err, errs.ErrInfeasible) {
		t.Fatalf("hard affinity to an unknown node: %v, want an InfeasibleError", err)
	}
	if want := gone.String(); !strings.Contains(ie.Request, want) {
		t.Errorf("error %q does not name node %s", err, want)
	}
	if reply, _, err := c.lease(testCtx(t), a.Address(), affinity(gone, true)); err != nil || len(reply.GetLeaseId()) == 0 {
		t.Fatalf("soft affinity to an unknown node: %v, %v; want a grant elsewhere", reply, err)
	}
}

// TestSpillbackRoomComesBack: a spillback takes the room it used from the
// spiller's view of the target; a lease there that comes and goes between
// two of the target's reports leaves the target's record unchanged, and
// the room must still come back at the spiller's next refresh (with the
// view kept as deltas it stayed taken, and the next request waited for
// ever).
func TestSpillbackRoomComesBack(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 1}, resources.Set{"CPU": 1})
	a, other := c.nodes[0], c.nodes[1]
	job := c.registerJob()
	eventually(t, "two nodes in the view", func() bool { return len(c.controlStoreView()) == 2 })
	held := c.holdAt(a, job, 1)
	defer c.giveBack(a, held)
	for round := range 3 {
		time.Sleep(300 * time.Millisecond) // refreshes of a's view
		ctx, cancel := context.WithTimeout(testCtx(t), 5*time.Second)
		reply, at, err := c.lease(ctx, a.Address(), cpuLease(job, 1))
		cancel()
		if err != nil || at != other.Address() {
			t.Fatalf("round %d: %v at %s, %v", round, reply, at, err)
		}
		c.giveBack(other, [][]byte{reply.GetLeaseId()})
	}
}
