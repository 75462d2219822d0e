// Package executor runs the tasks pushed to a worker process: it receives
// them on push streams from their owners, runs normal tasks one at a time
// per stream and actor calls by each actor's concurrency, answers cancels
// and steals, and sends replies back in batches. It is the counterpart of
// Ray's TaskReceiver and its scheduling queues.
//
// A push stream carries tasks of one owner: a lease's tasks (normal), or
// one caller's calls to one actor. Per stream:
//
//   - the serving goroutine reads batches and queues their tasks;
//   - a runner runs queued normal tasks in order. A task that blocks (in
//     Get or Wait, through its context's block hook) hands the queue to a
//     fresh runner, so tasks pipelined behind it still run — one of them
//     may be what it waits for;
//   - a writer sends replies, batching what accumulates while it writes.
//
// Actor calls go from the serving goroutine straight to their actor's
// queue, which gathers every caller's stream (each caller's calls stay in
// the order sent), as in Ray's actor scheduling queue: the actor's runner
// runs them one at a time, or up to its MaxConcurrency runners at once,
// and each reply goes back on the stream its call came on. Callers of one
// actor never wait on each other's streams, and calls to different actors
// in one process never wait on each other.
//
// Cancelling a queued task answers it at once (Cancelled); a running task
// has its context cancelled and its reply is Cancelled whatever it
// returns. A steal request gives back tasks queued but not started.
//
// The Executor reaches the rest of the process through Env: resolving
// arguments, storing results, registering borrowed refs before a reply,
// telling the node daemon a task is blocked.
package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker/push"
	"github.com/raygo/raygo/internal/coreworker/registry"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/internal/taskevents"
	"github.com/raygo/raygo/internal/wirecheck"
	"github.com/raygo/raygo/internal/workerlog"
)

// TerminateMethod is the method name of a graceful terminate: queued
// behind a caller's earlier calls, it ends the actor when it runs.
const TerminateMethod = "__raygo_terminate__"

// ServerStream is the worker's end of a push stream.
type ServerStream interface {
	Recv() (*pb.TaskBatch, error)
	Send(*pb.ReplyBatch) error
	Context() context.Context
}

// Env is what the executor needs from the rest of the process.
type Env interface {
	// ResolveArgs returns each argument's encoded bytes; release, called
	// when the task is done, unpins what aliases shared memory.
	ResolveArgs(ctx context.Context, spec *pb.TaskSpec) (args [][]byte, release func(), err error)
	// StoreReturns turns encoded results into reply values (large ones go
	// to the node's store) and registers the caller as borrower of refs
	// nested in them.
	StoreReturns(ctx context.Context, spec *pb.TaskSpec, rets []registry.Encoded) ([]*pb.Value, error)
	// FlushBorrows tells owners of refs this process started borrowing,
	// before a task's reply lets its caller drop them.
	FlushBorrows(ctx context.Context)
	// ActorExited reports that a hosted actor ended itself (ExitActor or
	// a graceful terminate), so it is not restarted.
	ActorExited(actor ids.ID, reason string)
}

// Config configures an Executor.
type Config struct {
	NodeID, WorkerID ids.ID
	// AnnounceTo receives the name of the function whose output follows
	// (the node daemon prefixes worker output with it); nil: the process's
	// stdout and stderr.
	AnnounceTo []io.Writer
	// FitProcs sizes GOMAXPROCS to each task's CPUs (normal tasks) or to
	// the node's cores (processes hosting shared actors).
	FitProcs bool
	// Events records each attempt's RUNNING and how it ended (FINISHED,
	// FAILED); nil records nothing.
	Events *taskevents.Buffer
}

// Executor runs tasks in a worker process. It is safe for concurrent use.
type Executor struct {
	cfg   Config
	reg   *registry.Registry
	env   Env
	ctx   context.Context // the process's; tasks' contexts derive from it
	stop  *stopper.Stopper
	procs atomic.Int32

	mu       sync.Mutex
	streams  map[*stream]struct{}    // guarded by mu
	actors   map[ids.ID]*hostedActor // guarded by mu
	lastName atomic.Pointer[string]  // the name announced last; changed under mu
	closing  bool                    // guarded by mu: Close began; no more actors are hosted
	// early: tasks cancelled before they arrived (the cancel overtook the
	// task on its way), answered cancelled when they do; guarded by mu.
	early  map[ids.ID]time.Time
	nEarly atomic.Int32 // len(early), read without mu on every batch
}

// Early cancels: at most maxEarly remembered, each for earlyFor.
const (
	maxEarly = 4096
	earlyFor = 30 * time.Second
)

