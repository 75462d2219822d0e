// Package actorsubmit is the caller's actor-task submitter: it carries one
// process's calls to each actor in the order they were made, follows the
// actor through restarts, and resubmits or fails the calls a restart
// interrupts. It is the counterpart of Ray's ActorTaskSubmitter.
//
// Per actor it keeps a queue of calls not sent yet (in call order; a call
// waits while its arguments resolve, and the calls behind it wait too)
// and the calls in flight on the stream to the actor's current process.
// Until the actor is alive, and after its process goes away, it follows
// the actor's state in the control store (Directory.WaitActor):
//
//   - ALIVE: connect and send what is queued;
//   - the stream breaks: the calls in flight are held until the control
//     store says what happened — RESTARTING or a new ALIVE: each is
//     retried (it goes back to the queue, before later calls) while its
//     retries allow (MaxTaskRetries), else it fails with an ActorDiedError
//     saying the process died during the call; DEAD: everything fails with
//     the death cause the control store recorded (killed, its owner died,
//     its node died, ...);
//   - calls made after the crash wait in the queue and run on the
//     restarted actor. Results of calls that finished are never touched,
//     unless they are lost with their node: the task manager rebuilds
//     them (taskmgr.Rebuild) and a finished call goes back in the queue
//     (Resubmit) to run again on the actor.
//
// What comes back goes to the task manager (Results), which decides
// retries. All state is behind one mutex; calls into Results and RPCs
// happen outside it.
package actorsubmit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/coreworker/push"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/internal/taskevents"
	"github.com/raygo/raygo/internal/wirecheck"
)

// Stream is the owner's end of a push stream to a worker.
type Stream = push.Stream

// Clients are the RPCs the submitter makes.
type Clients interface {
	// WaitActor returns the actor's state once its version exceeds since,
	// or at the server's deadline.
	WaitActor(ctx context.Context, actor ids.ID, since uint64) (*pb.ActorInfo, error)
	Dial(ctx context.Context, worker string) (Stream, error)
	CancelTask(ctx context.Context, worker string, req *pb.CancelTaskRequest) error
}

// Results receives what happens to tasks; the task manager implements it.
type Results = taskmgr.Results

// Config configures a Submitter.
type Config struct {
	JobID   []byte
	OwnerID []byte // this process's worker id: the caller of every call
	Owner   string // this process's address
	// Warn reports conditions the user should hear about (an actor no
	// node can hold); nil discards them.
	Warn func(string)
	// DeathInfoTimeout bounds how long calls interrupted by a broken
	// stream wait to hear from the control store why (default 30 s).
	DeathInfoTimeout time.Duration
	// Events records when calls are sent to the actor
	// (SUBMITTED_TO_WORKER); nil records nothing.
	Events *taskevents.Buffer
}

// Submitter carries actor calls. It is safe for concurrent use.
type Submitter struct {
	cfg     Config
	clients Clients
	results Results
	stop    *stopper.Stopper

	mu     sync.Mutex
	actors map[ids.ID]*actor // guarded by mu
	closed bool              // guarded by mu
}

// actor is one actor as this process calls it.
type actor struct {
	id     ids.ID
	idWire []byte
	name   string

	queue    []*taskmgr.Task // not sent, in call order
	inflight sentCalls       // sent, in send order
	lost     []*taskmgr.Task // in flight when the stream broke: awaiting the death cause
	lostAt   time.Time
	seq      uint64

	addr     string // set while connected
	stream   Stream
	out      *push.Outbox // what the stream's sender has not taken yet
	gen      int          // connection generation
	version  uint64
	watching bool
	warned   bool // told the user no node can hold it
	dead     *pb.ErrorInfo
	// moved: a reply said the connected process no longer hosts the
	// actor (not here, or interrupted). Nothing more is sent on the
	// stream, which is dropped once every call in flight on it is
	// answered.
	moved bool
}

// actorOf is the actor a call was submitted to (nil: not submitted
// here). A call's state is in its task (taskmgr.Sub): Ready once its
// arguments are resolved, DepErr if one failed, Sent once on a stream.
func actorOf(t *taskmgr.Task) *actor { a, _ := t.Sub.Queue.(*actor); return a }

