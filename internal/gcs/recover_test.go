package gcs_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/faults"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/gcs/storage"
	"github.com/raygo/raygo/internal/gcs/storage/storagetest"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// durableMemory is the in-memory store claiming to persist: the fake
// storage of a control store restarted in the same test.
type durableMemory struct{ *storage.Memory }

func (durableMemory) Persistent() bool { return true }
func (durableMemory) Close() error     { return nil }

// actorHost is a node daemon and a core worker in one: it grants every
// actor lease on itself (the worker's address is its own), runs every
// constructor, takes every bundle, and records the lease requests and
// ReleaseUnused calls it gets.
type actorHost struct {
	pb.UnimplementedNodeDaemonServer
	addr string
	id   ids.ID

	mu       sync.Mutex
	leases   []*pb.LeaseRequest
	released []*pb.ReleaseUnusedRequest
}

func (n *actorHost) RequestLease(_ context.Context, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	n.mu.Lock()
	n.leases = append(n.leases, req)
	n.mu.Unlock()
	return &pb.LeaseReply{LeaseId: ids.New().Bytes(), WorkerId: ids.New().Bytes(), NodeId: n.id.Bytes(), WorkerAddress: n.addr, WorkerPid: 42}, nil
}

// actorWorker is the core worker of an actorHost: constructors succeed.
type actorWorker struct {
	pb.UnimplementedCoreWorkerServer
}

func (actorWorker) CreateActor(context.Context, *pb.CreateActorTaskRequest) (*pb.CreateActorTaskReply, error) {
	return &pb.CreateActorTaskReply{}, nil
}

func (n *actorHost) PrepareBundles(context.Context, *pb.PrepareBundlesRequest) (*pb.PrepareBundlesReply, error) {
	return &pb.PrepareBundlesReply{}, nil
}

func (n *actorHost) ReleaseUnused(_ context.Context, req *pb.ReleaseUnusedRequest) (*pb.ReleaseUnusedReply, error) {
	n.mu.Lock()
	n.released = append(n.released, req)
	n.mu.Unlock()
	return &pb.ReleaseUnusedReply{}, nil
}

func (n *actorHost) lastLease() *pb.LeaseRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leases[len(n.leases)-1]
}

func (n *actorHost) releases() []*pb.ReleaseUnusedRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*pb.ReleaseUnusedRequest(nil), n.released...)
}

func startActorHost(t *testing.T) *actorHost {
	n := &actorHost{id: ids.New()}
	srv := rpc.NewServer(token)
	pb.RegisterNodeDaemonServer(srv, n)
	pb.RegisterCoreWorkerServer(srv, actorWorker{})
	n.addr = serve(t, srv)
	return n
}

// openGCS serves a control store opened on st; stop ends it (as a head
// that goes away), and a later openGCS on st recovers it.
func openGCS(t *testing.T, st storage.Store) (c pb.ControlStoreClient, g *gcs.Server, stop func()) {
	t.Helper()
	pool := rpc.NewPool(token)
	cfg := gcs.DefaultConfig()
	cfg.Storage = st
	g, err := gcs.Open(cfg, pool)
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(srv, g)
	lis, err := rpc.ListenOn("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	conn, err := rpc.Dial(lis.Addr(), token)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() { conn.Close(); g.Close(); srv.Stop(); wg.Wait(); pool.Close() })
	}
	t.Cleanup(stop)
	return pb.NewControlStoreClient(conn), g, stop
}

