package gcs_test

import (
	"context"
	"errors"
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
	gone     map[string]bool // groups told removed (group_id and more_removed)
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
	if req.GetRemoved() {
		n.gone[string(req.GetGroupId())] = true
	}
	for _, g := range req.GetMoreRemoved() {
		n.gone[string(g)] = true
	}
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
		n := &bundleNode{prepared: map[int32]bool{}, held: map[int32]bool{}, gone: map[string]bool{}}
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

// opsStream is a test's end of a PlacementGroupOps stream: it sends ops
// and gathers what comes back.
type opsStream struct {
	t       *testing.T
	s       pb.ControlStore_PlacementGroupOpsClient
	seq     uint64
	results map[uint64]*pb.GroupOpResult
	states  map[string]pb.PlacementGroupState
}

func openOps(t *testing.T, c pb.ControlStoreClient) *opsStream {
	t.Helper()
	s, err := c.PlacementGroupOps(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return &opsStream{t: t, s: s, results: map[uint64]*pb.GroupOpResult{}, states: map[string]pb.PlacementGroupState{}}
}

// send sends ops (creates and removes) in one message; it returns their seqs.
func (o *opsStream) send(ops ...*pb.GroupOp) []uint64 {
	o.t.Helper()
	var seqs []uint64
	for _, op := range ops {
		o.seq++
		op.Seq = o.seq
		seqs = append(seqs, o.seq)
	}
	if err := o.s.Send(&pb.GroupOpsRequest{Ops: ops}); err != nil {
		o.t.Fatal(err)
	}
	return seqs
}

// until reads events until cond holds.
func (o *opsStream) until(what string, cond func() bool) {
	o.t.Helper()
	for !cond() {
		ev, err := o.s.Recv()
		if err != nil {
			o.t.Fatalf("waiting for %s: %v", what, err)
		}
		for _, r := range ev.GetResults() {
			o.results[r.GetSeq()] = r
		}
		for _, c := range ev.GetChanges() {
			o.states[string(c.GetGroupId())] = c.GetState()
		}
	}
}

func (o *opsStream) answered(seqs ...uint64) bool {
	for _, s := range seqs {
		if o.results[s] == nil {
			return false
		}
	}
	return true
}

func (o *opsStream) err(seq uint64) error { return errs.FromInfo(o.results[seq].GetError()) }

// TestGroupOpsStream: ops on one stream are applied in order and answered
// each (a taken name and an unknown group are errors of their own op);
// the stream hears its groups' changes of state; a create sent again on a
// new stream is not an error and the new stream hears the state at once;
// removals reach the node, many in a call.
func TestGroupOpsStream(t *testing.T) {
	c := startGCS(t, gcs.DefaultConfig())
	nodes := startBundleNodes(t, c, 1)
	o := openOps(t, c)
	a, named, clash := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 1), group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 1), group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 1)
	named.Name, clash.Name = "x", "x"
	for _, g := range []*pb.PlacementGroupInfo{a, named, clash} {
		g.Bundles[0].Resources.Amounts["CPU"] = 0.01
	}
	seqs := o.send(&pb.GroupOp{Create: a}, &pb.GroupOp{Create: named}, &pb.GroupOp{Create: clash}, &pb.GroupOp{Remove: ids.New().Bytes()})
	o.until("answers", func() bool { return o.answered(seqs...) })
	if o.err(seqs[0]) != nil || o.err(seqs[1]) != nil {
		t.Fatalf("creates: %v, %v", o.err(seqs[0]), o.err(seqs[1]))
	}
	if err := o.err(seqs[2]); !errors.Is(err, errs.ErrAlreadyExists) {
		t.Errorf("a taken name: %v, want ErrAlreadyExists", err)
	}
	if err := o.err(seqs[3]); !errors.Is(err, errs.ErrNotFound) {
		t.Errorf("removing an unknown group: %v, want ErrNotFound", err)
	}
	o.until("both groups created", func() bool {
		return o.states[string(a.GroupId)] == gcs.GroupCreated && o.states[string(named.GroupId)] == gcs.GroupCreated
	})

	o2 := openOps(t, c)
	again := o2.send(&pb.GroupOp{Create: a})
	o2.until("the create sent again", func() bool { return o2.answered(again...) && o2.states[string(a.GroupId)] == gcs.GroupCreated })
	if err := o2.err(again[0]); err != nil {
		t.Fatalf("a create sent again on a new stream: %v", err)
	}

	var many []*pb.GroupOp
	var ids_ [][]byte
	for range 40 {
		g := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 1)
		g.Bundles[0].Resources.Amounts["CPU"] = 0.01
		many = append(many, &pb.GroupOp{Create: g})
		ids_ = append(ids_, g.GroupId)
	}
	o2.send(many...)
	o2.until("40 groups created", func() bool {
		for _, id := range ids_ {
			if o2.states[string(id)] != gcs.GroupCreated {
				return false
			}
		}
		return true
	})
	var removes []*pb.GroupOp
	for _, id := range append(ids_, a.GroupId, named.GroupId) {
		removes = append(removes, &pb.GroupOp{Remove: id})
	}
	rs := o2.send(removes...)
	o2.until("removals answered and seen", func() bool { return o2.answered(rs...) && o2.states[string(ids_[39])] == gcs.GroupRemoved })
	for _, s := range rs {
		if err := o2.err(s); err != nil {
			t.Fatalf("remove: %v", err)
		}
	}
	eventually(t, "every removal told to the node", func() bool {
		nodes[0].mu.Lock()
		defer nodes[0].mu.Unlock()
		for _, id := range append(ids_, a.GroupId, named.GroupId) {
			if !nodes[0].gone[string(id)] {
				return false
			}
		}
		return true
	})
	nodes[0].mu.Lock()
	t.Logf("42 removals told in %d cancel calls", nodes[0].cancels)
	nodes[0].mu.Unlock()
}
