// Package gcs is the control store: the head node's registry of nodes,
// jobs, actors and job binaries, plus a small key-value store. It places
// and restarts actors, watches node heartbeats, and publishes actor state
// changes to callers through long polls (WaitActor).
//
// A node is declared dead Config.NodeTimeout after its last heartbeat (5 s
// by default) or when it unregisters; a dead node id never becomes alive
// again: its heartbeats and registrations are answered with a
// *errs.NodeDiedError, and a node daemon that receives one stops its
// workers and exits (a new node daemon joins under a new id).
//
// State lives in memory; with a persistent Config.Storage (a bbolt file
// or Redis) it is also written there, and a control store opened on the
// same storage (Open) takes the cluster over where the last one stopped
// (persist.go, recover.go). Without one, a head restart loses the
// cluster.
package gcs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs/storage"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/jobbinary"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/taskevents"
	"github.com/raygo/raygo/internal/wirecheck"
)

// Config tunes the control store.
type Config struct {
	// NodeTimeout marks a node dead when no heartbeat arrives for this long.
	NodeTimeout time.Duration
	// HealthCheckPeriod is how often heartbeats are checked.
	HealthCheckPeriod time.Duration
	// MaxBinaryBytes bounds one uploaded job binary.
	MaxBinaryBytes int64
	// MaxBinaryStoreBytes bounds all stored binaries; past it, the oldest
	// binaries no running job uses are dropped.
	MaxBinaryStoreBytes int64
	// MaxDeadActors bounds how many dead actors are remembered (for
	// listing and for callers asking why an actor died); older ones are
	// forgotten first.
	MaxDeadActors int
	// MaxKVValueBytes bounds one key-value entry.
	MaxKVValueBytes int
	// BinaryDir, when set, is where the control store keeps copies of job
	// binaries found on its own machine: a driver that asks HasBinary with
	// its path, on the head's machine, has its binary copied here (by the
	// kernel, no upload) and read from here for other nodes. Empty: every
	// binary is uploaded. Copies count toward MaxBinaryStoreBytes.
	BinaryDir string
	// DriverCheckPeriod is how often the drivers of running jobs are
	// checked (see driverLoop); a driver whose DriverAlive stream drops
	// is checked at once.
	DriverCheckPeriod time.Duration
	// Storage, when persistent, is where the state that must outlive a
	// restart is written, and read back by Open (persist.go). Nil: none.
	// The control store does not close it.
	Storage storage.Store
	// MaxTaskEvents bounds the task attempts the control store keeps
	// events of (taskevents.Store); default taskevents.DefaultMaxTasks
	// (100,000), as Ray's task_events_max_num_task_in_gcs.
	MaxTaskEvents int
}

// DefaultNodeTimeout is how long a node may be silent before it is dead.
const DefaultNodeTimeout = 5 * time.Second

// DefaultConfig returns the defaults: nodes are dead after 5 s without a
// heartbeat (ten of a node daemon's 500 ms heartbeats), checked every
// 250 ms; drivers checked every second; binaries
// up to 1 GiB each and 4 GiB in all; KV values up to 64 MiB; 10,000 dead
// actors remembered.
func DefaultConfig() Config {
	return Config{NodeTimeout: DefaultNodeTimeout, HealthCheckPeriod: 250 * time.Millisecond, MaxBinaryBytes: 1 << 30,
		MaxBinaryStoreBytes: 4 << 30, MaxKVValueBytes: 64 << 20, MaxDeadActors: 10000, DriverCheckPeriod: time.Second}
}

