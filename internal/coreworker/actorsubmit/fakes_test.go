package actorsubmit

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
	"google.golang.org/protobuf/proto"
)

// The tests run inside testing/synctest bubbles: the control store's long
// polls, the submitter's backoff and DeathInfoTimeout run on the bubble's
// clock, which moves only when every goroutine of the test is blocked.
// Nothing sleeps; tests wait for events through a notifier.

// notifier is what the fakes tell of their events and tests wait on.
type notifier = notify.Notifier

// ---------------------------------------------------------------- results

// fakeResults plays the task manager: it records what the submitter
// reports and decides retries with taskmgr.Decide, keeping the counters
// the Manager keeps.
type fakeResults struct {
	n  *notifier
	mu sync.Mutex
	st map[*taskmgr.Task]*result
}

type result struct {
	retriesLeft int
	done        bool
	replies     []*pb.TaskReply
	failures    []taskmgr.Failure
	final       *pb.ErrorInfo // the error the call ended with
}

func newResults(n *notifier) *fakeResults { return &fakeResults{n: n, st: map[*taskmgr.Task]*result{}} }

func (r *fakeResults) stateLocked(t *taskmgr.Task) *result {
	s, ok := r.st[t]
	if !ok {
		s = &result{retriesLeft: t.Policy.MaxRetries}
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
	defer r.mu.Unlock()
	s := r.stateLocked(t)
	s.replies = append(s.replies, rep)
	if rep.GetError() != nil {
		return r.decideLocked(t, s, taskmgr.Failure{Cause: taskmgr.CauseApp, Info: rep.GetError()})
	}
	if s.done {
		return taskmgr.Decision{Action: taskmgr.Ignore}
	}
	s.done = true
	return taskmgr.Decision{Action: taskmgr.Done}
}

func (r *fakeResults) Fail(t *taskmgr.Task, f taskmgr.Failure) taskmgr.Decision {
	defer r.n.Notify()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stateLocked(t)
	s.failures = append(s.failures, f)
	return r.decideLocked(t, s, f)
}

func (r *fakeResults) decideLocked(t *taskmgr.Task, s *result, f taskmgr.Failure) taskmgr.Decision {
	if s.done {
		return taskmgr.Decision{Action: taskmgr.Ignore}
	}
	d := taskmgr.Decide(t.Policy, taskmgr.State{RetriesLeft: s.retriesLeft, Attempt: int(t.Spec.GetAttempt())}, f, taskmgr.DefaultConfig())
	switch d.Action {
	case taskmgr.Retry:
		if s.retriesLeft > 0 {
			s.retriesLeft--
		}
		t.Spec.Attempt++
	case taskmgr.Fail:
		s.done = true
		s.final = d.Err
		if s.final == nil {
			s.final = f.Info
		}
	}
	return d
}

func (r *fakeResults) get(t *taskmgr.Task) result {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := *r.stateLocked(t)
	s.replies = slices.Clone(s.replies)
	s.failures = slices.Clone(s.failures)
	return s
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

// fakeCluster plays the control store (actor states, long-polled with
// WaitActor as the real one: the state once its version passes since, or
// the current state at the server's deadline) and the worker processes
// that host actors (Clients for the submitter).
type fakeCluster struct {
	n *notifier

	mu       sync.Mutex
	actors   map[ids.ID]*actorRec
	procs    map[string]*fakeProc
	deadline time.Duration // WaitActor's server-side deadline
	waits    int
	dials    []string
	cancels  []cancelCall

	waitHook   func(ctx context.Context, n int, id ids.ID, since uint64) (*pb.ActorInfo, error, bool)
	cancelHook func(addr string, req *pb.CancelTaskRequest) error
	// run runs a call on p; nil if the process died meanwhile.
	run func(cn *fakeConn, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply
}

type actorRec struct {
	info    *pb.ActorInfo
	changed chan struct{}
}

type cancelCall struct {
	addr string
	req  *pb.CancelTaskRequest
}

func newCluster(n *notifier) *fakeCluster {
	return &fakeCluster{n: n, actors: map[ids.ID]*actorRec{}, procs: map[string]*fakeProc{}, deadline: 10 * time.Second}
}

// set records a new state of the actor (a new version, as the control
// store bumps on every change) and wakes its long polls.
func (c *fakeCluster) set(id ids.ID, state pb.ActorState, addr string, cause *pb.ErrorInfo) {
	c.setWith(id, state, addr, cause, nil)
}

// setWith is set with the infeasible report of an actor no node can hold.
func (c *fakeCluster) setWith(id ids.ID, state pb.ActorState, addr string, cause, infeasible *pb.ErrorInfo) {
	c.mu.Lock()
	rec, ok := c.actors[id]
	if !ok {
		rec = &actorRec{info: &pb.ActorInfo{ActorId: id.Bytes()}, changed: make(chan struct{})}
		c.actors[id] = rec
	}
	rec.info = &pb.ActorInfo{ActorId: id.Bytes(), State: state, Address: addr, DeathCause: cause, Infeasible: infeasible,
		Version: rec.info.GetVersion() + 1}
	close(rec.changed)
	rec.changed = make(chan struct{})
	c.mu.Unlock()
	c.n.Notify()
}

// setInfeasible records the actor pending creation with no node able to
// hold it (a new version each time).
func (c *fakeCluster) setInfeasible(id ids.ID) {
	c.setWith(id, pb.ActorState_ACTOR_STATE_PENDING_CREATION, "", nil,
		errs.ToInfo(&errs.InfeasibleError{Request: "GPU=8", Cluster: "GPU=0"}))
}

// addProc starts a worker process at addr hosting the given actors.
func (c *fakeCluster) addProc(addr string, hosted ...ids.ID) *fakeProc {
	p := &fakeProc{c: c, addr: addr, dead: make(chan struct{}), hosted: map[ids.ID]bool{}}
	for _, id := range hosted {
		p.hosted[id] = true
	}
	c.mu.Lock()
	c.procs[addr] = p
	c.mu.Unlock()
	return p
}

func (c *fakeCluster) setRun(run func(cn *fakeConn, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply) {
	c.mu.Lock()
	c.run = run
	c.mu.Unlock()
}

func (c *fakeCluster) WaitActor(ctx context.Context, id ids.ID, since uint64) (*pb.ActorInfo, error) {
	c.mu.Lock()
	c.waits++
	n := c.waits
	hook := c.waitHook
	c.mu.Unlock()
	c.n.Notify()
	if hook != nil {
		if info, err, ok := hook(ctx, n, id, since); ok {
			return info, err
		}
	}
	timer := time.NewTimer(c.deadline)
	defer timer.Stop()
	for {
		c.mu.Lock()
		rec, ok := c.actors[id]
		if !ok {
			c.mu.Unlock()
			return nil, errs.NotFoundf("gcs: no actor %s", id)
		}
		info, ch := rec.info, rec.changed
		c.mu.Unlock()
		if info.GetVersion() > since {
			return info, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return info, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (c *fakeCluster) Dial(ctx context.Context, addr string) (Stream, error) {
	c.mu.Lock()
	c.dials = append(c.dials, addr)
	p := c.procs[addr]
	c.mu.Unlock()
	c.n.Notify()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if p == nil || p.isDead() {
		return nil, fmt.Errorf("%w: nothing listens at %s", errs.ErrUnavailable, addr)
	}
	return p.connect(), nil
}

func (c *fakeCluster) CancelTask(_ context.Context, addr string, req *pb.CancelTaskRequest) error {
	c.mu.Lock()
	c.cancels = append(c.cancels, cancelCall{addr, req})
	hook := c.cancelHook
	p := c.procs[addr]
	c.mu.Unlock()
	c.n.Notify()
	if hook != nil {
		if err := hook(addr, req); err != nil {
			return err
		}
	}
	p.cancel(ids.MustFromBytes(req.GetTaskId()))
	return nil
}

func (c *fakeCluster) dialList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.dials)
}

// ---------------------------------------------------------------- processes

// fakeProc is a worker process hosting actors. Each stream to it (Dial)
// has a reader goroutine that queues calls and a runner that runs them in
// order, answering ActorNotHere for actors the process does not host.
type fakeProc struct {
	c    *fakeCluster
	addr string
	dead chan struct{} // closed by kill

	killOnce sync.Once

	mu      sync.Mutex
	hosted  map[ids.ID]bool
	ran     []*pb.TaskSpec // calls run, in order
	conns   []*fakeConn
	batches []*pb.TaskBatch
}

func (p *fakeProc) kill() { p.killOnce.Do(func() { close(p.dead) }) }

func (p *fakeProc) isDead() bool {
	select {
	case <-p.dead:
		return true
	default:
		return false
	}
}

// drop stops hosting an actor (killed or moved away); its later calls are
// answered ActorNotHere.
func (p *fakeProc) drop(id ids.ID) {
	p.mu.Lock()
	delete(p.hosted, id)
	p.mu.Unlock()
}

func (p *fakeProc) seqs() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []uint64
	for _, s := range p.ran {
		out = append(out, s.GetSeqNo())
	}
	return out
}

func (p *fakeProc) connect() *fakeConn {
	cn := &fakeConn{p: p, in: make(chan *pb.TaskBatch, 4096), out: make(chan *pb.ReplyBatch, 4096),
		wake: make(chan struct{}, 1), gone: make(chan struct{})}
	p.mu.Lock()
	p.conns = append(p.conns, cn)
	p.mu.Unlock()
	go cn.read()
	go cn.runLoop()
	return cn
}

func (p *fakeProc) cancel(tid ids.ID) {
	p.mu.Lock()
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	for _, cn := range conns {
		cn.cancel(tid)
	}
}

// fakeConn is one push stream to a process; it is the submitter's end
// (Stream).
type fakeConn struct {
	p    *fakeProc
	in   chan *pb.TaskBatch
	out  chan *pb.ReplyBatch
	wake chan struct{}
	gone chan struct{} // closed by the caller's Close

	goneOnce, closeSendOnce sync.Once

	mu       sync.Mutex
	queue    []*pb.TaskSpec
	running  *pb.TaskSpec
	cancelRn chan struct{}
	inClosed bool
}

func (cn *fakeConn) poke() {
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

func (cn *fakeConn) read() {
	for {
		select {
		case b, ok := <-cn.in:
			cn.mu.Lock()
			if !ok {
				cn.inClosed = true
			} else {
				cn.queue = append(cn.queue, b.GetTasks()...)
			}
			cn.mu.Unlock()
			if ok {
				cn.p.mu.Lock()
				cn.p.batches = append(cn.p.batches, b)
				cn.p.mu.Unlock()
			}
			cn.poke()
			if !ok {
				return
			}
		case <-cn.p.dead:
			return
		case <-cn.gone:
			return
		}
	}
}

func (cn *fakeConn) send(b *pb.ReplyBatch) bool {
	select {
	case cn.out <- b:
		cn.p.c.n.Notify()
		return true
	case <-cn.p.dead:
		return false
	case <-cn.gone:
		return false
	}
}

func (cn *fakeConn) runLoop() {
	for {
		cn.mu.Lock()
		if len(cn.queue) == 0 {
			closed := cn.inClosed
			cn.mu.Unlock()
			if closed {
				close(cn.out)
				return
			}
			select {
			case <-cn.wake:
				continue
			case <-cn.p.dead:
				return
			case <-cn.gone:
				return
			}
		}
		spec := cn.queue[0]
		cn.queue = cn.queue[1:]
		cn.running = spec
		cn.cancelRn = make(chan struct{})
		cancelled := cn.cancelRn
		cn.mu.Unlock()

		p := cn.p
		aid := ids.MustFromBytes(spec.GetActorId())
		p.mu.Lock()
		here := p.hosted[aid]
		if here {
			p.ran = append(p.ran, spec)
		}
		p.mu.Unlock()
		p.c.n.Notify()
		var reply *pb.TaskReply
		if !here {
			reply = &pb.TaskReply{TaskId: spec.GetTaskId(), Error: &pb.ErrorInfo{Kind: errs.KindActorNotHere, ActorId: aid.String()}}
		} else {
			p.c.mu.Lock()
			run := p.c.run
			p.c.mu.Unlock()
			if run != nil {
				reply = run(cn, spec, cancelled)
			} else {
				reply = resultReply(spec)
			}
		}
		cn.mu.Lock()
		cn.running = nil
		cn.mu.Unlock()
		if reply == nil || !cn.send(&pb.ReplyBatch{Replies: []*pb.TaskReply{reply}}) {
			return
		}
	}
}

// resultReply is a call's result: its sequence number and attempt.
func resultReply(spec *pb.TaskSpec) *pb.TaskReply {
	return &pb.TaskReply{TaskId: spec.GetTaskId(),
		Returns: []*pb.Value{{Data: fmt.Appendf(nil, "seq %d attempt %d", spec.GetSeqNo(), spec.GetAttempt())}}}
}

func (cn *fakeConn) cancel(tid ids.ID) {
	cn.mu.Lock()
	for i, spec := range cn.queue {
		if ids.MustFromBytes(spec.GetTaskId()) == tid {
			cn.queue = slices.Delete(cn.queue, i, i+1)
			cn.mu.Unlock()
			cn.send(&pb.ReplyBatch{Replies: []*pb.TaskReply{{TaskId: spec.GetTaskId(),
				Error: errs.ToInfo(&errs.CancelledError{Function: spec.GetFunction(), TaskID: tid.String()})}}})
			return
		}
	}
	if cn.running != nil && ids.MustFromBytes(cn.running.GetTaskId()) == tid {
		close(cn.cancelRn)
	}
	cn.mu.Unlock()
}

// block waits for gate while running a call; false if the process died
// or the stream closed, wasCancelled if the call was cancelled.
func (cn *fakeConn) block(gate, cancelled <-chan struct{}) (ok, wasCancelled bool) {
	select {
	case <-gate:
		return true, false
	case <-cancelled:
		return true, true
	case <-cn.p.dead:
		return false, false
	case <-cn.gone:
		return false, false
	}
}

func (cn *fakeConn) Send(b *pb.TaskBatch) error {
	// As the wire would: a copy, with the header's actor id in each call
	// (the executor's FillFromCommon).
	cp := &pb.TaskBatch{Common: b.GetCommon(), Steal: b.GetSteal()}
	for _, spec := range b.GetTasks() {
		spec = proto.Clone(spec).(*pb.TaskSpec)
		if spec.ActorId == nil {
			spec.ActorId = b.GetCommon().GetActorId()
		}
		cp.Tasks = append(cp.Tasks, spec)
	}
	select {
	case <-cn.p.dead:
		return fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, cn.p.addr)
	case <-cn.gone:
		return errors.New("stream closed")
	default:
	}
	select {
	case cn.in <- cp:
		return nil
	case <-cn.p.dead:
		return fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, cn.p.addr)
	case <-cn.gone:
		return errors.New("stream closed")
	}
}

func (cn *fakeConn) Recv() (*pb.ReplyBatch, error) {
	select {
	case <-cn.p.dead:
		return nil, fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, cn.p.addr)
	case <-cn.gone:
		return nil, errors.New("stream closed")
	default:
	}
	select {
	case b, ok := <-cn.out:
		if !ok {
			return nil, io.EOF
		}
		return b, nil
	case <-cn.p.dead:
		return nil, fmt.Errorf("%w: connection to %s broke", errs.ErrUnavailable, cn.p.addr)
	case <-cn.gone:
		return nil, errors.New("stream closed")
	}
}

func (cn *fakeConn) CloseSend() error {
	cn.closeSendOnce.Do(func() { close(cn.in) })
	return nil
}

func (cn *fakeConn) Close() { cn.goneOnce.Do(func() { close(cn.gone) }) }

// ---------------------------------------------------------------- helpers

type world struct {
	n     *notifier
	c     *fakeCluster
	r     *fakeResults
	s     *Submitter
	owner ids.ID
}

func newWorld(t *testing.T, cfg Config) *world {
	n := &notifier{}
	w := &world{n: n, c: newCluster(n), r: newResults(n), owner: ids.New()}
	cfg.JobID = []byte("job-1")
	cfg.OwnerID = w.owner.Bytes()
	cfg.Owner = "caller:1"
	w.s = New(cfg, w.c, w.r)
	t.Cleanup(func() { w.s.Close() })
	return w
}

// call makes a call of method fn on an actor with MaxTaskRetries retries.
func newCall(fn string, retries int) *taskmgr.Task {
	t := taskmgr.NewTask(ids.New(), taskmgr.ActorCall, nil, 1, taskmgr.Policy{MaxRetries: retries})
	t.Spec.Function = fn
	t.Spec.NumReturns = 1
	return t
}

func newCalls(n int, fn string, retries int) []*taskmgr.Task {
	out := make([]*taskmgr.Task, n)
	for i := range out {
		out[i] = newCall(fn, retries)
	}
	return out
}

func (w *world) submit(t *testing.T, actor ids.ID, ts ...*taskmgr.Task) {
	t.Helper()
	for _, x := range ts {
		if err := w.s.Submit(x, actor, "counter", true); err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
}

func (w *world) waitDone(t *testing.T, ts ...*taskmgr.Task) {
	t.Helper()
	w.n.WaitFor(t, fmt.Sprintf("%d calls to finish", len(ts)), func() bool { return w.r.done(ts...) })
}

func (w *world) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	w.n.WaitFor(t, what, cond)
}

// alive starts a process at addr hosting actor and records the actor
// ALIVE there.
func (w *world) alive(actor ids.ID, addr string) *fakeProc {
	p := w.c.addProc(addr, actor)
	w.c.set(actor, pb.ActorState_ACTOR_STATE_ALIVE, addr, nil)
	return p
}

// gateFirst returns a run hook under which the call with sequence number
// seq (first attempt) waits for gate; started is closed when it begins.
func gateFirst(seq uint64, gate <-chan struct{}, started chan<- struct{}) func(cn *fakeConn, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
	return func(cn *fakeConn, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
		if spec.GetSeqNo() == seq && spec.GetAttempt() == 0 {
			close(started)
			ok, wasCancelled := cn.block(gate, cancelled)
			if !ok {
				return nil
			}
			if wasCancelled {
				return &pb.TaskReply{TaskId: spec.GetTaskId(), Error: errs.ToInfo(&errs.CancelledError{Function: spec.GetFunction()})}
			}
		}
		return resultReply(spec)
	}
}
