package tasksubmit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/coreworker/internal/notify"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"google.golang.org/protobuf/proto"
)

// The tests run inside testing/synctest bubbles: the submitter's timers
// (idle leases, stuck pipelines, retry pauses) run on the bubble's clock,
// which moves only when every goroutine of the test is blocked. Nothing
// sleeps; tests wait for events through a notifier.

// notifier is what the fakes tell of their events and tests wait on.
type notifier = notify.Notifier

// ---------------------------------------------------------------- results

// fakeResults plays the task manager: it records what the submitter
// reports and decides retries with taskmgr.Decide, keeping the counters
// the Manager keeps. onComplete and onFail, when set, decide instead.
type fakeResults struct {
	n  *notifier
	mu sync.Mutex
	st map[*taskmgr.Task]*result
	// failOrder lists the tasks of Fail calls, in call order.
	failOrder []*taskmgr.Task

	onComplete func(t *taskmgr.Task, r *pb.TaskReply) (taskmgr.Decision, bool)
	onFail     func(t *taskmgr.Task, f taskmgr.Failure) (taskmgr.Decision, bool)
}

type result struct {
	retriesLeft, oomLeft, oomKills int
	done                           bool
	replies                        []*pb.TaskReply
	failures                       []taskmgr.Failure
	final                          *pb.ErrorInfo // the error the task ended with
	at                             []time.Time   // when each reply or failure came
}

func newResults(n *notifier) *fakeResults {
	return &fakeResults{n: n, st: map[*taskmgr.Task]*result{}}
}

func (r *fakeResults) stateLocked(t *taskmgr.Task) *result {
	s, ok := r.st[t]
	if !ok {
		s = &result{retriesLeft: t.Policy.MaxRetries, oomLeft: int(t.Policy.OOMRetries)}
		r.st[t] = s
	}
	return s
}

func (r *fakeResults) CompleteAll(done []taskmgr.Replied, retry []*taskmgr.Task) []*taskmgr.Task {
	for _, d := range done {
		if r.Complete(d.Task, d.Reply).Action == taskmgr.Retry {
			retry = append(retry, d.Task)
		}
	}
	return retry
}