// Server implements pb.ControlStoreServer. Create it with New, serve it on
// a grpc.Server, and Close it to stop its background loops.
type Server struct {
	pb.UnimplementedControlStoreServer
	cfg  Config
	pool *rpc.Pool

	// taskEvents keeps task events (taskevents.go); safe for concurrent use.
	taskEvents *taskevents.Store

	mu        sync.Mutex
	nodes     map[ids.ID]*nodeEntry      // guarded by mu
	jobs      map[ids.ID]*pb.JobInfo     // guarded by mu
	kv        map[string][]byte          // guarded by mu; key is ns + "\x00" + key
	binaries  map[string]*binary         // guarded by mu; by sha256 hex
	binOrder  []string                   // guarded by mu; binary hashes, oldest first
	binBytes  int64                      // guarded by mu; total size of binaries
	deadOrder []ids.ID                   // guarded by mu; dead actors, oldest first
	actors    map[ids.ID]*actorEntry     // guarded by mu
	names     map[string]ids.ID          // guarded by mu; namespace + "\x00" + name
	workerAct map[ids.ID]map[ids.ID]bool // guarded by mu; worker id -> actors it hosts
	rr        uint64                     // guarded by mu; round-robin for placement
	cleanup   cleanupQueue               // job-end and owner-death notices for node daemons (cleanup.go)
	groups    groupTable                 // placement groups (placement.go)
	// viewVersion counts changes to the nodes' records: GetNodes with a
	// since_version sends only what changed after it (versioned deltas).
	viewVersion uint64 // guarded by mu
	// nodesChanged is closed and replaced when a node registers: actors
	// waiting for a node that can hold them look again.
	nodesChanged chan struct{} // guarded by mu
	log          *slog.Logger

	// With persistent storage (persist.go, recover.go): the writer and
	// this incarnation's number.
	persist *persister
	epoch   uint64

	info clusterInfo // GetClusterInfo (ops.go)
	subs submissions // the head's job submissions (jobsubmit.go)
	logs logHub      // worker output fan-out (logs.go)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type nodeEntry struct {
	info     *pb.NodeInfo
	version  uint64 // the view version of its last change (touchLocked)
	lastBeat time.Time
	// died says why the node was declared dead (empty while it is alive);
	// its heartbeats and registrations are answered with it.
	died string
	// reconcile: recovered from storage and not heard from since; its
	// first heartbeat or registration sends it ReleaseUnused.
	reconcile bool
}

type actorEntry struct {
	info    *pb.ActorInfo
	changed chan struct{} // closed and replaced on every change
	killing bool          // a kill without restart is in progress
	place   placement     // where it runs, while it has a worker
	// failIfInfeasible: die at once when no node can hold the actor.
	failIfInfeasible bool
	// stopPlacing withdraws the lease request scheduleActor has in flight
	// (nil when none).
	stopPlacing context.CancelFunc
}

// placement is where an actor runs: its worker, the lease that holds the
// worker's resources, and whether the process hosts other actors too.
type placement struct {
	actor, node, worker, lease ids.ID
	addr                       string // the worker's address
	shared                     bool
}

// New returns a control store using pool to reach node daemons and
// workers, keeping no storage (cfg.Storage must be nil or in memory: use
// Open for one that persists). Zero fields of cfg take their defaults.
func New(cfg Config, pool *rpc.Pool) *Server {
	if cfg.Storage != nil && cfg.Storage.Persistent() {
		panic("gcs: New with persistent storage; use Open")
	}
	s, _ := Open(cfg, pool)
	return s
}

// newServer builds a control store without starting its loops.
func newServer(cfg Config, pool *rpc.Pool) *Server {
	def := DefaultConfig()
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = def.NodeTimeout
	}
	if cfg.HealthCheckPeriod <= 0 {
		cfg.HealthCheckPeriod = def.HealthCheckPeriod
	}
	if cfg.MaxBinaryBytes <= 0 {
		cfg.MaxBinaryBytes = def.MaxBinaryBytes
	}
	if cfg.MaxBinaryStoreBytes <= 0 {
		cfg.MaxBinaryStoreBytes = def.MaxBinaryStoreBytes
	}
	if cfg.MaxDeadActors <= 0 {
		cfg.MaxDeadActors = def.MaxDeadActors
	}
	if cfg.MaxKVValueBytes <= 0 {
		cfg.MaxKVValueBytes = def.MaxKVValueBytes
	}
	if cfg.DriverCheckPeriod <= 0 {
		cfg.DriverCheckPeriod = def.DriverCheckPeriod
	}
	if cfg.MaxTaskEvents <= 0 {
		cfg.MaxTaskEvents = taskevents.DefaultMaxTasks
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, pool: pool, nodes: map[ids.ID]*nodeEntry{}, jobs: map[ids.ID]*pb.JobInfo{},
		kv: map[string][]byte{}, binaries: map[string]*binary{}, actors: map[ids.ID]*actorEntry{},
		names: map[string]ids.ID{}, workerAct: map[ids.ID]map[ids.ID]bool{}, nodesChanged: make(chan struct{}),
		log: slog.Default().With("component", "gcs"), ctx: ctx, cancel: cancel}
	s.info.started = time.Now()
	s.taskEvents = taskevents.NewStore(taskevents.StoreConfig{MaxTasks: cfg.MaxTaskEvents})
	s.cleanup.kick = make(chan struct{}, 1)
	s.groups.init()
	return s
}

