package raylet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/memmonitor"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
)

// Raylet is a running node daemon. Start it with Start and stop it with
// Stop, which kills every worker process it started.
type Raylet struct {
	pb.UnimplementedNodeDaemonServer
	cfg      Config
	nodeID   ids.ID
	address  string
	hostname string
	pool     *rpc.Pool
	gcs      pb.ControlStoreClient
	server   *grpc.Server
	store    *objstore.Store
	lifeline *proc.Lifeline // its read end goes to every worker; workers exit when it closes
	log      *slog.Logger

	mu           sync.Mutex
	res          *resources.NodeResources    // guarded by mu
	workers      map[ids.ID]*worker          // guarded by mu
	idle         map[poolKey][]*worker       // guarded by mu
	leases       map[ids.ID]*lease           // guarded by mu
	pending      []*pendingLease             // guarded by mu; FIFO of leases waiting for resources
	failures     map[ids.ID]*startupFailures // guarded by mu; by job
	binaries     map[ids.ID]string           // guarded by mu; job -> executable path
	jobEnv       map[ids.ID][]string         // guarded by mu; job -> extra worker environment
	hosts        map[ids.ID][]*worker        // guarded by mu; job -> processes hosting shared actors
	hostStarting map[ids.ID]chan struct{}    // guarded by mu; job -> closed when its new host is up
	cluster      []scheduler.Node            // guarded by mu; last view from the control store
	tie          uint64                      // guarded by mu
	stopping     bool                        // guarded by mu
	deathCauses  map[ids.ID]*pb.ErrorInfo    // guarded by mu; workers killed for a reason owners should see
	causeOrder   []ids.ID                    // guarded by mu; oldest first, bounds deathCauses
	oomKills     int64                       // guarded by mu

	monitor *memmonitor.Monitor // nil when disabled

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type poolKey struct {
	job  ids.ID
	gpus string // CUDA_VISIBLE_DEVICES value
}

type lease struct {
	id      ids.ID
	w       *worker
	alloc   resources.Allocation
	actor   bool
	blocked resources.Set // CPU released while the worker is blocked in Get
	owner   ids.ID        // the process holding the lease (zero: the control store, for actors)
	shared  bool          // an actor on a process shared with other actors
	// retriable: the owner retries its tasks if the worker dies; the
	// memory monitor kills these first, newest first.
	retriable bool
	started   time.Time
}

type pendingLease struct {
	req   *pb.LeaseRequest
	res   resources.Set
	ready chan leaseGrant // buffered(1)
}

type leaseGrant struct {
	alloc resources.Allocation
	err   error
}

type startupFailures struct {
	count    int
	lastCode int
	stderr   string
}

// Start creates the node daemon, serves it on cfg.ListenAddress and
// registers it with the control store.
func Start(cfg Config) (*Raylet, error) {
	if cfg.NodeID.IsNil() {
		cfg.NodeID = ids.New()
	}
	if err := resources.Validate(cfg.Resources); err != nil {
		return nil, fmt.Errorf("raylet: node resources: %w", err)
	}
	if len(cfg.GPUIDs) != int(cfg.Resources[resources.GPU]) {
		return nil, errs.Invalidf("raylet: %d GPU ids for %v GPUs", len(cfg.GPUIDs), cfg.Resources[resources.GPU])
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	lifeline, err := proc.NewLifeline()
	if err != nil {
		return nil, fmt.Errorf("raylet: %w", err)
	}
	localsock.CleanStale() // socket files of killed processes
	lis, err := rpc.Listen(cfg.ListenAddress)
	if err != nil {
		lifeline.Close()
		return nil, err
	}
	host, _ := os.Hostname()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Raylet{
		cfg: cfg, nodeID: cfg.NodeID, address: lis.Addr(), hostname: host, lifeline: lifeline,
		pool: rpc.NewPool(cfg.Token), server: rpc.NewServer(cfg.Token),
		log:     slog.Default().With("component", "raylet"),
		res:     resources.NewNodeResources(cfg.Resources, cfg.GPUIDs),
		workers: map[ids.ID]*worker{}, idle: map[poolKey][]*worker{}, leases: map[ids.ID]*lease{},
		failures: map[ids.ID]*startupFailures{}, binaries: map[ids.ID]string{}, jobEnv: map[ids.ID][]string{},
		hosts: map[ids.ID][]*worker{}, hostStarting: map[ids.ID]chan struct{}{}, deathCauses: map[ids.ID]*pb.ErrorInfo{},
		ctx: ctx, cancel: cancel,
	}
	if r.store, err = newStore(cfg, lis.Addr()); err != nil {
		lis.Close()
		lifeline.Close()
		cancel()
		return nil, err
	}
	conn, err := r.pool.Get(cfg.GCSAddress)
	if err != nil {
		lis.Close()
		r.store.Close()
		lifeline.Close()
		cancel()
		return nil, err
	}
	r.gcs = pb.NewControlStoreClient(conn)
	pb.RegisterNodeDaemonServer(r.server, r)
	lis.Serve(r.server, &r.wg)
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if err := r.register(rctx); err != nil {
		r.Stop()
		return nil, fmt.Errorf("raylet: register with control store at %s: %w", cfg.GCSAddress, err)
	}
	if err := r.startMonitor(); err != nil {
		r.Stop()
		return nil, err
	}
	r.wg.Add(1)
	go r.heartbeatLoop()
	return r, nil
}

// Address is the daemon's gRPC address.
func (r *Raylet) Address() string { return r.address }

// NodeID is the node's id.
func (r *Raylet) NodeID() ids.ID { return r.nodeID }

// Stop kills all workers, unregisters the node, and stops serving.
func (r *Raylet) Stop() {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return
	}
	r.stopping = true
	mon := r.monitor
	all := make([]*worker, 0, len(r.workers))
	for _, w := range r.workers {
		all = append(all, w)
	}
	pend := r.pending
	r.pending = nil
	r.mu.Unlock()
	if mon != nil {
		mon.Stop()
	}
	for _, p := range pend {
		p.ready <- leaseGrant{err: errs.Systemf("raylet: node is stopping")}
	}
	for _, w := range all {
		w.kill()
	}
	for _, w := range all {
		<-w.exited
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = r.gcs.UnregisterNode(ctx, &pb.UnregisterNodeRequest{NodeId: r.nodeID.Bytes()})
	cancel()
	r.cancel()
	r.server.Stop()
	r.wg.Wait()
	r.store.Close()
	r.pool.Close()
	r.lifeline.Close()
}

func (r *Raylet) nodeInfo() *pb.NodeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &pb.NodeInfo{
		NodeId: r.nodeID.Bytes(), Address: r.address, Hostname: r.hostname,
		Total: &pb.Resources{Amounts: r.res.Total()}, Available: &pb.Resources{Amounts: r.res.Available()},
		Labels: r.cfg.Labels, State: pb.NodeState_NODE_STATE_ALIVE, StartUnixMs: time.Now().UnixMilli(),
		NumWorkers: int32(len(r.workers)),
	}
}

func (r *Raylet) register(ctx context.Context) error {
	_, err := r.gcs.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: r.nodeInfo()})
	return err
}

