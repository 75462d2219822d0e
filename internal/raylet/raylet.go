package raylet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/faults"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/memmonitor"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/internal/wirecheck"
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
	objects  *objects       // the object manager: pulls and the transfer endpoint (pull.go)
	lifeline *proc.Lifeline // its read end goes to every worker; workers exit when it closes
	logs     *logPublisher  // worker output to the control store, for drivers (logpub.go)
	// headPersistent: the control store said it keeps its state in
	// storage (RegisterNodeReply), so losing it for a while is survived.
	headPersistent atomic.Bool
	headTimeout    atomic.Int64 // a time.Duration: Config.HeadTimeout, else the control store's node timeout
	log            *slog.Logger

	mu           sync.Mutex
	res          *resources.NodeResources    // guarded by mu
	workers      map[ids.ID]*worker          // guarded by mu
	idle         map[poolKey][]*worker       // guarded by mu
	leases       map[ids.ID]*lease           // guarded by mu
	unreported   []*pb.WorkerDiedRequest     // guarded by mu; worker deaths the control store did not hear of (reportDeath)
	queue        []*pendingLease             // guarded by mu; FIFO of lease requests waiting (queue.go)
	active       map[string]*pendingLease    // guarded by mu; RequestLease calls in progress, by request id
	leaseOf      map[string]*lease           // guarded by mu; granted leases, by request id
	bundles      bundleTable                 // guarded by mu; placement-group bundles prepared here, and groups removed (bundles.go)
	failures     map[ids.ID]*startupFailures // guarded by mu; by job
	binaries     map[ids.ID]string           // guarded by mu; job -> executable path
	jobEnv       map[ids.ID][]string         // guarded by mu; job -> extra worker environment
	hosts        map[ids.ID][]*worker        // guarded by mu; job -> processes hosting shared actors
	hostStarting map[ids.ID]chan struct{}    // guarded by mu; job -> closed when its new host is up
	cluster      []scheduler.Node            // guarded by mu; last view from the control store
	viewAt       time.Time                   // guarded by mu; when cluster was asked for (zero: never)
	viewVersion  uint64                      // guarded by mu; the control store's view version cluster reflects (deltas since it)
	reported     []scheduler.Node            // guarded by mu; the nodes as the control store last reported them (cluster less local adjustments)
	tie          uint64                      // guarded by mu
	spread       uint64                      // guarded by mu; SPREAD's round robin: moves on once per spread request placed
	stopping     bool                        // guarded by mu; no new leases or workers (Stop, or declared dead)
	stopped      bool                        // guarded by mu; Stop ran
	deadErr      error                       // guarded by mu; why the control store declared the node dead (nil: it did not)
	deathCauses  map[ids.ID]*pb.ErrorInfo    // guarded by mu; workers killed for a reason owners should see
	causeOrder   []ids.ID                    // guarded by mu; oldest first, bounds deathCauses
	oomKills     int64                       // guarded by mu

	monitor *memmonitor.Monitor // nil when disabled
	metrics *nodeMetrics        // the node's Prometheus registry (metrics.go)
	rt      runtimeState        // runtime environments and job entrypoints (runtimeenv.go, entrypoint.go)
	serve   *serveProxy         // the node's Serve HTTP proxy (serveproxy.go); nil: none; set by Start

	serveGRPC *serveGRPC // the node's Serve gRPC proxy (servegrpc.go); nil: none; set by Start

	// done is closed once the node has stopped its workers because the
	// control store declared it dead (see Done).
	done chan struct{}

	started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type poolKey struct {
	job  ids.ID
	gpus string // CUDA_VISIBLE_DEVICES value
	env  string // runtimeenv.Key of the lease's own runtime env ("": the job's)
}

