// Package tasksubmit is the owner's normal-task submitter: it carries
// tasks whose arguments are ready to leased workers, in the way of Ray's
// NormalTaskSubmitter (src/ray/core_worker/task_submission).
//
// Tasks are queued by scheduling class (their resource shape and
// strategy). While a class has work waiting, the submitter asks node
// daemons for worker leases (the local one first, then wherever it is
// spilled back to), at most Config.MaxPendingLeases at a time per class.
// A granted lease carries a push stream to the worker; tasks go down it
// in batches and replies come back the same way, so the node daemon is off
// the per-task path. Leases idle for Config.LeaseIdleTimeout go back, and
// so does a lease held for Config.LeaseSlice as soon as it runs dry with
// nothing queued (fairness between owners that submit without pause).
//
// Pipelining adapts: while replies report short run times a class sends
// up to depth tasks to each worker before the first comes back (doubling
// to Config.MaxPipeline), and one at a time as soon as a task runs longer.
// Pipelining never leaves a granted CPU idle while work waits behind a busy
// one: a lease that runs dry steals half of the tasks queued but not
// started on the busiest lease of its class (TaskBatch.steal), and a lease
// whose pipeline has not moved for Config.StuckAfter counts its queued
// tasks as demand, so more leases are asked for them.
//
// What comes back goes to the task manager (Results), which decides
// retries; the submitter requeues what it is told to retry. All of the
// submitter's state is behind one mutex; calls into Results and RPCs
// happen outside it.
package tasksubmit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/coreworker/push"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/internal/taskevents"
	"github.com/raygo/raygo/internal/wirecheck"
)

// Stream is the owner's end of a push stream to a worker.
type Stream = push.Stream

// Clients are the RPCs the submitter makes: to node daemons (leases) and
// to workers (push streams, cancellation).
type Clients interface {
	RequestLease(ctx context.Context, raylet string, req *pb.LeaseRequest) (*pb.LeaseReply, error)
	// CancelLease withdraws the RequestLease call with that request id
	// (see pb.CancelLeaseRequest): a grant lost in transit is given back.
	CancelLease(ctx context.Context, raylet string, requestID []byte) error
	ReturnLease(ctx context.Context, raylet string, leaseID []byte, workerExiting bool) error
	// WorkerDeathCause asks a node daemon why one of its workers died (nil:
	// no particular reason); an error means the daemon could not be asked.
	WorkerDeathCause(ctx context.Context, raylet string, workerID []byte) (*pb.ErrorInfo, error)
	KillWorker(ctx context.Context, raylet string, workerID []byte, reason string) error
	Dial(ctx context.Context, worker string) (Stream, error)
	CancelTask(ctx context.Context, worker string, req *pb.CancelTaskRequest) error
}

// Results receives what happens to tasks; the task manager implements it.
type Results = taskmgr.Results

// Config configures a Submitter.
type Config struct {
	// Raylet is the local node daemon, asked first for every lease.
	Raylet string
	// JobID and Owner fill lease requests and stream headers; OwnerNode
	// is the node this process runs on (nil for a driver on a host
	// without a node): leases die with it.
	JobID     []byte
	OwnerID   []byte
	Owner     string
	OwnerNode []byte
	// LeaseIdleTimeout returns a lease idle this long (default 50 ms).
	LeaseIdleTimeout time.Duration
	// LeaseSlice: a lease held this long goes back as soon as it runs dry
	// with nothing queued in its class, however soon more work comes
	// (default 100 ms). Without it a process that submits in a tight
	// loop would keep its leases for ever while other owners' requests
	// wait on the same nodes.
	LeaseSlice time.Duration
	// MaxPendingLeases bounds lease requests in flight per class
	// (default 10).
	MaxPendingLeases int
	// MaxPipeline bounds tasks in flight to one worker (default 256).
	MaxPipeline int
	// StuckAfter: a lease with tasks queued behind one that has run this
	// long counts them as waiting, and more leases are asked for them
	// (default 100 ms).
	StuckAfter time.Duration
	// FailIfInfeasible fails tasks whose request no node can satisfy at
	// once; otherwise they wait for a node that fits (Warn is called once
	// per class).
	FailIfInfeasible bool
	// Warn reports conditions the user should hear about (a request no
	// node can satisfy); nil discards them.
	Warn func(msg string)
	// Fallback, when set, names another node daemon to ask first from now
	// on, when the one asked first (Raylet, or the last fallback) cannot
	// be reached: a driver on a host without a node uses a node elsewhere,
	// and moves to another when that one dies. "" keeps the same one.
	Fallback func(dead string) string
	// Locality names the node daemon to ask for a lease for t, the first
	// task of its class waiting: the node holding most of t's argument
	// bytes (argument locality, Ray's locality-aware lease policy); "" for
	// Raylet. Nil: always Raylet.
	Locality func(t *taskmgr.Task) string
	// Events records when tasks are pushed to a worker
	// (SUBMITTED_TO_WORKER); nil records nothing.
	Events *taskevents.Buffer
}

