package gcs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

const token = "tok"

// serve runs srv on a fresh loopback port until the test ends.
func serve(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// startGCS serves a control store with cfg and returns a client for it.
func startGCS(t *testing.T, cfg gcs.Config) pb.ControlStoreClient {
	t.Helper()
	pool := rpc.NewPool(token)
	g := gcs.New(cfg, pool)
	srv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(srv, g)
	addr := serve(t, srv)
	// Cleanups run last-in first-out: stop the store's loops before its server.
	t.Cleanup(func() { g.Close(); pool.Close() })
	conn, err := rpc.Dial(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewControlStoreClient(conn)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 10 ms until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ---------------------------------------------------------------- kv

func TestKV(t *testing.T) {
	cfg := gcs.DefaultConfig()
	cfg.MaxKVValueBytes = 16
	c := startGCS(t, cfg)
	ctx := testCtx(t)

	put := func(ns, key, val string, overwrite bool) (bool, error) {
		r, err := c.KVPut(ctx, &pb.KVPutRequest{Ns: ns, Key: key, Value: []byte(val), Overwrite: overwrite})
		return r.GetAdded(), err
	}
	get := func(ns, key string) (string, bool) {
		r, err := c.KVGet(ctx, &pb.KVGetRequest{Ns: ns, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return string(r.GetValue()), r.GetFound()
	}

	if v, ok := get("ns", "k"); ok {
		t.Fatalf("missing key found: %q", v)
	}
	if added, err := put("ns", "k", "v1", false); err != nil || !added {
		t.Fatalf("first put: added=%v err=%v", added, err)
	}
	if added, err := put("ns", "k", "v2", false); err != nil || added {
		t.Fatalf("put without overwrite: added=%v err=%v", added, err)
	}
	if v, _ := get("ns", "k"); v != "v1" {
		t.Fatalf("value after put without overwrite = %q, want v1", v)
	}
	if _, err := put("ns", "k", "v3", true); err != nil {
		t.Fatal(err)
	}
	if v, _ := get("ns", "k"); v != "v3" {
		t.Fatalf("value after overwrite = %q, want v3", v)
	}
	if _, ok := get("other", "k"); ok {
		t.Fatal("key leaked across namespaces")
	}

	if _, err := put("ns", "", "v", false); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := put("ns", "exact", string(make([]byte, 16)), false); err != nil {
		t.Fatalf("value at the limit: %v", err)
	}
	if _, err := put("ns", "big", string(make([]byte, 17)), false); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("value over the limit: err = %v, want ErrInvalidRequest", err)
	}
	if _, ok := get("ns", "big"); ok {
		t.Fatal("rejected value was stored")
	}
}

// ---------------------------------------------------------------- jobs

func TestJobs(t *testing.T) {
	c := startGCS(t, gcs.DefaultConfig())
	ctx := testCtx(t)

	r1, err := c.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{BinaryHash: "h", Namespace: "ns", Entrypoint: "./app"}})
	if err != nil {
		t.Fatal(err)
	}
	id1, ok := ids.FromBytes(r1.GetJobId())
	if !ok || id1.IsNil() {
		t.Fatalf("RegisterJob without an id assigned %x", r1.GetJobId())
	}
	id2 := ids.New()
	r2, err := c.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{JobId: id2.Bytes()}})
	if err != nil || ids.MustFromBytes(r2.GetJobId()) != id2 {
		t.Fatalf("RegisterJob with an id: %x, %v", r2.GetJobId(), err)
	}

	j, err := c.GetJob(ctx, &pb.GetJobRequest{JobId: id1.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if got := j.GetJob(); got.GetState() != pb.JobState_JOB_STATE_RUNNING || got.GetStartUnixMs() == 0 ||
		got.GetBinaryHash() != "h" || got.GetNamespace() != "ns" || got.GetEntrypoint() != "./app" {
		t.Fatalf("GetJob = %v", got)
	}

	list, err := c.ListJobs(ctx, &pb.ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[ids.ID]bool{}
	for _, j := range list.GetJobs() {
		listed[ids.MustFromBytes(j.GetJobId())] = true
	}
	if len(listed) != 2 || !listed[id1] || !listed[id2] {
		t.Fatalf("ListJobs = %v, want %s and %s", list.GetJobs(), id1, id2)
	}

	if _, err := c.FinishJob(ctx, &pb.FinishJobRequest{JobId: id1.Bytes()}); err != nil {
		t.Fatal(err)
	}
	j, _ = c.GetJob(ctx, &pb.GetJobRequest{JobId: id1.Bytes()})
	if got := j.GetJob(); got.GetState() != pb.JobState_JOB_STATE_FINISHED || got.GetEndUnixMs() < got.GetStartUnixMs() {
		t.Fatalf("after FinishJob: %v", got)
	}
	j, _ = c.GetJob(ctx, &pb.GetJobRequest{JobId: id2.Bytes()})
	if j.GetJob().GetState() != pb.JobState_JOB_STATE_RUNNING {
		t.Fatalf("FinishJob finished another job: %v", j.GetJob())
	}

	if _, err := c.GetJob(ctx, &pb.GetJobRequest{JobId: ids.New().Bytes()}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("unknown job: err = %v, want ErrNotFound", err)
	}
}

// ---------------------------------------------------------------- nodes

func nodeInfo(id ids.ID, addr string, cpus float64) *pb.NodeInfo {
	return &pb.NodeInfo{NodeId: id.Bytes(), Address: addr, Total: &pb.Resources{Amounts: map[string]float64{"CPU": cpus}}}
}

// nodeState returns the node's state as GetNodes(include_dead) reports
// it, or NODE_STATE_UNSPECIFIED when it is not listed.
func nodeState(t *testing.T, c pb.ControlStoreClient, id ids.ID) (pb.NodeState, *pb.NodeInfo) {
	t.Helper()
	r, err := c.GetNodes(testCtx(t), &pb.GetNodesRequest{IncludeDead: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r.GetNodes() {
		if ids.MustFromBytes(n.GetNodeId()) == id {
			return n.GetState(), n
		}
	}
	return pb.NodeState_NODE_STATE_UNSPECIFIED, nil
}

func TestNodeRegisterHeartbeatUnregister(t *testing.T) {
	c := startGCS(t, gcs.DefaultConfig())
	ctx := testCtx(t)
	id := ids.New()

	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(id, "", 4)}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("node without address: err = %v", err)
	}
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: &pb.NodeInfo{Address: "x:1"}}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("node without id: err = %v", err)
	}
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(id, "127.0.0.1:7", 4)}); err != nil {
		t.Fatal(err)
	}
	state, n := nodeState(t, c, id)
	if state != pb.NodeState_NODE_STATE_ALIVE || n.GetAddress() != "127.0.0.1:7" || n.GetAvailable().GetAmounts()["CPU"] != 4 {
		t.Fatalf("registered node = %v, want ALIVE with available = total", n)
	}

	hb, err := c.NodeHeartbeat(ctx, &pb.NodeHeartbeatRequest{NodeId: id.Bytes(), NumWorkers: 3, PendingLeases: 1,
		Available: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}})
	if err != nil || hb.GetUnknownNode() {
		t.Fatalf("heartbeat: %v %v", hb, err)
	}
	_, n = nodeState(t, c, id)
	if n.GetAvailable().GetAmounts()["CPU"] != 1 || n.GetNumWorkers() != 3 || n.GetPendingLeases() != 1 ||
		n.GetTotal().GetAmounts()["CPU"] != 4 {
		t.Fatalf("after heartbeat: %v", n)
	}

	if hb, _ := c.NodeHeartbeat(ctx, &pb.NodeHeartbeatRequest{NodeId: ids.New().Bytes()}); !hb.GetUnknownNode() {
		t.Fatal("heartbeat of an unknown node accepted")
	}

	if _, err := c.UnregisterNode(ctx, &pb.UnregisterNodeRequest{NodeId: id.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if state, _ := nodeState(t, c, id); state != pb.NodeState_NODE_STATE_DEAD {
		t.Fatalf("after unregister state = %q, want DEAD", state)
	}
	alive, _ := c.GetNodes(ctx, &pb.GetNodesRequest{})
	if len(alive.GetNodes()) != 0 {
		t.Fatalf("GetNodes lists dead nodes: %v", alive.GetNodes())
	}
	// A dead node is told so, typed, and cannot register under its old id.
	_, err = c.NodeHeartbeat(ctx, &pb.NodeHeartbeatRequest{NodeId: id.Bytes()})
	var died *errs.NodeDiedError
	if !errors.As(err, &died) || died.NodeID != id.String() || !strings.Contains(died.Reason, "node daemon stopped") {
		t.Fatalf("heartbeat of a dead node: err = %v, want a NodeDiedError naming it and why", err)
	}
	if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(id, "127.0.0.1:7", 4)}); !errors.Is(err, errs.ErrNodeDied) {
		t.Fatalf("a dead node registered again under its old id: err = %v", err)
	}
	if state, _ := nodeState(t, c, id); state != pb.NodeState_NODE_STATE_DEAD {
		t.Fatalf("after a refused registration state = %q, want DEAD", state)
	}
}