type lease struct {
	id      ids.ID
	w       *worker
	alloc   resources.Allocation
	actor   bool
	blocked resources.Set // CPU released while the worker is blocked in Get
	owner   ids.ID        // the process holding the lease (zero: the control store, for actors)
	// ownerNode is the node the owner runs on (zero: unknown, or a driver
	// on a host without a node); the lease dies with it.
	ownerNode ids.ID
	shared    bool   // an actor on a process shared with other actors
	request   string // LeaseRequest.request_id, when given
	// retriable: the owner retries its tasks if the worker dies; the
	// memory monitor kills these first, newest first.
	retriable bool
	started   time.Time
	// epoch: the control store incarnation that asked for an actor's
	// lease (LeaseRequest.control_store_epoch; see ReleaseUnused).
	epoch uint64
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
	if err := resources.ValidateTotal(cfg.Resources); err != nil {
		return nil, fmt.Errorf("raylet: node resources: %w", err)
	}
	if err := scheduler.ValidateLabels(cfg.Labels); err != nil {
		return nil, errs.Invalidf("raylet: node labels: %v", err)
	}
	cfg.Labels = maps.Clone(cfg.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[scheduler.NodeIDLabel] = cfg.NodeID.String()
	if len(cfg.GPUIDs) != int(cfg.Resources[resources.GPU]) {
		return nil, errs.Invalidf("raylet: %d GPU ids for %v GPUs", len(cfg.GPUIDs), cfg.Resources[resources.GPU])
	}
	if cfg.HostID == "" {
		h := resources.DetectHost()
		cfg.HostID, cfg.HostMemory = h.ID, h.MemoryBytes
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	lifeline, err := proc.NewLifeline()
	if err != nil {
		return nil, fmt.Errorf("raylet: %w", err)
	}
	localsock.CleanStale() // socket files of killed processes
	lis, err := rpc.ListenOn(cfg.ListenAddress, cfg.AdvertiseHost)
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
		active: map[string]*pendingLease{}, leaseOf: map[string]*lease{},
		failures: map[ids.ID]*startupFailures{}, binaries: map[ids.ID]string{}, jobEnv: map[ids.ID][]string{},
		hosts: map[ids.ID][]*worker{}, hostStarting: map[ids.ID]chan struct{}{}, deathCauses: map[ids.ID]*pb.ErrorInfo{},
		started: time.Now(), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	r.metrics = newNodeMetrics(r)
	if r.store, err = newStore(cfg, lis.Addr()); err != nil {
		lis.Close()
		lifeline.Close()
		cancel()
		return nil, err
	}
	if r.objects, err = startObjects(r); err != nil {
		lis.Close()
		r.store.Close()
		lifeline.Close()
		cancel()
		return nil, err
	}
	conn, err := r.pool.Get(cfg.GCSAddress)
	if err != nil {
		lis.Close()
		r.objects.close()
		r.store.Close()
		lifeline.Close()
		cancel()
		return nil, err
	}
	r.gcs = pb.NewControlStoreClient(conn)
	r.logs = startLogPublisher(r) // before any worker can start
	pb.RegisterNodeDaemonServer(r.server, r)
	lis.Serve(r.server, &r.wg)
	if err := r.startServeGRPC(); err != nil { // before the HTTP proxy, whose route follower feeds it
		r.Stop()
		return nil, err
	}
	// The Serve proxy listens before the node registers, so that its
	// address is in the node's record (NodeInfo.serve_address).
	if err := r.startServeProxy(); err != nil {
		r.Stop()
		return nil, err
	}
	rctx, rcancel := context.WithTimeout(ctx, registerTimeout)
	defer rcancel()
	// A control store not reachable yet (its host's link just came up, it
	// is starting) is asked again until registerTimeout.
	err = r.register(rctx)
	for backoff := 50 * time.Millisecond; err != nil && noAnswer(err) && rctx.Err() == nil; backoff = min(2*backoff, time.Second) {
		if !stopper.Sleep(rctx, backoff) {
			break
		}
		err = r.register(rctx)
	}
	if err != nil {
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

// Done is closed when the node daemon has stopped working on its own:
// its control store, keeping no storage, is gone (see Config.HeadTimeout
// and Err), or the control store declared it dead (it was silent past the node
// timeout: partitioned, paused or starved) and answered its heartbeat with
// a *errs.NodeDiedError. By then the daemon has killed all its workers,
// failed its queued lease requests and refuses new ones, and sends no
// more heartbeats; Err says why. It never comes back under its node id:
// whoever runs it should Stop it and exit, or start a new node daemon,
// which registers under a new id (Ray's raylet exits in this case).
func (r *Raylet) Done() <-chan struct{} { return r.done }

// Err is why the node stopped once Done is closed, and nil before: the
// *errs.NodeDiedError the control store declared it dead with, or an
// *errs.HeadLostError (the control store, which keeps no storage, is gone:
// see Config.HeadTimeout).
func (r *Raylet) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.deadErr
}

// fence stops the node's work after the control store declared it dead
// (its actors have been restarted elsewhere and owners have given up on
// its workers, so nothing of its old self may run on) or is gone without
// storage (err is a HeadLostError: the cluster is gone). It kills every worker
// and waits for them, fails queued lease requests with err, refuses new
// ones, stops the memory monitor and closes done. Stop does the rest.
func (r *Raylet) fence(err error) {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return
	}
	r.deadErr = err
	n := r.haltLocked(err)
	r.mu.Unlock()
	if errors.Is(err, errs.ErrHeadLost) {
		r.log.Error("lost the cluster's head (gone, or this node is cut off from it); stopping all this node's workers", "node", r.nodeID, "workers", n, "err", err)
	} else {
		r.log.Error("the control store declared this node dead; stopping all its workers", "node", r.nodeID, "workers", n, "err", err)
	}
	close(r.done)
}

// haltLocked marks the node stopping and fails its queued lease requests
// with err; then, with r.mu released for the while, stops the memory
// monitor and kills every worker and waits for them. It returns how many
// workers it stopped.
func (r *Raylet) haltLocked(err error) int {
	r.stopping = true
	mon := r.monitor
	all := make([]*worker, 0, len(r.workers))
	for _, w := range r.workers {
		all = append(all, w)
	}
	r.failQueuedLocked(func(*pendingLease) bool { return true }, err)
	r.mu.Unlock()
	defer r.mu.Lock()
	if mon != nil {
		mon.Stop()
	}
	r.stopEntrypoints() // job entrypoints die with the node (entrypoint.go)
	r.stopReplicas()    // and MCP server and Serve replicas (replica.go)
	for _, w := range all {
		w.kill()
	}
	for _, w := range all {
		<-w.exited
	}
	return len(all)
}

// Stop kills all workers, unregisters the node, and stops serving.
func (r *Raylet) Stop() {
	r.stopServeProxy() // first: no new requests while replicas stop
	r.stopServeGRPC()
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	r.haltLocked(errStopping())
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = r.gcs.UnregisterNode(ctx, &pb.UnregisterNodeRequest{NodeId: r.nodeID.Bytes()})
	cancel()
	r.cancel()
	r.server.Stop()
	r.wg.Wait()
	r.objects.close()
	r.store.Close()
	r.pool.Close()
	r.lifeline.Close()
}

func (r *Raylet) nodeInfo() *pb.NodeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	pending, infeasible := r.demandsLocked()
	return &pb.NodeInfo{
		NodeId: r.nodeID.Bytes(), Address: r.address, Hostname: r.hostname,
		Total: &pb.Resources{Amounts: r.res.Total()}, Available: &pb.Resources{Amounts: r.res.Available()},
		Labels: r.cfg.Labels, State: pb.NodeState_NODE_STATE_ALIVE, StartUnixMs: r.started.UnixMilli(),
		NumWorkers: int32(len(r.workers)), PendingLeases: int32(len(pending)), PendingDemands: pending,
		InfeasibleDemands: infeasible, HostId: r.cfg.HostID, HostMemory: r.cfg.HostMemory,
		ObjectStoreCapacity: r.store.Capacity(), ServeAddress: r.serveAdvertisedAddress(),
		ServeGrpcAddress: r.serveGRPCAdvertisedAddress(),
	}
}

func (r *Raylet) register(ctx context.Context) error {
	reply, err := r.gcs.RegisterNode(ctx, &pb.RegisterNodeRequest{Node: r.nodeInfo()})
	if err == nil {
		r.headPersistent.Store(reply.GetPersistent())
		timeout := r.cfg.HeadTimeout
		if timeout <= 0 {
			timeout = time.Duration(reply.GetNodeTimeoutMs()) * time.Millisecond
		}
		if timeout <= 0 {
			timeout = DefaultHeadTimeout
		}
		r.headTimeout.Store(int64(timeout))
	}
	return err
}

// headLost decides, after a heartbeat, whether the control store is gone
// with the cluster. One that keeps its state in storage is waited for
// (restarted on the same address, it takes the cluster over) for
// HeadReconnectTimeout of no answer; a new control store there that does
// not know this node has it register again. Otherwise
// it is when it answered that it does not know this node (a new control
// store on the same address); when it could not be reached (the
// connection refused, or no route: nothing listens there, or this node
// is cut off) since lastAnswer for timeout (the head timeout); and when
// it was reached but silent (calls time out: stopped, starved, or the
// link drops everything) for silentHeadTimeout, as Ray's raylet waits
// for its GCS, so that a stalled head is outlived. It returns the error
// to stop with, or nil.
//
// missed counts the heartbeats in a row that got no answer, this one
// included: silence counts only over at least minMissed of them, so that
// a node whose own process was starved or stopped for a while (its clock
// ran, its heartbeats did not) does not take that for the head's.
func headLost(persistent bool, err error, unknown bool, missed int, lastAnswer, now time.Time, timeout time.Duration, head string) error {
	since := now.Sub(lastAnswer)
	switch {
	case persistent && missed >= minMissed && noAnswer(err) && since >= HeadReconnectTimeout:
		return &errs.HeadLostError{Head: head, Reason: fmt.Sprintf("it keeps its state in storage, but did not come back within %s "+
			"(last error: %v)", HeadReconnectTimeout, err)}
	case persistent:
		return nil
	case err == nil && unknown:
		return &errs.HeadLostError{Head: head, Reason: "it answers as a new control store that does not know this node " +
			"(it was started again, and keeps no storage, so the cluster's state is gone)"}
	case missed < minMissed:
		return nil
	case unreachable(err) && since >= timeout:
		return &errs.HeadLostError{Head: head, Reason: fmt.Sprintf("it could not be reached for %s (the head is gone, or this node is cut off "+
			"from it, which the head takes for this node's death), and it keeps no storage (last error: %v)", since.Round(100*time.Millisecond), err)}
	case noAnswer(err) && since >= silentHeadTimeout:
		return &errs.HeadLostError{Head: head, Reason: fmt.Sprintf("no answer for %s, and it keeps no storage (last error: %v)",
			since.Round(100*time.Millisecond), err)}
	}
	return nil
}

// HeadReconnectTimeout is how long a node waits for a control store
// that keeps its state in storage to come back (restarted on the same
// address) before it gives the cluster up (Ray's
// gcs_rpc_server_reconnect_timeout_s).
const HeadReconnectTimeout = time.Minute

// silentHeadTimeout is how long a control store that is reached but does
// not answer (stopped, starved) may stay silent before its nodes give it
// up (Ray's gcs_rpc_server_reconnect_timeout_s).
const silentHeadTimeout = time.Minute

// unreachable reports whether a call's error says the peer could not be
// reached at all (refused, no route), as opposed to being silent.
func unreachable(err error) bool {
	return errors.Is(err, errs.ErrUnavailable) && !errors.Is(err, errs.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded)
}

// errStopping answers lease requests and grants on a node that is
// stopping. It is Unavailable, as a node already gone would be, so that
// owners ask another node instead of failing their tasks.
func errStopping() error {
	return &errs.Status{Kind: errs.KindUnavailable, Message: "raylet: node is stopping"}
}

// registerTimeout bounds a node daemon's registration at start, retries
// included.
const registerTimeout = 10 * time.Second

// minMissed is how many heartbeats in a row must go unanswered before
// the head counts as lost.
const minMissed = 2

// noAnswer reports whether a call's error means the peer was not heard
// (unreachable, or silent past the call's deadline), not that it
// answered with an error.
func noAnswer(err error) bool {
	return errors.Is(err, errs.ErrUnavailable) || errors.Is(err, errs.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

func (r *Raylet) heartbeatLoop() {
	defer r.wg.Done()
	t := time.NewTicker(r.cfg.HeartbeatPeriod)
	defer t.Stop()
	lastAnswer, missed := time.Now(), 0
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
		pending, infeasible := r.demandsLocked()
		req := &pb.NodeHeartbeatRequest{NodeId: r.nodeID.Bytes(), Available: &pb.Resources{Amounts: r.res.Available()},
			Total:         &pb.Resources{Amounts: r.res.Total()}, // changes with placement-group bundles
			PendingLeases: int32(len(pending)), PendingDemands: pending, InfeasibleDemands: infeasible, NumWorkers: int32(len(r.workers))}
		r.mu.Unlock()
		// A call waits at most half the head timeout, so that a head cut
		// off (calls time out rather than fail) misses minMissed beats
		// within about the timeout.
		headTimeout := time.Duration(r.headTimeout.Load())
		ctx, cancel := context.WithTimeout(r.ctx, min(5*time.Second, headTimeout/2))
		reply, err := r.gcs.NodeHeartbeat(ctx, req)
		if noAnswer(err) {
			missed++
		} else {
			missed = 0
		}
		if lost := headLost(r.headPersistent.Load(), err, reply.GetUnknownNode(), missed, lastAnswer, time.Now(), headTimeout, r.cfg.GCSAddress); lost != nil {
			cancel()
			r.fence(lost)
			return
		}
		if err == nil {
			lastAnswer = time.Now()
		}
		if err == nil && reply.GetUnknownNode() {
			// A control store that keeps its state in storage but has no
			// record of this id (written off while it restarted, say):
			// register again.
			err = r.register(ctx)
		}
		if errors.Is(err, errs.ErrNodeDied) {
			cancel()
			r.fence(err)
			return
		}
		if err == nil {
			r.refreshCluster(ctx)
			r.resendDeaths()
		}
		cancel()
	}
}

func (r *Raylet) refreshCluster(ctx context.Context) {
	r.mu.Lock()
	r.viewAt = time.Now()
	r.mu.Unlock()
	r.mu.Lock()
	since := r.viewVersion
	r.mu.Unlock()
	reply, err := r.gcs.GetNodes(ctx, &pb.GetNodesRequest{SinceVersion: since})
	if err != nil {
		return
	}
	r.mu.Lock()
	// A reply older than the view (a concurrent refresh answered later)
	// holds nothing newer: skip it, or it would put back older records.
	var died []ids.ID
	if reply.GetFull() || reply.GetVersion() >= r.viewVersion {
		r.reported = mergeView(r.reported, reply)
		r.viewVersion = reply.GetVersion()
		for _, n := range reply.GetNodes() {
			if n.GetState() == pb.NodeState_NODE_STATE_DEAD {
				died = append(died, ids.MustFromBytes(n.GetNodeId()))
			}
		}
	}
	// The view starts again from what the nodes reported: room taken from
	// it by spillbacks since (spillLocked) is given back even when the node
	// it went to has not changed (a lease that came and went between two
	// of its reports).
	r.cluster = slices.Clone(r.reported)
	r.rebalanceLocked()
	r.mu.Unlock()
	if len(died) > 0 {
		r.ownersGone(func(_, node ids.ID) bool { return slices.Contains(died, node) }, "the node of the process that leased it died")
	}
}

// mergeView applies a GetNodes reply to the view: a full one replaces it;
// a delta replaces the nodes it lists and drops the dead ones among them.
// The result is sorted by id.
func mergeView(view []scheduler.Node, reply *pb.GetNodesReply) []scheduler.Node {
	byID := make(map[string]scheduler.Node, len(view)+len(reply.GetNodes()))
	if !reply.GetFull() {
		for _, n := range view {
			byID[n.ID] = n
		}
	}
	for _, n := range reply.GetNodes() {
		id := ids.MustFromBytes(n.GetNodeId()).String()
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			delete(byID, id)
			continue
		}
		byID[id] = scheduler.Node{ID: id, Address: n.GetAddress(), Alive: true, Total: resources.Set(n.GetTotal().GetAmounts()),
			Available: resources.Set(n.GetAvailable().GetAmounts()), Labels: n.GetLabels()}
	}
	out := make([]scheduler.Node, 0, len(byID))
	for _, n := range byID {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b scheduler.Node) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// viewFreshness is how old the cluster view may be when a lease request
// would wait here or is spread: older, the view is asked for again first
// (it is otherwise refreshed with each heartbeat), so that a node that
// joined or freed room since is seen, not passed over.
const viewFreshness = 100 * time.Millisecond

// claimRefreshLocked reports whether the view is older than
// viewFreshness and, if so, marks it as being refreshed, so that
// concurrent requests ask the control store once.
func (r *Raylet) claimRefreshLocked() bool {
	now := time.Now()
	if now.Sub(r.viewAt) <= viewFreshness {
		return false
	}
	r.viewAt = now
	return true
}

// ---------------------------------------------------------------- leases

// RequestLease grants a worker for the request's resources, tells the
// caller to ask another node (spillback), or queues the request until one
// of those can be answered; see the LeaseRequest comment in raygo.proto
// for the contract, infeasible requests included.
func (r *Raylet) RequestLease(ctx context.Context, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	arrived := time.Now()
	want := resources.Set(req.GetResources().GetAmounts())
	if err := resources.Validate(want); err != nil {
		return nil, errs.Invalidf("raylet: lease request: %v", err)
	}
	place := want.Clone()
	if pr := req.GetPlacementResources(); pr != nil {
		if err := resources.Validate(pr.GetAmounts()); err != nil {
			return nil, errs.Invalidf("raylet: lease request: placement resources: %v", err)
		}
		for k, v := range pr.GetAmounts() {
			place[k] = max(place[k], v)
		}
	}
	jobID, ok := ids.FromBytes(req.GetJobId())
	if !ok {
		return nil, errs.Invalidf("raylet: lease request without a job id")
	}
	if req.GetFailIfInfeasible() && req.GetQueueIfInfeasible() {
		return nil, errs.Invalidf("raylet: lease request sets both fail_if_infeasible and queue_if_infeasible")
	}
	if len(req.GetRequestId()) > maxRequestIDBytes {
		return nil, errs.Invalidf("raylet: lease request id of %d bytes exceeds %d", len(req.GetRequestId()), maxRequestIDBytes)
	}
	sched, err := wirecheck.Placement(req.GetStrategy(), req.GetScheduling(), place)
	if err != nil {
		return nil, err
	}
	strategy := sched.Strategy
	p := &pendingLease{req: req, res: want, place: place, sched: sched, reply: make(chan leaseAnswer, 1)}
	if rid := string(req.GetRequestId()); rid != "" {
		r.mu.Lock()
		if r.active[rid] != nil || r.leaseOf[rid] != nil {
			r.mu.Unlock()
			return nil, errs.Invalidf("raylet: lease request id %x is in use", rid)
		}
		r.active[rid] = p
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			delete(r.active, rid)
			r.mu.Unlock()
		}()
	}
	refreshed, groupChecked := false, false
pick:
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return nil, errStopping()
	}
	if g, ok := ids.FromBytes(req.GetScheduling().GetPlacementGroupId()); ok && r.bundles.removed[g] {
		r.mu.Unlock()
		return nil, &errs.PlacementGroupRemovedError{GroupID: g.String(), Function: req.GetSchedulingKey()}
	}
	if f := r.failures[jobID]; f != nil && f.count >= r.cfg.MaxStartupFailures {
		err := r.startupErrorLocked(jobID)
		r.mu.Unlock()
		return nil, err
	}
	nodes := r.viewLocked()
	d := r.pickLocked(nodes, p.sched)
	if !refreshed && (d.Kind == scheduler.Infeasible ||
		(d.Kind == scheduler.Queue || strategy == scheduler.Spread) && r.claimRefreshLocked()) {
		// The view may predate a node that just joined, or room freed
		// elsewhere: look again once before waiting here, or spreading.
		r.mu.Unlock()
		refreshed = true
		r.refreshCluster(ctx)
		goto pick
	}
	if strategy == scheduler.Spread && d.Kind == scheduler.Place {
		r.spread++
	}
	inGroup := len(req.GetScheduling().GetPlacementGroupId()) > 0
	if d.Kind == scheduler.Infeasible && inGroup && !groupChecked {
		// No node has the group's bundle resources: the group is not
		// created yet (its work waits for it), or it is gone.
		r.mu.Unlock()
		if err := r.groupRemoved(ctx, req); err != nil {
			return nil, err
		}
		groupChecked = true
		goto pick
	}
	switch {
	case d.Kind == scheduler.Infeasible && (req.GetQueueIfInfeasible() || inGroup):
		p.infeasible = true
	case d.Kind == scheduler.Infeasible:
		ie := infeasibleError(req, p.sched, nodes)
		r.mu.Unlock()
		if req.GetFailIfInfeasible() {
			return nil, ie
		}
		return &pb.LeaseReply{Infeasible: errs.ToInfo(ie)}, nil
	case d.Node != nodes[0].ID && (!req.GetGrantOrReject() && d.Kind == scheduler.Place || !scheduler.Allowed(nodes, nodes[0].ID, p.sched)):
		// Another node has room now (or this one may never hold the
		// request, even after a spillback here: too small, other labels,
		// another node's affinity).
		if r.spillLocked(nodes, d.Node, p) {
			r.mu.Unlock()
			return &pb.LeaseReply{SpillbackAddress: (<-p.reply).spill}, nil
		}
	}
	r.enqueueLocked(p)
	r.mu.Unlock()
	var a leaseAnswer
	select {
	case a = <-p.reply:
	case <-ctx.Done():
		r.mu.Lock()
		removed := r.removeQueuedLocked(p)
		r.mu.Unlock()
		if !removed { // answered concurrently: give a grant back
			if a := <-p.reply; a.err == nil && a.spill == "" && !a.canceled {
				r.releaseAlloc(a.alloc)
			}
		}
		return nil, ctx.Err()
	}
	switch {
	case a.err != nil:
		return nil, a.err
	case a.canceled:
		return &pb.LeaseReply{Canceled: true}, nil
	case a.spill != "":
		return &pb.LeaseReply{SpillbackAddress: a.spill}, nil
	}
	reply, err := r.grant(ctx, p, jobID, a.alloc)
	if err == nil && len(reply.GetLeaseId()) > 0 {
		r.metrics.observePlacement(time.Since(arrived))
	}
	return reply, err
}

