// Package coreworker is linked into every driver and worker process. It
// assembles Ray's core-worker parts, each in a package of its own that
// owns its state:
//
//   - refcount: the reference counter (owned and borrowed objects, nested
//     refs, actor handles, lineage references);
//   - memstore: the in-process object store (values, and waiting for them);
//   - taskmgr: the task manager (pending tasks, attempts, retries,
//     results, lineage);
//   - tasksubmit: the normal-task submitter (leases, pipelining, stealing,
//     spillback);
//   - actorsubmit: the actor-task submitter (ordered calls, restarts);
//   - executor: the task executor of a worker process.
//
// The CoreWorker wires them to the network: it serves the process's
// CoreWorker endpoint (gRPC, plus framed push streams from owners on the
// same machine), fetches borrowed values from their owners (resolver),
// moves large values through the node's shared-memory store, and gives
// the public ray package one facade (Submit, Get, Put, Wait, actors).
package coreworker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/coreworker/actorsubmit"
	"github.com/raygo/raygo/internal/coreworker/executor"
	"github.com/raygo/raygo/internal/coreworker/groupops"
	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/objdir"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/coreworker/registry"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/internal/taskevents"
)

// Registry, and the types of registered code, are the registry package's.
type (
	Registry    = registry.Registry
	Encoded     = registry.Encoded
	Func        = registry.Func
	Constructor = registry.Constructor
	Method      = registry.Method
	TaskInfo    = executor.TaskInfo
)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return registry.New() }

// InfoFrom returns the running task's info, if ctx belongs to a task.
func InfoFrom(ctx context.Context) (TaskInfo, bool) { return executor.InfoFrom(ctx) }

// CaptureFrom returns the placement group ctx's task puts its children in
// by default (CaptureChildTasks), nil if none.
func CaptureFrom(ctx context.Context) *pb.SchedulingOptions { return executor.CaptureFrom(ctx) }

// Mode says whether the process is a driver or a worker.
type Mode int

const (
	// Driver is a user-started program.
	Driver Mode = iota
	// Worker is a process started by a node daemon to run tasks.
	Worker
)

// Config configures a core worker.
type Config struct {
	Mode        Mode
	GCSAddress  string
	NodeAddress string // the local node daemon
	Token       string
	JobID       ids.ID
	WorkerID    ids.ID // zero picks a fresh id
	NodeID      ids.ID
	// ListenHost is the interface the core worker serves on.
	ListenHost string
	// AdvertiseHost is the address others reach it at; empty: ListenHost
	// (which then must be a specific address). See rpc.ListenOn.
	AdvertiseHost string
	// InlineThreshold: encoded values up to this many bytes travel inline;
	// larger ones go to the node's object store.
	InlineThreshold int
	// LeaseIdleTimeout returns a leased worker after it has had no task
	// for this long.
	LeaseIdleTimeout time.Duration
	// MaxPendingLeases bounds lease requests in flight per scheduling class.
	MaxPendingLeases int
	// MaxPipeline bounds tasks in flight to one leased worker.
	MaxPipeline int
	// MaxLineage bounds how many finished tasks' lineage the owner keeps.
	MaxLineage int
	// Namespace is the default namespace for named actors.
	Namespace string
	// PushTransport picks how tasks reach workers: PushAuto or PushGRPC.
	PushTransport string
	// PushSpin is how long a framed push stream's reader busy-polls for
	// the next message before sleeping (see framed.Conn.SetSpin); zero
	// picks DefaultPushSpin, negative turns polling off.
	PushSpin time.Duration
	// FailIfInfeasible makes tasks and actors whose request no node can
	// satisfy fail at once; by default they wait for a node that fits,
	// with a warning.
	FailIfInfeasible bool
	// NodeElsewhere: NodeAddress is a node on another host (a driver on a
	// machine without a node). When it cannot be reached, leases are asked
	// of another alive node (otherNode) from then on.
	NodeElsewhere bool
	// HeadTimeout: a driver whose control store keeps no storage gives the
	// head up (HeadLost) once its session has been down this long
	// (default 5 s; a node takes the control store's node timeout).
	HeadTimeout time.Duration
	// Warn receives warnings for the user (a request no node can satisfy
	// now); nil prints them to stderr.
	Warn func(string)
	// DisableTaskEvents: this process records no task events (see
	// docs/taskevents.md); RAYGO_TASK_EVENTS=0 in the environment does too.
	DisableTaskEvents bool
	// TaskEventsInterval is how often task events are reported to the
	// control store (default taskevents.DefaultInterval, 1 s).
	TaskEventsInterval time.Duration
	// TaskEventsSink, when set, takes this process's task event reports
	// instead of the control store's ReportTaskEvents RPC: a driver with
	// the head in its own process hands them over without encoding them.
	TaskEventsSink func(context.Context, *pb.ReportTaskEventsRequest) error
	// Ready, in worker mode, runs after the core worker is built and
	// before it registers with its node daemon (after which tasks may
	// arrive): the ray package makes the process's API usable there.
	Ready func(*CoreWorker)
}

