package ray

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/coreworker"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/gctune"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/jobbinary"
	"github.com/raygo/raygo/internal/logstream"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/internal/taskevents"
)

// Environment variables read by Init.
const (
	// EnvAddress names the cluster to join, like the Address option.
	EnvAddress = "RAYGO_ADDRESS"
	// EnvToken carries the cluster token, like the Token option.
	EnvToken = "RAYGO_TOKEN"
	// EnvPushTransport set to "grpc" sends tasks to workers on the same
	// machine over gRPC too, instead of a framed unix socket (for tests
	// of the gRPC path, which workers on other machines take).
	EnvPushTransport = "RAYGO_PUSH_TRANSPORT"
	// EnvPushSpin sets how long a reader of a push stream (tasks to a
	// worker on this machine, replies back) busy-polls before sleeping: a
	// Go duration up to 1s (default 200us), or "0" for never. See
	// docs/benchmarks.md.
	EnvPushSpin = "RAYGO_PUSH_SPIN"
)

// pushSpin reads EnvPushSpin: zero means the default, negative never.
func pushSpin() (time.Duration, error) {
	v := os.Getenv(EnvPushSpin)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d == 0 {
		return -1, nil
	}
	if err != nil || d < 0 || d > time.Second {
		return 0, fmt.Errorf("%w: %s=%q: want a duration from 0 to 1s, such as 100us", ErrInvalidRequest, EnvPushSpin, v)
	}
	return d, nil
}

// maxInlineThreshold bounds InlineThreshold: inline values ride in task
// and reply messages, which must stay well under rpc.MaxMessageBytes.
const maxInlineThreshold = 64 << 20

// connectTimeout bounds Init's first contact with a cluster.
const connectTimeout = 5 * time.Second

var registry = coreworker.NewRegistry()

var global struct {
	mu sync.Mutex
	// cw is read on every API call without the lock (current), written
	// under it with the fields below.
	cw      atomic.Pointer[coreworker.CoreWorker]
	head    *node.Head
	session session.Dir
	jobID   ids.ID
	// lifetime is the job's DefaultActorLifetime (0: NonDetached).
	lifetime ActorLifetime
	// gc tunes the driver's collector between Init and Shutdown (nil: off).
	gc *gctune.Tuner
	// logs prints the job's worker output on stderr (nil: LogWorkers(false)).
	logs *logstream.Stream
	// token is the cluster token a driver connected with (state.go sends
	// it to the HTTP API); workers read theirs from the environment.
	token string
}

// envActorLifetime carries the job's DefaultActorLifetime to its workers
// (through the job's worker environment).
const envActorLifetime = "RAYGO_DEFAULT_ACTOR_LIFETIME"

// jobActorLifetime is the lifetime of actors that do not choose one.
func jobActorLifetime() ActorLifetime {
	global.mu.Lock()
	defer global.mu.Unlock()
	if global.lifetime == 0 {
		return NonDetached
	}
	return global.lifetime
}

func current() (*coreworker.CoreWorker, error) {
	if cw := global.cw.Load(); cw != nil {
		return cw, nil
	}
	return nil, ErrNotInitialized
}

// IsWorker reports whether this process was started by a node daemon to
// run tasks. Programs whose main does work before Init (and test binaries,
// in TestMain) check it, or simply call Init first.
func IsWorker() bool { return os.Getenv(raylet.EnvWorker) == "1" }