// maxRequestIDBytes bounds LeaseRequest.request_id.
const maxRequestIDBytes = 64

// grant hands the caller a worker for alloc: a process hosting shared
// actors for an actor that holds no CPU and no GPU, else a dedicated worker
// of the job (an idle one, or a new one).
func (r *Raylet) grant(ctx context.Context, p *pendingLease, jobID ids.ID, alloc resources.Allocation) (*pb.LeaseReply, error) {
	req := p.req
	// An actor in a placement group gets a process of its own: removing
	// the group stops the processes that hold its resources.
	shared := req.GetActor() && r.cfg.MaxActorsPerProcess > 1 &&
		alloc.Resources[resources.CPU] == 0 && len(alloc.GPUIDs) == 0 && len(req.GetScheduling().GetPlacementGroupId()) == 0 &&
		req.GetRuntimeEnv() == nil // an actor with a runtime env of its own gets a process of its own
	var (
		w   *worker
		err error
	)
	if err = faults.Eval("raylet/grant"); err != nil { // fault point: the grant fails (drop) or the node dies (exit)
		err = errs.Systemf("raylet: %v", err)
	} else if shared {
		w, err = r.acquireHost(ctx, jobID)
	} else {
		w, err = r.acquireWorker(ctx, jobID, alloc, req.GetActor(), req.GetRuntimeEnv())
	}
	if err != nil {
		r.releaseAlloc(alloc)
		return nil, err
	}
	l := &lease{id: ids.New(), w: w, alloc: alloc, actor: req.GetActor(), shared: shared, owner: ids.MustFromBytes(req.GetOwnerId()),
		retriable: req.GetRetriable(), started: time.Now(), request: string(req.GetRequestId()), epoch: req.GetControlStoreEpoch()}
	l.ownerNode, _ = ids.FromBytes(req.GetOwnerNodeId())
	r.mu.Lock()
	if w.dead {
		if shared {
			w.hosted--
		}
		r.mu.Unlock()
		r.releaseAlloc(alloc)
		return nil, errs.Systemf("raylet: worker died while being leased")
	}
	if !shared {
		w.lease = l
	}
	r.leases[l.id] = l
	if l.request != "" {
		r.leaseOf[l.request] = l
	}
	var kill *worker
	gone := ctx.Err() != nil || p.withdrawn
	// Its placement group was removed while the worker was being found
	// (CancelBundles saw no lease to stop): the bundle it came from is gone.
	group, inGroup := ids.FromBytes(req.GetScheduling().GetPlacementGroupId())
	groupGone := inGroup && r.bundles.removed[group]
	if gone || groupGone {
		// The caller is gone (it cancelled, its deadline passed, or it
		// withdrew the request with CancelLease): a reply would be lost
		// with the lease in it, and the lease would stay held by nobody.
		kill = r.returnLeaseLocked(l.id, false)
	}
	r.mu.Unlock()
	if kill != nil {
		kill.kill()
	}
	if groupGone && !gone {
		return nil, &errs.PlacementGroupRemovedError{GroupID: group.String(), Function: req.GetSchedulingKey()}
	}
	if gone {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return &pb.LeaseReply{Canceled: true}, nil
	}
	gpus := map[string]string{}
	if len(alloc.GPUIDs) > 0 {
		gpus["GPU"] = strings.Join(alloc.GPUIDs, ",")
	}
	return &pb.LeaseReply{LeaseId: l.id.Bytes(), WorkerAddress: w.addr, WorkerId: w.id.Bytes(), NodeId: r.nodeID.Bytes(),
		GpuIds: gpus, WorkerPid: int32(w.pid), Shared: shared}, nil
}