func (r *fakeResults) Complete(t *taskmgr.Task, rep *pb.TaskReply) taskmgr.Decision {
	defer r.n.Notify()
	r.mu.Lock()
	s := r.stateLocked(t)
	s.replies = append(s.replies, rep)
	s.at = append(s.at, time.Now())
	hook := r.onComplete
	r.mu.Unlock()
	if hook != nil {
		if d, ok := hook(t, rep); ok {
			r.mu.Lock()
			r.applyLocked(t, s, taskmgr.Failure{Cause: taskmgr.CauseApp, Info: rep.GetError()}, d)
			r.mu.Unlock()
			return d
		}
	}
	if rep.GetError() != nil {
		return r.decide(t, taskmgr.Failure{Cause: taskmgr.CauseApp, Info: rep.GetError()}, false)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.done {
		return taskmgr.Decision{Action: taskmgr.Ignore}
	}
	s.done = true
	return taskmgr.Decision{Action: taskmgr.Done}
}

func (r *fakeResults) Fail(t *taskmgr.Task, f taskmgr.Failure) taskmgr.Decision {
	defer r.n.Notify()
	return r.decide(t, f, true)
}

func (r *fakeResults) decide(t *taskmgr.Task, f taskmgr.Failure, record bool) taskmgr.Decision {
	r.mu.Lock()
	s := r.stateLocked(t)
	if record {
		r.failOrder = append(r.failOrder, t)
		s.failures = append(s.failures, f)
		s.at = append(s.at, time.Now())
	}
	hook := r.onFail
	r.mu.Unlock()
	var d taskmgr.Decision
	decided := false
	if hook != nil && record {
		d, decided = hook(t, f)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.done {
		return taskmgr.Decision{Action: taskmgr.Ignore}
	}
	if !decided {
		d = taskmgr.Decide(t.Policy, taskmgr.State{RetriesLeft: s.retriesLeft, OOMLeft: s.oomLeft, OOMKills: s.oomKills,
			Attempt: int(t.Spec.GetAttempt())}, f, taskmgr.DefaultConfig())
	}
	r.applyLocked(t, s, f, d)
	return d
}

func (r *fakeResults) applyLocked(t *taskmgr.Task, s *result, f taskmgr.Failure, d taskmgr.Decision) {
	switch d.Action {
	case taskmgr.Retry:
		if f.Cause == taskmgr.CauseOOM {
			s.oomKills++
			if s.oomLeft > 0 {
				s.oomLeft--
			}
		} else if s.retriesLeft > 0 {
			s.retriesLeft--
		}
		t.Spec.Attempt++
	case taskmgr.Fail:
		s.done = true
		s.final = d.Err
		if s.final == nil {
			s.final = f.Info
		}
	case taskmgr.Done:
		s.done = true
	}
}

func (r *fakeResults) get(t *taskmgr.Task) result {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(t)
	out := *s
	out.replies = slices.Clone(s.replies)
	out.failures = slices.Clone(s.failures)
	out.at = slices.Clone(s.at)
	return out
}

func (r *fakeResults) done(ts ...*taskmgr.Task) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range ts {
		if !r.stateLocked(t).done {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- cluster

// fakeCluster plays the node daemons and the workers they lease: Clients
// for the submitter. Each node has a number of slots (CPUs); a lease
// request waits for a free slot, or is spilled back when the node says so.
// A granted lease's worker serves the push stream the submitter dials:
// a reader goroutine queues tasks and answers steal requests, a runner
// goroutine runs them one at a time through run.
type fakeCluster struct {
	n *notifier

	mu       sync.Mutex
	nodes    map[string]*fakeNode
	workers  map[string]*fakeWorker // by address
	byLease  map[string]*fakeWorker
	nworkers int
	requests []leaseCall
	ended    int // lease requests that ended with their context
	// infeasible: no node can ever hold a request (until it is cleared, as
	// when a node that fits joins): answered as the daemon does, by the
	// request's fail_if_infeasible / queue_if_infeasible.
	infeasible bool
	withdrawn  [][]byte               // CancelLease request ids
	granted    map[string]*fakeWorker // by request id
	returns    []returnCall
	kills      []killCall
	cancels    []cancelCall
	dials      []string
	asked      []string // WorkerDeathCause, by worker address

	// Hooks, set before the submitter runs. leaseHook answers a request
	// itself when it returns ok.
	leaseHook  func(ctx context.Context, n int, raylet string, req *pb.LeaseRequest) (*pb.LeaseReply, error, bool)
	dialHook   func(ctx context.Context, n int, addr string) error
	deathHook  func(ctx context.Context, w *fakeWorker) (*pb.ErrorInfo, error)
	cancelHook func(w *fakeWorker, req *pb.CancelTaskRequest) error
	// run runs one task on w; it returns nil if the worker went away
	// while it ran. cancelled is closed when the task is cancelled.
	run func(w *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply
}

type fakeNode struct {
	addr    string
	id      ids.ID
	slots   int
	used    int
	spillTo string        // requests without GrantOrReject are sent there
	freed   chan struct{} // closed (and replaced) when a slot frees
}

type leaseCall struct {
	raylet string
	req    *pb.LeaseRequest
}

type returnCall struct {
	raylet  string
	leaseID string
	worker  *fakeWorker
	exiting bool
}

type killCall struct {
	raylet string
	worker string // address
	reason string
}

type cancelCall struct {
	worker string
	req    *pb.CancelTaskRequest
}

func newCluster(n *notifier) *fakeCluster {
	return &fakeCluster{n: n, nodes: map[string]*fakeNode{}, workers: map[string]*fakeWorker{},
		byLease: map[string]*fakeWorker{}, granted: map[string]*fakeWorker{}}
}

func (c *fakeCluster) addNode(addr string, slots int) *fakeNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := &fakeNode{addr: addr, id: ids.New(), slots: slots, freed: make(chan struct{})}
	c.nodes[addr] = n
	return n
}

// setInfeasible says whether no node can hold the requests; clearing it
// wakes the requests that wait (queue_if_infeasible).
func (c *fakeCluster) setInfeasible(v bool) {
	c.mu.Lock()
	c.infeasible = v
	for _, n := range c.nodes {
		c.freeLocked(n)
	}
	c.mu.Unlock()
	c.n.Notify()
}

// setSlots changes a node's capacity (a node grew, or joined with it).
func (c *fakeCluster) setSlots(addr string, slots int) {
	c.mu.Lock()
	n := c.nodes[addr]
	n.slots = slots
	c.freeLocked(n)
	c.mu.Unlock()
}

func (c *fakeCluster) freeLocked(n *fakeNode) {
	close(n.freed)
	n.freed = make(chan struct{})
}

func (c *fakeCluster) RequestLease(ctx context.Context, raylet string, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	req = proto.Clone(req).(*pb.LeaseRequest) // as the wire would: the caller may reuse it
	c.mu.Lock()
	c.requests = append(c.requests, leaseCall{raylet, req})
	n := len(c.requests)
	hook := c.leaseHook
	c.mu.Unlock()
	c.n.Notify()
	if hook != nil {
		if r, err, ok := hook(ctx, n, raylet, req); ok {
			return r, err
		}
	}
	return c.grant(ctx, raylet, req)
}

// grant is a node daemon's answer: a spillback, or a worker once a slot
// is free.
func (c *fakeCluster) grant(ctx context.Context, raylet string, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	for {
		c.mu.Lock()
		node := c.nodes[raylet]
		if node == nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("%w: no node daemon at %s", errs.ErrUnavailable, raylet)
		}
		if c.infeasible && !req.GetQueueIfInfeasible() {
			c.mu.Unlock()
			ie := &errs.InfeasibleError{Request: "CPU=64", Cluster: "CPU=4"}
			if req.GetFailIfInfeasible() {
				return nil, ie
			}
			return &pb.LeaseReply{Infeasible: errs.ToInfo(ie)}, nil
		}
		if node.spillTo != "" && !req.GetGrantOrReject() && !c.infeasible {
			c.mu.Unlock()
			return &pb.LeaseReply{SpillbackAddress: node.spillTo}, nil
		}
		if node.used < node.slots && !c.infeasible {
			node.used++
			w := c.newWorkerLocked(node)
			if id := req.GetRequestId(); id != nil {
				c.granted[string(id)] = w
			}
			c.mu.Unlock()
			c.n.Notify()
			return &pb.LeaseReply{LeaseId: w.leaseID, WorkerAddress: w.addr, WorkerId: w.id.Bytes(), NodeId: node.id.Bytes()}, nil
		}
		freed := node.freed
		c.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			c.mu.Lock()
			c.ended++
			c.mu.Unlock()
			c.n.Notify()
			return nil, ctx.Err()
		}
	}
}

func (c *fakeCluster) newWorkerLocked(node *fakeNode) *fakeWorker {
	c.nworkers++
	w := &fakeWorker{c: c, node: node, addr: fmt.Sprintf("worker-%d", c.nworkers), id: ids.New(), leaseID: ids.New().Bytes(),
		received: map[ids.ID]int{}}
	c.workers[w.addr] = w
	c.byLease[string(w.leaseID)] = w
	return w
}

// CancelLease withdraws a request. One still waiting here has already
// ended with its call's context; one granted (the grant crossed the
// withdrawal) has its lease given back.
func (c *fakeCluster) CancelLease(_ context.Context, _ string, requestID []byte) error {
	c.mu.Lock()
	c.withdrawn = append(c.withdrawn, requestID)
	if w := c.granted[string(requestID)]; w != nil && !w.returned {
		w.returned = true
		w.node.used--
		c.freeLocked(w.node)
	}
	c.mu.Unlock()
	c.n.Notify()
	return nil
}

func (c *fakeCluster) ReturnLease(_ context.Context, raylet string, leaseID []byte, exiting bool) error {
	c.mu.Lock()
	w := c.byLease[string(leaseID)]
	c.returns = append(c.returns, returnCall{raylet: raylet, leaseID: string(leaseID), worker: w, exiting: exiting})
	if w != nil && !w.returned {
		w.returned = true
		w.node.used--
		c.freeLocked(w.node)
	}
	c.mu.Unlock()
	c.n.Notify()
	return nil
}

func (c *fakeCluster) WorkerDeathCause(ctx context.Context, _ string, workerID []byte) (*pb.ErrorInfo, error) {
	c.mu.Lock()
	var w *fakeWorker
	for _, x := range c.workers {
		if x.id == ids.MustFromBytes(workerID) {
			w = x
		}
	}
	c.asked = append(c.asked, w.addr)
	hook := c.deathHook
	c.mu.Unlock()
	c.n.Notify()
	if hook != nil {
		return hook(ctx, w)
	}
	return nil, nil
}

func (c *fakeCluster) KillWorker(_ context.Context, raylet string, workerID []byte, reason string) error {
	c.mu.Lock()
	var w *fakeWorker
	for _, x := range c.workers {
		if x.id == ids.MustFromBytes(workerID) {
			w = x
		}
	}
	c.kills = append(c.kills, killCall{raylet: raylet, worker: w.addr, reason: reason})
	c.mu.Unlock()
	w.kill()
	c.n.Notify()
	return nil
}

func (c *fakeCluster) Dial(ctx context.Context, addr string) (Stream, error) {
	c.mu.Lock()
	c.dials = append(c.dials, addr)
	n := len(c.dials)
	w := c.workers[addr]
	hook := c.dialHook
	c.mu.Unlock()
	c.n.Notify()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if hook != nil {
		if err := hook(ctx, n, addr); err != nil {
			return nil, err
		}
	}
	if w == nil {
		return nil, fmt.Errorf("%w: no worker at %s", errs.ErrUnavailable, addr)
	}
	w.start()
	return w, nil
}

func (c *fakeCluster) CancelTask(_ context.Context, addr string, req *pb.CancelTaskRequest) error {
	c.mu.Lock()
	c.cancels = append(c.cancels, cancelCall{worker: addr, req: req})
	w := c.workers[addr]
	hook := c.cancelHook
	c.mu.Unlock()
	c.n.Notify()
	if hook != nil {
		if err := hook(w, req); err != nil {
			return err
		}
	}
	w.cancel(ids.MustFromBytes(req.GetTaskId()))
	return nil
}

// snapshot helpers, read under the lock

func (c *fakeCluster) nRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.requests)
}

