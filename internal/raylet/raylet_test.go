package raylet_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
)

const token = "tok"

// cluster is a head node started for one test, with clients for both of
// its daemons.
type cluster struct {
	head       *node.Head
	sessionDir string
	gcs        pb.ControlStoreClient
	raylet     pb.NodeDaemonClient
}

// startHead starts a head whose node has 2 CPUs and GPU "0", and which
// gives up on a job after 2 workers fail to start.
func startHead(t *testing.T) *cluster {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir()) // local sockets go under the session root
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{"CPU": 2, "GPU": 1}
	rc.GPUIDs = []string{"0"}
	rc.SessionDir = t.TempDir()
	rc.MaxStartupFailures = 2
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return &cluster{
		head:       h,
		sessionDir: rc.SessionDir,
		gcs:        pb.NewControlStoreClient(dial(t, h.GCSAddress())),
		raylet:     pb.NewNodeDaemonClient(dial(t, h.Raylet().Address())),
	}
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := rpc.Dial(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func cpus(n float64) *pb.Resources { return &pb.Resources{Amounts: map[string]float64{"CPU": n}} }

func TestRequestLeaseRejects(t *testing.T) {
	c := startHead(t)
	job := ids.New().Bytes()
	tests := []struct {
		name string
		req  *pb.LeaseRequest
		want error
	}{
		{"negative CPU", &pb.LeaseRequest{JobId: job, Resources: cpus(-1)}, errs.ErrInvalidRequest},
		{"bad resource name", &pb.LeaseRequest{JobId: job, Resources: &pb.Resources{Amounts: map[string]float64{"9x": 1}}}, errs.ErrInvalidRequest},
		{"short job id", &pb.LeaseRequest{JobId: []byte{1, 2, 3}, Resources: cpus(1)}, errs.ErrInvalidRequest},
		{"no job id", &pb.LeaseRequest{Resources: cpus(1)}, errs.ErrInvalidRequest},
		{"1.5 CPUs", &pb.LeaseRequest{JobId: job, Resources: cpus(1.5)}, errs.ErrInvalidRequest},
		{"100 CPUs", &pb.LeaseRequest{JobId: job, Resources: cpus(100), SchedulingKey: "f", FailIfInfeasible: true}, errs.ErrInfeasible},
		{"2 GPUs", &pb.LeaseRequest{JobId: job, Resources: &pb.Resources{Amounts: map[string]float64{"GPU": 2}}, FailIfInfeasible: true}, errs.ErrInfeasible},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.raylet.RequestLease(testCtx(t), tt.req)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	_, err := c.raylet.RequestLease(testCtx(t), &pb.LeaseRequest{JobId: job, Resources: cpus(100), SchedulingKey: "f", FailIfInfeasible: true})
	var ie *errs.InfeasibleError
	if !errors.As(err, &ie) || ie.Function != "f" || !strings.Contains(ie.Request, "100") || !strings.Contains(ie.Cluster, "CPU") {
		t.Fatalf("err = %#v, want *InfeasibleError naming f, the request and the cluster", err)
	}
}

func TestNodeStatsAndControlStoreView(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	st, err := c.raylet.NodeStats(ctx, &pb.NodeStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := st.GetNode()
	if ids.MustFromBytes(n.GetNodeId()) != c.head.Raylet().NodeID() || n.GetAddress() != c.head.Raylet().Address() {
		t.Fatalf("NodeStats names node %x at %s", n.GetNodeId(), n.GetAddress())
	}
	checkTotals(t, "NodeStats total", n.GetTotal())
	checkTotals(t, "NodeStats available", n.GetAvailable())

	nodes, err := c.gcs.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.GetNodes()) != 1 {
		t.Fatalf("control store lists %d nodes, want 1", len(nodes.GetNodes()))
	}
	g := nodes.GetNodes()[0]
	if ids.MustFromBytes(g.GetNodeId()) != c.head.Raylet().NodeID() || g.GetState() != pb.NodeState_NODE_STATE_ALIVE || g.GetAddress() != c.head.Raylet().Address() {
		t.Fatalf("control store's view: %v", g)
	}
	checkTotals(t, "GetNodes total", g.GetTotal())
}

func checkTotals(t *testing.T, what string, r *pb.Resources) {
	t.Helper()
	if a := r.GetAmounts(); a["CPU"] != 2 || a["GPU"] != 1 {
		t.Fatalf("%s = %v, want CPU 2 GPU 1", what, a)
	}
}

func TestObjects(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	id := ids.New()

	if _, err := c.raylet.PutObject(ctx, &pb.PutObjectRequest{ObjectId: []byte{1}, Data: []byte("x")}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("PutObject with a bad id: err = %v", err)
	}
	if _, err := c.raylet.PutObject(ctx, &pb.PutObjectRequest{ObjectId: id.Bytes(), Data: []byte("hello"), OwnerAddress: "o"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.raylet.GetObject(ctx, &pb.GetObjectRequest{ObjectId: id.Bytes()})
	if err != nil || !got.GetFound() || string(got.GetData()) != "hello" {
		t.Fatalf("GetObject = %v, %v", got, err)
	}
	st, _ := c.raylet.NodeStats(ctx, &pb.NodeStatsRequest{})
	if st.GetStoreObjects() != 1 || st.GetStore().GetPrimaryBytes() != 5 || st.GetStoreBytes() < 5 {
		t.Fatalf("store stats = %d objects %d bytes (%v), want 1 object of 5 bytes", st.GetStoreObjects(), st.GetStoreBytes(), st.GetStore())
	}
	if st.GetMemory().GetTotal() <= 0 {
		t.Fatalf("node stats carry no memory reading: %v", st.GetMemory())
	}

	if _, err := c.raylet.FreeObjects(ctx, &pb.FreeObjectsRequest{ObjectIds: [][]byte{id.Bytes(), ids.New().Bytes()}}); err != nil {
		t.Fatal(err)
	}
	got, err = c.raylet.GetObject(ctx, &pb.GetObjectRequest{ObjectId: id.Bytes()})
	if err != nil || got.GetFound() {
		t.Fatalf("GetObject after FreeObjects = %v, %v; want not found", got, err)
	}
}

func TestKillUnknownWorkerIsHarmless(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	if _, err := c.raylet.KillWorker(ctx, &pb.KillWorkerRequest{WorkerId: ids.New().Bytes(), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.raylet.KillWorker(ctx, &pb.KillWorkerRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.raylet.NodeStats(ctx, &pb.NodeStatsRequest{}); err != nil {
		t.Fatalf("node unhealthy after KillWorker: %v", err)
	}
}

// failingWorker is a job "binary" that exits before registering.
const failingWorker = "#!/bin/sh\necho started >&2\nexit 5\n"

func uploadBinary(t *testing.T, c pb.ControlStoreClient, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	stream, err := c.PutBinary(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 16 {
		end := min(off+16, len(data))
		if err := stream.Send(&pb.BinaryChunk{Hash: hash, Offset: int64(off), Data: data[off:end], Total: int64(len(data))}); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatalf("PutBinary: %v", rpc.FromStatus(err))
	}
	return hash
}

func workerLogs(t *testing.T, sessionDir string) []string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(sessionDir, "logs", "worker-*.err"))
	if err != nil {
		t.Fatal(err)
	}
	return logs
}

// TestJobBinaryFetchedByHash registers a job whose binary_path does not
// exist on the node, so the node must fetch the binary from the control
// store by its hash. The binary is a worker that always exits 5 before
// registering: the lease fails after MaxStartupFailures (2) tries, and
// later leases for the job fail at once.
func TestJobBinaryFetchedByHash(t *testing.T) {
	c := startHead(t)
	hash := uploadBinary(t, c.gcs, []byte(failingWorker))
	reg, err := c.gcs.RegisterJob(testCtx(t), &pb.RegisterJobRequest{Job: &pb.JobInfo{
		BinaryPath: filepath.Join(t.TempDir(), "not-on-this-node"), BinaryHash: hash,
	}})
	if err != nil {
		t.Fatal(err)
	}
	lease := &pb.LeaseRequest{JobId: reg.GetJobId(), Resources: cpus(1), SchedulingKey: "f"}

	_, err = c.raylet.RequestLease(testCtx(t), lease)
	cached := filepath.Join(c.sessionDir, "binaries", hash)
	var ws *errs.WorkerStartupError
	if !errors.Is(err, errs.ErrWorkerStartup) || !errors.As(err, &ws) {
		t.Fatalf("RequestLease err = %v, want *WorkerStartupError", err)
	}
	if ws.ExitCode != 5 || ws.Attempts != 2 || !strings.Contains(ws.Stderr, "started") || ws.Binary != cached {
		t.Fatalf("WorkerStartupError = %+v, want exit 5 after 2 attempts from %s with stderr \"started\"", ws, cached)
	}

	fi, err := os.Stat(cached)
	if err != nil {
		t.Fatalf("binary not cached by hash: %v", err)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("cached binary mode %v is not executable", fi.Mode())
	}
	if b, _ := os.ReadFile(cached); string(b) != failingWorker {
		t.Fatalf("cached binary = %q", b)
	}
	if logs := workerLogs(t, c.sessionDir); len(logs) != 2 {
		t.Fatalf("%d workers started (%v), want 2", len(logs), logs)
	}

	// The node stops retrying: the next lease fails without a new worker.
	_, err = c.raylet.RequestLease(testCtx(t), lease)
	if !errors.As(err, &ws) || ws.Attempts != 2 || ws.ExitCode != 5 {
		t.Fatalf("second RequestLease err = %v, want the same *WorkerStartupError", err)
	}
	if logs := workerLogs(t, c.sessionDir); len(logs) != 2 {
		t.Fatalf("%d workers started after the node gave up, want 2", len(logs))
	}

	// The failed leases gave their CPU back.
	st, err := c.raylet.NodeStats(testCtx(t), &pb.NodeStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	checkTotals(t, "available after failed leases", st.GetNode().GetAvailable())
}