// New returns a Submitter.
func New(cfg Config, clients Clients, results Results) *Submitter {
	if cfg.DeathInfoTimeout <= 0 {
		cfg.DeathInfoTimeout = 30 * time.Second
	}
	if cfg.Warn == nil {
		cfg.Warn = func(string) {}
	}
	return &Submitter{cfg: cfg, clients: clients, results: results, stop: stopper.New(), actors: map[ids.ID]*actor{}}
}

func (s *Submitter) actorLocked(id ids.ID, name string) *actor {
	a, ok := s.actors[id]
	if !ok {
		a = &actor{id: id, idWire: id.Bytes(), name: name}
		s.actors[id] = a
	}
	return a
}

// Submit queues a call to the actor id (named name, for errors) in call
// order; it sets the call's sequence number. With resolved false the call
// (and every later one) waits until Resolved is called for it.
func (s *Submitter) Submit(t *taskmgr.Task, id ids.ID, name string, resolved bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errs.Systemf("raygo: not connected (Shutdown was called)")
	}
	a := s.actorLocked(id, name)
	a.seq++
	t.Spec.SeqNo = a.seq
	t.Sub.Queue, t.Sub.Ready, t.Sub.Sent = a, resolved, false
	a.queue = append(a.queue, t)
	fail, backlog := s.pumpLocked(a)
	s.mu.Unlock()
	s.failAll(fail)
	if backlog >= push.YieldBacklog {
		runtime.Gosched() // let the stream's sender take them (one P)
	}
	return nil
}

// Resubmit queues again a call that finished, to run it once more on its
// actor: a rebuild of its lost results (taskmgr.Rebuild, which counted
// the attempt). It goes back in call order, ahead of the calls made
// after it that are not sent yet, and follows the actor as a first
// submission does: sent once the actor is alive (restarted, if its
// process died), failed with the death cause if it is dead for good.
// Its arguments must be ready (the lineage held them; lost ones were
// rebuilt first).
func (s *Submitter) Resubmit(t *taskmgr.Task) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errs.Systemf("raygo: not connected (Shutdown was called)")
	}
	prev := actorOf(t)
	if prev == nil {
		s.mu.Unlock()
		return errs.Systemf("raygo: call %s was not submitted here", t.ID.Short())
	}
	// The submitter may have forgotten the actor since (no calls were
	// pending and its handles were gone): it follows it anew.
	a := s.actorLocked(prev.id, prev.name)
	t.Sub.Queue, t.Sub.Ready, t.Sub.DepErr = a, true, nil
	s.requeueLocked(a, []*taskmgr.Task{t})
	fail, _ := s.pumpLocked(a)
	s.mu.Unlock()
	s.failAll(fail)
	return nil
}

// Resolved marks a call's arguments ready (depErr: one failed) and sends
// what can go.
func (s *Submitter) Resolved(t *taskmgr.Task, depErr *pb.ErrorInfo) {
	s.mu.Lock()
	t.Sub.Ready, t.Sub.DepErr = true, depErr
	fail, _ := s.pumpLocked(actorOf(t))
	s.mu.Unlock()
	s.failAll(fail)
}

// failed is a call to fail after unlock, with info.
type failed struct {
	t    *taskmgr.Task
	info *pb.ErrorInfo
	fc   taskmgr.Cause
}

func (s *Submitter) failAll(list []failed) {
	for _, f := range list {
		s.results.Fail(f.t, taskmgr.Failure{Cause: f.fc, Info: f.info})
	}
}