func (c *fakeCluster) requestList() []leaseCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

func (c *fakeCluster) returnList() []returnCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.returns)
}

func (c *fakeCluster) workerList() []*fakeWorker {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*fakeWorker, 0, len(c.workers))
	for i := 1; i <= c.nworkers; i++ {
		out = append(out, c.workers[fmt.Sprintf("worker-%d", i)])
	}
	return out
}

// granted counts leases granted and not returned.
func (c *fakeCluster) held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, w := range c.workers {
		if !w.returned {
			n++
		}
	}
	return n
}

// setRun changes how workers run tasks from now on.
func (c *fakeCluster) setRun(run func(w *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply) {
	c.mu.Lock()
	c.run = run
	c.mu.Unlock()
}

// ---------------------------------------------------------------- workers

// fakeWorker is a leased worker and the submitter's end of its push
// stream (it implements Stream).
type fakeWorker struct {
	c        *fakeCluster
	node     *fakeNode
	addr     string
	id       ids.ID
	leaseID  []byte
	returned bool // guarded by c.mu

	in   chan *pb.TaskBatch  // owner to worker
	out  chan *pb.ReplyBatch // worker to owner; closed when the worker ends normally
	wake chan struct{}
	dead chan struct{} // closed by kill: the process died
	gone chan struct{} // closed by the owner's Close

	killOnce, goneOnce, closeSendOnce sync.Once

	mu       sync.Mutex
	queue    []*pb.TaskSpec
	running  *pb.TaskSpec
	cancelRn chan struct{} // closed to cancel the running task
	inClosed bool
	batches  []*pb.TaskBatch
	ran      []ids.ID
	received map[ids.ID]int // tasks outstanding at the worker when each arrived (itself included)
	maxOut   int
}

// start begins serving the stream (at Dial).
func (w *fakeWorker) start() {
	w.in = make(chan *pb.TaskBatch, 4096)
	w.out = make(chan *pb.ReplyBatch, 4096)
	w.wake = make(chan struct{}, 1)
	w.dead = make(chan struct{})
	w.gone = make(chan struct{})
	go w.read()
	go w.runLoop()
}

func (w *fakeWorker) kill() {
	w.killOnce.Do(func() { close(w.dead) })
}

func (w *fakeWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *fakeWorker) read() {
	for {
		select {
		case b, ok := <-w.in:
			if !ok {
				w.mu.Lock()
				w.inClosed = true
				w.mu.Unlock()
				w.poke()
				return
			}
			w.mu.Lock()
			w.batches = append(w.batches, b)
			for _, spec := range b.GetTasks() {
				w.queue = append(w.queue, spec)
				n := len(w.queue)
				if w.running != nil {
					n++
				}
				w.received[ids.MustFromBytes(spec.GetTaskId())] = n
				w.maxOut = max(w.maxOut, n)
			}
			var stolen [][]byte
			if k := min(int(b.GetSteal()), len(w.queue)); k > 0 {
				for _, spec := range w.queue[len(w.queue)-k:] {
					stolen = append(stolen, spec.GetTaskId())
				}
				w.queue = w.queue[:len(w.queue)-k]
			}
			w.mu.Unlock()
			w.poke()
			if b.GetSteal() > 0 && !w.send(&pb.ReplyBatch{Stolen: stolen}) {
				return
			}
		case <-w.dead:
			return
		case <-w.gone:
			return
		}
	}
}

func (w *fakeWorker) send(b *pb.ReplyBatch) bool {
	select {
	case w.out <- b:
		w.c.n.Notify()
		return true
	case <-w.dead:
		return false
	case <-w.gone:
		return false
	}
}

func (w *fakeWorker) runLoop() {
	for {
		spec, cancelled, ok := w.next()
		if !ok {
			return
		}
		w.c.mu.Lock()
		run := w.c.run
		w.c.mu.Unlock()
		var reply *pb.TaskReply
		if run == nil {
			reply = &pb.TaskReply{TaskId: spec.GetTaskId(), ExecMicros: 10}
		} else {
			reply = run(w, spec, cancelled)
		}
		w.mu.Lock()
		w.running = nil
		w.mu.Unlock()
		if reply == nil || !w.send(&pb.ReplyBatch{Replies: []*pb.TaskReply{reply}}) {
			return
		}
	}
}

// next takes the next queued task; false when the worker ends (its
// stream was closed, or it died).
func (w *fakeWorker) next() (*pb.TaskSpec, <-chan struct{}, bool) {
	for {
		w.mu.Lock()
		if len(w.queue) > 0 {
			spec := w.queue[0]
			w.queue = w.queue[1:]
			w.running = spec
			w.cancelRn = make(chan struct{})
			w.ran = append(w.ran, ids.MustFromBytes(spec.GetTaskId()))
			cancelled := w.cancelRn
			w.mu.Unlock()
			w.c.n.Notify()
			return spec, cancelled, true
		}
		if w.inClosed {
			w.mu.Unlock()
			close(w.out)
			w.c.n.Notify()
			return nil, nil, false
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-w.dead:
			return nil, nil, false
		case <-w.gone:
			return nil, nil, false
		}
	}
}

// cancel answers a queued task Cancelled at once, or cancels the running
// one, as the executor does.
func (w *fakeWorker) cancel(tid ids.ID) {
	w.mu.Lock()
	for i, spec := range w.queue {
		if ids.MustFromBytes(spec.GetTaskId()) == tid {
			w.queue = slices.Delete(w.queue, i, i+1)
			w.mu.Unlock()
			w.send(&pb.ReplyBatch{Replies: []*pb.TaskReply{cancelledReply(spec)}})
			return
		}
	}
	if w.running != nil && ids.MustFromBytes(w.running.GetTaskId()) == tid {
		close(w.cancelRn)
	}
	w.mu.Unlock()
}

func cancelledReply(spec *pb.TaskSpec) *pb.TaskReply {
	return &pb.TaskReply{TaskId: spec.GetTaskId(), Error: errs.ToInfo(&errs.CancelledError{Function: spec.GetFunction(),
		TaskID: ids.MustFromBytes(spec.GetTaskId()).String()})}
}

// block waits for gate while running a task; false if the worker died or
// its stream was closed meanwhile.
func (w *fakeWorker) block(gate <-chan struct{}, cancelled <-chan struct{}) (ok, wasCancelled bool) {
	select {
	case <-gate:
		return true, false
	case <-cancelled:
		return true, true
	case <-w.dead:
		return false, false
	case <-w.gone:
		return false, false
	}
}

func (w *fakeWorker) ranIDs() []ids.ID {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ran)
}