// Init connects this program to a cluster as its driver.
//
// With no Address option and no RAYGO_ADDRESS, Init starts an embedded
// local cluster (control store, node daemon, worker processes) that
// Shutdown tears down. With an address, it joins that cluster.
//
// In a worker process (one started by a node daemon from this same
// binary) Init never returns: it serves tasks until the node tells it to
// exit, then exits the process.
//
// Calling Init twice without Shutdown fails with ErrAlreadyInitialized.
func Init(ctx context.Context, opts ...InitOption) error {
	if IsWorker() {
		runWorker()
	}
	o := collect(opts, InitOption.applyInit)
	var err error
	switch o.defaultLifetime {
	case 0, Detached, NonDetached:
	default:
		return fmt.Errorf("%w: DefaultActorLifetime(%d): want Detached or NonDetached", ErrInvalidRequest, int(o.defaultLifetime))
	}
	if o.inlineThreshold < 0 || o.inlineThreshold > maxInlineThreshold {
		return fmt.Errorf("%w: InlineThreshold(%d): want 0 (default) to %d bytes", ErrInvalidRequest, o.inlineThreshold, maxInlineThreshold)
	}
	logCfg, err := logstream.ConfigFromEnv(logstream.Config{})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	global.mu.Lock()
	defer global.mu.Unlock()
	if global.cw.Load() != nil {
		return ErrAlreadyInitialized
	}
	addr := o.address
	if addr == "" {
		addr = os.Getenv(EnvAddress)
	}
	token := o.token
	if token == "" {
		token = os.Getenv(EnvToken)
	}
	var (
		listenHost    string // where this driver serves (default: its node's host)
		nodeElsewhere bool   // the driver's node is on another host
		head          *node.Head
		sess          session.Dir
		nodeAddr      string
		nodeID        ids.ID
		binaryHash    string
	)
	if addr == "" {
		head, sess, token, err = startEmbedded(o)
		if err != nil {
			return err
		}
		addr = head.GCSAddress()
		nodeAddr, nodeID = head.Raylet().Address(), head.Raylet().NodeID()
	} else if addr, token, err = resolveCluster(addr, token); err != nil {
		return err
	}
	fail := func(err error) error {
		if head != nil {
			head.Stop()
			_ = sess.Remove()
		}
		return err
	}
	pool := rpc.NewPool(token) // Init's own calls to the control store
	defer pool.Close()
	conn, err := pool.Get(addr)
	if err != nil {
		return fail(err)
	}
	gcs := pb.NewControlStoreClient(conn)
	if head == nil {
		var onHost bool
		if nodeAddr, nodeID, onHost, err = findLocalNode(ctx, gcs, addr); err != nil {
			return err
		}
		if nodeElsewhere = !onHost; nodeElsewhere {
			// No node on this host: serve where this host reaches the
			// cluster from, not on the other node's address.
			if listenHost, err = outboundIP(addr); err != nil {
				return err
			}
		}
		if binaryHash, err = uploadBinary(ctx, gcs); err != nil {
			return err
		}
	}
	renv, err := jobRuntimeEnv(ctx, gcs, o.runtimeEnv) // runtimeenv.go
	if err != nil {
		return fail(err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(fmt.Errorf("ray: find own executable: %w", err))
	}
	spin, err := pushSpin()
	if err != nil {
		return fail(err)
	}
	jobID := ids.New()
	if listenHost == "" {
		listenHost, _, _ = net.SplitHostPort(nodeAddr) // serve where the local node daemon does
	}
	cw, err := coreworker.Start(coreworker.Config{
		Mode: coreworker.Driver, GCSAddress: addr, NodeAddress: nodeAddr, Token: token, JobID: jobID, NodeID: nodeID,
		InlineThreshold: o.inlineThreshold, Namespace: o.namespace, ListenHost: listenHost, FailIfInfeasible: o.failInfeasible,
		NodeElsewhere: head == nil && nodeElsewhere,
		PushTransport: os.Getenv(EnvPushTransport), PushSpin: spin,
		DisableTaskEvents: o.taskEvents != nil && !*o.taskEvents, TaskEventsSink: taskEventsSink(head),
	}, registry)
	if err != nil {
		return fail(err)
	}
	rctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var workerEnv []string
	if o.defaultLifetime != 0 {
		workerEnv = append(workerEnv, envActorLifetime+"="+strconv.Itoa(int(o.defaultLifetime)))
	}
	if o.taskEvents != nil && !*o.taskEvents {
		workerEnv = append(workerEnv, taskevents.EnvSwitch+"=0") // the job's workers record none either
	}
	reg, err := gcs.RegisterJob(rctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{
		JobId: jobID.Bytes(), BinaryPath: exe, BinaryHash: binaryHash, Namespace: o.namespace, Entrypoint: strings.Join(os.Args, " "),
		DriverAddress: cw.Address(), DriverId: cw.WorkerID().Bytes(), InlineThreshold: int64(o.inlineThreshold), Env: workerEnv,
		SubmissionId: os.Getenv(raylet.EnvSubmissionID), RuntimeEnv: renv,
	}})
	if err != nil {
		_ = cw.Close()
		return fail(fmt.Errorf("ray: register job with %s: %w", addr, err))
	}
	// The job ends as soon as this process dies; a head without storage
	// that goes away fails this process's calls (ErrHeadLost).
	cw.HoldDriverSession(jobID, reg.GetPersistent(), time.Duration(reg.GetNodeTimeoutMs())*time.Millisecond)
	global.head, global.session, global.jobID = head, sess, jobID
	global.cw.Store(cw)
	global.lifetime = o.defaultLifetime
	global.gc = startDriverGC(o)
	global.token = token
	watchEntrypointNode() // runtimeenv.go
	if o.logWorkers == nil || *o.logWorkers {
		// The job's worker output, from every node, on this process's
		// stderr (docs/logs.md); the embedded cluster's too.
		logCfg.GCSAddress, logCfg.Token, logCfg.Job = addr, token, jobID
		if global.logs, err = logstream.Start(logCfg); err != nil {
			fmt.Fprintln(os.Stderr, "raygo: worker output will not be shown here:", err)
		}
	}
	return nil
}

