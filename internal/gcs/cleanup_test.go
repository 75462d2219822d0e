package gcs_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// hostNode is a node daemon and the core worker of every process it
// leases, in one server: leases are granted at once (a fresh worker id
// each), constructors succeed, and FreeOwned and KillWorker are recorded.
type hostNode struct {
	pb.UnimplementedNodeDaemonServer
	addr string
	id   ids.ID

	mu      sync.Mutex
	workers map[string]ids.ID // actor class -> the worker leased for it
	freed   []*pb.FreeOwnedRequest
	killed  map[ids.ID]bool
}

func (n *hostNode) RequestLease(_ context.Context, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	w := ids.New()
	n.mu.Lock()
	n.workers[req.GetSchedulingKey()] = w
	n.mu.Unlock()
	return &pb.LeaseReply{LeaseId: ids.New().Bytes(), WorkerAddress: n.addr, WorkerId: w.Bytes(), NodeId: n.id.Bytes()}, nil
}

func (n *hostNode) FreeOwned(_ context.Context, req *pb.FreeOwnedRequest) (*pb.FreeOwnedReply, error) {
	n.mu.Lock()
	n.freed = append(n.freed, req)
	n.mu.Unlock()
	return &pb.FreeOwnedReply{}, nil
}

func (n *hostNode) KillWorker(_ context.Context, req *pb.KillWorkerRequest) (*pb.KillWorkerReply, error) {
	n.mu.Lock()
	n.killed[ids.MustFromBytes(req.GetWorkerId())] = true
	n.mu.Unlock()
	return &pb.KillWorkerReply{}, nil
}

type hostWorker struct {
	pb.UnimplementedCoreWorkerServer
}

func (hostWorker) CreateActor(context.Context, *pb.CreateActorTaskRequest) (*pb.CreateActorTaskReply, error) {
	return &pb.CreateActorTaskReply{}, nil
}

// notices returns what FreeOwned calls carried so far, merged.
func (n *hostNode) notices() (finished, dead, keep map[ids.ID]bool) {
	finished, dead, keep = map[ids.ID]bool{}, map[ids.ID]bool{}, map[ids.ID]bool{}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.freed {
		for _, b := range r.GetFinishedJobIds() {
			finished[ids.MustFromBytes(b)] = true
		}
		for _, b := range r.GetDeadOwnerIds() {
			dead[ids.MustFromBytes(b)] = true
		}
		for _, b := range r.GetKeepOwnerIds() {
			keep[ids.MustFromBytes(b)] = true
		}
	}
	return
}

// TestJobEndNoticesNodes: when a job finishes, every node hears it with
// the driver as a dead owner and the detached actor's process kept; a
// worker's death is passed on to every node too.
func TestJobEndNoticesNodes(t *testing.T) {
	node := &hostNode{id: ids.New(), workers: map[string]ids.ID{}, killed: map[ids.ID]bool{}}
	srv := rpc.NewServer(token)
	pb.RegisterNodeDaemonServer(srv, node)
	pb.RegisterCoreWorkerServer(srv, hostWorker{})
	node.addr = serve(t, srv)
	c := startGCS(t, gcs.DefaultConfig())
	ctx := testCtx(t)
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(node.id, node.addr, 4)}); err != nil {
		t.Fatal(err)
	}
	job, driver := ids.New(), ids.New()
	if _, err := c.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{JobId: job.Bytes(), DriverId: driver.Bytes()}}); err != nil {
		t.Fatal(err)
	}
	detached := newActor("keeper", "", job)
	detached.Detached = true
	detached.Creation.Function = "Keeper"
	plain := newActor("", "", job)
	for _, a := range []*pb.ActorInfo{detached, plain} {
		createActor(t, c, a)
		waitActorState(t, c, a.GetActorId(), gcs.StateAlive)
	}
	node.mu.Lock()
	keeper, plainWorker := node.workers["actor:Keeper"], node.workers["actor:Counter"]
	node.mu.Unlock()

	if _, err := c.FinishJob(ctx, &pb.FinishJobRequest{JobId: job.Bytes()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the job-end notice", func() bool {
		finished, dead, _ := node.notices()
		return finished[job] && dead[driver]
	})
	_, _, keep := node.notices()
	if keeper.IsNil() || !keep[keeper] || keep[plainWorker] || len(keep) != 1 {
		t.Fatalf("kept %v, want only the detached actor's process %s (leases: %v)", keep, keeper.Short(), node.workers)
	}
	eventually(t, "the non-detached actor's process killed", func() bool {
		node.mu.Lock()
		defer node.mu.Unlock()
		return node.killed[plainWorker] && !node.killed[keeper]
	})

	w := ids.New()
	if _, err := c.WorkerDied(ctx, &pb.WorkerDiedRequest{NodeId: ids.New().Bytes(), WorkerId: w.Bytes()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker-death notice", func() bool { _, dead, _ := node.notices(); return dead[w] })
}

// TestNodeResourcesMustBeFinite: RegisterNode and NodeHeartbeat refuse
// NaN and infinite amounts, called directly as well as over the wire.
func TestNodeResourcesMustBeFinite(t *testing.T) {
	pool := rpc.NewPool(token)
	defer pool.Close()
	g := gcs.New(gcs.DefaultConfig(), pool)
	defer g.Close()
	ctx := testCtx(t)
	id := ids.New()
	bad := []map[string]float64{{"CPU": math.NaN()}, {"CPU": math.Inf(1)}, {"GPU": math.Inf(-1)}, {"memory": -5}}
	for _, amounts := range bad {
		n := &pb.NodeInfo{NodeId: id.Bytes(), Address: "127.0.0.1:1", Total: &pb.Resources{Amounts: amounts}}
		if _, err := g.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: n}); !errors.Is(err, errs.ErrInvalidRequest) {
			t.Fatalf("RegisterNode(%v) = %v, want ErrInvalidRequest", amounts, err)
		}
	}
	if nodes, _ := g.GetNodes(ctx, &pb.GetNodesRequest{IncludeDead: true}); len(nodes.GetNodes()) != 0 {
		t.Fatalf("refused nodes were registered: %v", nodes.GetNodes())
	}
	if _, err := g.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(id, "127.0.0.1:1", 4)}); err != nil {
		t.Fatal(err)
	}
	for _, amounts := range bad[:3] {
		_, err := g.NodeHeartbeat(ctx, &pb.NodeHeartbeatRequest{NodeId: id.Bytes(), Available: &pb.Resources{Amounts: amounts}})
		if !errors.Is(err, errs.ErrInvalidRequest) {
			t.Fatalf("NodeHeartbeat(%v) = %v, want ErrInvalidRequest", amounts, err)
		}
	}
	nodes, _ := g.GetNodes(ctx, &pb.GetNodesRequest{})
	if got := nodes.GetNodes()[0].GetAvailable().GetAmounts()["CPU"]; got != 4 {
		t.Fatalf("available CPU = %v after refused heartbeats, want 4", got)
	}
}