// start starts the background loops (and the storage writer, with
// storage), then what recovery left to do (rec; nil without storage).
func (s *Server) start(rec *recovery) {
	s.wg.Add(5)
	go s.healthLoop()
	go s.driverLoop()
	go s.cleanupLoop()
	go s.groupLoop()
	go s.cancelLoop()
	if s.persist != nil {
		s.goOwned(func() { s.persist.loop(s.ctx, s.log.Warn) })
		s.afterRecovery(rec)
	}
}

// Close stops background work and waits for it.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Server) goOwned(f func()) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f() }()
}

// ---------------------------------------------------------------- nodes

// RegisterNode adds a node. Its resources are checked as the API checks
// them (wirecheck.RegisterNode: finite, named as allowed, whole GPUs),
// so nothing from the wire puts NaN or infinities in the cluster's view.
// A node id that was declared dead is refused with a *errs.NodeDiedError:
// a node that comes back after its death joins under a new id (see
// NodeHeartbeat). Registering an alive id again replaces its record.
func (s *Server) RegisterNode(_ context.Context, req *pb.RegisterNodeRequest) (*pb.RegisterNodeReply, error) {
	if err := wirecheck.RegisterNode(req); err != nil {
		return nil, err
	}
	n := req.GetNode()
	id, ok := ids.FromBytes(n.GetNodeId())
	if !ok || n.GetAddress() == "" {
		return nil, errs.Invalidf("gcs: RegisterNode needs a node id and address")
	}
	n.State = pb.NodeState_NODE_STATE_ALIVE
	if n.Available == nil {
		n.Available = n.Total
	}
	s.mu.Lock()
	if old, ok := s.nodes[id]; ok && old.info.State == pb.NodeState_NODE_STATE_DEAD {
		err := deadNodeError(id, old)
		s.mu.Unlock()
		return nil, err
	}
	e := &nodeEntry{info: n, lastBeat: time.Now()}
	if old, ok := s.nodes[id]; ok && old.reconcile {
		s.reconcileLocked(id, old)
	}
	s.touchLocked(e)
	s.nodes[id] = e
	s.markNodeLocked(e)
	close(s.nodesChanged)
	s.nodesChanged = make(chan struct{})
	s.mu.Unlock()
	return &pb.RegisterNodeReply{NodeTimeoutMs: s.cfg.NodeTimeout.Milliseconds(), Persistent: s.persist != nil}, nil
}

func (s *Server) UnregisterNode(_ context.Context, req *pb.UnregisterNodeRequest) (*pb.UnregisterNodeReply, error) {
	id := ids.MustFromBytes(req.GetNodeId())
	s.markNodeDead(id, "node daemon stopped")
	return &pb.UnregisterNodeReply{}, nil
}

// NodeHeartbeat records a node's load; its resources are checked as
// RegisterNode's are (wirecheck.NodeHeartbeat).
//
// The heartbeat of a node that was declared dead (silent past the node
// timeout, or unregistered) fails with a *errs.NodeDiedError naming the
// node and why it died: the node must not carry on under that id, since
// its actors were restarted elsewhere and owners have given up on its
// workers. A node daemon that receives it stops its workers and exits
// (raylet.Raylet.Done), as Ray's raylet exits when the GCS reports it
// dead. The heartbeat of an id the control store never saw (a head
// restarted without persistence) is answered with unknown_node, and the
// node registers again.
func (s *Server) NodeHeartbeat(_ context.Context, req *pb.NodeHeartbeatRequest) (*pb.NodeHeartbeatReply, error) {
	if err := wirecheck.NodeHeartbeat(req); err != nil {
		return nil, err
	}
	id := ids.MustFromBytes(req.GetNodeId())
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	if !ok {
		return &pb.NodeHeartbeatReply{UnknownNode: true}, nil
	}
	if n.info.State != pb.NodeState_NODE_STATE_ALIVE {
		return nil, deadNodeError(id, n)
	}
	n.lastBeat = time.Now()
	if n.reconcile {
		s.reconcileLocked(id, n)
	}
	if heartbeatChanges(n.info, req) {
		n.info.Available = req.GetAvailable()
		if req.Total != nil {
			n.info.Total = req.GetTotal()
		}
		n.info.PendingLeases = req.GetPendingLeases()
		n.info.PendingDemands = req.GetPendingDemands()
		n.info.InfeasibleDemands = req.GetInfeasibleDemands()
		n.info.NumWorkers = req.GetNumWorkers()
		s.touchLocked(n)
	}
	return &pb.NodeHeartbeatReply{}, nil
}

