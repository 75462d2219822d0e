package gcs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// stalledNode is a node daemon whose leases never come: actors placed on
// it stay PENDING_CREATION until the control store shuts down.
type stalledNode struct {
	pb.UnimplementedNodeDaemonServer
}

func (stalledNode) RequestLease(ctx context.Context, _ *pb.LeaseRequest) (*pb.LeaseReply, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// startGCSWithStalledNode returns a control store that knows one 4-CPU
// node, a stalledNode.
func startGCSWithStalledNode(t *testing.T) pb.ControlStoreClient {
	t.Helper()
	srv := rpc.NewServer(token)
	pb.RegisterNodeDaemonServer(srv, stalledNode{})
	addr := serve(t, srv) // registered first, so stopped after the store
	c := startGCS(t, gcs.DefaultConfig())
	if _, err := c.RegisterNode(testCtx(t), &pb.RegisterNodeRequest{Node: nodeInfo(ids.New(), addr, 4)}); err != nil {
		t.Fatal(err)
	}
	return c
}

func newActor(name, ns string, job ids.ID) *pb.ActorInfo {
	return &pb.ActorInfo{
		ActorId: ids.New().Bytes(), JobId: job.Bytes(), Name: name, Namespace: ns, ClassName: "Counter",
		Creation: &pb.TaskSpec{TaskId: ids.New().Bytes(), JobId: job.Bytes(), Function: "Counter", ActorCreation: true,
			Resources: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}},
	}
}

func createActor(t *testing.T, c pb.ControlStoreClient, a *pb.ActorInfo) *pb.ActorInfo {
	t.Helper()
	r, err := c.CreateActor(testCtx(t), &pb.CreateActorRequest{Actor: a})
	if err != nil {
		t.Fatalf("CreateActor(%q): %v", a.GetName(), err)
	}
	return r.GetActor()
}

// waitActorState long-polls WaitActor until the actor reaches state.
func waitActorState(t *testing.T, c pb.ControlStoreClient, id []byte, state pb.ActorState) *pb.ActorInfo {
	t.Helper()
	ctx := testCtx(t)
	var since uint64
	for {
		r, err := c.WaitActor(ctx, &pb.WaitActorRequest{ActorId: id, SinceVersion: since, TimeoutMs: 1000})
		if err != nil {
			t.Fatalf("waiting for actor state %s: %v", state, err)
		}
		if a := r.GetActor(); a.GetState() == state {
			return a
		}
		since = r.GetActor().GetVersion()
	}
}

func TestCreateActorValidation(t *testing.T) {
	c := startGCSWithStalledNode(t)
	ctx := testCtx(t)
	noCreation := newActor("", "", ids.New())
	noCreation.Creation = nil
	if _, err := c.CreateActor(ctx, &pb.CreateActorRequest{Actor: noCreation}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("no creation task: err = %v", err)
	}
	a := createActor(t, c, newActor("", "", ids.New()))
	if a.GetState() != gcs.StatePending || a.GetVersion() != 1 {
		t.Fatalf("new actor = %v, want PENDING_CREATION version 1", a)
	}
	// Again (a retry): the same actor; another actor under its id: refused.
	if r, err := c.CreateActor(ctx, &pb.CreateActorRequest{Actor: a}); err != nil || r.GetActor().GetVersion() != 1 {
		t.Fatalf("same actor created again: %v, %v; want the first", r.GetActor(), err)
	}
	a.ClassName = "Other"
	if _, err := c.CreateActor(ctx, &pb.CreateActorRequest{Actor: a}); !errors.Is(err, errs.ErrAlreadyExists) {
		t.Fatalf("another actor under the same id: err = %v", err)
	}
}

func TestNamedActors(t *testing.T) {
	c := startGCSWithStalledNode(t)
	ctx := testCtx(t)
	job := ids.New()
	first := createActor(t, c, newActor("counter", "ns1", job))

	_, err := c.CreateActor(ctx, &pb.CreateActorRequest{Actor: newActor("counter", "ns1", job)})
	if !errors.Is(err, errs.ErrAlreadyExists) {
		t.Fatalf("second actor with the same name: err = %v, want ErrAlreadyExists", err)
	}

	r, err := c.CreateActor(ctx, &pb.CreateActorRequest{Actor: newActor("counter", "ns1", job), GetIfExists: true})
	if err != nil {
		t.Fatal(err)
	}
	if !r.GetExisted() || string(r.GetActor().GetActorId()) != string(first.GetActorId()) {
		t.Fatalf("get_if_exists = existed %v actor %x, want the first (%x)", r.GetExisted(), r.GetActor().GetActorId(), first.GetActorId())
	}

	other := createActor(t, c, newActor("counter", "ns2", job))
	if string(other.GetActorId()) == string(first.GetActorId()) {
		t.Fatal("names must be unique per namespace, not globally")
	}

	g, err := c.GetActor(ctx, &pb.GetActorRequest{Name: "counter", Namespace: "ns1"})
	if err != nil || string(g.GetActor().GetActorId()) != string(first.GetActorId()) {
		t.Fatalf("GetActor by name = %v, %v", g.GetActor(), err)
	}
	g, err = c.GetActor(ctx, &pb.GetActorRequest{ActorId: first.GetActorId()})
	if err != nil || g.GetActor().GetName() != "counter" {
		t.Fatalf("GetActor by id = %v, %v", g.GetActor(), err)
	}
	for _, req := range []*pb.GetActorRequest{
		{Name: "counter", Namespace: "elsewhere"},
		{Name: "nobody", Namespace: "ns1"},
		{Namespace: "ns1"},
		{ActorId: ids.New().Bytes()},
	} {
		if _, err := c.GetActor(ctx, req); !errors.Is(err, errs.ErrNotFound) {
			t.Fatalf("GetActor(%v): err = %v, want ErrNotFound", req, err)
		}
	}
}