// noteEarly remembers a cancel of a task not here (yet).
func (e *Executor) noteEarly(tid ids.ID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.early == nil {
		e.early = map[ids.ID]time.Time{}
	}
	now := time.Now()
	if len(e.early) >= maxEarly {
		for id, at := range e.early {
			if now.Sub(at) > earlyFor || len(e.early) >= maxEarly {
				delete(e.early, id)
			}
		}
	}
	e.early[tid] = now
	e.nEarly.Store(int32(len(e.early)))
}

// takeEarly reports whether tid was cancelled before it arrived, and
// forgets it.
func (e *Executor) takeEarly(tid ids.ID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.early[tid]; ok {
		delete(e.early, tid)
		e.nEarly.Store(int32(len(e.early)))
		return true
	}
	return false
}

// hostedActor is an actor living in this process.
type hostedActor struct {
	id       ids.ID
	instance any
	maxConc  int                   // calls that may run at once (at least 1)
	capture  *pb.SchedulingOptions // its placement group, when it captures child tasks
	exiting  atomic.Bool           // ExitActor was called: drop after this call
	dropped  atomic.Bool           // killed here: calls running now are interrupted
	gone     atomic.Bool           // no longer hosted (dropped or ended)

	mu      sync.Mutex
	cond    sync.Cond   // on mu: a parked runner waits here for calls
	queue   []actorCall // guarded by mu: received, not started; queue[head:] are live
	head    int         // guarded by mu
	runners int         // guarded by mu: goroutines serving the queue (at most maxConc)
	idle    int         // guarded by mu: runners not running a call (parked, or about to take one)
	parked  int         // guarded by mu: runners waiting on cond (one stays between bursts)
	closed  bool        // guarded by mu: dropped, or the executor is closing: runners do not park
}

// actorCall is a call waiting in its actor's queue, with the stream it
// came on (where its reply goes).
type actorCall struct {
	s    *stream
	spec *pb.TaskSpec
	r    *running
}

// New returns an Executor running registered code from reg.
func New(cfg Config, reg *registry.Registry, env Env) *Executor {
	if cfg.AnnounceTo == nil {
		cfg.AnnounceTo = []io.Writer{os.Stdout, os.Stderr}
	}
	st := stopper.New()
	e := &Executor{cfg: cfg, reg: reg, env: env, ctx: st.Ctx(), stop: st, streams: map[*stream]struct{}{}, actors: map[ids.ID]*hostedActor{}}
	e.procs.Store(int32(runtime.GOMAXPROCS(0)))
	return e
}

// Close cancels running tasks and waits for the executor's goroutines.
// Streams being served end with their callers.
func (e *Executor) Close() {
	e.closeActors()
	e.stop.Stop()
}

// CloseWithin is Close that waits at most d; it returns the names of the
// goroutines still running then (tasks that ignore their context).
func (e *Executor) CloseWithin(d time.Duration) []string {
	e.closeActors()
	return e.stop.StopWithin(d)
}

// closeActors ends the hosted actors' parked runners; actors hosted after
// it are refused.
func (e *Executor) closeActors() {
	e.mu.Lock()
	e.closing = true
	hosted := slices.Collect(maps.Values(e.actors))
	e.mu.Unlock()
	for _, ha := range hosted {
		ha.close()
	}
}