// heartbeatChanges reports whether a heartbeat changes the node's record
// (an idle node's do not: nothing goes out in the view's deltas for it).
func heartbeatChanges(info *pb.NodeInfo, req *pb.NodeHeartbeatRequest) bool {
	if info.GetPendingLeases() != req.GetPendingLeases() || info.GetNumWorkers() != req.GetNumWorkers() ||
		len(info.GetPendingDemands()) != len(req.GetPendingDemands()) || len(info.GetInfeasibleDemands()) != len(req.GetInfeasibleDemands()) {
		return true
	}
	if !maps.Equal(info.GetAvailable().GetAmounts(), req.GetAvailable().GetAmounts()) ||
		req.Total != nil && !maps.Equal(info.GetTotal().GetAmounts(), req.GetTotal().GetAmounts()) {
		return true
	}
	for i, d := range req.GetPendingDemands() {
		if !maps.Equal(d.GetAmounts(), info.GetPendingDemands()[i].GetAmounts()) {
			return true
		}
	}
	for i, d := range req.GetInfeasibleDemands() {
		if !maps.Equal(d.GetAmounts(), info.GetInfeasibleDemands()[i].GetAmounts()) {
			return true
		}
	}
	return false
}

// reconcileLocked starts the ReleaseUnused exchange with a recovered node
// heard from for the first time.
func (s *Server) reconcileLocked(id ids.ID, n *nodeEntry) {
	n.reconcile = false
	s.goOwned(func() { s.reconcileNode(id) })
}

// touchLocked records a change to a node's record in the view's version.
func (s *Server) touchLocked(n *nodeEntry) {
	s.viewVersion++
	n.version = s.viewVersion
}

// GetNodes returns the nodes: all of them (alive ones, or with
// include_dead every one), or, with since_version, those that changed
// after it, dead or alive (see GetNodesRequest).
func (s *Server) GetNodes(_ context.Context, req *pb.GetNodesRequest) (*pb.GetNodesReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	since := req.GetSinceVersion()
	out := &pb.GetNodesReply{Version: s.viewVersion, Full: since == 0 || since > s.viewVersion}
	for _, n := range s.nodes {
		switch {
		case !out.Full && n.version <= since:
		case !out.Full || n.info.State == pb.NodeState_NODE_STATE_ALIVE || req.GetIncludeDead():
			out.Nodes = append(out.Nodes, proto.Clone(n.info).(*pb.NodeInfo))
		}
	}
	return out, nil
}

// deadNodeError is what a dead node's heartbeat or registration gets.
func deadNodeError(id ids.ID, n *nodeEntry) error {
	return &errs.NodeDiedError{NodeID: id.String(), NodeAddress: n.info.GetAddress(),
		Reason: "declared dead by the control store (" + n.died + "); a node that comes back must join under a new id"}
}

// healthLoop declares dead every alive node whose last heartbeat is older
// than NodeTimeout. It wakes at the earliest such deadline (and at least
// every HealthCheckPeriod), so a node is declared dead NodeTimeout after
// its last heartbeat, which is at most NodeTimeout after it died.
//
// A control store that was itself stalled cannot tell a silent node from
// one whose heartbeats it could not read: when the loop wakes more than a
// HealthCheckPeriod late (the head process was stopped, or starved of
// CPU), the time it was late does not count as silence: every alive
// node's last heartbeat moves forward by it.
func (s *Server) healthLoop() {
	defer s.wg.Done()
	wait := s.cfg.HealthCheckPeriod
	t := time.NewTimer(wait)
	defer t.Stop()
	armed := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		late := now.Sub(armed) - wait
		stalled := late > s.cfg.HealthCheckPeriod
		var dead []ids.ID
		next := s.cfg.HealthCheckPeriod
		s.mu.Lock()
		for id, n := range s.nodes {
			if n.info.State != pb.NodeState_NODE_STATE_ALIVE {
				continue
			}
			if stalled {
				if n.lastBeat = n.lastBeat.Add(late); n.lastBeat.After(now) {
					n.lastBeat = now
				}
			}
			left := s.cfg.NodeTimeout - now.Sub(n.lastBeat)
			if left <= 0 {
				dead = append(dead, id)
				continue
			}
			next = min(next, left)
		}
		s.mu.Unlock()
		if stalled {
			s.log.Warn("control store stalled; the stall does not count as node silence", "late", late)
		}
		for _, id := range dead {
			s.log.Warn("node declared dead", "node", id, "reason", "no heartbeat", "timeout", s.cfg.NodeTimeout)
			s.markNodeDead(id, fmt.Sprintf("no heartbeat for %s", s.cfg.NodeTimeout))
		}
		wait, armed = next, time.Now()
		t.Reset(wait)
	}
}