func (r *Raylet) heartbeatLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.HeartbeatPeriod)
	defer t.Stop()
	for beat := 1; ; beat++ {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		if beat%10 == 0 {
			r.reapIdleWorkers()
		}
		r.mu.Lock()
		req := &pb.NodeHeartbeatRequest{NodeId: r.nodeID.Bytes(), Available: &pb.Resources{Amounts: r.res.Available()},
			PendingLeases: int32(len(r.pending)), NumWorkers: int32(len(r.workers))}
		for _, p := range r.pending {
			req.PendingDemands = append(req.PendingDemands, &pb.Resources{Amounts: p.res})
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		reply, err := r.gcs.NodeHeartbeat(ctx, req)
		if err == nil && reply.GetUnknownNode() {
			err = r.register(ctx)
		}
		if err == nil {
			r.refreshCluster(ctx)
		}
		cancel()
	}
}

func (r *Raylet) refreshCluster(ctx context.Context) {
	reply, err := r.gcs.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return
	}
	nodes := make([]scheduler.Node, 0, len(reply.GetNodes()))
	for _, n := range reply.GetNodes() {
		nodes = append(nodes, scheduler.Node{ID: ids.MustFromBytes(n.GetNodeId()).String(), Address: n.GetAddress(), Alive: n.GetState() == pb.NodeState_NODE_STATE_ALIVE,
			Total: resources.Set(n.GetTotal().GetAmounts()), Available: resources.Set(n.GetAvailable().GetAmounts()), Labels: n.GetLabels()})
	}
	r.mu.Lock()
	r.cluster = nodes
	r.mu.Unlock()
}

// ---------------------------------------------------------------- leases