// Defaults fills unset fields with their defaults.
func (c *Config) Defaults() {
	if c.WorkerID.IsNil() {
		c.WorkerID = ids.New()
	}
	if c.ListenHost == "" {
		c.ListenHost = "127.0.0.1"
	}
	if c.InlineThreshold == 0 {
		c.InlineThreshold = 100 << 10
	}
	if c.LeaseIdleTimeout == 0 {
		c.LeaseIdleTimeout = 50 * time.Millisecond
	}
	if c.MaxPendingLeases == 0 {
		c.MaxPendingLeases = 10
	}
	if c.MaxPipeline == 0 {
		c.MaxPipeline = 256
	}
	if c.HeadTimeout <= 0 {
		c.HeadTimeout = 5 * time.Second
	}
	if c.PushSpin == 0 {
		c.PushSpin = DefaultPushSpin
	}
	if c.PushSpin < 0 || runtime.NumCPU() < 2 {
		c.PushSpin = 0 // with one CPU, polling would only delay the peer
	}
	if c.Warn == nil {
		c.Warn = func(msg string) { fmt.Fprintln(os.Stderr, msg) }
	}
}

// DefaultPushSpin is the default Config.PushSpin: long enough to cover a
// trivial task's round trip between two processes on one machine.
const DefaultPushSpin = 200 * time.Microsecond

// CoreWorker is one process's runtime. It is safe for concurrent use.
type CoreWorker struct {
	cfg      Config
	self     refcount.Owner
	idWire   []byte // cfg.WorkerID's wire form, shared by specs (never written)
	jobWire  []byte
	address  string
	stop     *stopper.Stopper
	pool     *rpc.Pool
	raylet   pb.NodeDaemonClient
	gcs      pb.ControlStoreClient
	server   *grpc.Server
	registry *Registry
	store    *objstore.Client // the local node's shared-memory store; nil when the node is remote
	pushSrv  *taskServer      // worker mode: framed push streams from owners on this machine

	refs     *refcount.Counter
	mem      *memstore.Store
	tasks    *taskmgr.Manager
	normal   *tasksubmit.Submitter
	actors   *actorsubmit.Submitter
	exec     *executor.Executor // worker mode
	resolver *resolver
	bg       *background
	dir      *objdir.Directory  // where copies of owned objects are, besides their primary
	events   *taskevents.Buffer // task events of this process; nil: off
	termDone chan struct{}      // closed by close: flushOnTerm's goroutine ends (taskevents.go)
	driverID ids.ID             // the driver's own task (DRIVER_TASK), in driver mode with events
	// actorArgs keeps the arguments of actors this process created.
	actorArgs actorArgs
	// actorObjs: the objects each hosted actor put (actorobjects.go).
	actorObjs actorObjects

	groupsMu     sync.Mutex
	groups       *groupops.Pipe // placement-group ops; started on first use
	groupsClosed bool
	groupsLive   atomic.Pointer[groupops.Pipe] // groups, read without groupsMu

	headLost atomic.Pointer[errs.HeadLostError] // set once the cluster's head is gone (headlost.go)

	// Objects served for rebuilds under way (rebuild.go: revive,
	// freeOwned), so that a revival never looks at a value a free is
	// taking away.
	reviveMu  sync.Mutex
	revived   map[ids.ID]int             // guarded by reviveMu; how many rebuilds serve each
	deferred  map[ids.ID]*refcount.Entry // guarded by reviveMu; frees asked while revived, done by the last unrevive
	freeing   map[ids.ID]chan struct{}   // guarded by reviveMu; frees under way while revivals exist
	reviving  atomic.Int64               // revivals, and revives under way
	fastFrees atomic.Int64               // frees under way that found no revival

	// dropLocalFn is refs.RemoveLocal as a func value made once: a method
	// value passed to runtime.AddCleanup per handle would be allocated
	// per handle.
	dropLocalFn func(*refcount.Entry)

	serving   sync.WaitGroup // the endpoint's serving goroutines
	closeOnce sync.Once
	closed    chan struct{} // closed when Close begins
	finished  chan struct{} // closed when Close is done
}