// startDriverGC starts the driver's GC tuner (see GCHeadroom): nil when
// GOGC is set or the headroom is 0.
func startDriverGC(o *options) *gctune.Tuner {
	headroom := uint64(gctune.DefaultHeadroom)
	if o.gcHeadroom != nil {
		headroom = *o.gcHeadroom
	}
	if headroom == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	return gctune.Start(headroom)
}

func startEmbedded(o *options) (*node.Head, session.Dir, string, error) {
	if err := raylet.Supported(); err != nil {
		return nil, "", "", fmt.Errorf("ray: Init cannot start an embedded cluster here; join a cluster running on linux or darwin with Address(...) or RAYGO_ADDRESS: %w", err)
	}
	for name := range o.res {
		if err := resources.Validate(resources.Set{name: o.res[name]}); err != nil {
			return nil, "", "", fmt.Errorf("%w: Init: %v", ErrInvalidRequest, err)
		}
	}
	det := resources.Detect()
	total := resources.Set{resources.CPU: det.CPUs, resources.Memory: float64(det.MemoryBytes)}
	gpuIDs := make([]string, 0, len(det.GPUs))
	for _, g := range det.GPUs {
		gpuIDs = append(gpuIDs, fmt.Sprint(g.Index))
	}
	total[resources.GPU] = float64(len(gpuIDs))
	for k, v := range o.res {
		total[k] = v
	}
	if n := int(total[resources.GPU]); n != len(gpuIDs) {
		gpuIDs = gpuIDs[:0]
		for i := range n {
			gpuIDs = append(gpuIDs, fmt.Sprint(i))
		}
	}
	session.CleanStale() // sessions of embedded clusters whose drivers were killed
	sess, err := session.New()
	if err != nil {
		return nil, "", "", err
	}
	if err := sess.MarkEmbedded(); err != nil {
		_ = sess.Remove()
		return nil, "", "", err
	}
	token := session.NewToken()
	rc := raylet.DefaultConfig()
	rc.Resources, rc.GPUIDs, rc.SessionDir = total, gpuIDs, string(sess)
	if o.storeBytes > 0 {
		rc.ObjectStoreBytes = o.storeBytes
	}
	rc.SpillDir = o.spillDir
	if o.servePort != nil {
		rc.ServePort = *o.servePort
	}
	if o.serveGRPCPort != nil {
		rc.ServeGRPCPort = *o.serveGRPCPort
	}
	head, err := node.StartHead(node.HeadConfig{GCS: gcs.DefaultConfig(), Raylet: rc, Token: token})
	if err != nil {
		_ = sess.Remove()
		return nil, "", "", err
	}
	return head, sess, token, nil
}

// resolveCluster turns "auto" into the address of the head started on
// this machine and finds the token (given, or from that head's session).
func resolveCluster(addr, token string) (string, string, error) {
	if addr == "auto" {
		d, err := session.Latest()
		if err != nil {
			return "", "", err
		}
		if addr, err = d.ReadFile("address"); err != nil {
			return "", "", fmt.Errorf("ray: read cluster address: %w", err)
		}
	}
	if token == "" { // the token of the head at addr, however many run here
		d, err := session.ForAddress(addr)
		if errors.Is(err, session.ErrNotPrivate) {
			return "", "", err
		}
		if err == nil {
			token, _ = d.ReadFile("token")
		}
	}
	if token == "" {
		return "", "", fmt.Errorf("%w: no cluster token for %s (set RAYGO_TOKEN or the Token option)", ErrUnauthenticated, addr)
	}
	return addr, token, nil
}

