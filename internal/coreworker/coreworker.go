// Package coreworker is linked into every driver and worker process. It
// owns the objects its process creates (values, reference counts, who
// borrows them), submits tasks by leasing workers from node daemons and
// pushing tasks straight to them, sends actor calls in order, and, in a
// worker, executes the tasks pushed to it.
//
// The public ray package is a typed layer over this one.
package coreworker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

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
	// Namespace is the default namespace for named actors.
	Namespace string
	// PushTransport picks how tasks reach workers: PushAuto or PushGRPC.
	PushTransport string
	// PushSpin is how long a framed push stream's reader busy-polls for
	// the next message before sleeping (see framed.Conn.SetSpin); zero
	// picks DefaultPushSpin, negative turns polling off.
	PushSpin time.Duration
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
	if c.PushSpin == 0 {
		c.PushSpin = DefaultPushSpin
	}
	if c.PushSpin < 0 || runtime.NumCPU() < 2 {
		c.PushSpin = 0 // with one CPU, polling would only delay the peer
	}
}

// DefaultPushSpin is the default Config.PushSpin: long enough to cover a
// trivial task's round trip between two processes on one machine.
const DefaultPushSpin = 200 * time.Microsecond

// CoreWorker is one process's runtime. It is safe for concurrent use.
type CoreWorker struct {
	cfg      Config
	workerID ids.ID
	// The wire forms of workerID and the job's id, shared by every task
	// spec this process sends (never written to).
	workerIDWire, jobIDWire []byte
	// dropLocalFn is cw.dropLocal, made once: a method value passed to
	// runtime.AddCleanup per handle would be allocated per handle.
	dropLocalFn func(*object)
	address     string
	rayletAddr  string
	pool        *rpc.Pool
	raylet      pb.NodeDaemonClient
	gcs         pb.ControlStoreClient
	server      *grpc.Server
	registry    *Registry
	store       *objstore.Client // the local node's shared-memory store; nil when the node is remote
	pushSrv     *taskServer      // worker mode: framed push streams from owners on this machine

	mu             sync.Mutex
	objects        map[ids.ID]*object      // guarded by mu
	pendingBorrows map[string][]ids.ID     // guarded by mu; owner -> ids to register
	borrowRemovals map[string][]ids.ID     // guarded by mu; owner -> ids no longer borrowed
	storeFrees     map[string][]ids.ID     // guarded by mu; node -> ids to delete
	keys           map[string]*schedKey    // guarded by mu
	actors         map[ids.ID]*actorClient // guarded by mu
	closed         bool                    // guarded by mu
	waitCalls      uint64                  // guarded by mu; numbers Wait calls (duplicate detection)

	exec *executor // worker mode

	bgKick chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start creates the core worker, serves its endpoint, and in worker mode
// registers with the node daemon.
func Start(cfg Config, reg *Registry) (*CoreWorker, error) {
	cfg.Defaults()
	lis, err := rpc.Listen(net.JoinHostPort(cfg.ListenHost, "0"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cw := &CoreWorker{
		cfg: cfg, workerID: cfg.WorkerID, workerIDWire: cfg.WorkerID.Bytes(), jobIDWire: cfg.JobID.Bytes(), address: lis.Addr(), rayletAddr: cfg.NodeAddress,
		pool: rpc.NewPool(cfg.Token), server: rpc.NewServer(cfg.Token), registry: reg,
		objects: map[ids.ID]*object{}, pendingBorrows: map[string][]ids.ID{}, borrowRemovals: map[string][]ids.ID{},
		storeFrees: map[string][]ids.ID{}, keys: map[string]*schedKey{},
		actors: map[ids.ID]*actorClient{}, bgKick: make(chan struct{}, 1), ctx: ctx, cancel: cancel,
	}
	cw.dropLocalFn = cw.dropLocal
	rconn, err := cw.pool.Get(cfg.NodeAddress)
	if err != nil {
		lis.Close()
		cancel()
		return nil, err
	}
	cw.raylet = pb.NewNodeDaemonClient(rconn)
	gconn, err := cw.pool.Get(cfg.GCSAddress)
	if err != nil {
		lis.Close()
		cancel()
		return nil, err
	}
	cw.gcs = pb.NewControlStoreClient(gconn)
	cw.connectStore()
	if cfg.Mode == Worker {
		cw.exec = newExecutor(cw)
	}
	pb.RegisterCoreWorkerServer(cw.server, service{cw: cw})
	lis.Serve(cw.server, &cw.wg)
	if cfg.Mode == Worker {
		if err := cw.serveTasks(); err != nil {
			lis.Close()
			cancel()
			return nil, err
		}
	}
	cw.wg.Add(1)
	go cw.background()
	if cfg.Ready != nil {
		cfg.Ready(cw)
	}
	if cfg.Mode == Worker {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		defer rcancel()
		if _, err := cw.raylet.RegisterWorker(rctx, &pb.RegisterWorkerRequest{WorkerId: cw.workerID.Bytes(), Address: cw.address, Pid: int32(os.Getpid())}); err != nil {
			cw.Close()
			return nil, fmt.Errorf("coreworker: register with node daemon: %w", err)
		}
	}
	return cw, nil
}

// Address is the core worker's endpoint.
func (cw *CoreWorker) Address() string { return cw.address }

// WorkerID is this process's worker id.
func (cw *CoreWorker) WorkerID() ids.ID { return cw.workerID }

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

// Done is closed when the core worker shuts down (in a worker: when told
// to exit).
func (cw *CoreWorker) Done() <-chan struct{} { return cw.ctx.Done() }

// Close returns leases, fails what is pending, and stops serving.
func (cw *CoreWorker) Close() {
	cw.mu.Lock()
	if cw.closed {
		cw.mu.Unlock()
		return
	}
	cw.closed = true
	var leases []*leasedWorker
	for _, k := range cw.keys {
		leases = append(leases, k.leases...)
		if k.cancelLeases != nil {
			k.cancelLeases()
		}
	}
	var actors []*actorClient
	for _, a := range cw.actors {
		actors = append(actors, a)
	}
	cw.mu.Unlock()
	for _, l := range leases {
		cw.returnLease(l, false)
	}
	for _, a := range actors {
		a.close()
	}
	cw.cancel()
	if cw.pushSrv != nil {
		cw.pushSrv.close()
	}
	cw.flushBackground()
	stopped := make(chan struct{})
	go func() { cw.server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(time.Second):
		cw.server.Stop()
	}
	cw.wg.Wait()
	if cw.store != nil {
		cw.store.Close()
	}
	cw.pool.Close()
}

func (cw *CoreWorker) kickBackground() {
	select {
	case cw.bgKick <- struct{}{}:
	default:
	}
}

// background sends batched frees and borrow removals and returns idle leases.
func (cw *CoreWorker) background() {
	defer cw.wg.Done()
	t := time.NewTicker(cw.cfg.LeaseIdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case <-cw.ctx.Done():
			return
		case <-cw.bgKick:
			cw.flushBackground()
		case <-t.C:
			cw.returnIdleLeases()
		}
	}
}

func (cw *CoreWorker) flushBackground() {
	cw.mu.Lock()
	frees, removals := cw.storeFrees, cw.borrowRemovals
	cw.storeFrees, cw.borrowRemovals = map[string][]ids.ID{}, map[string][]ids.ID{}
	cw.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for addr, list := range frees {
		if conn, err := cw.pool.Get(addr); err == nil {
			_, _ = pb.NewNodeDaemonClient(conn).FreeObjects(ctx, &pb.FreeObjectsRequest{ObjectIds: idBytes(list)})
		}
	}
	for addr, list := range removals {
		if conn, err := cw.pool.Get(addr); err == nil {
			_, _ = pb.NewCoreWorkerClient(conn).Borrow(ctx, &pb.BorrowRequest{ObjectIds: idBytes(list), BorrowerAddress: cw.address, Remove: true})
		}
	}
}

// flushBorrows tells owners about refs this process started borrowing. A
// task calls it before replying, while its caller still holds the refs.
func (cw *CoreWorker) flushBorrows(ctx context.Context) {
	cw.mu.Lock()
	pending := cw.pendingBorrows
	if len(pending) == 0 {
		cw.mu.Unlock()
		return
	}
	cw.pendingBorrows = map[string][]ids.ID{}
	cw.mu.Unlock()
	for addr, list := range pending {
		cw.registerBorrower(ctx, addr, list, cw.address)
	}
}

// registerBorrower tells the owner at addr that borrower holds refs to list.
func (cw *CoreWorker) registerBorrower(ctx context.Context, owner string, list []ids.ID, borrower string) {
	if owner == cw.address {
		cw.mu.Lock()
		for _, id := range list {
			if o, ok := cw.objects[id]; ok {
				if o.borrowers == nil {
					o.borrowers = map[string]struct{}{}
				}
				o.borrowers[borrower] = struct{}{}
			}
		}
		cw.mu.Unlock()
		return
	}
	conn, err := cw.pool.Get(owner)
	if err != nil {
		return
	}
	_, _ = pb.NewCoreWorkerClient(conn).Borrow(ctx, &pb.BorrowRequest{ObjectIds: idBytes(list), BorrowerAddress: borrower})
}

func idBytes(list []ids.ID) [][]byte {
	out := make([][]byte, len(list))
	for i, id := range list {
		out[i] = id.Bytes()
	}
	return out
}

// ---------------------------------------------------------------- owner-side RPCs

// WaitObject returns an owned object's value once it is ready.
func (cw *CoreWorker) waitObject(ctx context.Context, req *pb.WaitObjectRequest) (*pb.WaitObjectReply, error) {
	id := ids.MustFromBytes(req.GetObjectId())
	cw.mu.Lock()
	o, ok := cw.objects[id]
	var ready <-chan struct{}
	if ok {
		ready = o.readyChanLocked()
	}
	cw.mu.Unlock()
	if !ok {
		return nil, errObjectFreed(id)
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-cw.ctx.Done():
		return nil, errors.New("coreworker: shutting down")
	}
	return &pb.WaitObjectReply{Value: o.value}, nil
}

// Borrow adds or removes a borrower of owned objects.
func (cw *CoreWorker) borrow(_ context.Context, req *pb.BorrowRequest) (*pb.BorrowReply, error) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	for _, b := range req.GetObjectIds() {
		o, ok := cw.objects[ids.MustFromBytes(b)]
		if !ok {
			continue
		}
		if req.GetRemove() {
			delete(o.borrowers, req.GetBorrowerAddress())
			cw.maybeFreeLocked(o)
			continue
		}
		if o.borrowers == nil {
			o.borrowers = map[string]struct{}{}
		}
		o.borrowers[req.GetBorrowerAddress()] = struct{}{}
	}
	return &pb.BorrowReply{}, nil
}

// Exit stops a worker process.
func (cw *CoreWorker) exit(_ context.Context, req *pb.ExitRequest) (*pb.ExitReply, error) {
	if cw.cfg.Mode != Worker {
		return nil, errors.New("coreworker: Exit is for workers")
	}
	if req.GetActorId() != nil { // one actor leaves a shared process
		cw.exec.drop(req.GetActorId())
		return &pb.ExitReply{}, nil
	}
	go func() {
		time.Sleep(10 * time.Millisecond) // let the reply go out
		os.Exit(0)
	}()
	return &pb.ExitReply{}, nil
}

func (cw *CoreWorker) notifyBlocked(blocked bool) {
	ctx, cancel := context.WithTimeout(cw.ctx, 5*time.Second)
	defer cancel()
	_, _ = cw.raylet.NotifyBlocked(ctx, &pb.BlockedRequest{WorkerId: cw.workerID.Bytes(), Blocked: blocked})
}

func (cw *CoreWorker) inTask() bool {
	return cw.exec != nil && cw.exec.running.Load() > 0
}

// ObjectCount reports how many objects this process tracks (for tests and
// leak checks).
func (cw *CoreWorker) ObjectCount() int {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return len(cw.objects)
}