func (c *Config) defaults() {
	if c.LeaseIdleTimeout <= 0 {
		c.LeaseIdleTimeout = 50 * time.Millisecond
	}
	if c.LeaseSlice <= 0 {
		c.LeaseSlice = 100 * time.Millisecond
	}
	if c.MaxPendingLeases <= 0 {
		c.MaxPendingLeases = 10
	}
	if c.MaxPipeline <= 0 {
		c.MaxPipeline = 256
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = 100 * time.Millisecond
	}
	if c.Warn == nil {
		c.Warn = func(string) {}
	}
}

// shortExec is the run time under which a class's tasks count as short
// and are pipelined deeper.
const shortExec = time.Millisecond

// Submitter carries normal tasks to leased workers. It is safe for
// concurrent use.
type Submitter struct {
	cfg     Config
	clients Clients
	results Results
	stop    *stopper.Stopper

	kick chan struct{} // wakes idleLoop when work arrives

	mu      sync.Mutex
	base    string            // guarded by mu; the node daemon asked first (Config.Raylet, or its fallback)
	classes map[string]*class // guarded by mu
	closed  bool              // guarded by mu
	active  bool              // guarded by mu; idleLoop is ticking
	seq     uint64            // guarded by mu; submission order
}

// class queues tasks of one scheduling class and holds their leases.
type class struct {
	key           string
	req           *pb.LeaseRequest
	queue         []*taskmgr.Task
	paused        []*taskmgr.Task // waiting out a pause before their retry (out-of-memory kills)
	leases        []*lease
	pendingLeases int
	depth         int
	leaseCtx      context.Context
	cancelLeases  context.CancelFunc
	dryAt         time.Time // when nothing waited any more while requests were pending; zero: something waits
	warned        bool
}

// lease is a worker leased from a node daemon, with its push stream.
type lease struct {
	cls      *class
	leaseID  []byte
	workerID []byte
	nodeID   []byte
	addr     string // the worker's
	raylet   string // the daemon that granted it
	stream   Stream
	sendCh   chan *pb.TaskSpec // nil spec: a wake-up to send a steal request
	inflight map[ids.ID]*taskmgr.Task
	granted  time.Time // when it was granted (LeaseSlice)
	lastUsed time.Time // last send or reply
	moved    time.Time // last reply (or the first send after idling)
	steal    int32     // tasks to ask back with the next send
	dead     bool
	returned bool
}

// classOf is the scheduling class a task was submitted in (nil: not
// submitted here), leaseOf the lease it is in flight on.
func classOf(t *taskmgr.Task) *class { c, _ := t.Sub.Queue.(*class); return c }

func leaseOf(t *taskmgr.Task) *lease { l, _ := t.Sub.At.(*lease); return l }

// New returns a Submitter. It starts its background loop at once; Close
// stops it.
func New(cfg Config, clients Clients, results Results) *Submitter {
	cfg.defaults()
	s := &Submitter{cfg: cfg, clients: clients, results: results, stop: stopper.New(), classes: map[string]*class{}, base: cfg.Raylet,
		kick: make(chan struct{}, 1)}
	_ = s.stop.Go("tasksubmit.idle", s.idleLoop)
	return s
}

// Placement is where a class's tasks may run: a strategy and its
// parameters (a node for NODE_AFFINITY, label selectors), as the lease
// requests carry them.
type Placement struct {
	Strategy pb.SchedulingStrategy
	Options  *pb.SchedulingOptions // nil: none
	// RuntimeEnv is the tasks' own runtime environment (nil: the job's);
	// workers are leased per environment (docs/runtime-env.md).
	RuntimeEnv *pb.RuntimeEnv
}