// Running is the number of tasks running now.
func (e *Executor) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for s := range e.streams {
		s.mu.Lock()
		for r := s.running.first; r != nil; r = r.next {
			if r.tc != nil {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// out is one message for a stream's writer: a reply, or the ids of
// stolen tasks.
type out struct {
	reply  *pb.TaskReply
	stolen [][]byte
}

// stream is one push stream being served.
type stream struct {
	e     *Executor
	srv   ServerStream
	outCh chan out

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*pb.TaskSpec // not taken by a runner
	running runList        // taken from the queue or queued on an actor, not replied
	closed  bool
	runners sync.WaitGroup

	calls []actorCall // accept's scratch (only the stream's reader calls accept)
}

// running is a task taken from the queue: being run, or waiting for its
// actor's turn. Cancel finds it here from the moment it leaves the queue.
type running struct {
	id        ids.ID
	actor     ids.ID       // zero for a normal task
	spec      *pb.TaskSpec // for the reply of a call cancelled in its actor's queue
	ha        *hostedActor // the actor whose queue holds it; nil for a normal task
	tc        *taskContext // guarded by stream.mu; nil until the task starts
	cancelled bool         // guarded by stream.mu

	prev, next *running // guarded by stream.mu: its place in stream.running
	listed     bool     // guarded by stream.mu

	// answered: DropActor replied for it while it ran (its actor was
	// killed); what the method returns is dropped.
	answered atomic.Bool
}

// runList is a stream's tasks taken and not replied, linked through the
// tasks: adding and removing one costs the same whatever the length (an
// actor's queue may hold thousands of a stream's calls).
type runList struct{ first, last *running }

func (l *runList) push(r *running) {
	r.prev, r.next, r.listed = l.last, nil, true
	if l.last != nil {
		l.last.next = r
	} else {
		l.first = r
	}
	l.last = r
}

// remove takes r out of the list; a no-op if it is not in it.
func (l *runList) remove(r *running) {
	if !r.listed {
		return
	}
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		l.first = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		l.last = r.prev
	}
	r.prev, r.next, r.listed = nil, nil, false
}

// Serve serves one push stream until its owner closes it or goes away.
func (e *Executor) Serve(srv ServerStream) error {
	s := &stream{e: e, srv: srv, outCh: make(chan out, 1024)}
	s.cond = sync.NewCond(&s.mu)
	e.mu.Lock()
	e.streams[s] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.streams, s)
		e.mu.Unlock()
	}()
	sendDone := make(chan error, 1)
	if err := e.stop.Go("executor.write", func(context.Context) { sendDone <- s.write() }); err != nil {
		return errs.Systemf("raygo: worker is stopping")
	}
	s.startRunner()
	var recvErr error
	for {
		batch, err := srv.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		// Checked before anything acts on it: a num_returns of 2^31-1
		// would make FillFromCommon allocate 32 GiB of return ids.
		if err := wirecheck.TaskBatch(batch); err != nil {
			recvErr = err
			break
		}
		s.accept(batch)
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cond.Broadcast()
	s.runners.Wait()
	close(s.outCh)
	if err := <-sendDone; err != nil && recvErr == nil {
		recvErr = err
	}
	if recvErr != nil && srv.Context().Err() != nil {
		return nil // the caller went away
	}
	return recvErr
}

// accept queues a batch's tasks, actor calls on their actors, and
// answers its steal request.
func (s *stream) accept(batch *pb.TaskBatch) {
	var (
		calls  = s.calls[:0] // to actors hosted here, in order
		ha     *hostedActor
		haWire []byte
		early  []*pb.TaskSpec // cancelled before they arrived
	)
	s.mu.Lock()
	for _, spec := range batch.GetTasks() {
		FillFromCommon(spec, batch.GetCommon())
		if aw := spec.GetActorId(); aw != nil {
			if string(aw) != string(haWire) { // a batch's calls are usually all to one actor
				ha, haWire = s.e.hosted(aw), aw
			}
			if ha != nil {
				r := &running{id: ids.MustFromBytes(spec.GetTaskId()), actor: ha.id, spec: spec, ha: ha}
				s.running.push(r)
				s.runners.Add(1) // its reply comes on this stream
				calls = append(calls, actorCall{s, spec, r})
				continue
			}
			// Not hosted here: the stream's runner answers "not here".
		} else if s.e.nEarly.Load() > 0 && s.e.takeEarly(ids.MustFromBytes(spec.GetTaskId())) {
			early = append(early, spec) // cancelled before it arrived
			continue
		}
		s.queue = append(s.queue, spec)
	}
	var stolen [][]byte
	if n := int(batch.GetSteal()); n > 0 {
		n = min(n, len(s.queue))
		for _, spec := range s.queue[len(s.queue)-n:] {
			stolen = append(stolen, spec.GetTaskId())
		}
		clear(s.queue[len(s.queue)-n:])
		s.queue = s.queue[:len(s.queue)-n]
	}
	s.mu.Unlock()
	for _, spec := range early {
		s.reply(cancelledReply(spec))
	}
	for rest := calls; len(rest) > 0; { // each actor's run of calls, in order (enqueue copies them)
		n := 1
		for n < len(rest) && rest[n].r.ha == rest[0].r.ha {
			n++
		}
		s.e.enqueue(rest[0].r.ha, rest[:n])
		rest = rest[n:]
	}
	clear(calls)
	s.calls = calls[:0]
	s.cond.Signal()
	if batch.GetSteal() > 0 {
		s.outCh <- out{stolen: stolen} // an empty list too: the owner stops waiting
	}
}

// pop takes the next queued task, waiting while the queue is empty, and
// registers it as running.
func (s *stream) pop() (*pb.TaskSpec, *running, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) == 0 && !s.closed {
		s.cond.Wait()
	}
	if len(s.queue) == 0 {
		return nil, nil, false
	}
	spec := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	r := &running{id: ids.MustFromBytes(spec.GetTaskId()), actor: ids.MustFromBytes(spec.GetActorId())}
	s.running.push(r)
	return spec, r, true
}

// forget removes r from the running tasks and reports whether it was
// cancelled.
func (s *stream) forget(r *running) (cancelled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running.remove(r)
	return r.cancelled
}

func (s *stream) startRunner() {
	s.runners.Add(1)
	if err := s.e.stop.Go("executor.run", func(context.Context) { s.run() }); err != nil {
		s.runners.Done()
	}
}