func (s *Server) markNodeDead(id ids.ID, reason string) {
	s.mu.Lock()
	n, ok := s.nodes[id]
	if !ok || n.info.State == pb.NodeState_NODE_STATE_DEAD {
		s.mu.Unlock()
		return
	}
	n.info.State = pb.NodeState_NODE_STATE_DEAD
	s.touchLocked(n)
	n.died = reason
	s.markNodeLocked(n)
	s.groupsOnDeadNodeLocked(id)
	var lost, orphaned []ids.ID
	for aid, a := range s.actors {
		if owner, ok := ids.FromBytes(a.info.GetOwnerNodeId()); ok && owner == id && !a.info.Detached && a.info.State != StateDead {
			orphaned = append(orphaned, aid) // not restarted: it dies with its owner
			continue
		}
		if ids.MustFromBytes(a.info.NodeId) == id && (a.info.State == StateAlive || a.info.State == StatePending) {
			lost = append(lost, aid)
		}
	}
	s.mu.Unlock()
	for _, aid := range lost {
		s.actorProcessDied(aid, ids.Nil, "its node died: "+reason, false)
	}
	// Fate sharing: the owner of these ran on the dead node.
	for _, aid := range orphaned {
		s.killActor(aid, "its owner's node died", errs.ActorOwnerDied)
	}
}

// ---------------------------------------------------------------- jobs

// A driver that dies without FinishJob is noticed at once when its
// DriverAlive session drops (see DriverAlive), and otherwise by its health
// checks (an empty CoreWorker.Borrow every DriverCheckPeriod). driverMisses
// checks in a row that find it unreachable (its port refuses connections:
// the process is gone) end its job, about 3 s after its death; a driver that still
// accepts connections but does not answer (stopped, or starved of CPU on
// a loaded machine) keeps its job for driverHang before it is ended too.
// A driver on a node's machine is noticed sooner where its objects are:
// its store connection closes when it dies (objstore.md, "Job end").
const (
	driverMisses = 3
	driverHang   = 30 * time.Second
)

// driverLoop checks the drivers of running jobs once a second and
// finishes the jobs of those that died (killing the actors they owned and
// freeing their objects).
func (s *Server) driverLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.DriverCheckPeriod)
	defer t.Stop()
	misses := map[ids.ID]int{}
	silentSince := map[ids.ID]time.Time{}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		type driver struct {
			job  ids.ID
			addr string
		}
		var running []driver
		s.mu.Lock()
		for id, j := range s.jobs {
			if j.State == pb.JobState_JOB_STATE_RUNNING && j.DriverAddress != "" {
				running = append(running, driver{id, j.DriverAddress})
			}
		}
		s.mu.Unlock()
		for _, d := range running {
			end := false
			switch s.checkDriver(d.addr) {
			case driverAnswers:
				delete(misses, d.job)
				delete(silentSince, d.job)
			case driverGone:
				misses[d.job]++
				end = misses[d.job] >= driverMisses
			case driverSilent:
				if silentSince[d.job].IsZero() {
					silentSince[d.job] = time.Now()
				}
				end = time.Since(silentSince[d.job]) >= driverHang
			}
			if end {
				delete(misses, d.job)
				delete(silentSince, d.job)
				_, _ = s.FinishJob(s.ctx, &pb.FinishJobRequest{JobId: d.job.Bytes()})
			}
		}
	}
}

// DriverAlive holds a running job's driver session open until the
// driver's connection ends. If the job is still running then and nothing
// listens at the driver's address any more, the driver died: its job ends
// now rather than after driverLoop's misses. A driver that still answers
// (its connection dropped, the process lives) keeps its job; it opens a
// new session.
func (s *Server) DriverAlive(req *pb.DriverAliveRequest, stream pb.ControlStore_DriverAliveServer) error {
	id, ok := ids.FromBytes(req.GetJobId())
	if !ok {
		return errs.Invalidf("gcs: DriverAlive needs a job id")
	}
	addr, running := s.runningDriver(id)
	if !running {
		return errs.NotFoundf("gcs: job %s is not running", id)
	}
	// Headers tell the driver (and tests) that the session is held.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}
	select {
	case <-stream.Context().Done():
	case <-s.ctx.Done():
		return nil
	}
	if a, running := s.runningDriver(id); running && a == addr && s.checkDriver(addr) == driverGone {
		s.log.Info("driver gone; ending its job", "job", id, "driver", addr)
		_, _ = s.FinishJob(s.ctx, &pb.FinishJobRequest{JobId: id.Bytes()})
	}
	return nil
}