// ClassKey names the scheduling class of tasks with these resources and
// placement; retriable says whether their tasks are retried when the
// worker dies (the memory monitor kills those first).
func ClassKey(res resources.Set, pl Placement, retriable bool) string {
	names := make([]string, 0, len(res))
	for n, v := range res {
		if v != 0 {
			names = append(names, fmt.Sprintf("%s=%g", n, v))
		}
	}
	sort.Strings(names)
	key := strings.Join(names, ",") + "|" + pl.Strategy.String()
	if o := pl.Options; o != nil {
		if len(o.GetNodeId()) > 0 {
			key += fmt.Sprintf("|node=%x,soft=%t", o.GetNodeId(), o.GetSoft())
		}
		key += matchesKey("|labels=", o.GetLabels()) + matchesKey("|prefer=", o.GetPreferLabels())
	}
	if k := runtimeenv.Key(pl.RuntimeEnv); k != "" {
		key += "|env=" + k
	}
	if !retriable {
		key += "|once"
	}
	return key
}

// matchesKey writes a selector into a class key, in order (two selectors
// listing the same matches in another order make two classes: harmless).
func matchesKey(prefix string, ms []*pb.LabelMatch) string {
	if len(ms) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(prefix)
	for _, m := range ms {
		fmt.Fprintf(&b, "%q%d%q;", m.GetKey(), m.GetOp(), m.GetValues())
	}
	return b.String()
}

// Submit queues a task whose arguments are resolved. key is its class
// (ClassKey of res and pl).
func (s *Submitter) Submit(t *taskmgr.Task, key string, res resources.Set, pl Placement) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errs.Systemf("raygo: not connected (Shutdown was called)")
	}
	s.enqueueLocked(s.classLocked(key, res, pl, t.Policy.MaxRetries != 0 || t.Policy.OOMRetries != 0), t)
	s.mu.Unlock()
	return nil
}

// enqueueLocked queues t last in class c and has it pumped.
func (s *Submitter) enqueueLocked(c *class, t *taskmgr.Task) {
	s.seq++
	t.Sub.Seq, t.Sub.Queue, t.Sub.At = s.seq, c, nil
	c.queue = append(c.queue, t)
	s.pumpLocked(c)
	s.wakeLocked()
}

// Resubmit queues again a task that finished after being submitted here
// (a rebuild of its lost results), in the scheduling class it ran in.
func (s *Submitter) Resubmit(t *taskmgr.Task) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errs.Systemf("raygo: not connected (Shutdown was called)")
	}
	c := classOf(t)
	if c == nil {
		return errs.Systemf("raygo: task %s was not submitted here", t.ID.Short())
	}
	s.enqueueLocked(c, t)
	return nil
}