// run runs queued tasks in order until the stream closes, or until a
// normal task blocks and hands the queue to a new runner.
func (s *stream) run() {
	defer s.runners.Done()
	for {
		spec, r, ok := s.pop()
		if !ok {
			return
		}
		if spec.GetActorId() != nil { // not hosted here when it came
			s.reply(s.e.runTask(s, spec, r, nil))
			continue
		}
		var handedOff atomic.Bool
		hook := func() { // the task blocked: let the queue move on
			if handedOff.CompareAndSwap(false, true) {
				s.startRunner()
			}
		}
		s.reply(s.e.runTask(s, spec, r, hook))
		if handedOff.Load() {
			return
		}
	}
}

// reply queues a task's reply for the stream's writer. With one P the
// writer runs when the runner blocks, when the queue empties, or when Go
// preempts the runner (after 10 ms of running): replies of finished tasks
// wait at most that long, and what gathers meanwhile goes out in one
// write. (A runner that yielded to the writer after 100 µs sent four to
// ten times as many writes, each one woken and read by the caller.)
func (s *stream) reply(r *pb.TaskReply) {
	s.outCh <- out{reply: r}
}

// enqueue appends calls (to ha, from one stream, in order) to the
// actor's queue and wakes or starts runners for them, up to the actor's
// concurrency: each queued call has a runner free to take it, or every
// runner the actor may have is busy.
func (e *Executor) enqueue(ha *hostedActor, calls []actorCall) {
	ha.mu.Lock()
	if ha.head > 0 && ha.head*2 >= len(ha.queue) { // reuse the array's front
		ha.queue = push.DropFront(ha.queue, ha.head)
		ha.head = 0
	}
	ha.queue = append(ha.queue, calls...)
	if ha.parked > 0 { // it stays counted idle until it takes a call
		ha.parked--
		ha.cond.Signal()
	}
	start := min(ha.maxConc-ha.runners, len(ha.queue)-ha.head-ha.idle)
	if start > 0 {
		ha.runners += start
		ha.idle += start
	}
	ha.mu.Unlock()
	for range start {
		if err := e.stop.Go("executor.actor", func(context.Context) { e.runActor(ha) }); err != nil {
			e.stopRunner(ha)
		}
	}
}

// stopRunner accounts for a runner that could not start (the process is
// stopping): when no runner is left, the queued calls are dropped
// unanswered — the streams break, and callers learn of these calls from
// the actor's fate.
func (e *Executor) stopRunner(ha *hostedActor) {
	ha.mu.Lock()
	ha.runners--
	ha.idle--
	var left []actorCall
	if ha.runners == 0 {
		left = ha.queue[ha.head:]
		ha.queue, ha.head = nil, 0
	}
	ha.mu.Unlock()
	for _, c := range left {
		c.s.forget(c.r)
		c.s.runners.Done()
	}
}

// runActor is one of the actor's runners (as many as it may run calls at
// once): it runs queued calls in order, each replied on the stream it
// came on. When the queue is empty one runner parks for the next call
// (a caller that waits for each reply would otherwise start a goroutine,
// and grow its stack, per call); the others end. A parked runner ends
// when the actor is dropped or the executor closes.
func (e *Executor) runActor(ha *hostedActor) {
	ha.mu.Lock()
	for {
		if ha.head < len(ha.queue) {
			c := ha.queue[ha.head]
			ha.queue[ha.head] = actorCall{}
			ha.head++
			ha.idle--
			ha.mu.Unlock()
			if reply := e.runTask(c.s, c.spec, c.r, nil); !c.r.answered.Load() {
				c.s.reply(reply)
			}
			c.s.runners.Done()
			ha.mu.Lock()
			ha.idle++
			continue
		}
		ha.queue, ha.head = ha.queue[:0], 0
		if ha.closed || ha.parked > 0 {
			ha.runners--
			ha.idle--
			ha.mu.Unlock()
			return
		}
		ha.parked++
		ha.cond.Wait() // enqueue or close counted it out of parked
	}
}

// close ends the actor's parked runner and keeps runners from parking.
func (ha *hostedActor) close() {
	ha.mu.Lock()
	ha.closed = true
	ha.parked = 0
	ha.mu.Unlock()
	ha.cond.Broadcast()
}

// remove takes r's call out of the actor's queue; false if it is not
// there (started, or not queued yet).
func (ha *hostedActor) remove(r *running) bool {
	ha.mu.Lock()
	defer ha.mu.Unlock()
	for i := ha.head; i < len(ha.queue); i++ {
		if ha.queue[i].r == r {
			ha.queue = slices.Delete(ha.queue, i, i+1)
			return true
		}
	}
	return false
}