func TestNodeTimeout(t *testing.T) {
	// The timeout is 50 heartbeat periods, so a loaded CI machine that
	// stalls the beating goroutine for a while does not fail the test.
	c := startGCS(t, gcs.Config{NodeTimeout: time.Second, HealthCheckPeriod: 20 * time.Millisecond})
	ctx := testCtx(t)
	silent, beating := ids.New(), ids.New()
	for _, id := range []ids.ID{silent, beating} {
		if _, err := c.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: nodeInfo(id, "127.0.0.1:7", 1)}); err != nil {
			t.Fatal(err)
		}
	}

	// Keep one node heartbeating while the other goes silent.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			_, _ = c.NodeHeartbeat(ctx, &pb.NodeHeartbeatRequest{NodeId: beating.Bytes()})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	start := time.Now()
	eventually(t, "the silent node to be marked DEAD", func() bool {
		s, _ := nodeState(t, c, silent)
		return s == pb.NodeState_NODE_STATE_DEAD
	})
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("node marked dead after %v, before its 1s timeout", d)
	}
	if s, _ := nodeState(t, c, beating); s != pb.NodeState_NODE_STATE_ALIVE {
		t.Fatalf("heartbeating node state = %q, want ALIVE", s)
	}
	// Back after its death, the node is told it is dead, and why.
	_, err := c.NodeHeartbeat(ctx, &pb.NodeHeartbeatRequest{NodeId: silent.Bytes()})
	var died *errs.NodeDiedError
	if !errors.As(err, &died) || !strings.Contains(died.Reason, "no heartbeat for 1s") {
		t.Fatalf("heartbeat after the timeout: err = %v, want a NodeDiedError saying why", err)
	}
	if s, _ := nodeState(t, c, silent); s != pb.NodeState_NODE_STATE_DEAD {
		t.Fatalf("a late heartbeat revived the node: state = %q", s)
	}
}