// wakeLocked makes idleLoop tick if it sleeps: there is work, or soon a
// lease, to watch.
func (s *Submitter) wakeLocked() {
	if !s.active {
		s.active = true
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (s *Submitter) classLocked(key string, res resources.Set, pl Placement, retriable bool) *class {
	if c, ok := s.classes[key]; ok {
		return c
	}
	// A hard node affinity whose node is gone fails at once, as in Ray.
	hard := pl.Strategy == pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY && !pl.Options.GetSoft()
	c := &class{key: key, depth: 1, req: &pb.LeaseRequest{
		JobId: s.cfg.JobID, Resources: &pb.Resources{Amounts: res}, SchedulingKey: key, Strategy: pl.Strategy,
		Scheduling: pl.Options, RuntimeEnv: pl.RuntimeEnv, OwnerId: s.cfg.OwnerID, OwnerNodeId: s.cfg.OwnerNode, Retriable: retriable, FailIfInfeasible: s.cfg.FailIfInfeasible || hard,
	}}
	s.classes[key] = c
	return c
}

// pumpLocked sends queued tasks to leases with room and asks for more
// leases while work waits.
func (s *Submitter) pumpLocked(c *class) {
	n := 0
	now := time.Now()
	for ; n < len(c.queue); n++ {
		var best *lease
		for _, l := range c.leases {
			if !l.dead && !l.returned && len(l.inflight) < c.depth && (best == nil || len(l.inflight) < len(best.inflight)) {
				best = l
			}
		}
		if best == nil {
			break
		}
		t := c.queue[n]
		t.Sub.At = best
		if len(best.inflight) == 0 {
			best.moved = now
		}
		best.inflight[t.ID] = t
		best.lastUsed = now
		best.sendCh <- t.Spec
	}
	if n > 0 && s.cfg.Events != nil {
		q := c.queue
		s.cfg.Events.States(n, func(i int) (ids.ID, int32, bool) {
			return q[i].ID, q[i].Spec.GetAttempt(), !q[i].Spec.GetNoTaskEvents()
		},
			taskevents.SubmittedToWorker, now.UnixNano())
	}
	c.queue = push.DropFront(c.queue, n)
	s.requestLeasesLocked(c, now)
}

// waitingLocked is the work of a class waiting for a CPU: its queue, and
// tasks queued behind a task that has run for StuckAfter on a lease.
func (s *Submitter) waitingLocked(c *class, now time.Time) int {
	w := len(c.queue)
	for _, l := range c.leases {
		if len(l.inflight) > 1 && now.Sub(l.moved) >= s.cfg.StuckAfter {
			w += len(l.inflight) - 1
		}
	}
	return w
}

// pendingLeaseGrace is how long a class's lease requests stay pending
// once nothing waits for them: work often comes back with the caller's
// next batch, and a request withdrawn and made again costs the node
// daemon two calls. Past it they are withdrawn (idleLoop).
const pendingLeaseGrace = 100 * time.Millisecond

func (s *Submitter) requestLeasesLocked(c *class, now time.Time) {
	waiting := s.waitingLocked(c, now)
	if waiting == 0 {
		switch {
		case c.pendingLeases == 0 || c.cancelLeases == nil:
			c.dryAt = time.Time{}
		case c.dryAt.IsZero():
			c.dryAt = now
			s.wakeLocked() // idleLoop withdraws them after the grace
		case now.Sub(c.dryAt) >= pendingLeaseGrace:
			c.cancelLeases()
			c.cancelLeases, c.leaseCtx, c.dryAt = nil, nil, time.Time{}
		}
		return
	}
	c.dryAt = time.Time{}
	want := min(s.cfg.MaxPendingLeases, waiting) - c.pendingLeases
	if s.closed || want <= 0 {
		return
	}
	// Work requeued after a failure or a pause asks for leases without a
	// Submit: the leases it gets must go back once idle.
	s.wakeLocked()
	if c.leaseCtx == nil {
		c.leaseCtx, c.cancelLeases = context.WithCancel(s.stop.Ctx())
	}
	ctx := c.leaseCtx
	for range want {
		c.pendingLeases++
		if err := s.stop.Go("tasksubmit.lease", func(context.Context) { s.requestLease(ctx, c) }); err != nil {
			c.pendingLeases--
			return
		}
	}
}

// requestLease asks the local node daemon (then, on spillback, another
// node) for a worker, and starts pushing tasks to it. Each call carries a
// fresh request id; a call abandoned before its reply (nothing of the
// class has waited for pendingLeaseGrace) is withdrawn with CancelLease,
// so that a grant crossing the cancellation is given back. A request no node can satisfy is warned
// about once and asked again to wait for a node that can
// (queue_if_infeasible), unless the job fails such requests at once.
func (s *Submitter) requestLease(ctx context.Context, c *class) {
	base := proto.Clone(c.req).(*pb.LeaseRequest)
	addr, req := s.leaseTarget(c), base
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		req = proto.Clone(req).(*pb.LeaseRequest)
		req.RequestId = ids.New().Bytes()
		reply, err := s.clients.RequestLease(ctx, addr, req)
		switch {
		case err == nil && reply.GetSpillbackAddress() != "":
			addr = reply.GetSpillbackAddress()
			req.GrantOrReject = true
			continue
		case err == nil && reply.GetInfeasible() != nil:
			s.warnInfeasible(c, errs.FromInfo(reply.GetInfeasible()))
			base.QueueIfInfeasible, req.QueueIfInfeasible = true, true
			continue
		case err == nil && reply.GetCanceled():
			s.leaseDone(c, nil)
			return
		case err == nil:
			s.connect(c, reply, addr)
			return
		}
		if ctx.Err() != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.clients.CancelLease(cctx, addr, req.RequestId)
			cancel()
			s.leaseDone(c, nil)
			return
		}
		// A node gone, stopping or declared dead: ask again (the base
		// node, or its fallback), up to 50 times.
		if !(rpc.IsUnavailable(err) || errors.Is(err, errs.ErrNodeDied)) || attempt >= 50 {
			s.leaseDone(c, err)
			return
		}
		if s.cfg.Fallback != nil && addr == s.baseRaylet() {
			if next := s.cfg.Fallback(addr); next != "" {
				s.mu.Lock()
				s.base = next
				s.mu.Unlock()
			}
		}
		addr, req = s.baseRaylet(), base
		if !stopper.Sleep(ctx, backoff) {
			s.leaseDone(c, nil)
			return
		}
		backoff = min(2*backoff, time.Second)
	}
}