func (w *fakeWorker) batchList() []*pb.TaskBatch {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.batches)
}

// Stream, the submitter's end.

func (w *fakeWorker) Send(b *pb.TaskBatch) error {
	// The submitter reuses its batch's array: copy, as the wire would.
	cp := &pb.TaskBatch{Tasks: slices.Clone(b.GetTasks()), Common: b.GetCommon(), Steal: b.GetSteal()}
	select {
	case <-w.dead:
		return fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, w.addr)
	case <-w.gone:
		return errors.New("stream closed")
	default:
	}
	select {
	case w.in <- cp:
		return nil
	case <-w.dead:
		return fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, w.addr)
	case <-w.gone:
		return errors.New("stream closed")
	}
}

func (w *fakeWorker) Recv() (*pb.ReplyBatch, error) {
	select {
	case <-w.dead:
		return nil, fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, w.addr)
	case <-w.gone:
		return nil, errors.New("stream closed")
	default:
	}
	select {
	case b, ok := <-w.out:
		if !ok {
			return nil, io.EOF
		}
		return b, nil
	case <-w.dead:
		return nil, fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, w.addr)
	case <-w.gone:
		return nil, errors.New("stream closed")
	}
}

func (w *fakeWorker) CloseSend() error {
	w.closeSendOnce.Do(func() { close(w.in) })
	return nil
}

