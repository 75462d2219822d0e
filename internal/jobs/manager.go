package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/stopper"
)

// Namespace is the control store KV namespace of the submissions: each
// is kept under its id, so they survive a head restart with --storage.
const Namespace = "raygo/jobs"

// Limits and periods (docs/jobs.md).
const (
	// DefaultMaxTerminal is how many ended submissions are kept (the
	// newest); older ones are dropped as new ones end.
	DefaultMaxTerminal = 10_000
	// MaxActive bounds the submissions pending or running at once.
	MaxActive = 10_000
	// DefaultRetryPeriod is how often pending submissions are placed
	// again, and running ones checked against their nodes.
	DefaultRetryPeriod = 500 * time.Millisecond
	// MaxEntrypointBytes bounds an entrypoint command.
	MaxEntrypointBytes = 64 << 10
	// MaxMetadata bounds a submission's metadata entries, and
	// MaxMetadataBytes their keys and values together.
	MaxMetadata      = 100
	MaxMetadataBytes = 16 << 10
	// startTimeout bounds one StartEntrypoint call (it may unpack a
	// working dir), stopTimeout one StopEntrypoint call.
	startTimeout = 2 * time.Minute
	stopTimeout  = 10 * time.Second
)

// Config configures a Manager.
type Config struct {
	// MaxTerminal: ended submissions kept (0: DefaultMaxTerminal).
	MaxTerminal int
	// RetryPeriod: see DefaultRetryPeriod (0: that).
	RetryPeriod time.Duration
}

// Errors a Manager returns (the HTTP layer maps them).
var (
	ErrNotFound  = errors.New("jobs: no such submission")
	ErrExists    = errors.New("jobs: submission id in use")
	ErrNotEnded  = errors.New("jobs: submission has not ended")
	ErrInvalid   = errors.New("jobs: invalid submission")
	ErrTooMany   = errors.New("jobs: too many active submissions")
	ErrNoCluster = errors.New("jobs: the job manager is stopped")
)

// Manager runs the head's job submissions: it keeps them in the control
// store's KV, places pending ones on a node with the entrypoint's
// resources (NodeDaemon.StartEntrypoint), follows them to their end
// (EntrypointExited, or their node's death) and stops them. Safe for
// concurrent use; Close stops its goroutine.
type Manager struct {
	cfg     Config
	gcs     *gcs.Server
	kv      *gcs.KVNamespace
	pool    *rpc.Pool
	address string // the cluster's address, for the drivers of entrypoints
	stop    *stopper.Stopper
	kick    chan struct{} // buffered(1): place now
	log     *slog.Logger

	mu   sync.Mutex
	subs map[string]*sub // guarded by mu
	tie  uint64          // guarded by mu
}

// sub is a submission and what only this head knows of it.
type sub struct {
	pb       *pb.JobSubmission
	starting bool   // a StartEntrypoint call for it is in flight
	stopBy   string // a stop was asked, by this principal
}

// NewManager starts a manager on the head's control store, loading the
// submissions kept there, and sets it as the control store's job
// submissions (EntrypointExited goes to it).
func NewManager(ctx context.Context, cfg Config, g *gcs.Server, pool *rpc.Pool, address string) (*Manager, error) {
	if cfg.MaxTerminal <= 0 {
		cfg.MaxTerminal = DefaultMaxTerminal
	}
	if cfg.RetryPeriod <= 0 {
		cfg.RetryPeriod = DefaultRetryPeriod
	}
	m := &Manager{cfg: cfg, gcs: g, kv: g.KV(Namespace), pool: pool, address: address, stop: stopper.New(),
		kick: make(chan struct{}, 1), subs: map[string]*sub{}, log: slog.Default().With("component", "jobs")}
	for _, key := range m.kv.Keys() {
		v, ok, err := m.kv.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("jobs: load submission %s: %w", key, err)
		}
		var s pb.JobSubmission
		if !ok || proto.Unmarshal(v, &s) != nil || s.GetSubmissionId() != key {
			m.log.Warn("dropping an unreadable job submission record", "key", key)
			continue
		}
		m.subs[key] = &sub{pb: &s}
	}
	g.SetJobSubmissions(m)
	if err := m.stop.Go("jobs.loop", m.loop); err != nil {
		return nil, err
	}
	return m, nil
}