// findLocalNode contacts the cluster and picks the node daemon on this
// host (an alive node elsewhere if none is: onHost false).
func findLocalNode(ctx context.Context, gcs pb.ControlStoreClient, addr string) (nodeAddr string, id ids.ID, onHost bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	reply, err := gcs.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || rpc.IsUnavailable(err) {
			return "", ids.Nil, false, fmt.Errorf("%w: cannot reach a raygo cluster at %s: %v", ErrUnavailable, addr, err)
		}
		return "", ids.Nil, false, fmt.Errorf("ray: connect to %s: %w", addr, err)
	}
	hostID := resources.DetectHost().ID
	pick := localNode(reply.GetNodes(), hostID, hostname())
	if pick == nil {
		return "", ids.Nil, false, fmt.Errorf("%w: the cluster at %s has no alive nodes", ErrUnavailable, addr)
	}
	return pick.GetAddress(), ids.MustFromBytes(pick.GetNodeId()), pick.GetHostId() == hostID, nil
}

// outboundIP is the address this host reaches addr from (the source
// address its route to addr uses; nothing is sent).
func outboundIP(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", fmt.Errorf("ray: find this host's address toward %s: %w", addr, err)
	}
	defer c.Close()
	host, _, err := net.SplitHostPort(c.LocalAddr().String())
	return host, err
}

// localNode picks the node a driver uses as its own: an alive node on
// this host (same host id: machine and network namespace), else one with
// this hostname, else any alive node, the lowest address among equals (so
// that drivers on one host choose alike); nil when none is alive.
func localNode(nodes []*pb.NodeInfo, hostID, hostname string) *pb.NodeInfo {
	rank := func(n *pb.NodeInfo) int {
		switch {
		case n.GetHostId() == hostID && hostID != "":
			return 2
		case n.GetHostname() == hostname && hostname != "":
			return 1
		}
		return 0
	}
	var pick *pb.NodeInfo
	for _, n := range nodes {
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			continue
		}
		if pick == nil || rank(n) > rank(pick) || rank(n) == rank(pick) && n.GetAddress() < pick.GetAddress() {
			pick = n
		}
	}
	return pick
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// uploadBinary makes this executable available to every node by content
// hash, uploading it unless the control store has it already (or, on the
// same machine, reads it from its path itself). The file is
// read in chunks (a driver's binary may be hundreds of megabytes), and its
// hash is computed once per process while the file stays as it was.
func uploadBinary(ctx context.Context, c pb.ControlStoreClient) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	hash, size, err := ownHash.of(exe)
	if err != nil {
		return "", err
	}
	has, err := c.HasBinary(ctx, &pb.HasBinaryRequest{Hash: hash, Path: exe})
	if err != nil {
		return "", fmt.Errorf("ray: check job binary: %w", err)
	}
	if has.GetFound() {
		return hash, nil
	}
	f, err := os.Open(exe)
	if err != nil {
		return "", fmt.Errorf("ray: read own executable: %w", err)
	}
	defer f.Close()
	stream, err := c.PutBinary(ctx)
	if err != nil {
		return "", err
	}
	// io.EOF from Send: the control store refused the upload, and
	// CloseAndRecv says why.
	if err := jobbinary.Send(f, hash, size, stream.Send); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("ray: upload job binary %s: %w", exe, err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return "", fmt.Errorf("ray: upload job binary: %w", err)
	}
	return hash, nil
}

// ownHash remembers the content hash of this process's executable.
var ownHash fileHash

// fileHash caches a file's SHA-256, keyed by its path, size and
// modification time: a file rewritten in place is hashed again.
type fileHash struct {
	mu    sync.Mutex
	path  string
	size  int64
	mtime time.Time
	hash  string
}