func (w *fakeWorker) Close() {
	w.goneOnce.Do(func() { close(w.gone) })
}

// ---------------------------------------------------------------- helpers

var cpu1 = resources.Set{"CPU": 1}

// world is a submitter with its fakes.
type world struct {
	n   *notifier
	c   *fakeCluster
	r   *fakeResults
	s   *Submitter
	key string
}

// newWorld makes a cluster with one node "raylet-1" of slots CPUs and a
// submitter using it. The submitter is closed when the test ends.
func newWorld(t *testing.T, slots int, cfg Config) *world {
	n := &notifier{}
	w := &world{n: n, c: newCluster(n), r: newResults(n)}
	w.c.addNode("raylet-1", slots)
	if cfg.Raylet == "" {
		cfg.Raylet = "raylet-1"
	}
	if cfg.JobID == nil {
		cfg.JobID = []byte("job-1")
	}
	if cfg.OwnerID == nil {
		cfg.OwnerID = ids.New().Bytes()
	}
	if cfg.Owner == "" {
		cfg.Owner = "owner:1"
	}
	w.key = ClassKey(cpu1, Placement{}, true)
	w.s = New(cfg, w.c, w.r)
	t.Cleanup(func() { w.s.Close() })
	return w
}

// task makes a task of function fn with policy p.
func task(fn string, p taskmgr.Policy) *taskmgr.Task {
	t := taskmgr.NewTask(ids.New(), taskmgr.Normal, nil, 1, p)
	t.Spec.Function = fn
	t.Spec.NumReturns = 1
	return t
}