// pumpLocked sends the queue's resolved head while connected, starts
// following the actor while not, and returns calls to fail and how many
// calls wait for the stream's sender.
func (s *Submitter) pumpLocked(a *actor) ([]failed, int) {
	if a.dead != nil {
		return s.failQueuedLocked(a, a.dead), 0
	}
	if a.addr == "" {
		s.watchLocked(a)
		return nil, 0
	}
	if a.moved {
		return nil, 0 // sent once reconnected
	}
	var out []failed
	n := 0
	var one [1]*pb.TaskSpec
	specs := one[:0] // a lone call (the usual case) allocates nothing
	for ; n < len(a.queue); n++ {
		t := a.queue[n]
		if !t.Sub.Ready {
			break // head of line waits for its arguments
		}
		if t.Sub.DepErr != nil {
			out = append(out, failed{t, t.Sub.DepErr, taskmgr.CauseDependency})
			continue
		}
		t.Sub.Sent = true
		a.inflight.add(t)
		specs = append(specs, t.Spec)
	}
	backlog := 0
	if len(specs) > 0 && s.cfg.Events != nil {
		s.cfg.Events.States(len(specs), func(i int) (ids.ID, int32, bool) {
			if specs[i].GetNoTaskEvents() {
				return ids.Nil, 0, false
			}
			return ids.MustFromBytes(specs[i].GetTaskId()), specs[i].GetAttempt(), true
		}, taskevents.SubmittedToWorker, taskevents.Now())
	}
	if len(specs) > 0 {
		backlog = a.out.Put(specs...) // never blocks: the lock is not held up by the stream
	}
	a.queue = push.DropFront(a.queue, n)
	return out, backlog
}

func (s *Submitter) failQueuedLocked(a *actor, info *pb.ErrorInfo) []failed {
	out := make([]failed, 0, len(a.queue))
	for _, t := range a.queue {
		out = append(out, failed{t, info, taskmgr.CauseFatal})
	}
	a.queue = nil
	return out
}

// watchLocked starts following the actor's state until it is alive (then
// connects) or dead.
func (s *Submitter) watchLocked(a *actor) {
	if a.watching || s.closed {
		return
	}
	a.watching = true
	since := a.version
	if err := s.stop.Go("actorsubmit.watch", func(ctx context.Context) { s.watch(ctx, a, since) }); err != nil {
		a.watching = false
	}
}

func (s *Submitter) watch(ctx context.Context, a *actor, since uint64) {
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		info, err := s.clients.WaitActor(ctx, a.id, since)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if rpc.IsUnavailable(err) {
				stopper.Sleep(ctx, backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			s.died(a, errs.ToInfo(&errs.ActorDiedError{ActorID: a.id.String(), Name: a.name,
				Reason: "the control store cannot say where it is: " + err.Error()}), 0)
			return
		}
		since = info.GetVersion()
		if inf := info.GetInfeasible(); inf != nil {
			s.mu.Lock()
			warn := !a.warned
			a.warned = true
			s.mu.Unlock()
			if warn {
				s.cfg.Warn(fmt.Sprintf("raygo: warning: actor %s waits for a node that can hold it: %v (its demand shows in `raygo status`; add a node, lower the request, or Kill it)",
					a.id.Short(), errs.FromInfo(inf)))
			}
		}
		switch info.GetState() {
		case pb.ActorState_ACTOR_STATE_DEAD:
			cause := info.GetDeathCause()
			if cause == nil {
				cause = errs.ToInfo(&errs.ActorDiedError{ActorID: a.id.String(), Name: a.name, Reason: "dead"})
			}
			s.died(a, cause, since)
			return
		case pb.ActorState_ACTOR_STATE_RESTARTING:
			s.settleLost(a, "it is restarting")
		case pb.ActorState_ACTOR_STATE_ALIVE:
			if !s.sameProcess(a, info) {
				s.settleLost(a, "it restarted")
			} else if s.lostOverdue(a) {
				s.settleLost(a, "the control store did not say why within "+s.cfg.DeathInfoTimeout.String())
			} else if s.hasLost(a) {
				// No news (the long poll's deadline passed): the process
				// the calls were lost with may be dead, its death not yet
				// recorded. They wait for the control store's word.
				continue
			}
			if s.connect(ctx, a, info) {
				return
			}
		}
		if s.lostOverdue(a) {
			s.settleLost(a, "the control store did not say why within "+s.cfg.DeathInfoTimeout.String())
		}
	}
	s.mu.Lock()
	a.watching = false
	s.mu.Unlock()
}