// of returns path's hex SHA-256 and size.
func (h *fileHash) of(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("ray: read own executable: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("ray: read own executable: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hash != "" && h.path == path && h.size == st.Size() && h.mtime.Equal(st.ModTime()) {
		return h.hash, h.size, nil
	}
	hash, err := jobbinary.Hash(f)
	if err != nil {
		return "", 0, fmt.Errorf("ray: read own executable %s: %w", path, err)
	}
	h.path, h.size, h.mtime, h.hash = path, st.Size(), st.ModTime(), hash
	return h.hash, h.size, nil
}

// headStopWait bounds how long Shutdown waits for an embedded cluster to
// stop.
const headStopWait = 30 * time.Second

// Shutdown disconnects the driver: its job ends, actors it owns that are
// not detached die, and an embedded cluster stops, leaving no processes
// or files behind. It is safe to call more than once; calls after the
// first do nothing and return nil.
//
// The process is disconnected whatever happens, so Init may be called
// again. The error reports what did not end cleanly: the control store
// not told that the job ended (it then ends the job when it finds the
// driver gone), the core worker's goroutines or tasks still running after
// 5 s, an embedded cluster still stopping after 30 s, or session files
// that could not be removed. Several problems are joined (errors.Join).
func Shutdown() error {
	global.mu.Lock()
	cw, head, sess, job, tuner, logs := global.cw.Load(), global.head, global.session, global.jobID, global.gc, global.logs
	global.head, global.session, global.lifetime, global.gc, global.logs = nil, "", 0, nil, nil
	global.cw.Store(nil)
	global.mu.Unlock()
	if cw == nil {
		return nil
	}
	if tuner != nil {
		tuner.Stop()
	}
	var problems []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if _, err := cw.GCS().FinishJob(ctx, &pb.FinishJobRequest{JobId: job.Bytes()}); err != nil {
		problems = append(problems, fmt.Errorf("ray: Shutdown: tell the control store the job ended: %w", err))
	}
	cancel()
	if logs != nil {
		logs.Close() // after what the job's workers printed last
	}
	if err := cw.Close(); err != nil {
		problems = append(problems, fmt.Errorf("ray: Shutdown: %w", err))
	}
	if head != nil {
		if err := stopHead(head, headStopWait); err != nil {
			problems = append(problems, err)
		}
		if err := sess.Remove(); err != nil {
			problems = append(problems, fmt.Errorf("ray: Shutdown: remove the session directory: %w", err))
		}
	}
	return errors.Join(problems...)
}

// stopHead stops an embedded cluster, waiting at most wait. A head that
// is still stopping then is left to finish on its own and reported.
func stopHead(head *node.Head, wait time.Duration) error {
	done := make(chan struct{})
	go func() { // ends with head.Stop; Shutdown waits for it up to wait
		head.Stop()
		close(done)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return fmt.Errorf("ray: Shutdown: the embedded cluster was still stopping after %s (its node daemon or control store "+
			"is stuck; worker processes may remain)", wait)
	}
}

// runWorker serves tasks in a process started by a node daemon, then
// exits the process.
func runWorker() {
	profileWorker()
	env := func(k string) string { return os.Getenv(k) }
	if env("GOGC") == "" {
		// For the life of the process: keep up to 32 MiB of headroom
		// before the next collection while the live heap is small (see
		// gctune). A GOGC set by the user stands as it is.
		gctune.Start(gctune.DefaultHeadroom)
	}
	wid, _ := ids.Parse(env(raylet.EnvWorkerID))
	job, _ := ids.Parse(env(raylet.EnvJobID))
	nid, _ := ids.Parse(env(raylet.EnvNodeID))
	inline, _ := strconv.Atoi(env(raylet.EnvInline))
	spin, err := pushSpin()
	if err != nil {
		fmt.Fprintln(os.Stderr, "raygo worker:", err, "(using the default)")
	}
	if l, err := strconv.Atoi(env(envActorLifetime)); err == nil {
		global.mu.Lock()
		global.lifetime = ActorLifetime(l) // before the first task can create an actor
		global.mu.Unlock()
	}
	// The node daemon that started this worker holds the other end of
	// this pipe: when the daemon dies, however it dies, the worker goes too
	// (beside Pdeathsig on Linux; the pipe is all there is on darwin).
	parentGone, err := proc.WatchParent()
	if err != nil {
		fmt.Fprintln(os.Stderr, "raygo worker:", err, "(the worker will not notice its node daemon dying)")
	}
	cw, err := coreworker.Start(coreworker.Config{
		Mode: coreworker.Worker, GCSAddress: env(raylet.EnvGCSAddress), NodeAddress: env(raylet.EnvNodeAddress),
		Token: env(raylet.EnvToken), JobID: job, WorkerID: wid, NodeID: nid,
		ListenHost: env(raylet.EnvListenHost), AdvertiseHost: env(raylet.EnvNodeIP), Namespace: env(raylet.EnvNamespace), InlineThreshold: inline,
		PushTransport: os.Getenv(EnvPushTransport), PushSpin: spin,
		// Set before registering: a task may arrive right after, and its
		// function may call the API.
		Ready: func(cw *coreworker.CoreWorker) {
			global.mu.Lock()
			global.cw.Store(cw)
			global.mu.Unlock()
		},
	}, registry)
	if err != nil {
		fmt.Fprintln(os.Stderr, "raygo worker:", err)
		os.Exit(3)
	}
	select {
	case <-cw.Done():
	case <-parentGone: // the node daemon died
	}
	os.Exit(0)
}