// Close stops the manager's goroutine. Entrypoints keep running; their
// exits reach the next manager (a head restarted with storage).
func (m *Manager) Close() {
	m.gcs.SetJobSubmissions(nil)
	m.stop.Stop()
}

// Request is a submission as the job API receives it.
type Request struct {
	Entrypoint          string
	SubmissionID        string // "": one is made
	RuntimeEnv          runtimeenv.Env
	Metadata            map[string]string
	EntrypointNumCPUs   float64
	EntrypointNumGPUs   float64
	EntrypointMemory    float64
	EntrypointResources map[string]float64
	SubmittedBy         string
}

// validate checks a request and returns what its entrypoint holds.
func (r *Request) validate() (resources.Set, error) {
	switch {
	case strings.TrimSpace(r.Entrypoint) == "":
		return nil, fmt.Errorf("%w: entrypoint is empty", ErrInvalid)
	case len(r.Entrypoint) > MaxEntrypointBytes:
		return nil, fmt.Errorf("%w: entrypoint of %d bytes, more than %d", ErrInvalid, len(r.Entrypoint), MaxEntrypointBytes)
	case len(r.Metadata) > MaxMetadata:
		return nil, fmt.Errorf("%w: %d metadata entries, more than %d", ErrInvalid, len(r.Metadata), MaxMetadata)
	}
	n := 0
	for k, v := range r.Metadata {
		n += len(k) + len(v)
	}
	if n > MaxMetadataBytes {
		return nil, fmt.Errorf("%w: metadata of %d bytes, more than %d", ErrInvalid, n, MaxMetadataBytes)
	}
	if err := raylet.ValidSubmissionID(r.SubmissionID); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := r.RuntimeEnv.Validate(); err != nil {
		return nil, fmt.Errorf("%w: runtime_env: %v", ErrInvalid, err)
	}
	for name, v := range map[string]float64{"entrypoint_num_cpus": r.EntrypointNumCPUs, "entrypoint_num_gpus": r.EntrypointNumGPUs,
		"entrypoint_memory": r.EntrypointMemory} {
		if v < 0 {
			return nil, fmt.Errorf("%w: %s is %g: want 0 or more", ErrInvalid, name, v)
		}
	}
	want := raylet.EntrypointResources(r.proto())
	if r.EntrypointMemory > 0 {
		want[resources.Memory] = r.EntrypointMemory
	}
	if err := resources.Validate(want); err != nil {
		return nil, fmt.Errorf("%w: entrypoint resources: %v", ErrInvalid, err)
	}
	return want, nil
}

func (r *Request) proto() *pb.JobSubmission {
	res := maps.Clone(r.EntrypointResources)
	if r.EntrypointMemory > 0 {
		if res == nil {
			res = map[string]float64{}
		}
		res[resources.Memory] = r.EntrypointMemory
	}
	return &pb.JobSubmission{SubmissionId: r.SubmissionID, Entrypoint: r.Entrypoint, Metadata: maps.Clone(r.Metadata),
		RuntimeEnv: r.RuntimeEnv.Proto(), EntrypointNumCpus: r.EntrypointNumCPUs, EntrypointNumGpus: r.EntrypointNumGPUs,
		EntrypointResources: res, SubmittedBy: r.SubmittedBy}
}