func TestKillActor(t *testing.T) {
	c := startGCSWithStalledNode(t)
	ctx := testCtx(t)
	a := createActor(t, c, newActor("victim", "ns", ids.New()))

	// Without no_restart a pending actor has no process to kill.
	if _, err := c.KillActor(ctx, &pb.KillActorRequest{ActorId: a.GetActorId()}); err != nil {
		t.Fatal(err)
	}
	g, _ := c.GetActor(ctx, &pb.GetActorRequest{ActorId: a.GetActorId()})
	if g.GetActor().GetState() != gcs.StatePending {
		t.Fatalf("restartable kill of a pending actor changed it: %v", g.GetActor())
	}

	if _, err := c.KillActor(ctx, &pb.KillActorRequest{ActorId: a.GetActorId(), NoRestart: true}); err != nil {
		t.Fatal(err)
	}
	dead := waitActorState(t, c, a.GetActorId(), gcs.StateDead)
	var died *errs.ActorDiedError
	if cause := errs.FromInfo(dead.GetDeathCause()); !errors.As(cause, &died) || died.Name != "victim" {
		t.Fatalf("death cause = %v, want *ActorDiedError for victim", cause)
	}

	// Killing the dead is harmless; the name is free again.
	if _, err := c.KillActor(ctx, &pb.KillActorRequest{ActorId: a.GetActorId(), NoRestart: true}); err != nil {
		t.Fatalf("second kill: %v", err)
	}
	if _, err := c.GetActor(ctx, &pb.GetActorRequest{Name: "victim", Namespace: "ns"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("GetActor of a dead named actor: err = %v, want ErrNotFound", err)
	}
	createActor(t, c, newActor("victim", "ns", ids.New()))

	if _, err := c.KillActor(ctx, &pb.KillActorRequest{ActorId: ids.New().Bytes(), NoRestart: true}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("kill of an unknown actor: err = %v", err)
	}
	if _, err := c.KillActor(ctx, &pb.KillActorRequest{ActorId: []byte{1, 2}}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("kill with a malformed id: err = %v", err)
	}
}

func TestFinishJobKillsOwnedActors(t *testing.T) {
	c := startGCSWithStalledNode(t)
	ctx := testCtx(t)
	job := ids.New()
	owned := createActor(t, c, newActor("", "", job))
	det := newActor("", "", job)
	det.Detached = true
	detached := createActor(t, c, det)
	otherJob := createActor(t, c, newActor("", "", ids.New()))

	if _, err := c.FinishJob(ctx, &pb.FinishJobRequest{JobId: job.Bytes()}); err != nil {
		t.Fatal(err)
	}
	waitActorState(t, c, owned.GetActorId(), gcs.StateDead)
	for _, a := range []*pb.ActorInfo{detached, otherJob} {
		g, err := c.GetActor(ctx, &pb.GetActorRequest{ActorId: a.GetActorId()})
		if err != nil || g.GetActor().GetState() != gcs.StatePending {
			t.Fatalf("FinishJob touched an actor it does not own: %v, %v", g.GetActor(), err)
		}
	}
}

func TestWaitActor(t *testing.T) {
	c := startGCSWithStalledNode(t)
	ctx := testCtx(t)
	a := createActor(t, c, newActor("", "", ids.New()))

	start := time.Now()
	r, err := c.WaitActor(ctx, &pb.WaitActorRequest{ActorId: a.GetActorId(), SinceVersion: a.GetVersion() - 1, TimeoutMs: 5000})
	if err != nil || r.GetActor().GetVersion() != a.GetVersion() {
		t.Fatalf("WaitActor(since < version) = %v, %v", r.GetActor(), err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("WaitActor with an old version blocked for %v", d)
	}

	start = time.Now()
	r, err = c.WaitActor(ctx, &pb.WaitActorRequest{ActorId: a.GetActorId(), SinceVersion: a.GetVersion(), TimeoutMs: 150})
	if err != nil || r.GetActor().GetVersion() != a.GetVersion() || r.GetActor().GetState() != gcs.StatePending {
		t.Fatalf("WaitActor(since = version) = %v, %v", r.GetActor(), err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("WaitActor returned after %v, before its 150ms timeout", d)
	}

	if _, err := c.WaitActor(ctx, &pb.WaitActorRequest{ActorId: ids.New().Bytes(), TimeoutMs: 10}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("WaitActor of an unknown actor: err = %v", err)
	}
}

// TestInfeasibleActorFailsFast: created with fail_if_infeasible, an actor
// no node can hold dies at once with an InfeasibleError.
func TestInfeasibleActorFailsFast(t *testing.T) {
	tests := []struct {
		name  string
		nodes int // 4-CPU nodes registered
		cpus  float64
	}{
		{"no nodes", 0, 1},
		{"too big for every node", 1, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startGCS(t, gcs.DefaultConfig())
			for range tt.nodes {
				if _, err := c.RegisterNode(testCtx(t), &pb.RegisterNodeRequest{Node: nodeInfo(ids.New(), "127.0.0.1:7", 4)}); err != nil {
					t.Fatal(err)
				}
			}
			spec := newActor("big", "ns", ids.New())
			spec.Creation.Resources.Amounts["CPU"] = tt.cpus
			r, err := c.CreateActor(testCtx(t), &pb.CreateActorRequest{Actor: spec, FailIfInfeasible: true})
			if err != nil {
				t.Fatal(err)
			}
			dead := waitActorState(t, c, r.GetActor().GetActorId(), gcs.StateDead)
			cause := errs.FromInfo(dead.GetDeathCause())
			var ie *errs.InfeasibleError
			if !errors.Is(cause, errs.ErrInfeasible) || !errors.As(cause, &ie) || ie.Function != "Counter" {
				t.Fatalf("death cause = %#v, want *InfeasibleError for Counter", cause)
			}
		})
	}
}

// recordingNode is a node daemon that hands every lease request to the
// test and then holds it until the caller gives up.
type recordingNode struct {
	pb.UnimplementedNodeDaemonServer
	requests chan *pb.LeaseRequest
	gone     chan *pb.LeaseRequest // requests whose caller cancelled
}

func (n recordingNode) RequestLease(ctx context.Context, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	n.requests <- req
	<-ctx.Done()
	n.gone <- req
	return nil, ctx.Err()
}

func startRecordingNode(t *testing.T) (recordingNode, string) {
	t.Helper()
	n := recordingNode{requests: make(chan *pb.LeaseRequest, 16), gone: make(chan *pb.LeaseRequest, 16)}
	srv := rpc.NewServer(token)
	pb.RegisterNodeDaemonServer(srv, n)
	return n, serve(t, srv)
}

func nextRequest(t *testing.T, ch chan *pb.LeaseRequest, what string) *pb.LeaseRequest {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-testCtx(t).Done():
		t.Fatalf("no lease request %s", what)
		return nil
	}
}

// TestInfeasibleActorWaitsForANode: an actor no node can hold stays
// PENDING_CREATION with ActorInfo.infeasible naming its request (instead of
// dying), and is placed when a node that can hold it registers.
func TestInfeasibleActorWaitsForANode(t *testing.T) {
	node, addr := startRecordingNode(t)
	c := startGCS(t, gcs.DefaultConfig())
	ctx := testCtx(t)
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(ids.New(), "127.0.0.1:7", 4)}); err != nil {
		t.Fatal(err)
	}
	spec := newActor("big", "ns", ids.New())
	spec.Creation.Resources.Amounts["CPU"] = 8
	a := createActor(t, c, spec)

	var info *pb.ActorInfo
	eventually(t, "the actor to be marked infeasible", func() bool {
		r, err := c.GetActor(ctx, &pb.GetActorRequest{ActorId: a.GetActorId()})
		info = r.GetActor()
		return err == nil && info.GetInfeasible() != nil
	})
	var ie *errs.InfeasibleError
	if info.GetState() != gcs.StatePending || !errors.As(errs.FromInfo(info.GetInfeasible()), &ie) ||
		ie.Request != "{CPU: 8}" || ie.Cluster != "{CPU: 4}" {
		t.Fatalf("infeasible actor = %s, infeasible %v; want PENDING_CREATION with the request and the cluster", info.GetState(), info.GetInfeasible())
	}

	// A node that can hold it joins: the actor's lease goes there.
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(ids.New(), addr, 8)}); err != nil {
		t.Fatal(err)
	}
	req := nextRequest(t, node.requests, "at the node that joined")
	if req.GetPlacementResources().GetAmounts()["CPU"] != 8 || !req.GetQueueIfInfeasible() || req.GetFailIfInfeasible() {
		t.Fatalf("lease request = %v, want 8 CPUs to place, queued if infeasible", req)
	}
	eventually(t, "the infeasible mark to clear", func() bool {
		r, err := c.GetActor(ctx, &pb.GetActorRequest{ActorId: a.GetActorId()})
		return err == nil && r.GetActor().GetInfeasible() == nil && r.GetActor().GetState() == gcs.StatePending
	})

	// Killing it withdraws the lease request waiting at the node.
	if _, err := c.KillActor(ctx, &pb.KillActorRequest{ActorId: a.GetActorId(), NoRestart: true}); err != nil {
		t.Fatal(err)
	}
	nextRequest(t, node.gone, "withdrawn after the kill")
}

