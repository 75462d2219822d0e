package gcs_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// bundleNode is a node daemon that records the bundle calls it gets and
// refuses prepares while refuse is set.
type bundleNode struct {
	pb.UnimplementedNodeDaemonServer
	mu       sync.Mutex
	refuse   bool
	prepared map[int32]bool // prepared, not committed
	held     map[int32]bool // committed
	cancels  int
	removed  bool
}

func (n *bundleNode) PrepareBundles(_ context.Context, req *pb.PrepareBundlesRequest) (*pb.PrepareBundlesReply, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refuse {
		return nil, errs.Systemf("no room")
	}
	for _, b := range req.GetBundles() {
		if req.GetCommit() {
			n.held[b.GetIndex()] = true
		} else {
			n.prepared[b.GetIndex()] = true
		}
	}
	return &pb.PrepareBundlesReply{}, nil
}

func (n *bundleNode) CommitBundles(_ context.Context, req *pb.CommitBundlesRequest) (*pb.CommitBundlesReply, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, i := range req.GetIndexes() {
		delete(n.prepared, i)
		n.held[i] = true
	}
	return &pb.CommitBundlesReply{}, nil
}

func (n *bundleNode) CancelBundles(_ context.Context, req *pb.CancelBundlesRequest) (*pb.CancelBundlesReply, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cancels++
	n.removed = n.removed || req.GetRemoved()
	if len(req.GetIndexes()) == 0 {
		clear(n.prepared)
		clear(n.held)
	}
	for _, i := range req.GetIndexes() {
		delete(n.prepared, i)
		delete(n.held, i)
	}
	return &pb.CancelBundlesReply{}, nil
}

func (n *bundleNode) state() (prepared, held int, removed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.prepared), len(n.held), n.removed
}

func startBundleNodes(t *testing.T, c pb.ControlStoreClient, count int) []*bundleNode {
	t.Helper()
	var nodes []*bundleNode
	for range count {
		n := &bundleNode{prepared: map[int32]bool{}, held: map[int32]bool{}}
		srv := rpc.NewServer(token)
		pb.RegisterNodeDaemonServer(srv, n)
		addr := serve(t, srv)
		if _, err := c.RegisterNode(testCtx(t), &pb.RegisterNodeRequest{Node: nodeInfo(ids.New(), addr, 2)}); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func group(strategy pb.PlacementStrategy, n int) *pb.PlacementGroupInfo {
	g := &pb.PlacementGroupInfo{GroupId: ids.New().Bytes(), Strategy: strategy, JobId: ids.New().Bytes()}
	for range n {
		g.Bundles = append(g.Bundles, &pb.Bundle{Resources: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}})
	}
	return g
}

// TestGroupReservationIsAtomic: a STRICT_SPREAD group over two nodes, one
// of which refuses the prepare, is not created, and what the other
// prepared is rolled back; once both accept, it is created with a bundle
// on each, in two phases.
func TestGroupReservationIsAtomic(t *testing.T) {
	c := startGCS(t, gcs.DefaultConfig())
	nodes := startBundleNodes(t, c, 2)
	nodes[1].mu.Lock()
	nodes[1].refuse = true
	nodes[1].mu.Unlock()
	g := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD, 2)
	if _, err := c.CreatePlacementGroup(testCtx(t), &pb.CreatePlacementGroupRequest{Group: g}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "an attempt refused", func() bool {
		got, err := c.GetPlacementGroup(testCtx(t), &pb.GetPlacementGroupRequest{GroupId: g.GroupId})
		return err == nil && got.GetGroup().GetState() == gcs.GroupPending && strings.Contains(got.GetGroup().GetPendingReason(), "no room")
	})
	eventually(t, "the other node's prepare rolled back", func() bool {
		p, h, _ := nodes[0].state()
		return p == 0 && h == 0
	})
	nodes[1].mu.Lock()
	nodes[1].refuse = false
	nodes[1].mu.Unlock()
	w, err := c.WaitPlacementGroup(testCtx(t), &pb.WaitPlacementGroupRequest{GroupId: g.GroupId, TimeoutMs: 5000})
	if err != nil || w.GetGroup().GetState() != gcs.GroupCreated {
		t.Fatalf("after the node accepts: %v, %v", w.GetGroup(), err)
	}
	for i, n := range nodes {
		if p, h, _ := n.state(); p != 0 || h != 1 {
			t.Errorf("node %d: %d prepared, %d held; want 0 and 1", i, p, h)
		}
	}
	if _, err := c.RemovePlacementGroup(testCtx(t), &pb.RemovePlacementGroupRequest{GroupId: g.GroupId}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every node told of the removal", func() bool {
		for _, n := range nodes {
			if _, h, removed := n.state(); h != 0 || !removed {
				return false
			}
		}
		return true
	})
	got, err := c.GetPlacementGroup(testCtx(t), &pb.GetPlacementGroupRequest{GroupId: g.GroupId})
	if err != nil || got.GetGroup().GetState() != gcs.GroupRemoved {
		t.Fatalf("removed group: %v, %v", got.GetGroup(), err)
	}
}