// Start creates the core worker, serves its endpoint, and in worker mode
// registers with the node daemon.
func Start(cfg Config, reg *Registry) (*CoreWorker, error) {
	cfg.Defaults()
	lis, err := rpc.ListenOn(net.JoinHostPort(cfg.ListenHost, "0"), cfg.AdvertiseHost)
	if err != nil {
		return nil, err
	}
	cw := &CoreWorker{cfg: cfg, idWire: cfg.WorkerID.Bytes(), jobWire: cfg.JobID.Bytes(), address: lis.Addr(),
		stop: stopper.New(), pool: rpc.NewPool(cfg.Token), server: rpc.NewServer(cfg.Token), registry: reg,
		closed: make(chan struct{}), finished: make(chan struct{})}
	cw.self = refcount.Owner{Addr: cw.address, ID: cfg.WorkerID}
	fail := func(err error) (*CoreWorker, error) {
		lis.Close()
		cw.stop.Stop()
		cw.pool.Close()
		return nil, err
	}
	rconn, err := cw.pool.Get(cfg.NodeAddress)
	if err != nil {
		return fail(err)
	}
	cw.raylet = pb.NewNodeDaemonClient(rconn)
	gconn, err := cw.pool.Get(cfg.GCSAddress)
	if err != nil {
		return fail(err)
	}
	cw.gcs = pb.NewControlStoreClient(headConn{gconn, cw})
	cw.connectStore()

	cw.mem = memstore.New()
	cw.refs = refcount.New(cw.self, sink{cw})
	cw.dir = objdir.New()
	cw.dropLocalFn = cw.refs.RemoveLocal
	if err := cw.startEvents(); err != nil {
		return fail(err)
	}
	cw.tasks = taskmgr.New(taskmgr.Config{MaxLineage: cfg.MaxLineage, Events: cw.events}, cw.refs, cw.mem)
	cl := &clients{cw: cw}
	cw.normal = tasksubmit.New(tasksubmit.Config{Raylet: cfg.NodeAddress, JobID: cw.jobWire, OwnerID: cw.idWire, Owner: cw.address, OwnerNode: cw.ownerNode(),
		LeaseIdleTimeout: cfg.LeaseIdleTimeout, MaxPendingLeases: cfg.MaxPendingLeases, MaxPipeline: cfg.MaxPipeline,
		FailIfInfeasible: cfg.FailIfInfeasible, Warn: cfg.Warn, Locality: cw.argNode, Fallback: cw.fallbackFor(cfg), Events: cw.events}, cl, cw.tasks)
	cw.actors = actorsubmit.New(actorsubmit.Config{JobID: cw.jobWire, OwnerID: cw.idWire, Owner: cw.address, Warn: cfg.Warn, Events: cw.events}, cl, cw.tasks)
	cw.resolver = newResolver(cw)
	cw.bg = newBackground(cw)
	if cfg.Mode == Worker {
		cw.exec = executor.New(executor.Config{NodeID: cfg.NodeID, WorkerID: cfg.WorkerID, FitProcs: true, Events: cw.events}, reg, env{cw})
	}
	pb.RegisterCoreWorkerServer(cw.server, service{cw: cw})
	lis.Serve(cw.server, &cw.serving)
	if cfg.Mode == Worker {
		if err := cw.serveTasks(); err != nil {
			cw.Close()
			return nil, err
		}
	}
	if cfg.Ready != nil {
		cfg.Ready(cw)
	}
	if cfg.Mode == Worker {
		rctx, rcancel := context.WithTimeout(cw.stop.Ctx(), 30*time.Second)
		defer rcancel()
		if _, err := cw.raylet.RegisterWorker(rctx, &pb.RegisterWorkerRequest{WorkerId: cw.idWire, Address: cw.address, Pid: int32(os.Getpid())}); err != nil {
			cw.Close()
			return nil, fmt.Errorf("coreworker: register with node daemon: %w", err)
		}
	}
	return cw, nil
}