// TestDefaultActorPlacement: an actor that asks for nothing needs 1 CPU to
// be placed (and holds none), as in Ray, so a cluster without CPUs cannot
// place it; one that asks for 0 CPUs explicitly, or sets placement
// resources, is placed by those.
func TestDefaultActorPlacement(t *testing.T) {
	node, addr := startRecordingNode(t)
	c := startGCS(t, gcs.DefaultConfig())
	ctx := testCtx(t)
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(ids.New(), addr, 0)}); err != nil {
		t.Fatal(err)
	}
	def := newActor("", "", ids.New())
	def.Creation.Resources = nil
	a := createActor(t, c, def)
	eventually(t, "the default actor to wait as infeasible on a 0-CPU cluster", func() bool {
		r, err := c.GetActor(ctx, &pb.GetActorRequest{ActorId: a.GetActorId()})
		return err == nil && r.GetActor().GetInfeasible() != nil && r.GetActor().GetState() == gcs.StatePending
	})

	zero := newActor("", "", ids.New())
	zero.Creation.Resources.Amounts = map[string]float64{"CPU": 0}
	createActor(t, c, zero)
	req := nextRequest(t, node.requests, "for an actor asking 0 CPUs")
	if len(req.GetResources().GetAmounts()) != 1 || req.GetPlacementResources().GetAmounts()["CPU"] != 0 {
		t.Fatalf("explicit 0-CPU actor: lease request %v, want nothing to place or hold", req)
	}

	// A node with a CPU joins: the default actor is placed with 1 CPU and
	// holds nothing.
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(ids.New(), addr, 1)}); err != nil {
		t.Fatal(err)
	}
	req = nextRequest(t, node.requests, "for the default actor")
	if req.GetPlacementResources().GetAmounts()["CPU"] != 1 || len(req.GetResources().GetAmounts()) != 0 {
		t.Fatalf("default actor: lease request %v, want 1 CPU to place and nothing held", req)
	}
}