// write sends replies in batches until outCh is closed.
func (s *stream) write() error {
	var err error
	batch := make([]*pb.TaskReply, 0, 64)
	for o := range s.outCh {
		msg := &pb.ReplyBatch{Stolen: o.stolen}
		batch = batch[:0]
		if o.reply != nil {
			batch = append(batch, o.reply)
		}
	drain:
		for len(batch) < 1024 {
			select {
			case o2, ok := <-s.outCh:
				if !ok {
					break drain
				}
				if o2.reply != nil {
					batch = append(batch, o2.reply)
				}
				if o2.stolen != nil {
					msg.Stolen = append(msg.Stolen, o2.stolen...)
				}
			default:
				break drain
			}
		}
		msg.Replies = batch
		if err == nil {
			err = s.srv.Send(msg)
		}
	}
	return err
}

// Cancel cancels a task of this process: one queued is answered Cancelled
// at once, one running has its context cancelled (and is answered
// Cancelled when it returns). It reports whether the task was found.
func (e *Executor) Cancel(tid ids.ID) bool {
	// Noted first: a task accepted while the streams are searched is
	// answered cancelled on arrival (accept), not left to run.
	e.noteEarly(tid)
	e.mu.Lock()
	streams := make([]*stream, 0, len(e.streams))
	for s := range e.streams {
		streams = append(streams, s)
	}
	e.mu.Unlock()
	for _, s := range streams {
		if s.cancel(tid) {
			e.takeEarly(tid)
			return true
		}
	}
	return false
}

func (s *stream) cancel(tid ids.ID) bool {
	s.mu.Lock()
	for i, spec := range s.queue {
		if ids.MustFromBytes(spec.GetTaskId()) == tid {
			s.queue = slices.Delete(s.queue, i, i+1)
			s.mu.Unlock()
			s.reply(cancelledReply(spec))
			return true
		}
	}
	for r := s.running.first; r != nil; r = r.next {
		if r.id == tid {
			r.cancelled = true // one not started yet does not run
			tc := r.tc
			s.mu.Unlock()
			if tc != nil {
				tc.cancel(context.Canceled)
			} else if r.ha != nil && r.ha.remove(r) { // waiting in its actor's queue: answered now
				s.answerUnstarted(r, cancelledReply(r.spec))
			}
			return true
		}
	}
	s.mu.Unlock()
	return false
}

func cancelledReply(spec *pb.TaskSpec) *pb.TaskReply {
	return &pb.TaskReply{TaskId: spec.GetTaskId(), Error: errs.ToInfo(&errs.CancelledError{Function: spec.GetFunction(),
		TaskID: ids.MustFromBytes(spec.GetTaskId()).String()})}
}