// sameProcess reports whether info is no newer than the state the
// actor's last stream was opened at: the same process, nothing new.
func (s *Submitter) sameProcess(a *actor, info *pb.ActorInfo) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return info.GetVersion() <= a.version
}

func (s *Submitter) hasLost(a *actor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(a.lost) > 0
}

func (s *Submitter) lostOverdue(a *actor) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(a.lost) > 0 && time.Since(a.lostAt) > s.cfg.DeathInfoTimeout
}

// settleLost decides the calls that were in flight when the stream broke,
// now that the actor is known to have restarted (or to be restarting):
// retried while their retries allow, else failed.
func (s *Submitter) settleLost(a *actor, what string) {
	s.mu.Lock()
	lost := a.lost
	a.lost = nil
	s.mu.Unlock()
	if len(lost) == 0 {
		return
	}
	info := errs.ToInfo(&errs.ActorDiedError{ActorID: a.id.String(), Name: a.name,
		Reason: "its process died while the call ran and " + what + "; set MaxTaskRetries to retry such calls"})
	var retry []*taskmgr.Task
	for _, t := range lost {
		if s.results.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseActorDied, Info: info}).Action == taskmgr.Retry {
			retry = append(retry, t)
		}
	}
	s.mu.Lock()
	s.requeueLocked(a, retry)
	fail, _ := s.pumpLocked(a)
	s.mu.Unlock()
	s.failAll(fail)
}

// requeueLocked puts calls back in the queue, which stays in call order:
// usually they go before every call not sent yet, but calls requeued one
// reply at a time (answered "not here") may already be ahead of them.
func (s *Submitter) requeueLocked(a *actor, ts []*taskmgr.Task) {
	if len(ts) == 0 {
		return
	}
	for _, t := range ts {
		t.Sub.Sent = false
	}
	slices.SortFunc(ts, func(x, y *taskmgr.Task) int { return cmp.Compare(x.Spec.SeqNo, y.Spec.SeqNo) })
	if len(a.queue) == 0 || ts[len(ts)-1].Spec.SeqNo < a.queue[0].Spec.SeqNo {
		a.queue = append(ts, a.queue...)
		return
	}
	for _, t := range ts {
		i, _ := slices.BinarySearchFunc(a.queue, t.Spec.SeqNo, func(q *taskmgr.Task, seq uint64) int { return cmp.Compare(q.Spec.SeqNo, seq) })
		a.queue = slices.Insert(a.queue, i, t)
	}
}

// died records the actor's death: everything pending fails with cause.
func (s *Submitter) died(a *actor, cause *pb.ErrorInfo, version uint64) {
	s.mu.Lock()
	a.watching = false
	if version > a.version {
		a.version = version
	}
	if a.dead == nil {
		a.dead = cause
	}
	s.disconnectLocked(a)
	var out []failed
	for _, t := range a.inflight.drain() {
		out = append(out, failed{t, a.dead, taskmgr.CauseFatal})
	}
	for _, t := range a.lost {
		out = append(out, failed{t, a.dead, taskmgr.CauseFatal})
	}
	a.lost = nil
	out = append(out, s.failQueuedLocked(a, a.dead)...)
	s.mu.Unlock()
	s.failAll(out)
}

// MarkDead fails the actor's calls with cause now (ray.Kill without
// restart), before the control store's word arrives.
func (s *Submitter) MarkDead(id ids.ID, name string, cause error) {
	s.mu.Lock()
	a := s.actorLocked(id, name)
	s.mu.Unlock()
	s.died(a, errs.ToInfo(cause), 0)
}