// RequestLease grants a worker for the request's resources, tells the
// caller to ask another node (spillback), waits for local resources, or
// fails with InfeasibleError when no node can ever satisfy the request.
func (r *Raylet) RequestLease(ctx context.Context, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	want := resources.Set(req.GetResources().GetAmounts())
	if err := resources.Validate(want); err != nil {
		return nil, errs.Invalidf("raylet: %v", err)
	}
	jobID, ok := ids.FromBytes(req.GetJobId())
	if !ok {
		return nil, errs.Invalidf("raylet: lease request without a job id")
	}
	refreshed := false
pick:
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return nil, errs.Systemf("raylet: node is stopping")
	}
	if f := r.failures[jobID]; f != nil && f.count >= r.cfg.MaxStartupFailures {
		err := r.startupErrorLocked(jobID)
		r.mu.Unlock()
		return nil, err
	}
	local := scheduler.Node{ID: r.nodeID.String(), Address: r.address, Alive: true, Total: r.res.Total(), Available: r.res.Available(), Labels: r.cfg.Labels}
	nodes := []scheduler.Node{local}
	for _, n := range r.cluster {
		if n.ID != local.ID {
			nodes = append(nodes, n)
		}
	}
	r.tie++
	strategy := scheduler.Default
	if req.GetStrategy() == pb.SchedulingStrategy_SCHEDULING_STRATEGY_SPREAD {
		strategy = scheduler.Spread
	}
	d := scheduler.Pick(nodes, local.ID, scheduler.Request{Resources: want, Strategy: strategy}, scheduler.DefaultConfig(), r.tie)
	if d.Kind == scheduler.Infeasible && !refreshed {
		// The view may predate a node that just joined: look again once.
		r.mu.Unlock()
		refreshed = true
		r.refreshCluster(ctx)
		goto pick
	}
	if d.Kind == scheduler.Infeasible {
		totals := make([]string, 0, len(nodes))
		for _, n := range nodes {
			totals = append(totals, n.Total.String())
		}
		r.mu.Unlock()
		return nil, &errs.InfeasibleError{Function: req.GetSchedulingKey(), Request: want.String(), Cluster: strings.Join(totals, ", ")}
	}
	if d.Node != local.ID && !req.GetGrantOrReject() && (d.Kind == scheduler.Place || !want.Fits(local.Total)) {
		for _, n := range nodes {
			if n.ID == d.Node {
				r.mu.Unlock()
				return &pb.LeaseReply{SpillbackAddress: n.Address}, nil
			}
		}
	}
	p := &pendingLease{req: req, res: want, ready: make(chan leaseGrant, 1)}
	r.pending = append(r.pending, p)
	r.dispatchLocked()
	r.mu.Unlock()
	var grant leaseGrant
	select {
	case grant = <-p.ready:
	case <-ctx.Done():
		r.mu.Lock()
		removed := r.removePendingLocked(p)
		r.mu.Unlock()
		if !removed { // granted concurrently: give it back
			if g := <-p.ready; g.err == nil {
				r.releaseAlloc(g.alloc)
			}
		}
		return nil, ctx.Err()
	}
	if grant.err != nil {
		return nil, grant.err
	}
	shared := req.GetActor() && r.cfg.MaxActorsPerProcess > 1 &&
		grant.alloc.Resources[resources.CPU] == 0 && len(grant.alloc.GPUIDs) == 0
	var (
		w   *worker
		err error
	)
	if shared {
		w, err = r.acquireHost(ctx, jobID)
	} else {
		w, err = r.acquireWorker(ctx, jobID, grant.alloc, req.GetActor())
	}
	if err != nil {
		r.releaseAlloc(grant.alloc)
		return nil, err
	}
	l := &lease{id: ids.New(), w: w, alloc: grant.alloc, actor: req.GetActor(), shared: shared, owner: ids.MustFromBytes(req.GetOwnerId()),
		retriable: req.GetRetriable(), started: time.Now()}
	r.mu.Lock()
	if w.dead {
		r.mu.Unlock()
		r.releaseAlloc(grant.alloc)
		return nil, errs.Systemf("raylet: worker died while being leased")
	}
	if !shared {
		w.lease = l
	}
	r.leases[l.id] = l
	r.mu.Unlock()
	gpus := map[string]string{}
	if len(grant.alloc.GPUIDs) > 0 {
		gpus["GPU"] = strings.Join(grant.alloc.GPUIDs, ",")
	}
	return &pb.LeaseReply{LeaseId: l.id.Bytes(), WorkerAddress: w.addr, WorkerId: w.id.Bytes(), NodeId: r.nodeID.Bytes(),
		GpuIds: gpus, WorkerPid: int32(w.pid), Shared: shared}, nil
}

func (r *Raylet) removePendingLocked(p *pendingLease) bool {
	for i, q := range r.pending {
		if q == p {
			r.pending = append(r.pending[:i], r.pending[i+1:]...)
			return true
		}
	}
	return false
}