// CancelLease withdraws a lease request by its request id, whatever its
// state: queued, it is answered with canceled; being granted, the grant is
// given back and the call answered with canceled; granted already (the
// reply may have been lost as the caller gave up), the lease is given back.
// found reports whether the daemon knew the request.
func (r *Raylet) CancelLease(_ context.Context, req *pb.CancelLeaseRequest) (*pb.CancelLeaseReply, error) {
	rid := string(req.GetRequestId())
	if rid == "" {
		return nil, errs.Invalidf("raylet: CancelLease needs a request id")
	}
	r.mu.Lock()
	if p := r.active[rid]; p != nil {
		if r.removeQueuedLocked(p) {
			p.answer(leaseAnswer{canceled: true})
		} else {
			p.withdrawn = true // grant gives it back
		}
		r.mu.Unlock()
		return &pb.CancelLeaseReply{Found: true}, nil
	}
	l := r.leaseOf[rid]
	var kill *worker
	if l != nil {
		kill = r.returnLeaseLocked(l.id, false)
	}
	r.mu.Unlock()
	if kill != nil {
		kill.kill()
	}
	return &pb.CancelLeaseReply{Found: l != nil}, nil
}

// releaseAlloc returns an allocation and grants waiting leases.
func (r *Raylet) releaseAlloc(a resources.Allocation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.res.Release(a)
	r.dispatchLocked()
}