// ---------------------------------------------------------------- binaries

// putBinary uploads data declared as hash and total bytes, in chunks.
func putBinary(ctx context.Context, c pb.ControlStoreClient, data []byte, hash string, total int64, chunk int) error {
	stream, err := c.PutBinary(ctx)
	if err != nil {
		return rpc.FromStatus(err)
	}
	for off := 0; off == 0 || off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		err := stream.Send(&pb.BinaryChunk{Hash: hash, Offset: int64(off), Data: data[off:end], Total: total})
		if errors.Is(err, io.EOF) { // the server gave up; CloseAndRecv says why
			break
		}
		if err != nil {
			return err
		}
	}
	_, err = stream.CloseAndRecv()
	// Streams bypass Dial's unary interceptor: rebuild the typed error here.
	return rpc.FromStatus(err)
}

func getBinary(ctx context.Context, c pb.ControlStoreClient, hash string) ([]byte, error) {
	stream, err := c.GetBinary(ctx, &pb.GetBinaryRequest{Hash: hash})
	if err != nil {
		return nil, rpc.FromStatus(err)
	}
	var out []byte
	for {
		ch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, rpc.FromStatus(err)
		}
		if ch.GetOffset() != int64(len(out)) {
			return nil, errors.New("chunk out of order")
		}
		out = append(out, ch.GetData()...)
	}
}

func hasBinary(t *testing.T, c pb.ControlStoreClient, hash string) bool {
	t.Helper()
	r, err := c.HasBinary(testCtx(t), &pb.HasBinaryRequest{Hash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetFound()
}

func TestBinaryUploadAndFetch(t *testing.T) {
	cfg := gcs.DefaultConfig()
	cfg.MaxBinaryBytes = 4 << 20
	c := startGCS(t, cfg)
	ctx := testCtx(t)

	data := make([]byte, 2<<20+12345) // spans several fetch chunks (1 MiB each)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	hash := sha(data)
	if hasBinary(t, c, hash) {
		t.Fatal("HasBinary before upload")
	}
	if err := putBinary(ctx, c, data, hash, int64(len(data)), 300<<10); err != nil {
		t.Fatal(err)
	}
	if !hasBinary(t, c, hash) {
		t.Fatal("HasBinary false after upload")
	}
	got, err := getBinary(ctx, c, hash)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("GetBinary returned %d bytes that differ from the %d uploaded", len(got), len(data))
	}

	empty := sha(nil)
	if err := putBinary(ctx, c, nil, empty, 0, 1); err != nil {
		t.Fatalf("empty binary: %v", err)
	}
	if got, err := getBinary(ctx, c, empty); err != nil || len(got) != 0 {
		t.Fatalf("GetBinary(empty) = %d bytes, %v", len(got), err)
	}

	if _, err := getBinary(ctx, c, sha([]byte("never uploaded"))); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("GetBinary of an unknown hash: err = %v, want ErrNotFound", err)
	}
}