// TestRecoverFromStorage: a control store started on the storage another
// one wrote takes its cluster over: nodes, jobs, KV, binaries, actors
// (alive on the worker they had) and placement groups (where they were)
// come back; the recovered node is told, when next heard from, which
// leases and bundles of the earlier incarnation are still used; the new
// incarnation's leases carry its epoch; creating an actor again by id
// answers with the existing one. On each real store and the fake.
func TestRecoverFromStorage(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(t *testing.T) storage.Store
	}{
		{"fake", func(*testing.T) storage.Store { return durableMemory{storage.NewMemory()} }},
		{"file", func(t *testing.T) storage.Store {
			return reopenable(t, func() (storage.Store, error) { return storage.OpenFile(filepath.Join(t.TempDir(), "gcs.db")) })
		}},
		{"redis", func(t *testing.T) storage.Store {
			url := storagetest.StartRedis(t)
			return reopenable(t, func() (storage.Store, error) { return storage.OpenRedis(testCtx(t), url, "test") })
		}},
	} {
		t.Run(b.name, func(t *testing.T) { testRecover(t, b.open(t)) })
	}
}

// reopenable opens a store once for the test (both incarnations use it;
// the file store is locked by its holder, as a head's is).
func reopenable(t *testing.T, open func() (storage.Store, error)) storage.Store {
	st, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func testRecover(t *testing.T, st storage.Store) {
	ctx := testCtx(t)
	node := startActorHost(t)
	c1, g1, stop1 := openGCS(t, st)
	if g1.Epoch() != 1 {
		t.Fatalf("first epoch %d, want 1", g1.Epoch())
	}
	if r, err := c1.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(node.id, node.addr, 4)}); err != nil || !r.GetPersistent() {
		t.Fatalf("RegisterNode: %v, persistent %v", err, r.GetPersistent())
	}
	job := ids.New()
	if r, err := c1.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{JobId: job.Bytes(), DriverId: ids.New().Bytes()}}); err != nil || !r.GetPersistent() {
		t.Fatalf("RegisterJob: %v", err)
	}
	if _, err := c1.KVPut(ctx, &pb.KVPutRequest{Ns: "ns", Key: "k", Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("raygo"), 700_000) // 3.5 MB: four stored pieces
	if err := putBinary(ctx, c1, data, sha(data), int64(len(data)), 1<<20); err != nil {
		t.Fatal(err)
	}
	keeper := newActor("keeper", "ns", job)
	keeper.Detached = true
	createActor(t, c1, keeper)
	alive := waitActorState(t, c1, keeper.ActorId, pb.ActorState_ACTOR_STATE_ALIVE)
	if l := node.lastLease(); l.GetControlStoreEpoch() != 1 {
		t.Fatalf("lease asked with epoch %d, want 1", l.GetControlStoreEpoch())
	}
	g := group(pb.PlacementStrategy_PLACEMENT_STRATEGY_PACK, 1)
	if _, err := c1.CreatePlacementGroup(ctx, &pb.CreatePlacementGroupRequest{Group: g}); err != nil {
		t.Fatal(err)
	}
	waitGroupState(t, c1, g.GroupId, pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED)
	stop1()

	c2, g2, _ := openGCS(t, st)
	if g2.Epoch() != 2 {
		t.Fatalf("second epoch %d, want 2", g2.Epoch())
	}
	if s, _ := nodeState(t, c2, node.id); s != pb.NodeState_NODE_STATE_ALIVE {
		t.Fatalf("recovered node state %v, want alive", s)
	}
	if r, err := c2.GetJob(ctx, &pb.GetJobRequest{JobId: job.Bytes()}); err != nil || r.GetJob().GetState() != pb.JobState_JOB_STATE_RUNNING {
		t.Fatalf("recovered job: %v, %v", r.GetJob(), err)
	}
	if r, err := c2.KVGet(ctx, &pb.KVGetRequest{Ns: "ns", Key: "k"}); err != nil || string(r.GetValue()) != "v1" {
		t.Fatalf("recovered KV: %q, %v", r.GetValue(), err)
	}
	if got, err := getBinary(ctx, c2, sha(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("recovered binary: %d bytes, %v", len(got), err)
	}
	r, err := c2.GetActor(ctx, &pb.GetActorRequest{Name: "keeper", Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	if a := r.GetActor(); a.GetState() != pb.ActorState_ACTOR_STATE_ALIVE || !bytes.Equal(a.GetWorkerId(), alive.GetWorkerId()) {
		t.Fatalf("recovered actor %v on worker %x, want alive on %x", a.GetState(), a.GetWorkerId(), alive.GetWorkerId())
	}
	gr, err := c2.GetPlacementGroup(ctx, &pb.GetPlacementGroupRequest{GroupId: g.GroupId})
	if err != nil || gr.GetGroup().GetState() != pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED ||
		!bytes.Equal(gr.GetGroup().GetBundles()[0].GetNodeId(), node.id.Bytes()) {
		t.Fatalf("recovered group: %v, %v", gr.GetGroup(), err)
	}

	// Heard from again: told what of epoch 1 is still used there.
	if _, err := c2.NodeHeartbeat(ctx, &pb.NodeHeartbeatRequest{NodeId: node.id.Bytes(), Available: &pb.Resources{}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ReleaseUnused", func() bool { return len(node.releases()) == 1 })
	rel := node.releases()[0]
	if rel.GetEpoch() != 2 || len(rel.GetKeepLeases()) != 1 || len(rel.GetKeepBundles()) != 1 ||
		!bytes.Equal(rel.GetKeepBundles()[0].GetGroupId(), g.GroupId) {
		t.Fatalf("ReleaseUnused = %v, want epoch 2 keeping the actor's lease and the group's bundle", rel)
	}

	// The new incarnation's leases carry its epoch; a creation retried
	// across the restart finds the actor.
	other := newActor("", "ns", job)
	createActor(t, c2, other)
	waitActorState(t, c2, other.ActorId, pb.ActorState_ACTOR_STATE_ALIVE)
	if l := node.lastLease(); l.GetControlStoreEpoch() != 2 {
		t.Fatalf("lease asked with epoch %d, want 2", l.GetControlStoreEpoch())
	}
	again, err := c2.CreateActor(ctx, &pb.CreateActorRequest{Actor: keeper})
	if err != nil || again.GetActor().GetState() != pb.ActorState_ACTOR_STATE_ALIVE {
		t.Fatalf("CreateActor again by id: %v, %v; want the alive actor", again.GetActor().GetState(), err)
	}
}

func waitGroupState(t *testing.T, c pb.ControlStoreClient, id []byte, state pb.PlacementGroupState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.WaitPlacementGroup(testCtx(t), &pb.WaitPlacementGroupRequest{GroupId: id, TimeoutMs: 1000})
		if err == nil && r.GetGroup().GetState() == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group state %v (%v), want %v", r.GetGroup().GetState(), err, state)
		}
	}
}

// TestStorageWritesRetried: writes that fail (the gcs/storage/before
// fault point dropping the first three) are tried again: the call
// waiting for its change answers once it is written, and a control store
// recovered from the storage has it.
func TestStorageWritesRetried(t *testing.T) {
	if err := faults.Enable("gcs/storage/before=drop*3"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { faults.Disable() })
	st := durableMemory{storage.NewMemory()}
	c1, _, stop1 := openGCS(t, st)
	ctx := testCtx(t)
	if _, err := c1.KVPut(ctx, &pb.KVPutRequest{Ns: "ns", Key: "k", Value: []byte("kept")}); err != nil {
		t.Fatalf("KVPut with failing writes: %v", err)
	}
	if n := faults.Hits("gcs/storage/before"); n < 4 {
		t.Fatalf("the write was tried %d times, want at least 4 (three failures)", n)
	}
	stop1()
	c2, _, _ := openGCS(t, st)
	if r, err := c2.KVGet(ctx, &pb.KVGetRequest{Ns: "ns", Key: "k"}); err != nil || string(r.GetValue()) != "kept" {
		t.Fatalf("recovered KV: %q, %v", r.GetValue(), err)
	}
}