// releaseAlloc returns an allocation and grants waiting leases.
func (r *Raylet) releaseAlloc(a resources.Allocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.res.Release(a)
	r.dispatchLocked()
}

// dispatchLocked grants pending leases, in order, while resources allow.
// A request that does not fit yet does not block smaller ones behind it.
func (r *Raylet) dispatchLocked() {
	kept := r.pending[:0]
	for _, p := range r.pending {
		if alloc, ok := r.res.Allocate(p.res); ok {
			p.ready <- leaseGrant{alloc: alloc}
			continue
		}
		kept = append(kept, p)
	}
	for i := len(kept); i < len(r.pending); i++ {
		r.pending[i] = nil
	}
	r.pending = kept
}

// ReturnLease puts the worker back in the idle pool (or stops it when the
// caller says it is exiting) and frees the lease's resources.
func (r *Raylet) ReturnLease(_ context.Context, req *pb.ReturnLeaseRequest) (*pb.ReturnLeaseReply, error) {
	id := ids.MustFromBytes(req.GetLeaseId())
	r.mu.Lock()
	l, ok := r.leases[id]
	if !ok {
		r.mu.Unlock()
		return &pb.ReturnLeaseReply{}, nil
	}
	delete(r.leases, id)
	w := l.w
	r.freeLeaseLocked(l)
	if l.shared {
		// One actor left a shared process; the process goes with its last.
		w.hosted--
		kill := w.hosted <= 0 && !w.dead
		if kill {
			r.removeHostLocked(w)
			w.killReason = "its last actor left"
		}
		r.dispatchLocked()
		r.mu.Unlock()
		if kill {
			w.kill()
		}
		return &pb.ReturnLeaseReply{}, nil
	}
	w.lease = nil
	kill := req.GetWorkerExiting() || l.actor || w.dead
	if !kill {
		w.idleSince = time.Now()
		r.idle[w.key] = append(r.idle[w.key], w)
	}
	killNow := kill && !w.dead // w.dead is guarded by r.mu
	r.dispatchLocked()
	r.mu.Unlock()
	if killNow {
		w.kill()
	}
	return &pb.ReturnLeaseReply{}, nil
}

func (r *Raylet) freeLeaseLocked(l *lease) {
	if l.blocked != nil {
		r.res.Sub(l.blocked)
		l.blocked = nil
	}
	_ = r.res.Release(l.alloc)
}

// NotifyBlocked lends a blocked worker's CPUs to other leases while it
// waits in Get, and takes them back when it resumes (possibly
// oversubscribing for a moment, as Ray does).
func (r *Raylet) NotifyBlocked(_ context.Context, req *pb.BlockedRequest) (*pb.BlockedReply, error) {
	wid := ids.MustFromBytes(req.GetWorkerId())
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.workers[wid]
	if !ok || w.lease == nil {
		return &pb.BlockedReply{}, nil
	}
	l := w.lease
	cpu := l.alloc.Resources[resources.CPU]
	switch {
	case req.GetBlocked() && l.blocked == nil && cpu > 0:
		l.blocked = resources.Set{resources.CPU: cpu}
		r.res.Add(l.blocked)
		r.dispatchLocked()
	case !req.GetBlocked() && l.blocked != nil:
		r.res.Sub(l.blocked)
		l.blocked = nil
	}
	return &pb.BlockedReply{}, nil
}

// KillWorker stops a worker process (ray.Kill, forced cancel).
func (r *Raylet) KillWorker(_ context.Context, req *pb.KillWorkerRequest) (*pb.KillWorkerReply, error) {
	r.mu.Lock()
	w, ok := r.workers[ids.MustFromBytes(req.GetWorkerId())]
	if ok {
		w.killReason = req.GetReason()
	}
	r.mu.Unlock()
	if ok {
		w.kill()
	}
	return &pb.KillWorkerReply{}, nil
}

// NodeStats reports the node's resources, store use and memory.
func (r *Raylet) NodeStats(_ context.Context, req *pb.NodeStatsRequest) (*pb.NodeStatsReply, error) {
	st := r.store.Stats(int(max(req.GetLargest(), 0)))
	info := r.nodeInfo()
	r.mu.Lock()
	info.PendingLeases = int32(len(r.pending))
	for _, p := range r.pending {
		info.PendingDemands = append(info.PendingDemands, &pb.Resources{Amounts: p.res})
	}
	r.mu.Unlock()
	return &pb.NodeStatsReply{Node: info, StoreObjects: st.Objects, StoreBytes: st.Used, Store: st, Memory: r.memoryUsage()}, nil
}

// Store exposes the node's object store.
func (r *Raylet) Store() *objstore.Store { return r.store }