// ownerNode is the node this process runs on, as its leases and actors
// name it (fate sharing): nil for a driver on a host without a node.
func (cw *CoreWorker) ownerNode() []byte {
	if cw.cfg.NodeElsewhere || cw.cfg.NodeID.IsNil() {
		return nil
	}
	return cw.cfg.NodeID.Bytes()
}

// Address is the core worker's endpoint.
func (cw *CoreWorker) Address() string { return cw.address }

// WorkerID is this process's worker id.
func (cw *CoreWorker) WorkerID() ids.ID { return cw.cfg.WorkerID }

// JobID is the job this process belongs to.
func (cw *CoreWorker) JobID() ids.ID { return cw.cfg.JobID }

// NodeID is the node this process runs on.
func (cw *CoreWorker) NodeID() ids.ID { return cw.cfg.NodeID }

// GCS returns the control store client.
func (cw *CoreWorker) GCS() pb.ControlStoreClient { return cw.gcs }

// Raylet returns the local node daemon client.
func (cw *CoreWorker) Raylet() pb.NodeDaemonClient { return cw.raylet }

// Namespace is the default namespace for named actors.
func (cw *CoreWorker) Namespace() string { return cw.cfg.Namespace }

// InlineThreshold is the largest encoded value kept inline.
func (cw *CoreWorker) InlineThreshold() int { return cw.cfg.InlineThreshold }

// Done is closed once the core worker has shut down (in a worker: when
// told to exit, after the reply went out).
func (cw *CoreWorker) Done() <-chan struct{} { return cw.finished }

// ErrClosed is what calls on a closed core worker fail with.
var ErrClosed = errs.Systemf("raygo: not connected (Shutdown was called)")

func (cw *CoreWorker) isClosed() bool {
	select {
	case <-cw.closed:
		return true
	default:
		return false
	}
}

// Close returns leases, fails what is pending, stops serving and waits
// for every goroutine the core worker started. It returns the first
// problem it met (an endpoint that would not stop in time).
func (cw *CoreWorker) Close() error {
	var err error
	cw.closeOnce.Do(func() {
		err = cw.close()
		close(cw.finished)
	})
	<-cw.finished
	return err
}

func (cw *CoreWorker) close() error {
	close(cw.closed)
	left := cw.normal.Close()
	left = append(left, cw.actors.Close()...)
	info := errs.ToInfo(ErrClosed)
	for _, t := range left {
		cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: info})
	}
	var err error
	if cw.pushSrv != nil {
		cw.pushSrv.close()
	}
	if cw.exec != nil {
		if stuck := cw.exec.CloseWithin(closeWait); len(stuck) > 0 {
			err = errs.Systemf("coreworker: tasks still running after %s (they ignore their context): %v", closeWait, stuck)
		}
	}
	cw.resolver.close()
	cw.closeGroups()
	cw.bg.flush()
	cw.stopEvents() // after the last task's events, before the pool closes
	// Calls in flight (an Exit request's reply, say) get a moment to
	// finish; long-lived streams (owners' pushes, borrowers' watches) are
	// then cut.
	stopped := make(chan struct{})
	go func() { cw.server.GracefulStop(); close(stopped) }() // ends when the server does, just below
	t := time.NewTimer(200 * time.Millisecond)
	select {
	case <-stopped:
	case <-t.C:
		cw.server.Stop()
		<-stopped
	}
	t.Stop()
	cw.serving.Wait()
	if stuck := cw.stop.StopWithin(closeWait); len(stuck) > 0 && err == nil {
		err = errs.Systemf("coreworker: goroutines still running after %s: %v", closeWait, stuck)
	}
	cw.bg.close()
	if cw.store != nil {
		cw.store.Close()
	}
	cw.pool.Close()
	return err
}