// TestOwnerNodeDeathKillsOwnedActors: when a node dies, the non-detached
// actors whose owner ran there are killed (fate sharing), with the
// owner-died cause; detached ones, and those of owners elsewhere, stay.
func TestOwnerNodeDeathKillsOwnedActors(t *testing.T) {
	c := startGCSWithStalledNode(t)
	ctx := testCtx(t)
	ownerNode := ids.New()
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(ownerNode, "127.0.0.1:1", 0)}); err != nil {
		t.Fatal(err)
	}
	job := ids.New()
	orphan := newActor("", "", job)
	orphan.OwnerNodeId = ownerNode.Bytes()
	orphan = createActor(t, c, orphan)
	det := newActor("", "", job)
	det.OwnerNodeId, det.Detached = ownerNode.Bytes(), true
	det = createActor(t, c, det)
	elsewhere := newActor("", "", job)
	elsewhere.OwnerNodeId = ids.New().Bytes()
	elsewhere = createActor(t, c, elsewhere)

	if _, err := c.UnregisterNode(ctx, &pb.UnregisterNodeRequest{NodeId: ownerNode.Bytes()}); err != nil {
		t.Fatal(err)
	}
	dead := waitActorState(t, c, orphan.GetActorId(), gcs.StateDead)
	if !strings.Contains(errs.FromInfo(dead.GetDeathCause()).Error(), "owner") {
		t.Errorf("the orphaned actor died with %v, want its owner's death", errs.FromInfo(dead.GetDeathCause()))
	}
	for _, a := range []*pb.ActorInfo{det, elsewhere} {
		g, err := c.GetActor(ctx, &pb.GetActorRequest{ActorId: a.GetActorId()})
		if err != nil || g.GetActor().GetState() == gcs.StateDead {
			t.Fatalf("an actor the node's death does not concern died: %v, %v", g.GetActor(), err)
		}
	}
}