// leaseTarget is the node daemon a class's next lease request goes to
// first: where the first waiting task's arguments are (Config.Locality),
// else the local one. A request spilled from there, or failing, follows
// the usual path.
func (s *Submitter) leaseTarget(c *class) string {
	s.mu.Lock()
	base := s.base
	var first *taskmgr.Task
	if len(c.queue) > 0 {
		first = c.queue[0]
	}
	s.mu.Unlock()
	if s.cfg.Locality == nil || first == nil {
		return base
	}
	if addr := s.cfg.Locality(first); addr != "" {
		return addr
	}
	return base
}

// baseRaylet is the node daemon asked first.
func (s *Submitter) baseRaylet() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.base
}

func (s *Submitter) warnInfeasible(c *class, err error) {
	s.mu.Lock()
	first := !c.warned
	c.warned = true
	s.mu.Unlock()
	if first {
		s.cfg.Warn(fmt.Sprintf("raygo: warning: %v; the tasks wait for a node that can hold them (their demand shows in `raygo status`; add a node, lower the request, or Cancel them)", err))
	}
}

// connect opens the push stream of a granted lease and puts the lease to
// work. It dials under the submitter's context, not the lease request's:
// that one is cancelled as soon as the class's queue empties, which may
// come just after the grant, and the worker is ours to use (it steals) or
// to return idle all the same.
func (s *Submitter) connect(c *class, reply *pb.LeaseReply, raylet string) {
	l := &lease{cls: c, leaseID: reply.GetLeaseId(), workerID: reply.GetWorkerId(), nodeID: reply.GetNodeId(),
		addr: reply.GetWorkerAddress(), raylet: raylet, inflight: map[ids.ID]*taskmgr.Task{},
		sendCh: make(chan *pb.TaskSpec, s.cfg.MaxPipeline+2)}
	l.granted = time.Now()
	l.lastUsed = l.granted
	stream, err := s.clients.Dial(s.stop.Ctx(), l.addr)
	if err != nil {
		// A worker that cannot be reached goes back as exiting (its
		// daemon kills it); one not dialed because Close began is sound.
		s.returnLease(l, s.stop.Ctx().Err() == nil)
		s.leaseDone(c, nil)
		return
	}
	l.stream = stream
	common := &pb.TaskSpec{JobId: s.cfg.JobID, OwnerAddress: s.cfg.Owner, OwnerId: s.cfg.OwnerID, Resources: c.req.Resources}
	s.mu.Lock()
	c.pendingLeases--
	if s.closed {
		s.mu.Unlock()
		stream.Close()
		s.returnLease(l, false)
		return
	}
	c.leases = append(c.leases, l)
	started := s.stop.Go("tasksubmit.send", func(context.Context) { push.SendLoop(l.stream, l.sendCh, common, s.stealFor(l)) }) == nil &&
		s.stop.Go("tasksubmit.recv", func(context.Context) { s.recvLoop(l) }) == nil
	if !started {
		s.mu.Unlock()
		stream.Close()
		return
	}
	s.pumpLocked(c)
	if len(l.inflight) == 0 {
		s.stealLocked(l)
	}
	s.mu.Unlock()
}

// leaseDone ends a lease request that produced no lease; err, if set, can
// never be satisfied and fails the class's queued tasks.
func (s *Submitter) leaseDone(c *class, err error) {
	s.mu.Lock()
	c.pendingLeases--
	var failed []*taskmgr.Task
	if err != nil {
		var ie *errs.InfeasibleError
		if errors.As(err, &ie) && len(c.queue) > 0 {
			ie.Function = c.queue[0].Function()
		}
		failed = c.queue
		c.queue = nil
	} else {
		s.pumpLocked(c)
	}
	s.mu.Unlock()
	info := errs.ToInfo(err)
	for _, t := range failed {
		s.results.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: info})
	}
}

// stealFor returns, for the lease's sender, how many tasks to ask back
// with its next batch, and forgets the request.
func (s *Submitter) stealFor(l *lease) func() int32 {
	return func() int32 {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := l.steal
		l.steal = 0
		return n
	}
}

func (s *Submitter) recvLoop(l *lease) {
	for {
		batch, err := l.stream.Recv()
		if err == nil {
			err = wirecheck.ReplyBatch(batch)
		}
		if err != nil {
			s.leaseFailed(l, err)
			return
		}
		s.handleBatch(l, batch)
	}
}