// closeWait bounds how long Close waits for tasks and goroutines to end.
const closeWait = 5 * time.Second

// exitSoon closes the core worker in the background (a worker told to
// exit): the reply to the request goes out first, since Close waits for
// calls in flight.
func (cw *CoreWorker) exitSoon() {
	go func() { _ = cw.Close() }() // not owned by cw.stop: it stops cw.stop
}

// ObjectCount reports how many objects this process tracks (for tests and
// leak checks).
func (cw *CoreWorker) ObjectCount() int { return cw.refs.Len() }

// Stats is a snapshot of the core worker's parts, for tests and reports.
type Stats struct {
	Objects int
	Tasks   taskmgr.Stats
	Normal  tasksubmit.Stats
	Actors  actorsubmit.Stats
}

// Stats returns a snapshot.
func (cw *CoreWorker) Stats() Stats {
	return Stats{Objects: cw.refs.Len(), Tasks: cw.tasks.Stats(), Normal: cw.normal.Stats(), Actors: cw.actors.Stats()}
}

// sink receives the reference counter's events.
type sink struct{ cw *CoreWorker }

func (s sink) ObjectFreed(e *refcount.Entry) {
	if e.Owned() {
		s.cw.freeOwned(e) // unless a rebuild serves it (rebuild.go)
		return
	}
	s.cw.freeValue(e)
}

// freeValue frees an object's value here and, if this process owns it,
// every copy of it in the nodes' stores.
func (cw *CoreWorker) freeValue(e *refcount.Entry) {
	slot := e.Slot()
	if slot == nil {
		return
	}
	v := cw.mem.Free(slot)
	if e.Owned() && v.GetInStore() {
		// Every copy goes: the primary and each node that pulled one
		// (the entry has left the table, so no later copy is recorded).
		for _, node := range cw.dir.Free(e.ID(), v.GetStoreAddress()) {
			cw.bg.freeInStore(node, e.ID())
		}
	}
}

func (s sink) BorrowEnded(e *refcount.Entry) { s.cw.bg.borrowEnded(e.Owner().Addr, e.ID()) }

func (s sink) ActorOutOfScope(e *refcount.Entry) { s.cw.actorOutOfScope(e.ID()) }

func (s sink) LineageReleased(e *refcount.Entry) { s.cw.tasks.LineageReleased(e.ID()) }

// notifyBlocked tells the node daemon the process's task is blocked (its
// CPU is lent to others) or running again.
func (cw *CoreWorker) notifyBlocked(blocked bool) {
	ctx, cancel := context.WithTimeout(cw.stop.Ctx(), 5*time.Second)
	defer cancel()
	_, _ = cw.raylet.NotifyBlocked(ctx, &pb.BlockedRequest{WorkerId: cw.idWire, Blocked: blocked})
}

// blockingFor returns what to do the first time ctx's caller blocks
// waiting for objects, and what to do after: inside a task, the node
// daemon lends the task's CPU to others meanwhile and the task's queue
// moves on; elsewhere, nothing.
func (cw *CoreWorker) blockingFor(ctx context.Context) (blocking func(), done func()) {
	if cw.exec == nil {
		return nil, func() {}
	}
	if _, ok := executor.TaskIDFrom(ctx); !ok {
		return nil, func() {}
	}
	blocked := false
	hook := executor.BlockHook(ctx)
	return func() {
			blocked = true
			cw.notifyBlocked(true)
			if hook != nil {
				hook()
			}
		}, func() {
			if blocked {
				cw.notifyBlocked(false)
			}
		}
}

// ctxErr turns a context's end while waiting into the error to return:
// a deadline matches both context.DeadlineExceeded and ErrTimeout.
func ctxErr(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &TimeoutError{What: what}
	}
	return ctx.Err()
}

// TimeoutError reports a wait that reached its context's deadline. It
// matches both context.DeadlineExceeded and errs.ErrTimeout.
type TimeoutError struct{ What string }

func (e *TimeoutError) Error() string { return "raygo: timed out waiting for " + e.What }

// Is matches context.DeadlineExceeded and ErrTimeout.
func (e *TimeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == errs.ErrTimeout
}