// Submit records a new submission, PENDING, and has it placed. Its
// working dir's package must be in the control store already.
func (m *Manager) Submit(ctx context.Context, r Request) (string, error) {
	if m.stop.Stopping() {
		return "", ErrNoCluster
	}
	if r.SubmissionID == "" {
		r.SubmissionID = NewSubmissionID()
	}
	if _, err := r.validate(); err != nil {
		return "", err
	}
	if wd := r.RuntimeEnv.WorkingDir; wd != "" {
		digest, _ := runtimeenv.ParseName(wd) // validated
		if !m.gcs.HasPackage(digest) {
			return "", fmt.Errorf("%w: runtime_env working_dir %s: no such package on the head (upload it with PUT /api/packages/%s first)", ErrInvalid, wd, wd)
		}
	}
	s := r.proto()
	s.Status = pb.JobStatus_JOB_STATUS_PENDING
	s.Message = "Job has not started yet."
	s.StartUnixMs = time.Now().UnixMilli()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[r.SubmissionID]; ok {
		return "", fmt.Errorf("%w: a submission with id %s exists (delete it first, or choose another id)", ErrExists, r.SubmissionID)
	}
	active := 0
	for _, x := range m.subs {
		if !Terminal(x.pb.GetStatus()) {
			active++
		}
	}
	if active >= MaxActive {
		return "", fmt.Errorf("%w: %d submissions are pending or running (the limit)", ErrTooMany, active)
	}
	x := &sub{pb: s}
	if err := m.saveLocked(ctx, x); err != nil {
		return "", err
	}
	m.subs[r.SubmissionID] = x
	m.kickLocked()
	return r.SubmissionID, nil
}