// handleBatch applies a batch of replies: results to the task manager,
// stolen tasks back to the queue, room for more.
func (s *Submitter) handleBatch(l *lease, batch *pb.ReplyBatch) {
	done := make([]taskmgr.Replied, 0, len(batch.GetReplies()))
	now := time.Now()
	s.mu.Lock()
	c := l.cls
	for _, r := range batch.GetReplies() {
		tid, _ := ids.FromBytes(r.GetTaskId())
		t, ok := l.inflight[tid]
		if !ok {
			continue
		}
		delete(l.inflight, tid)
		t.Sub.At = nil
		if time.Duration(r.GetExecMicros())*time.Microsecond < shortExec {
			c.depth = min(2*c.depth, s.cfg.MaxPipeline)
		} else {
			c.depth = 1
		}
		done = append(done, taskmgr.Replied{Task: t, Reply: r})
	}
	if len(done) > 0 {
		l.lastUsed, l.moved = now, now
	}
	if len(batch.GetStolen()) > 0 {
		var back []*taskmgr.Task
		for _, b := range batch.GetStolen() {
			tid, _ := ids.FromBytes(b)
			if t, ok := l.inflight[tid]; ok {
				delete(l.inflight, tid)
				t.Sub.At = nil
				back = append(back, t)
			}
		}
		s.requeueLocked(c, back)
	}
	sliceOver := len(l.inflight) == 0 && !l.dead && !l.returned && len(c.queue) == 0 &&
		now.Sub(l.granted) >= s.cfg.LeaseSlice && s.victimLocked(l) == nil
	if sliceOver {
		s.retireLocked(l)
	}
	s.mu.Unlock()
	if sliceOver {
		// Its slice is over and nothing of its class waits: the CPU goes
		// back, so that other owners' requests for it are served. It goes
		// back before the results are delivered, so that the owner's next
		// request (the caller may submit at once) finds the worker idle
		// again rather than making the node start another.
		s.returnLease(l, false)
	}
	retry := s.results.CompleteAll(done, nil)
	s.mu.Lock()
	s.requeueLocked(c, retry)
	s.pumpLocked(c)
	if len(l.inflight) == 0 && !l.dead && !l.returned {
		s.stealLocked(l)
	}
	s.mu.Unlock()
}

// retireLocked takes lease l out of its class, to be returned: its sender
// stops and its stream closes.
func (s *Submitter) retireLocked(l *lease) {
	l.returned = true
	close(l.sendCh)
	c := l.cls
	if i := slices.Index(c.leases, l); i >= 0 {
		c.leases = slices.Delete(c.leases, i, i+1)
	}
}

// requeueLocked puts tasks back at the front of their class's queue, in
// submission order.
func (s *Submitter) requeueLocked(c *class, ts []*taskmgr.Task) {
	if len(ts) == 0 {
		return
	}
	if s.closed {
		return // Close fails what is left
	}
	slices.SortFunc(ts, func(a, b *taskmgr.Task) int { return cmp.Compare(a.Sub.Seq, b.Sub.Seq) })
	c.queue = append(ts, c.queue...)
}

// stealLocked asks the busiest lease of l's class to give back half of
// the tasks it has queued but not started, for the idle lease l: a
// granted CPU never idles while work waits behind a busy one.
func (s *Submitter) stealLocked(l *lease) {
	if len(l.cls.queue) > 0 {
		return
	}
	victim := s.victimLocked(l)
	if victim == nil {
		return
	}
	victim.steal = int32((len(victim.inflight)) / 2)
	select {
	case victim.sendCh <- nil: // wake its sender
	default: // full: the sender is busy and will see the request
	}
}

// victimLocked is the lease of l's class with the most tasks queued
// behind a running one (more than one in flight), not already asked to
// give some back; nil when there is none.
func (s *Submitter) victimLocked(l *lease) *lease {
	var victim *lease
	for _, o := range l.cls.leases {
		if o != l && !o.dead && !o.returned && len(o.inflight) > 1 && o.steal == 0 &&
			(victim == nil || len(o.inflight) > len(victim.inflight)) {
			victim = o
		}
	}
	return victim
}