// ReturnLease puts the worker back in the idle pool (or stops it when the
// caller says it is exiting) and frees the lease's resources.
func (r *Raylet) ReturnLease(_ context.Context, req *pb.ReturnLeaseRequest) (*pb.ReturnLeaseReply, error) {
	id := ids.MustFromBytes(req.GetLeaseId())
	r.mu.Lock()
	kill := r.returnLeaseLocked(id, req.GetWorkerExiting())
	r.mu.Unlock()
	if kill != nil {
		kill.kill()
	}
	return &pb.ReturnLeaseReply{}, nil
}

// returnLeaseLocked ends lease id (nothing if it is unknown), and returns
// the worker to kill, if any, once r.mu is released.
func (r *Raylet) returnLeaseLocked(id ids.ID, exiting bool) *worker {
	l, ok := r.leases[id]
	if !ok {
		return nil
	}
	delete(r.leases, id)
	w := l.w
	r.freeLeaseLocked(l)
	defer r.dispatchLocked()
	if l.shared {
		// One actor left a shared process; the process goes with its last.
		w.hosted--
		if w.hosted <= 0 && !w.dead {
			r.removeHostLocked(w)
			w.killReason = "its last actor left"
			return w
		}
		return nil
	}
	w.lease = nil
	kill := exiting || l.actor || w.dead
	if !kill {
		w.idleSince = time.Now()
		r.idle[w.key] = append(r.idle[w.key], w)
	}
	if kill && !w.dead { // w.dead is guarded by r.mu
		return w
	}
	return nil
}

func (r *Raylet) freeLeaseLocked(l *lease) {
	if l.request != "" && r.leaseOf[l.request] == l {
		delete(r.leaseOf, l.request)
	}
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
	return &pb.NodeStatsReply{Node: info, StoreObjects: st.Objects, StoreBytes: st.Used, Store: st, Memory: r.memoryUsage(), Pulls: r.pullStats()}, nil
}

// Store exposes the node's object store.
func (r *Raylet) Store() *objstore.Store { return r.store }