// runningDriver returns the driver address of a running job.
func (s *Server) runningDriver(id ids.ID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil || j.State != pb.JobState_JOB_STATE_RUNNING || j.DriverAddress == "" {
		return "", false
	}
	return j.DriverAddress, true
}

type driverHealth int

const (
	driverAnswers driverHealth = iota
	driverGone                 // unreachable: nothing listens at its address
	driverSilent               // reachable, but no answer within a second
)

func (s *Server) checkDriver(addr string) driverHealth {
	conn, err := s.pool.Get(addr)
	if err != nil {
		return driverGone
	}
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	_, err = pb.NewCoreWorkerClient(conn).Borrow(ctx, &pb.BorrowRequest{})
	switch {
	case err == nil:
		return driverAnswers
	case rpc.IsUnavailable(err):
		return driverGone
	}
	return driverSilent
}

func (s *Server) RegisterJob(ctx context.Context, req *pb.RegisterJobRequest) (*pb.RegisterJobReply, error) {
	j := req.GetJob()
	if j == nil {
		return nil, errs.Invalidf("gcs: RegisterJob needs a job")
	}
	id, ok := ids.FromBytes(j.GetJobId())
	if !ok {
		id = ids.New()
		j.JobId = id.Bytes()
	}
	j.State = pb.JobState_JOB_STATE_RUNNING
	j.StartUnixMs = time.Now().UnixMilli()
	s.mu.Lock()
	if old, ok := s.jobs[id]; ok && old.GetState() == pb.JobState_JOB_STATE_RUNNING && old.GetDriverId() != nil &&
		string(old.GetDriverId()) == string(j.GetDriverId()) {
		j = old // registered again by the same driver (a retry across a head restart)
	}
	s.jobs[id] = j
	mark := s.markJobLocked(string(j.GetJobId()), j)
	s.mu.Unlock()
	if err := s.durable(ctx, mark); err != nil {
		return nil, err
	}
	return &pb.RegisterJobReply{JobId: id.Bytes(), Persistent: s.persist != nil, NodeTimeoutMs: s.cfg.NodeTimeout.Milliseconds()}, nil
}

func (s *Server) GetJob(_ context.Context, req *pb.GetJobRequest) (*pb.GetJobReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[ids.MustFromBytes(req.GetJobId())]
	if !ok {
		return nil, errs.NotFoundf("gcs: no job %x", req.GetJobId())
	}
	return &pb.GetJobReply{Job: proto.Clone(j).(*pb.JobInfo)}, nil
}

func (s *Server) ListJobs(context.Context, *pb.ListJobsRequest) (*pb.ListJobsReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &pb.ListJobsReply{}
	for _, j := range s.jobs {
		out.Jobs = append(out.Jobs, proto.Clone(j).(*pb.JobInfo))
	}
	return out, nil
}

// FinishJob marks a job finished, kills the actors its driver owns that
// are not detached, and tells every node daemon (cleanup.go): the driver's
// objects go, and the job's workers stop, except the processes of its
// detached actors, whose objects stay.
func (s *Server) FinishJob(_ context.Context, req *pb.FinishJobRequest) (*pb.FinishJobReply, error) {
	id := ids.MustFromBytes(req.GetJobId())
	s.mu.Lock()
	j, ok := s.jobs[id]
	ended := ok && j.State == pb.JobState_JOB_STATE_RUNNING
	if ended {
		j.State = pb.JobState_JOB_STATE_FINISHED
		j.EndUnixMs = time.Now().UnixMilli()
		s.markJobLocked(string(j.GetJobId()), j)
	}
	var owned, keep []ids.ID
	if ended {
		owned = s.groupsOfJobLocked(id) // their actors die with them
	}
	for aid, a := range s.actors {
		if ids.MustFromBytes(a.info.JobId) != id || a.info.State == StateDead {
			continue
		}
		if !a.info.Detached {
			owned = append(owned, aid)
		} else if !a.place.worker.IsNil() {
			keep = append(keep, a.place.worker)
		}
	}
	var driver ids.ID
	if ok {
		driver = ids.MustFromBytes(j.GetDriverId())
	}
	s.mu.Unlock()
	if ended {
		s.noticeOwners([]ids.ID{id}, []ids.ID{driver}, keep)
	}
	for _, aid := range owned {
		s.killActor(aid, "its owner (the job's driver) exited", errs.ActorOwnerDied)
	}
	return &pb.FinishJobReply{}, nil
}