// runTask executes one task (r, registered by pop) and builds its reply.
// A task cancelled before it starts does not run.
func (e *Executor) runTask(s *stream, spec *pb.TaskSpec, r *running, onBlock func()) *pb.TaskReply {
	tid := r.id
	reply := &pb.TaskReply{TaskId: spec.GetTaskId()}
	traced := e.cfg.Events != nil && !spec.GetNoTaskEvents()
	if traced {
		// Registered first, so it runs last: after the cancel below has
		// set the reply's error.
		defer func() { e.recordEnd(tid, spec.GetAttempt(), reply.GetError()) }()
	}
	aid := ids.MustFromBytes(spec.GetActorId())
	var ha *hostedActor
	if !aid.IsNil() {
		// accept found the actor for a call queued on it; look again only
		// if it has gone since.
		if ha = r.ha; ha == nil || ha.gone.Load() {
			ha = e.hostedID(aid)
		}
	}
	capture := captureOf(spec)
	if ha != nil {
		capture = ha.capture
	}
	tc := newTaskContext(e.ctx, TaskInfo{TaskID: tid, Function: spec.GetFunction(), Attempt: int(spec.GetAttempt()),
		NodeID: e.cfg.NodeID, WorkerID: e.cfg.WorkerID, ActorID: aid, Capture: capture}, onBlock)
	tc.actor = ha // the method's context answers ExitActor
	s.mu.Lock()
	r.tc = tc
	cancelledEarly := r.cancelled
	s.mu.Unlock()
	defer func() {
		tc.cancel(context.Canceled)
		if s.forget(r) {
			reply.Returns = nil
			reply.Error = cancelledReply(spec).Error
		}
	}()
	if cancelledEarly {
		return reply
	}
	var ctx context.Context = tc

	if !aid.IsNil() {
		if ha == nil {
			// Killed here, or restarted elsewhere: the caller reconnects.
			reply.Error = notHereReply(spec).Error
			return reply
		}
		if spec.GetFunction() == TerminateMethod {
			e.endActor(ha, "terminated gracefully after its earlier calls")
			// The caller's refs become ready (nil values) now that the
			// actor has ended.
			nils := make([]registry.Encoded, len(spec.GetReturnIds()))
			for i := range nils {
				nils[i].Data, _, _ = codec.Encode(nil)
			}
			var err error
			if reply.Returns, err = e.env.StoreReturns(ctx, spec, nils); err != nil {
				reply.Error = errs.ToInfo(err)
			}
			return reply
		}
	}
	args, releaseArgs, err := e.env.ResolveArgs(ctx, spec)
	defer func() {
		if releaseArgs != nil {
			releaseArgs()
		}
	}()
	if err != nil {
		reply.Error = errs.ToInfo(err)
		return reply
	}
	var call func() ([]registry.Encoded, error)
	if ha != nil {
		m, ok := e.reg.Method(spec.GetFunction())
		if !ok {
			reply.Error = errs.ToInfo(&errs.NotRegisteredError{Name: spec.GetFunction()})
			return reply
		}
		call = func() ([]registry.Encoded, error) { return m(ctx, ha.instance, args) }
	} else {
		f, ok := e.reg.Func(spec.GetFunction())
		if !ok {
			reply.Error = errs.ToInfo(&errs.NotRegisteredError{Name: spec.GetFunction()})
			return reply
		}
		call = func() ([]registry.Encoded, error) { return f(ctx, args) }
	}
	e.announce(spec)
	e.fitProcs(spec)
	start := time.Now()
	if traced {
		e.cfg.Events.Exec(tid, spec.GetAttempt(), taskevents.Running, nil, start.UnixNano())
	}
	rets, err, stack := protect(call)
	reply.ExecMicros = time.Since(start).Microseconds()
	if ha != nil && ha.dropped.Load() && !ha.exiting.Load() {
		// Killed while the call ran: whatever it returned, the caller
		// handles this as the death of the actor's process (DropActor
		// has answered it already, unless it started after the drop).
		reply.Error = interruptedReply(spec, aid).Error
		return reply
	}
	if ha != nil && ha.exiting.Load() {
		e.endActor(ha, "exited by ray.ExitActor")
	}
	if err != nil {
		reply.Error = e.appError(spec, err, stack)
		return reply
	}
	if len(rets) != len(spec.GetReturnIds()) {
		reply.Error = errs.ToInfo(errs.Systemf("raygo: %s returned %d values, want %d", spec.GetFunction(), len(rets), len(spec.GetReturnIds())))
		return reply
	}
	reply.Returns, err = e.env.StoreReturns(ctx, spec, rets)
	if err != nil {
		reply.Error = errs.ToInfo(err)
		return reply
	}
	e.env.FlushBorrows(ctx)
	return reply
}

// recordEnd records how an attempt ended here: FAILED with why, or
// FINISHED.
func (e *Executor) recordEnd(tid ids.ID, attempt int32, why *pb.ErrorInfo) {
	if why.GetKind() == errs.KindActorNotHere {
		return // not run here: the caller sends it where the actor is now
	}
	if why != nil {
		e.cfg.Events.Exec(tid, attempt, taskevents.Failed, why, taskevents.Now())
		return
	}
	e.cfg.Events.Exec(tid, attempt, taskevents.Finished, nil, taskevents.Now())
}

func (e *Executor) appError(spec *pb.TaskSpec, err error, stack string) *pb.ErrorInfo {
	var (
		ae *errs.ArgumentError
		nr *errs.NotRegisteredError
	)
	if errors.As(err, &ae) || errors.As(err, &nr) {
		return errs.ToInfo(err)
	}
	return errs.FromAppError(spec.GetFunction(), err, stack, stack != "", e.cfg.NodeID.String(), e.cfg.WorkerID.String(), int(spec.GetAttempt()))
}

// protect runs f, turning a panic into an error with its stack.
func protect(f func() ([]registry.Encoded, error)) (rets []registry.Encoded, err error, stack string) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			stack = string(debug.Stack())
		}
	}()
	rets, err = f()
	return
}

// fitProcs sizes the Go scheduler to the task: a normal task gets as many
// Ps as its CPUs (at least one), as Ray sets OMP_NUM_THREADS — besides
// keeping a worker within its share, a one-CPU task's replies then never
// wake a second OS thread; an actor gets its CPUs, and a process hosting
// actors that asked for none (they share processes) one P per such actor,
// up to the node's cores, so that many of them are not squeezed onto one
// P while a lone one keeps the one-P fast path.
func (e *Executor) fitProcs(spec *pb.TaskSpec) {
	if !e.cfg.FitProcs || (spec.GetActorId() != nil && !spec.GetActorCreation()) {
		return // an actor's calls run with what its creation set
	}
	cpus := spec.GetResources().GetAmounts()["CPU"]
	want := max(1, int(math.Ceil(cpus)))
	if spec.GetActorCreation() && cpus == 0 {
		want = e.Actors() + 1 // the others here and this one
	}
	want = min(want, runtime.NumCPU())
	if e.procs.Load() != int32(want) {
		e.procs.Store(int32(want))
		runtime.GOMAXPROCS(want)
	}
}