// connect opens a stream to the actor's process and sends what is
// queued; false if the process is gone already (watching goes on).
func (s *Submitter) connect(ctx context.Context, a *actor, info *pb.ActorInfo) bool {
	stream, err := s.clients.Dial(ctx, info.GetAddress())
	if err != nil {
		return false
	}
	out := push.NewOutbox()
	s.mu.Lock()
	a.watching = false
	a.version = info.GetVersion()
	if a.dead != nil || s.closed {
		s.mu.Unlock()
		stream.Close()
		return true
	}
	a.addr, a.stream, a.out = info.GetAddress(), stream, out
	a.gen++
	gen := a.gen
	common := &pb.TaskSpec{JobId: s.cfg.JobID, OwnerAddress: s.cfg.Owner, OwnerId: s.cfg.OwnerID, CallerId: s.cfg.OwnerID, ActorId: a.idWire}
	if s.stop.Go("actorsubmit.send", func(context.Context) { push.SendOutbox(stream, out, common) }) != nil ||
		s.stop.Go("actorsubmit.recv", func(context.Context) { s.recvLoop(a, stream, gen) }) != nil {
		s.disconnectLocked(a)
		s.mu.Unlock()
		return true
	}
	fail, _ := s.pumpLocked(a)
	s.mu.Unlock()
	s.failAll(fail)
	return true
}

func (s *Submitter) disconnectLocked(a *actor) {
	if a.addr == "" {
		return
	}
	a.addr = ""
	a.moved = false
	a.gen++
	a.out.Close()
	a.stream.Close()
	a.stream, a.out = nil, nil
}

func (s *Submitter) recvLoop(a *actor, stream Stream, gen int) {
	var (
		done  []taskmgr.Replied // scratch, per batch
		retry []*taskmgr.Task
	)
	for {
		batch, err := stream.Recv()
		if err == nil {
			err = wirecheck.ReplyBatch(batch)
		}
		if err != nil {
			s.connLost(a, gen, err)
			return
		}
		clear(done)
		done = done[:0]
		s.mu.Lock()
		if a.gen != gen {
			s.mu.Unlock()
			return
		}
		for _, r := range batch.GetReplies() {
			tid, _ := ids.FromBytes(r.GetTaskId())
			t := a.inflight.take(tid)
			if t == nil {
				continue
			}
			switch r.GetError().GetKind() {
			case errs.KindActorNotHere:
				// The call never ran: this process no longer hosts the
				// actor. It goes back to the queue at no cost to its
				// retries. Nothing more is sent here; the stream is
				// dropped once the calls in flight on it are answered
				// (not here too, or interrupted if they were running).
				a.moved = true
				s.requeueLocked(a, []*taskmgr.Task{t})
				continue
			case errs.KindActorInterrupted:
				// It was running when the actor was killed in a process
				// it shared: like a call in flight when a process dies,
				// it waits for the control store's word. Nothing more is
				// sent here, as for "not here".
				a.moved = true
				if len(a.lost) == 0 {
					a.lostAt = time.Now()
				}
				a.lost = append(a.lost, t)
				continue
			}
			done = append(done, taskmgr.Replied{Task: t, Reply: r})
		}
		s.mu.Unlock()
		clear(retry)
		retry = s.results.CompleteAll(done, retry[:0])
		s.mu.Lock()
		s.requeueLocked(a, retry)
		var fail []failed
		drained := false
		if a.gen == gen {
			fail, _ = s.pumpLocked(a)
			drained = a.moved && a.inflight.n == 0
		}
		s.mu.Unlock()
		s.failAll(fail)
		if drained {
			s.connLost(a, gen, errors.New("the actor left that process"))
			return
		}
	}
}

// connLost handles the stream of generation gen breaking: the calls in
// flight wait for the control store's word on the actor (see watch).
func (s *Submitter) connLost(a *actor, gen int, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.gen != gen {
		return
	}
	s.disconnectLocked(a)
	lost := a.inflight.drain()
	if len(lost) > 0 {
		if len(a.lost) == 0 {
			a.lostAt = time.Now()
		}
		a.lost = append(a.lost, lost...)
	}
	_ = cause
	s.watchLocked(a)
}