// ---------------------------------------------------------------- kv and binaries

func (s *Server) KVPut(ctx context.Context, req *pb.KVPutRequest) (*pb.KVPutReply, error) {
	if req.GetKey() == "" {
		return nil, errs.Invalidf("gcs: KVPut: empty key")
	}
	if len(req.GetValue()) > s.cfg.MaxKVValueBytes {
		return nil, errs.Invalidf("gcs: KVPut %q: value of %d bytes exceeds the %d-byte limit", req.GetKey(), len(req.GetValue()), s.cfg.MaxKVValueBytes)
	}
	k := req.GetNs() + "\x00" + req.GetKey()
	s.mu.Lock()
	if _, exists := s.kv[k]; exists && !req.GetOverwrite() {
		s.mu.Unlock()
		return &pb.KVPutReply{Added: false}, nil
	}
	s.kv[k] = req.GetValue()
	mark := s.markKVLocked(k, req.GetValue())
	s.mu.Unlock()
	if err := s.durable(ctx, mark); err != nil {
		return nil, err
	}
	return &pb.KVPutReply{Added: true}, nil
}

func (s *Server) KVGet(_ context.Context, req *pb.KVGetRequest) (*pb.KVGetReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[req.GetNs()+"\x00"+req.GetKey()]
	return &pb.KVGetReply{Value: v, Found: ok}, nil
}

// PutBinary stores an uploaded job binary. Its chunks are kept as they
// arrived (each decoded message owns its bytes) and hashed as they come,
// so an upload is copied once, by the decoder, and never held twice.
func (s *Server) PutBinary(stream pb.ControlStore_PutBinaryServer) error {
	var (
		b    binary
		sum  = sha256.New()
		hash string
		got  int64 // bytes received
	)
	for {
		c, err := stream.Recv()
		if isEOF(err) {
			break
		}
		if err != nil {
			return err
		}
		if hash == "" {
			hash, b.size = c.GetHash(), c.GetTotal()
			if b.size < 0 || b.size > s.cfg.MaxBinaryBytes {
				return errs.Invalidf("gcs: binary of %d bytes: want 0 to %d bytes", b.size, s.cfg.MaxBinaryBytes)
			}
		}
		if c.GetOffset() != got {
			return errs.Invalidf("gcs: binary chunk at offset %d, want %d", c.GetOffset(), got)
		}
		if got+int64(len(c.GetData())) > b.size {
			return errs.Invalidf("gcs: binary chunks exceed the declared %d bytes", b.size)
		}
		if len(c.GetData()) > 0 {
			b.chunks = append(b.chunks, c.GetData())
			_, _ = sum.Write(c.GetData())
			got += int64(len(c.GetData()))
		}
	}
	if hash == "" {
		return errs.Invalidf("gcs: empty binary upload")
	}
	if got != b.size {
		return errs.Invalidf("gcs: binary upload ended at %d of %d bytes", got, b.size)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != hash {
		return errs.Invalidf("gcs: binary hash mismatch: declared %s, content %s", hash, got)
	}
	if err := s.saveBinary(stream.Context(), hash, b.size, b.reader()); err != nil {
		return err
	}
	s.storeBinary(hash, &b)
	return stream.SendAndClose(&pb.PutBinaryReply{Stored: true})
}

// storeBinary keeps b as hash unless a binary with that hash is stored
// already, dropping old ones past MaxBinaryStoreBytes.
func (s *Server) storeBinary(hash string, b *binary) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, had := s.binaries[hash]; had {
		return
	}
	s.binaries[hash] = b
	s.binOrder = append(s.binOrder, hash)
	s.binBytes += b.size
	s.evictBinariesLocked()
}

// binary is a stored job binary: its bytes in the pieces they arrived in,
// a file in BinaryDir, or (stored) in storage only, read back from there
// (a binary a restarted control store recovered).
type binary struct {
	size   int64
	chunks [][]byte
	file   string
	stored bool
}