// announce tells the node daemon reading this process's output which
// function (or actor class) the following lines come from, when it
// changes.
func (e *Executor) announce(spec *pb.TaskSpec) {
	name := spec.GetFunction()
	if spec.GetName() != "" && spec.GetActorId() == nil {
		name = spec.GetName() // the task's display name
	}
	if spec.GetActorId() != nil && !spec.GetActorCreation() {
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name = name[:i] // "Class.Method" -> "Class"
		}
	}
	if last := e.lastName.Load(); last != nil && *last == name {
		return // the common case, without a lock: the same function again
	}
	e.mu.Lock()
	last := e.lastName.Load()
	changed := last == nil || *last != name
	e.lastName.Store(&name)
	e.mu.Unlock()
	if changed {
		for _, w := range e.cfg.AnnounceTo {
			workerlog.WriteName(w, name)
		}
	}
}

// ---------------------------------------------------------------- actors

// HostActor runs an actor's constructor in this process, which then hosts
// the actor until it is dropped. A constructor's failure is returned as
// the error to report (a TaskError for the constructor's own error).
func (e *Executor) HostActor(ctx context.Context, spec *pb.TaskSpec) *pb.ErrorInfo {
	ctor, ok := e.reg.Class(spec.GetFunction())
	if !ok {
		return errs.ToInfo(&errs.NotRegisteredError{Name: spec.GetFunction()})
	}
	aid := ids.MustFromBytes(spec.GetActorId())
	tctx := newTaskContext(e.ctx, TaskInfo{TaskID: ids.MustFromBytes(spec.GetTaskId()), Function: spec.GetFunction(),
		NodeID: e.cfg.NodeID, WorkerID: e.cfg.WorkerID, ActorID: aid, Capture: captureOf(spec)}, nil)
	defer tctx.cancel(context.Canceled)
	args, release, err := e.env.ResolveArgs(tctx, spec)
	defer func() {
		if release != nil {
			release()
		}
	}()
	if err != nil {
		return errs.ToInfo(err)
	}
	e.announce(spec)
	e.fitProcs(spec)
	tid := ids.MustFromBytes(spec.GetTaskId())
	e.cfg.Events.Exec(tid, spec.GetAttempt(), taskevents.Running, nil, taskevents.Now())
	var instance any
	_, err, stack := protect(func() ([]registry.Encoded, error) {
		var err error
		instance, err = ctor(tctx, args)
		return nil, err
	})
	if err != nil {
		info := e.appError(spec, err, stack)
		e.recordEnd(tid, spec.GetAttempt(), info)
		return info
	}
	e.recordEnd(tid, spec.GetAttempt(), nil)
	e.env.FlushBorrows(ctx)
	ha := &hostedActor{id: aid, instance: instance, maxConc: max(1, int(spec.GetMaxConcurrency())), capture: captureOf(spec)}
	ha.cond.L = &ha.mu
	e.mu.Lock()
	if e.closing {
		e.mu.Unlock()
		return errs.ToInfo(errs.Systemf("raygo: worker is stopping"))
	}
	e.actors[aid] = ha
	e.mu.Unlock()
	return nil
}

func (e *Executor) hosted(wire []byte) *hostedActor { return e.hostedID(ids.MustFromBytes(wire)) }

func (e *Executor) hostedID(id ids.ID) *hostedActor {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.actors[id]
}

// Hosts reports whether the actor id lives in this process.
func (e *Executor) Hosts(id ids.ID) bool { return e.hostedID(id) != nil }

// Actors is the number of actors this process hosts.
func (e *Executor) Actors() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.actors)
}

// DropActor removes an actor from this process (killed while it shares
// the process with others). Calls running now have their contexts
// cancelled and are answered "interrupted" at once, as if the process had
// died (their callers retry them on the restarted actor or fail them
// without waiting for methods that cannot be stopped; what those return
// is dropped); calls waiting in its queue are answered "not here" at
// once, and so are later ones. It reports whether the actor was hosted.
func (e *Executor) DropActor(id ids.ID) bool {
	e.mu.Lock()
	ha, ok := e.actors[id]
	delete(e.actors, id)
	if ok {
		ha.gone.Store(true)
	}
	streams := make([]*stream, 0, len(e.streams))
	for s := range e.streams {
		streams = append(streams, s)
	}
	e.mu.Unlock()
	if !ok {
		return false
	}
	ha.close()
	if !ha.exiting.Load() {
		ha.dropped.Store(true)
		for _, c := range ha.takeQueued() {
			c.s.answerUnstarted(c.r, notHereReply(c.spec))
		}
		type call struct {
			s *stream
			r *running
		}
		var interrupted []call
		for _, s := range streams {
			s.mu.Lock()
			for r := s.running.first; r != nil; r = r.next {
				// Started: answered now. One a runner took and has not
				// started is answered "not here" by it.
				if r.actor == id && r.tc != nil && !r.answered.Swap(true) {
					r.tc.cancel(context.Canceled)
					interrupted = append(interrupted, call{s, r})
				}
			}
			s.mu.Unlock()
		}
		for _, c := range interrupted {
			c.s.reply(interruptedReply(c.r.spec, id))
		}
	}
	return true
}