// Submission returns a copy of one submission.
func (m *Manager) Submission(id string) (*pb.JobSubmission, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.subs[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(x.pb).(*pb.JobSubmission), true
}

// Submissions lists copies of every submission, newest first.
func (m *Manager) Submissions() []*pb.JobSubmission {
	m.mu.Lock()
	out := make([]*pb.JobSubmission, 0, len(m.subs))
	for _, x := range m.subs {
		out = append(out, proto.Clone(x.pb).(*pb.JobSubmission))
	}
	m.mu.Unlock()
	slices.SortFunc(out, newestFirst)
	return out
}

// Stop stops a submission: a pending one at once, a running one through
// its node (SIGTERM, then SIGKILL after the node's grace). stopped is
// false for one that had ended.
func (m *Manager) Stop(ctx context.Context, id, who string) (bool, error) {
	m.mu.Lock()
	x, ok := m.subs[id]
	if !ok {
		m.mu.Unlock()
		return false, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	st := x.pb.GetStatus()
	switch {
	case Terminal(st):
		m.mu.Unlock()
		return false, nil
	case st == pb.JobStatus_JOB_STATUS_PENDING && !x.starting:
		x.pb.Status, x.pb.Message, x.pb.EndUnixMs = pb.JobStatus_JOB_STATUS_STOPPED, "stopped by "+who+" before it started", time.Now().UnixMilli()
		err := m.saveLocked(ctx, x)
		m.pruneLocked(ctx)
		m.mu.Unlock()
		return true, err
	}
	x.stopBy = who
	node := x.pb.GetNodeId()
	starting := x.starting
	m.mu.Unlock()
	if starting {
		return true, nil // the placement stops it once it started
	}
	return true, m.stopOn(ctx, node, id)
}

// stopOn asks node to stop entrypoint id.
func (m *Manager) stopOn(ctx context.Context, node []byte, id string) error {
	addr, alive := m.nodeAddress(ctx, node)
	if !alive {
		return nil // the node is gone: the loop fails the submission
	}
	conn, err := m.pool.Get(addr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	_, err = pb.NewNodeDaemonClient(conn).StopEntrypoint(ctx, &pb.StopEntrypointRequest{SubmissionId: id})
	if err != nil {
		return fmt.Errorf("jobs: stop %s on node %s: %w", id, shortHex(node), err)
	}
	return nil
}

// Delete removes an ended submission's record (its log file stays on its
// node).
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.subs[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if !Terminal(x.pb.GetStatus()) {
		return fmt.Errorf("%w: %s is %s; stop it first", ErrNotEnded, id, StatusName(x.pb.GetStatus()))
	}
	if err := m.kv.Delete(ctx, id); err != nil {
		return err
	}
	delete(m.subs, id)
	return nil
}

// EntrypointExited records an entrypoint's end (gcs.JobSubmissions).
func (m *Manager) EntrypointExited(ctx context.Context, req *pb.EntrypointExitedRequest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.subs[req.GetSubmissionId()]
	if !ok {
		return errs.NotFoundf("jobs: no submission %s", req.GetSubmissionId())
	}
	if !exited(x.pb, req, x.stopBy, time.Now()) {
		return nil
	}
	err := m.saveLocked(ctx, x)
	m.pruneLocked(ctx)
	return err
}

// saveLocked writes x to the KV.
func (m *Manager) saveLocked(ctx context.Context, x *sub) error {
	v, err := proto.Marshal(x.pb)
	if err != nil {
		return err
	}
	return m.kv.Put(ctx, x.pb.GetSubmissionId(), v)
}

// pruneLocked drops the oldest ended submissions past MaxTerminal.
func (m *Manager) pruneLocked(ctx context.Context) {
	all := make([]*pb.JobSubmission, 0, len(m.subs))
	for _, x := range m.subs {
		all = append(all, x.pb)
	}
	for _, id := range prune(all, m.cfg.MaxTerminal) {
		if err := m.kv.Delete(ctx, id); err != nil {
			m.log.Warn("could not delete an old job submission", "submission", id, "err", err)
			continue
		}
		delete(m.subs, id)
	}
}

func (m *Manager) kickLocked() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// loop places pending submissions and checks running ones, every
// RetryPeriod and when kicked.
func (m *Manager) loop(ctx context.Context) {
	t := time.NewTicker(m.cfg.RetryPeriod)
	defer t.Stop()
	for {
		m.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
	}
}

// pass is one round of the loop.
func (m *Manager) pass(ctx context.Context) {
	m.mu.Lock()
	var pending []string
	running := map[string][]byte{}
	for id, x := range m.subs {
		switch x.pb.GetStatus() {
		case pb.JobStatus_JOB_STATUS_PENDING:
			if !x.starting {
				pending = append(pending, id)
			}
		case pb.JobStatus_JOB_STATUS_RUNNING:
			running[id] = x.pb.GetNodeId()
		}
	}
	m.mu.Unlock()
	if len(pending) == 0 && len(running) == 0 {
		return
	}
	reply, err := m.gcs.GetNodes(ctx, &pb.GetNodesRequest{IncludeDead: true})
	if err != nil {
		return
	}
	var nodes []scheduler.Node
	dead := map[string]string{}
	for _, n := range reply.GetNodes() {
		id := ids.MustFromBytes(n.GetNodeId()).String()
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			dead[id] = ""
			continue
		}
		nodes = append(nodes, scheduler.Node{ID: id, Address: n.GetAddress(), Alive: true, Total: resources.Set(n.GetTotal().GetAmounts()),
			Available: resources.Set(n.GetAvailable().GetAmounts()), Labels: n.GetLabels()})
	}
	slices.SortFunc(nodes, func(a, b scheduler.Node) int { return strings.Compare(a.ID, b.ID) })
	for id, node := range running {
		nid, _ := ids.FromBytes(node)
		if why, gone := dead[nid.String()]; gone || !slices.ContainsFunc(nodes, func(n scheduler.Node) bool { return n.ID == nid.String() }) {
			m.nodeDied(ctx, id, node, why)
		}
	}
	slices.SortFunc(pending, func(a, b string) int { // oldest first
		return m.submittedAt(a).Compare(m.submittedAt(b))
	})
	for _, id := range pending {
		if ctx.Err() != nil {
			return
		}
		m.place(ctx, id, nodes)
	}
}

func (m *Manager) submittedAt(id string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x, ok := m.subs[id]; ok {
		return time.UnixMilli(x.pb.GetStartUnixMs())
	}
	return time.Time{}
}

// nodeDied fails a running submission whose node is gone.
func (m *Manager) nodeDied(ctx context.Context, id string, node []byte, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	x, ok := m.subs[id]
	if !ok || x.pb.GetStatus() != pb.JobStatus_JOB_STATUS_RUNNING {
		return
	}
	msg := fmt.Sprintf("its node %s died", shortHex(node))
	if why != "" {
		msg += " (" + why + ")"
	}
	x.pb.Status, x.pb.Message, x.pb.EndUnixMs, x.pb.ExitCode = pb.JobStatus_JOB_STATUS_FAILED, "Job failed: "+msg, time.Now().UnixMilli(), -1
	if err := m.saveLocked(ctx, x); err != nil {
		m.log.Warn("could not save a job submission", "submission", id, "err", err)
	}
	m.pruneLocked(ctx)
}

// place tries to start a pending submission on the nodes placement
// picks, in order; it stays pending (with a message saying why) when none
// has room, and fails when none ever can.
func (m *Manager) place(ctx context.Context, id string, nodes []scheduler.Node) {
	m.mu.Lock()
	x, ok := m.subs[id]
	if !ok || x.pb.GetStatus() != pb.JobStatus_JOB_STATUS_PENDING || x.starting {
		m.mu.Unlock()
		return
	}
	want := raylet.EntrypointResources(x.pb)
	m.tie++
	kind, order, msg := placement(want, nodes, m.tie)
	switch kind {
	case placeNever:
		x.pb.Status, x.pb.Message, x.pb.EndUnixMs = pb.JobStatus_JOB_STATUS_FAILED, "Job failed: "+msg, time.Now().UnixMilli()
		m.saveLocked(ctx, x) //nolint:errcheck // kept in memory; the next change writes it again
		m.pruneLocked(ctx)
		m.mu.Unlock()
		return
	case placeWait:
		if x.pb.GetMessage() != msg {
			x.pb.Message = msg
			m.saveLocked(ctx, x) //nolint:errcheck
		}
		m.mu.Unlock()
		return
	}
	x.starting = true
	job := proto.Clone(x.pb).(*pb.JobSubmission)
	m.mu.Unlock()

	var (
		started *pb.StartEntrypointReply
		on      scheduler.Node
		lastErr error
	)
	for _, n := range order {
		reply, err := m.startOn(ctx, n.Address, job)
		if err != nil {
			lastErr = err
			continue
		}
		if reply.GetError() != nil {
			lastErr = errs.FromInfo(reply.GetError())
			break // the node could not set it up (its working dir, its log): no other would do better
		}
		if reply.GetStarted() {
			started, on = reply, n
			break
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	x.starting = false
	if Terminal(x.pb.GetStatus()) { // it exited before this reply was seen
		return
	}
	switch {
	case started != nil:
		nid, _ := ids.Parse(on.ID)
		x.pb.Status, x.pb.NodeId, x.pb.Pid = pb.JobStatus_JOB_STATUS_RUNNING, nid.Bytes(), started.GetPid()
		x.pb.Message = "Job is currently running."
		if err := m.saveLocked(ctx, x); err != nil {
			m.log.Warn("could not save a job submission", "submission", id, "err", err)
		}
		if x.stopBy != "" { // stopped while it was being started
			node := x.pb.GetNodeId()
			_ = m.stop.Go("jobs.stop", func(ctx context.Context) { _ = m.stopOn(ctx, node, id) })
		}
	case x.stopBy != "":
		x.pb.Status, x.pb.Message, x.pb.EndUnixMs = pb.JobStatus_JOB_STATUS_STOPPED, "stopped by "+x.stopBy+" before it started", time.Now().UnixMilli()
		m.saveLocked(ctx, x) //nolint:errcheck
		m.pruneLocked(ctx)
	case lastErr != nil && !rpc.IsUnavailable(lastErr) && !errors.Is(lastErr, context.DeadlineExceeded):
		x.pb.Status, x.pb.Message, x.pb.EndUnixMs = pb.JobStatus_JOB_STATUS_FAILED, "Job failed to start: "+lastErr.Error(), time.Now().UnixMilli()
		m.saveLocked(ctx, x) //nolint:errcheck
		m.pruneLocked(ctx)
	default:
		x.pb.Message = fmt.Sprintf("no node has the entrypoint's resources %s free now: waiting", want)
	}
}

func (m *Manager) startOn(ctx context.Context, addr string, job *pb.JobSubmission) (*pb.StartEntrypointReply, error) {
	conn, err := m.pool.Get(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return pb.NewNodeDaemonClient(conn).StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: job, ClusterAddress: m.address})
}

// nodeAddress is a node's address and whether it is alive.
func (m *Manager) nodeAddress(ctx context.Context, node []byte) (string, bool) {
	reply, err := m.gcs.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return "", false
	}
	for _, n := range reply.GetNodes() {
		if string(n.GetNodeId()) == string(node) && n.GetState() == pb.NodeState_NODE_STATE_ALIVE {
			return n.GetAddress(), true
		}
	}
	return "", false
}