// TestGroupOnOneNodeIsOneCall: a group that fits one node is reserved with
// one prepare-and-commit call.
func TestGroupOnOneNodeIsOneCall(t *testing.T) {
	c := startGCS(t, gcs.DefaultConfig())
	nodes := startBundleNodes(t, c, 1)
	g := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 2)
	if _, err := c.CreatePlacementGroup(testCtx(t), &pb.CreatePlacementGroupRequest{Group: g}); err != nil {
		t.Fatal(err)
	}
	w, err := c.WaitPlacementGroup(testCtx(t), &pb.WaitPlacementGroupRequest{GroupId: g.GroupId, TimeoutMs: 5000})
	if err != nil || w.GetGroup().GetState() != gcs.GroupCreated {
		t.Fatalf("create: %v, %v", w.GetGroup(), err)
	}
	if p, h, _ := nodes[0].state(); p != 0 || h != 2 {
		t.Fatalf("node: %d prepared, %d held; want 0 and 2", p, h)
	}
	if _, err := c.CreatePlacementGroup(testCtx(t), &pb.CreatePlacementGroupRequest{Group: g}); err == nil {
		t.Fatal("created the same group id twice")
	}
	bad := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 0)
	if _, err := c.CreatePlacementGroup(testCtx(t), &pb.CreatePlacementGroupRequest{Group: bad}); err == nil {
		t.Fatal("created a group without bundles")
	}
}

// TestGroupWaitsAndEndsWithItsJob: a group no node can hold waits,
// infeasible, and is placed when a node that can joins; a group of a
// finished job is removed, a detached one stays.
func TestGroupWaitsAndEndsWithItsJob(t *testing.T) {
	c := startGCS(t, gcs.DefaultConfig())
	g := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD, 1)
	job, err := c.RegisterJob(testCtx(t), &pb.RegisterJobRequest{Job: &pb.JobInfo{}})
	if err != nil {
		t.Fatal(err)
	}
	g.JobId = job.GetJobId()
	detached := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 1)
	detached.JobId, detached.Detached = job.GetJobId(), true
	for _, x := range []*pb.PlacementGroupInfo{g, detached} {
		if _, err := c.CreatePlacementGroup(testCtx(t), &pb.CreatePlacementGroupRequest{Group: x}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the group found infeasible", func() bool {
			got, err := c.GetPlacementGroup(testCtx(t), &pb.GetPlacementGroupRequest{GroupId: x.GroupId})
			return err == nil && got.GetGroup().GetState() == gcs.GroupPending && got.GetGroup().GetInfeasible()
		})
	}
	startBundleNodes(t, c, 1)
	for _, x := range []*pb.PlacementGroupInfo{g, detached} {
		w, err := c.WaitPlacementGroup(testCtx(t), &pb.WaitPlacementGroupRequest{GroupId: x.GroupId, TimeoutMs: 5000})
		if err != nil || w.GetGroup().GetState() != gcs.GroupCreated {
			t.Fatalf("after a node joined: %v, %v", w.GetGroup(), err)
		}
	}
	if _, err := c.FinishJob(testCtx(t), &pb.FinishJobRequest{JobId: job.GetJobId()}); err != nil {
		t.Fatal(err)
	}
	for x, want := range map[*pb.PlacementGroupInfo]pb.PlacementGroupState{g: gcs.GroupRemoved, detached: gcs.GroupCreated} {
		got, err := c.GetPlacementGroup(testCtx(t), &pb.GetPlacementGroupRequest{GroupId: x.GroupId})
		if err != nil || got.GetGroup().GetState() != want {
			t.Errorf("after the job ended: %v, %v; want %v", got.GetGroup().GetState(), err, want)
		}
	}
}