// answerUnstarted answers a call taken out of its actor's queue before it
// started: it leaves the stream's running list, and its runner slot is
// given back (no runner will run it).
func (s *stream) answerUnstarted(r *running, reply *pb.TaskReply) {
	s.forget(r)
	s.reply(reply)
	s.runners.Done()
}

// takeQueued empties the actor's queue and returns what it held.
func (ha *hostedActor) takeQueued() []actorCall {
	ha.mu.Lock()
	defer ha.mu.Unlock()
	q := slices.Clone(ha.queue[ha.head:])
	clear(ha.queue)
	ha.queue, ha.head = ha.queue[:0], 0
	return q
}

// notHereReply answers a call to an actor this process does not host:
// the caller finds where the actor is now.
func notHereReply(spec *pb.TaskSpec) *pb.TaskReply {
	return &pb.TaskReply{TaskId: spec.GetTaskId(), Error: &pb.ErrorInfo{Kind: errs.KindActorNotHere,
		ActorId: ids.MustFromBytes(spec.GetActorId()).String(),
		Message: "the actor is not hosted by this worker (it exited, was killed or restarted elsewhere)"}}
}

// interruptedReply answers a call whose actor was killed while it ran.
func interruptedReply(spec *pb.TaskSpec, actor ids.ID) *pb.TaskReply {
	return &pb.TaskReply{TaskId: spec.GetTaskId(), Error: &pb.ErrorInfo{Kind: errs.KindActorInterrupted,
		ActorId: actor.String(), Reason: "the actor was killed while the call ran"}}
}

// endActor drops an actor that ended itself (later calls are answered
// "not here") and reports it, in the background so that the call's reply
// goes out first.
func (e *Executor) endActor(ha *hostedActor, reason string) {
	ha.exiting.Store(true) // ended, not killed: its running call is not interrupted
	if e.DropActor(ha.id) {
		_ = e.stop.Go("executor.actorexit", func(context.Context) { e.env.ActorExited(ha.id, reason) })
	}
}

// actorKey is the context key of the actor whose method runs (answered
// by taskContext.Value).
type actorKey struct{}

// ExitActor asks the actor whose method ctx belongs to to end once the
// method returns: it is not restarted, and calls queued behind it fail
// with an ActorDiedError. It fails outside an actor method.
func ExitActor(ctx context.Context) error {
	ha, ok := ctx.Value(actorKey{}).(*hostedActor)
	if !ok {
		return errs.Invalidf("raygo: ExitActor called outside an actor method")
	}
	ha.exiting.Store(true)
	return nil
}

// ---------------------------------------------------------------- wire

// FillFromCommon completes a spec received in a batch: fields the batch's
// tasks share, and the return ids (see pb.TaskBatch).
func FillFromCommon(spec, common *pb.TaskSpec) {
	if common != nil {
		if spec.JobId == nil {
			spec.JobId = common.JobId
		}
		if spec.OwnerAddress == "" {
			spec.OwnerAddress = common.OwnerAddress
		}
		if spec.OwnerId == nil {
			spec.OwnerId = common.OwnerId
		}
		if spec.CallerId == nil {
			spec.CallerId = common.CallerId
		}
		if spec.ActorId == nil {
			spec.ActorId = common.ActorId
		}
		if spec.Resources == nil {
			spec.Resources = common.Resources
		}
	}
	if n := int(spec.NumReturns); len(spec.ReturnIds) == 0 && n > 0 && n <= ids.MaxReturns && !spec.ActorCreation {
		tid, ok := ids.FromBytes(spec.TaskId)
		if !ok {
			return // malformed (this binary never sends one): no return ids
		}
		wire := make([]byte, n*ids.Size) // one allocation for all of them
		spec.ReturnIds = make([][]byte, n)
		for i := range n {
			rid := ids.ForReturn(tid, i)
			spec.ReturnIds[i] = wire[i*ids.Size : (i+1)*ids.Size : (i+1)*ids.Size]
			copy(spec.ReturnIds[i], rid[:])
		}
	}
}