// HasBinary says whether the binary is stored. One that is not, named by
// a path this machine can read with the same content, is stored by
// copying that file (a driver on the head's machine then uploads nothing).
func (s *Server) HasBinary(ctx context.Context, req *pb.HasBinaryRequest) (*pb.HasBinaryReply, error) {
	hash := req.GetHash()
	s.mu.Lock()
	_, ok := s.binaries[hash]
	s.mu.Unlock()
	if ok || req.GetPath() == "" || s.cfg.BinaryDir == "" {
		return &pb.HasBinaryReply{Found: ok}, nil
	}
	b, err := s.copyBinary(hash, req.GetPath())
	if err != nil { // not here, or not that content: the uploader sends it
		slog.Debug("gcs: job binary not taken from its path; it will be uploaded", "path", req.GetPath(), "err", err)
		return &pb.HasBinaryReply{Found: false}, nil
	}
	if err := s.saveBinaryFile(ctx, hash, b); err != nil {
		return nil, err
	}
	s.storeBinary(hash, b)
	return &pb.HasBinaryReply{Found: true}, nil
}

// copyBinary copies the regular file at path into BinaryDir as hash,
// checking that the copy has that content.
func (s *Server) copyBinary(hash, path string) (*binary, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("not an absolute path")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > s.cfg.MaxBinaryBytes {
		return nil, fmt.Errorf("%s of %d bytes: want a regular file of at most %d bytes", st.Mode().Type(), st.Size(), s.cfg.MaxBinaryBytes)
	}
	if err := os.MkdirAll(s.cfg.BinaryDir, 0o700); err != nil {
		return nil, err
	}
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(s.cfg.BinaryDir, "copy-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // after the rename below, a no-op
	// Copy first, hash the copy: what is stored is what was checked, even
	// if the file at path changes meanwhile.
	n, err := io.Copy(tmp, io.LimitReader(src, s.cfg.MaxBinaryBytes+1))
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	var got string
	if err == nil {
		got, err = jobbinary.Hash(tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if n > s.cfg.MaxBinaryBytes {
		return nil, fmt.Errorf("grew past %d bytes while copied", s.cfg.MaxBinaryBytes)
	}
	if got != hash {
		return nil, fmt.Errorf("content hash %s, not %s", got, hash)
	}
	dst := filepath.Join(s.cfg.BinaryDir, hash)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return nil, err
	}
	return &binary{size: n, file: dst}, nil
}

// GetBinary streams a stored binary in the pieces it was uploaded in (an
// empty binary as one empty chunk).
func (s *Server) GetBinary(req *pb.GetBinaryRequest, stream pb.ControlStore_GetBinaryServer) error {
	s.mu.Lock()
	b, ok := s.binaries[req.GetHash()]
	s.mu.Unlock()
	if !ok {
		return errs.NotFoundf("gcs: no binary with hash %s", req.GetHash())
	}
	if b.stored {
		return s.sendStoredBinary(stream.Context(), req.GetHash(), b.size, stream.Send)
	}
	if b.file != "" {
		f, err := os.Open(b.file)
		if err != nil {
			return errs.NotFoundf("gcs: binary %s: %v", req.GetHash(), err)
		}
		defer f.Close()
		if err := jobbinary.Send(f, req.GetHash(), b.size, stream.Send); err != nil {
			return errs.Systemf("gcs: send binary %s: %v", req.GetHash(), err)
		}
		return nil
	}
	if len(b.chunks) == 0 {
		return stream.Send(&pb.BinaryChunk{Hash: req.GetHash(), Total: 0})
	}
	off := int64(0)
	for _, c := range b.chunks {
		if err := stream.Send(&pb.BinaryChunk{Hash: req.GetHash(), Offset: off, Data: c, Total: b.size}); err != nil {
			return err
		}
		off += int64(len(c))
	}
	return nil
}

// evictBinariesLocked drops the oldest binaries that no running job uses
// until the store fits MaxBinaryStoreBytes.
func (s *Server) evictBinariesLocked() {
	if s.binBytes <= s.cfg.MaxBinaryStoreBytes {
		return
	}
	inUse := map[string]bool{}
	for _, j := range s.jobs {
		if j.State == pb.JobState_JOB_STATE_RUNNING {
			inUse[j.BinaryHash] = true
			if wd := j.GetRuntimeEnv().GetWorkingDir(); wd != "" { // its runtime env's package (packages.go)
				inUse[packageDigest(wd)] = true
			}
		}
	}
	kept := s.binOrder[:0]
	for _, h := range s.binOrder {
		if s.binBytes > s.cfg.MaxBinaryStoreBytes && !inUse[h] {
			size := s.binaries[h].size
			s.binBytes -= size
			if f := s.binaries[h].file; f != "" {
				_ = os.Remove(f)
			}
			if s.persist != nil {
				s.goOwned(func() { s.dropBinary(h, size) })
			}
			delete(s.binaries, h)
			continue
		}
		kept = append(kept, h)
	}
	s.binOrder = kept
}