func (w *world) submit(t *testing.T, ts ...*taskmgr.Task) {
	t.Helper()
	for _, x := range ts {
		if err := w.s.Submit(x, w.key, cpu1, Placement{}); err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
}

func (w *world) waitDone(t *testing.T, ts ...*taskmgr.Task) {
	t.Helper()
	w.n.WaitFor(t, fmt.Sprintf("%d tasks to finish", len(ts)), func() bool { return w.r.done(ts...) })
}

func (w *world) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	w.n.WaitFor(t, what, cond)
}

func tasks(n int, fn string, p taskmgr.Policy) []*taskmgr.Task {
	out := make([]*taskmgr.Task, n)
	for i := range out {
		out[i] = task(fn, p)
	}
	return out
}

// gated returns a run hook under which tasks of function fn wait for
// gate (and report having run long); started receives each when it
// begins. Other tasks answer at once as short.
func gated(fn string, gate <-chan struct{}, started chan<- ids.ID) func(w *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
	return func(w *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
		if spec.GetFunction() != fn {
			return &pb.TaskReply{TaskId: spec.GetTaskId(), ExecMicros: 10}
		}
		if started != nil {
			started <- ids.MustFromBytes(spec.GetTaskId())
		}
		ok, wasCancelled := w.block(gate, cancelled)
		if !ok {
			return nil
		}
		if wasCancelled {
			return cancelledReply(spec)
		}
		return &pb.TaskReply{TaskId: spec.GetTaskId(), ExecMicros: time.Second.Microseconds()}
	}
}