// TestBinaryFromPath: a binary named by a path the control store can read
// with the same content is copied there, not uploaded, and served from the
// copy after the original is gone; any other path leaves it to an upload.
func TestBinaryFromPath(t *testing.T) {
	cfg := gcs.DefaultConfig()
	cfg.MaxBinaryBytes = 4 << 20
	cfg.BinaryDir = filepath.Join(t.TempDir(), "binaries")
	c := startGCS(t, cfg)
	ctx := testCtx(t)
	has := func(hash, path string) bool {
		t.Helper()
		r, err := c.HasBinary(ctx, &pb.HasBinaryRequest{Hash: hash, Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetFound()
	}
	dir := t.TempDir()
	data := make([]byte, 2<<20+777) // several 1 MiB chunks when served
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "driver")
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, []byte("not the driver"), 0o755); err != nil {
		t.Fatal(err)
	}
	hash := sha(data)
	for _, tt := range []struct{ name, path string }{
		{"no path", ""},
		{"relative path", "driver"},
		{"missing file", filepath.Join(dir, "missing")},
		{"a directory", dir},
		{"other content", other},
	} {
		if has(hash, tt.path) {
			t.Fatalf("%s: found", tt.name)
		}
	}
	if !has(hash, exe) {
		t.Fatal("a readable file with the content: not found")
	}
	if err := os.Remove(exe); err != nil { // a `go run` binary, removed at exit
		t.Fatal(err)
	}
	if !has(hash, "") {
		t.Fatal("not found by hash after its copy was taken")
	}
	if got, err := getBinary(ctx, c, hash); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBinary of the copy: %d bytes (want %d), %v", len(got), len(data), err)
	}

	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 5<<20), 0o755); err != nil {
		t.Fatal(err)
	}
	if has(sha(make([]byte, 5<<20)), big) {
		t.Fatal("a file over MaxBinaryBytes was taken")
	}

	noDir := startGCS(t, gcs.DefaultConfig())
	if r, err := noDir.HasBinary(ctx, &pb.HasBinaryRequest{Hash: sha([]byte("not the driver")), Path: other}); err != nil || r.GetFound() {
		t.Fatalf("without a binary directory: found %v, %v; want an upload", r.GetFound(), err)
	}
}

func TestBinaryUploadRejected(t *testing.T) {
	cfg := gcs.DefaultConfig()
	cfg.MaxBinaryBytes = 1 << 10
	c := startGCS(t, cfg)
	ctx := testCtx(t)
	small := []byte("#!/bin/sh\nexit 0\n")
	big := make([]byte, 2<<10)

	tests := []struct {
		name  string
		data  []byte
		hash  string
		total int64
	}{
		{"wrong hash", small, sha([]byte("something else")), int64(len(small))},
		{"over limit", big, sha(big), int64(len(big))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := putBinary(ctx, c, tt.data, tt.hash, tt.total, 256)
			if !errors.Is(err, errs.ErrInvalidRequest) {
				t.Fatalf("err = %v, want ErrInvalidRequest", err)
			}
			if hasBinary(t, c, tt.hash) {
				t.Fatal("rejected binary was stored")
			}
		})
	}

	t.Run("chunk out of order", func(t *testing.T) {
		stream, err := c.PutBinary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&pb.BinaryChunk{Hash: sha(small), Offset: 5, Data: small, Total: int64(len(small))})
		_, err = stream.CloseAndRecv()
		if !errors.Is(rpc.FromStatus(err), errs.ErrInvalidRequest) {
			t.Fatalf("err = %v, want ErrInvalidRequest", err)
		}
	})
}

// liveDriver answers the control store's driver checks.
type liveDriver struct {
	pb.UnimplementedCoreWorkerServer
}

func (liveDriver) Borrow(context.Context, *pb.BorrowRequest) (*pb.BorrowReply, error) {
	return &pb.BorrowReply{}, nil
}