// leaseFailed handles a broken stream: the worker (or its node) died, or
// the lease was returned and the stream closed normally.
func (s *Submitter) leaseFailed(l *lease, cause error) {
	s.mu.Lock()
	if l.returned && len(l.inflight) == 0 {
		s.mu.Unlock()
		return
	}
	n := len(l.inflight)
	s.mu.Unlock()
	var why *pb.ErrorInfo
	nodeDead := false
	if n > 0 {
		why, nodeDead = s.deathCause(l)
	}
	s.mu.Lock()
	l.dead = true
	c := l.cls
	for i, x := range c.leases {
		if x == l {
			c.leases = slices.Delete(c.leases, i, i+1)
			break
		}
	}
	failed := make([]*taskmgr.Task, 0, len(l.inflight))
	for _, t := range l.inflight {
		t.Sub.At = nil
		failed = append(failed, t)
	}
	clear(l.inflight)
	wasReturned := l.returned
	if !wasReturned {
		l.returned = true
		close(l.sendCh)
	}
	s.mu.Unlock()
	slices.SortFunc(failed, func(a, b *taskmgr.Task) int { return cmp.Compare(a.Sub.Seq, b.Sub.Seq) })
	var retry []*taskmgr.Task
	var delayed []delayedRetry
	for _, t := range failed {
		var f taskmgr.Failure
		switch {
		case why.GetKind() == errs.KindOutOfMemory:
			f = taskmgr.Failure{Cause: taskmgr.CauseOOM, Info: why}
		case nodeDead:
			f = taskmgr.Failure{Cause: taskmgr.CauseWorkerDied, Info: errs.ToInfo(&errs.NodeDiedError{
				NodeID: ids.MustFromBytes(l.nodeID).String(), NodeAddress: l.raylet, Function: t.Function(),
				Attempts: int(t.Spec.GetAttempt()) + 1, Reason: fmt.Sprintf("its node daemon at %s is unreachable", l.raylet)})}
		default:
			f = taskmgr.Failure{Cause: taskmgr.CauseWorkerDied, Info: errs.ToInfo(&errs.WorkerCrashedError{
				Function: t.Function(), NodeID: ids.MustFromBytes(l.nodeID).String(), WorkerID: ids.MustFromBytes(l.workerID).String(),
				Attempts: int(t.Spec.GetAttempt()) + 1, Reason: fmt.Sprintf("the worker's connection broke: %v", cause)})}
		}
		d := s.results.Fail(t, f)
		if d.Action != taskmgr.Retry {
			continue
		}
		if d.Delay > 0 {
			delayed = append(delayed, delayedRetry{t, d.Delay})
		} else {
			retry = append(retry, t)
		}
	}
	s.mu.Lock()
	s.requeueLocked(c, retry)
	s.pumpLocked(c)
	s.mu.Unlock()
	for _, d := range delayed {
		s.retryAfter(d.t, c, d.delay)
	}
	if !wasReturned {
		l.stream.Close()
		s.returnLease(l, true)
	}
}

type delayedRetry struct {
	t     *taskmgr.Task
	delay time.Duration
}

// retryAfter requeues t after d (an out-of-memory kill's pause). Until
// then t is in its class's paused list, where Cancel and Close find it.
func (s *Submitter) retryAfter(t *taskmgr.Task, c *class, d time.Duration) {
	requeue := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !unpauseLocked(c, t) {
			return // cancelled, or handed back by Close
		}
		s.requeueLocked(c, []*taskmgr.Task{t})
		s.pumpLocked(c)
	}
	s.mu.Lock()
	c.paused = append(c.paused, t)
	s.mu.Unlock()
	if _, err := s.stop.AfterFunc("tasksubmit.oomretry", d, requeue); err != nil {
		s.mu.Lock()
		mine := unpauseLocked(c, t)
		s.mu.Unlock()
		if mine {
			s.results.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: errs.ToInfo(errs.Systemf("raygo: shutting down"))})
		}
	}
}

// unpauseLocked takes t out of c's paused list; false if it was not there.
func unpauseLocked(c *class, t *taskmgr.Task) bool {
	i := slices.Index(c.paused, t)
	if i < 0 {
		return false
	}
	c.paused = slices.Delete(c.paused, i, i+1)
	return true
}

// deathCause asks the node daemon why the lease's worker died. nodeDead
// is true when the daemon cannot be reached: the node is gone.
func (s *Submitter) deathCause(l *lease) (why *pb.ErrorInfo, nodeDead bool) {
	ctx, cancel := context.WithTimeout(s.stop.Ctx(), 2*time.Second)
	defer cancel()
	why, err := s.clients.WorkerDeathCause(ctx, l.raylet, l.workerID)
	if err != nil {
		return nil, rpc.IsUnavailable(err) && s.stop.Ctx().Err() == nil
	}
	return why, false
}

// idleLoop returns leases idle for LeaseIdleTimeout and looks for
// pipelines stuck behind a long task. It ticks only while the submitter
// has work or leases: an idle process does not wake up.
func (s *Submitter) idleLoop(ctx context.Context) {
	period := min(s.cfg.LeaseIdleTimeout/2, s.cfg.StuckAfter)
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.tick(time.Now()) {
			t.Reset(period)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			t.Reset(period)
		}
	}
}