// Cancel takes a queued call out of its queue (the caller fails it as
// cancelled), or asks the actor's process to cancel a call in flight.
// Force is refused for actor calls, as in Ray (use Kill).
func (s *Submitter) Cancel(ctx context.Context, t *taskmgr.Task, force, recursive bool) (taskmgr.Where, error) {
	if force {
		return taskmgr.Unknown, errs.Invalidf("raygo: Cancel: force is not supported for actor calls; use Kill")
	}
	s.mu.Lock()
	a := actorOf(t)
	if a == nil {
		s.mu.Unlock()
		return taskmgr.Unknown, nil
	}
	for i, q := range a.queue {
		if q == t {
			a.queue = slices.Delete(a.queue, i, i+1)
			fail, _ := s.pumpLocked(a) // the call may have held up the line
			s.mu.Unlock()
			s.failAll(fail)
			return taskmgr.Queued, nil
		}
	}
	if !t.Sub.Sent || a.addr == "" {
		s.mu.Unlock()
		return taskmgr.Unknown, nil
	}
	addr := a.addr
	s.mu.Unlock()
	err := s.clients.CancelTask(ctx, addr, &pb.CancelTaskRequest{TaskId: t.ID[:], Recursive: recursive})
	if err != nil && rpc.IsUnavailable(err) {
		err = nil
	}
	return taskmgr.InFlight, err
}

// Forget drops what the submitter knows of an actor that has no calls
// pending (its handles are all gone).
func (s *Submitter) Forget(id ids.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.actors[id]
	if !ok || len(a.queue) > 0 || a.inflight.n > 0 || len(a.lost) > 0 || a.watching {
		return
	}
	s.disconnectLocked(a)
	delete(s.actors, id)
}

// Stats is a snapshot, for tests and reports.
type Stats struct {
	Actors, Queued, InFlight, Connected int
}

// Stats returns a snapshot.
func (s *Submitter) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Stats{Actors: len(s.actors)}
	for _, a := range s.actors {
		out.Queued += len(a.queue)
		out.InFlight += a.inflight.n + len(a.lost)
		if a.addr != "" {
			out.Connected++
		}
	}
	return out
}

// Close disconnects from every actor and stops following them; calls
// still pending are returned so that the caller can fail them.
func (s *Submitter) Close() []*taskmgr.Task {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var left []*taskmgr.Task
	for _, a := range s.actors {
		s.disconnectLocked(a)
		left = append(left, a.queue...)
		left = append(left, a.inflight.drain()...)
		left = append(left, a.lost...)
		a.queue, a.lost = nil, nil
	}
	s.mu.Unlock()
	s.stop.Stop()
	return left
}

// sentCalls holds an actor's calls in flight in the order they were sent.
// Replies come back in that order unless the actor runs calls
// concurrently, so take finds a reply's call at the front in the common
// case (no map insert, lookup and delete per call) and scans otherwise.
type sentCalls struct {
	q    []*taskmgr.Task // nil: taken out of order
	head int             // q[:head] are all taken
	n    int             // calls in q
}

func (s *sentCalls) add(t *taskmgr.Task) {
	s.q = append(s.q, t)
	s.n++
}

// take removes and returns the call with id tid, or nil.
func (s *sentCalls) take(tid ids.ID) *taskmgr.Task {
	for i := s.head; i < len(s.q); i++ {
		t := s.q[i]
		if t == nil || t.ID != tid {
			continue
		}
		s.q[i] = nil
		s.n--
		for s.head < len(s.q) && s.q[s.head] == nil {
			s.head++
		}
		switch {
		case s.head == len(s.q): // empty: reuse the array from its start
			s.q, s.head = s.q[:0], 0
		case s.head >= 1024 && s.head*2 >= len(s.q):
			s.q = push.DropFront(s.q, s.head)
			s.head = 0
		}
		return t
	}
	return nil
}

// drain removes and returns every call, in the order sent.
func (s *sentCalls) drain() []*taskmgr.Task {
	out := make([]*taskmgr.Task, 0, s.n)
	for _, t := range s.q[s.head:] {
		if t != nil {
			out = append(out, t)
		}
	}
	*s = sentCalls{}
	return out
}

// String describes an actor's queue, for debugging.
func (a *actor) String() string {
	return fmt.Sprintf("actor %s: %d queued, %d in flight, %d lost, addr %q", a.id.Short(), len(a.queue), a.inflight.n, len(a.lost), a.addr)
}