// TestDriverSessionEndsJobAtOnce: with the periodic driver check an hour
// away, only a dropped DriverAlive stream can end a job. A driver whose
// session drops while it still answers keeps its job; one whose address
// no longer answers when its session drops loses it.
func TestDriverSessionEndsJobAtOnce(t *testing.T) {
	c := startGCS(t, gcs.Config{DriverCheckPeriod: time.Hour})
	ctx := testCtx(t)
	drv := rpc.NewServer(token)
	pb.RegisterCoreWorkerServer(drv, liveDriver{})
	driverAddr := serve(t, drv)

	job := ids.New()
	if _, err := c.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{JobId: job.Bytes(), DriverAddress: driverAddr}}); err != nil {
		t.Fatal(err)
	}
	state := func() pb.JobState {
		r, err := c.GetJob(ctx, &pb.GetJobRequest{JobId: job.Bytes()})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetJob().GetState()
	}
	// open holds a session and returns the function that drops it once
	// the control store holds it (its stream is open on both sides).
	open := func() (drop func()) {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := c.DriverAlive(sctx, &pb.DriverAliveRequest{JobId: job.Bytes()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatal(err)
		}
		return cancel
	}

	// The connection drops, the driver lives: the job goes on.
	open()()
	time.Sleep(200 * time.Millisecond)
	if s := state(); s != pb.JobState_JOB_STATE_RUNNING {
		t.Fatalf("job %s after a live driver's session dropped, want RUNNING", s)
	}

	// The driver dies (nothing listens at its address), then its session
	// drops: the job ends without waiting for the hourly check.
	drop := open()
	drv.Stop() // its listener is closed when Stop returns
	drop()
	eventually(t, "the job to end after its driver died", func() bool { return state() == pb.JobState_JOB_STATE_FINISHED })

	// A session for a job that is not running is refused, so a driver
	// stops reopening it.
	stream, err := c.DriverAlive(ctx, &pb.DriverAliveRequest{JobId: job.Bytes()})
	if err == nil {
		_, err = stream.Recv()
	}
	if !errors.Is(rpc.FromStatus(err), errs.ErrNotFound) {
		t.Fatalf("session of a finished job: %v, want not found", err)
	}
}

// TestNodeViewDeltas: GetNodes with since_version sends only the nodes
// whose records changed after it (dead ones too); a heartbeat that
// changes nothing changes no version; an unknown version gets everything.
func TestNodeViewDeltas(t *testing.T) {
	c := startGCS(t, gcs.DefaultConfig())
	a, b := ids.New(), ids.New()
	for _, id := range []ids.ID{a, b} {
		if _, err := c.RegisterNode(testCtx(t), &pb.RegisterNodeRequest{Node: nodeInfo(id, "127.0.0.1:1", 2)}); err != nil {
			t.Fatal(err)
		}
	}
	full, err := c.GetNodes(testCtx(t), &pb.GetNodesRequest{})
	if err != nil || !full.GetFull() || len(full.GetNodes()) != 2 || full.GetVersion() == 0 {
		t.Fatalf("full view: %v, %v", full, err)
	}
	v := full.GetVersion()
	beat := func(id ids.ID, cpus float64) {
		t.Helper()
		if _, err := c.NodeHeartbeat(testCtx(t), &pb.NodeHeartbeatRequest{NodeId: id.Bytes(),
			Available: &pb.Resources{Amounts: map[string]float64{"CPU": cpus}}}); err != nil {
			t.Fatal(err)
		}
	}
	beat(a, 2) // as registered: no change
	d, err := c.GetNodes(testCtx(t), &pb.GetNodesRequest{SinceVersion: v})
	if err != nil || d.GetFull() || len(d.GetNodes()) != 0 || d.GetVersion() != v {
		t.Fatalf("delta after an idle heartbeat: %v, %v", d, err)
	}
	beat(b, 1)
	d, err = c.GetNodes(testCtx(t), &pb.GetNodesRequest{SinceVersion: v})
	if err != nil || len(d.GetNodes()) != 1 || !bytesEqual(d.GetNodes()[0].GetNodeId(), b.Bytes()) || d.GetVersion() <= v {
		t.Fatalf("delta after b changed: %v, %v", d, err)
	}
	v = d.GetVersion()
	if _, err := c.UnregisterNode(testCtx(t), &pb.UnregisterNodeRequest{NodeId: a.Bytes()}); err != nil {
		t.Fatal(err)
	}
	d, err = c.GetNodes(testCtx(t), &pb.GetNodesRequest{SinceVersion: v})
	if err != nil || len(d.GetNodes()) != 1 || d.GetNodes()[0].GetState() != pb.NodeState_NODE_STATE_DEAD {
		t.Fatalf("delta after a died: %v, %v", d, err)
	}
	d, err = c.GetNodes(testCtx(t), &pb.GetNodesRequest{SinceVersion: d.GetVersion() + 100})
	if err != nil || !d.GetFull() || len(d.GetNodes()) != 1 {
		t.Fatalf("a version from the future (a restarted store) gets the alive nodes in full: %v, %v", d, err)
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