// tick is one round of idleLoop at time now; it reports whether the
// submitter still has work or leases (false: idleLoop sleeps until the
// next Submit).
func (s *Submitter) tick(now time.Time) (active bool) {
	var idle []*lease
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		for _, l := range idle {
			s.returnLease(l, false)
		}
	}()
	for _, c := range s.classes {
		if len(c.leases) > 0 || len(c.queue) > 0 || c.pendingLeases > 0 {
			active = true
		}
		if s.waitingLocked(c, now) > 0 {
			s.requestLeasesLocked(c, now)
			for _, l := range c.leases {
				if len(l.inflight) == 0 && !l.dead && !l.returned {
					s.stealLocked(l)
				}
			}
			continue
		}
		s.requestLeasesLocked(c, now) // withdraws requests nothing waits for
		kept := c.leases[:0]
		for _, l := range c.leases {
			if l.returned {
				continue
			}
			if len(l.inflight) == 0 && now.Sub(l.lastUsed) >= s.cfg.LeaseIdleTimeout {
				l.returned = true
				close(l.sendCh)
				idle = append(idle, l)
				continue
			}
			kept = append(kept, l)
		}
		clear(c.leases[len(kept):])
		c.leases = kept
	}
	if !active {
		s.active = false
	}
	return active
}

func (s *Submitter) returnLease(l *lease, exiting bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.clients.ReturnLease(ctx, l.raylet, l.leaseID, exiting)
}

// Cancel takes a queued task out of its queue (the caller fails it as
// cancelled) or, for one in flight, tells its worker: with force the
// worker is killed (its node daemon kills it), else its context is
// cancelled (and recursive cancels what it submitted).
func (s *Submitter) Cancel(ctx context.Context, t *taskmgr.Task, force, recursive bool) (taskmgr.Where, error) {
	s.mu.Lock()
	c := classOf(t)
	if c == nil {
		s.mu.Unlock()
		return taskmgr.Unknown, nil
	}
	if l := leaseOf(t); l != nil {
		addr, raylet, worker := l.addr, l.raylet, l.workerID
		s.mu.Unlock()
		if force {
			return taskmgr.InFlight, s.clients.KillWorker(ctx, raylet, worker, "ray.Cancel with Force of task "+t.ID.Short())
		}
		err := s.clients.CancelTask(ctx, addr, &pb.CancelTaskRequest{TaskId: t.ID[:], Recursive: recursive})
		if err != nil && rpc.IsUnavailable(err) {
			err = nil // the worker is gone; its failure reports the task
		}
		return taskmgr.InFlight, err
	}
	if unpauseLocked(c, t) {
		s.mu.Unlock()
		return taskmgr.Queued, nil
	}
	for i, q := range c.queue {
		if q == t {
			c.queue = slices.Delete(c.queue, i, i+1)
			s.requestLeasesLocked(c, time.Now())
			s.mu.Unlock()
			return taskmgr.Queued, nil
		}
	}
	s.mu.Unlock()
	return taskmgr.Unknown, nil
}

// Stats is a snapshot of the submitter, for tests and reports.
type Stats struct {
	Classes, Queued, InFlight, Leases, PendingLeases int
}

// Stats returns a snapshot.
func (s *Submitter) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out Stats
	out.Classes = len(s.classes)
	for _, c := range s.classes {
		out.Queued += len(c.queue) + len(c.paused)
		out.PendingLeases += c.pendingLeases
		for _, l := range c.leases {
			if !l.dead && !l.returned {
				out.Leases++
			}
			out.InFlight += len(l.inflight)
		}
	}
	return out
}

// Close stops the submitter: lease requests are cancelled, leases
// returned, streams closed. Tasks still queued or in flight are returned
// so that the caller can fail them.
func (s *Submitter) Close() []*taskmgr.Task {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var leases []*lease
	var left []*taskmgr.Task
	for _, c := range s.classes {
		if c.cancelLeases != nil {
			c.cancelLeases()
		}
		left = append(left, c.queue...)
		left = append(left, c.paused...)
		c.queue, c.paused = nil, nil
		for _, l := range c.leases {
			for _, t := range l.inflight {
				left = append(left, t)
			}
			clear(l.inflight)
			if !l.returned {
				l.returned = true
				close(l.sendCh)
				leases = append(leases, l)
			}
		}
	}
	s.mu.Unlock()
	for _, l := range leases {
		l.stream.Close()
		s.returnLease(l, false)
	}
	s.stop.Stop()
	return left
}
