package coreworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// ActorOptions are the creation options of an actor.
type ActorOptions struct {
	Resources resources.Set
	Name      string
	Namespace string
	// GetIfExists returns the existing live actor of that name instead of
	// failing.
	GetIfExists bool
	// Detached actors outlive their creator; others die with it.
	Detached bool
	// MaxRestarts: times the actor is restarted after its process dies
	// (-1: forever).
	MaxRestarts int
	// MaxTaskRetries: times a call is retried when the actor's process
	// dies while it runs (-1: forever). 0 makes calls at-most-once.
	MaxTaskRetries int
	// MaxConcurrency: calls that may run at once (default 1).
	MaxConcurrency int
	// Strategy is DEFAULT or SPREAD placement.
	Strategy pb.SchedulingStrategy
}

// ActorHandle names an actor. It is a plain value: copy it, pass it to
// tasks and other actors.
type ActorHandle struct {
	ID             ids.ID
	Class          string
	Name           string
	MaxTaskRetries int
}

// CreateActor registers an actor with the control store, which places it
// and runs its constructor. The handle is usable at once: calls wait for
// the actor to be alive.
func (cw *CoreWorker) CreateActor(ctx context.Context, class string, args []Arg, opts ActorOptions) (ActorHandle, error) {
	if err := resources.Validate(opts.Resources); err != nil {
		return ActorHandle{}, errs.Invalidf("raygo: actor %s: %v", class, err)
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = 1
	}
	if opts.Namespace == "" {
		opts.Namespace = cw.cfg.Namespace
	}
	aid := ids.New()
	spec := &pb.TaskSpec{
		TaskId: ids.New().Bytes(), JobId: cw.cfg.JobID.Bytes(), Function: class, Name: opts.Name,
		OwnerAddress: cw.address, OwnerId: cw.workerID.Bytes(), Resources: &pb.Resources{Amounts: opts.Resources},
		ActorId: aid.Bytes(), ActorCreation: true, MaxConcurrency: int32(opts.MaxConcurrency), MaxRetries: int32(opts.MaxTaskRetries),
		Strategy: opts.Strategy,
	}
	t := &task{tid: ids.MustFromBytes(spec.TaskId), spec: spec}
	args, err := cw.storeLargeArgs(args, class)
	if err != nil {
		return ActorHandle{}, err
	}
	if _, err := cw.prepare(t, args); err != nil {
		return ActorHandle{}, err
	}
	// Creation arguments stay pinned for the actor's life (restarts re-run
	// the constructor with them).
	done := make(chan struct{})
	cw.resolveDeps(t, func(*CoreWorker, *task) { close(done) })
	select {
	case <-done:
	case <-ctx.Done():
		return ActorHandle{}, ctx.Err()
	}
	if t.depErr != nil {
		return ActorHandle{}, errs.FromInfo(t.depErr)
	}
	maxRestarts := opts.MaxRestarts
	reply, err := cw.gcs.CreateActor(ctx, &pb.CreateActorRequest{GetIfExists: opts.GetIfExists, Actor: &pb.ActorInfo{
		ActorId: aid.Bytes(), JobId: cw.cfg.JobID.Bytes(), Name: opts.Name, Namespace: opts.Namespace, ClassName: class,
		MaxRestarts: int32(maxRestarts), Detached: opts.Detached, OwnerId: cw.workerID.Bytes(), OwnerAddress: cw.address,
		Creation: spec,
	}})
	if err != nil {
		cw.mu.Lock()
		cw.releaseHoldsLocked(t)
		cw.mu.Unlock()
		return ActorHandle{}, err
	}
	info := reply.GetActor()
	if reply.GetExisted() {
		cw.mu.Lock()
		cw.releaseHoldsLocked(t)
		cw.mu.Unlock()
	}
	return handleFromInfo(info), nil
}

func handleFromInfo(info *pb.ActorInfo) ActorHandle {
	return ActorHandle{ID: ids.MustFromBytes(info.GetActorId()), Class: info.GetClassName(), Name: info.GetName(),
		MaxTaskRetries: int(info.GetCreation().GetMaxRetries())}
}

// GetActor looks up a live named actor.
func (cw *CoreWorker) GetActor(ctx context.Context, name, namespace string) (ActorHandle, error) {
	if namespace == "" {
		namespace = cw.cfg.Namespace
	}
	reply, err := cw.gcs.GetActor(ctx, &pb.GetActorRequest{Name: name, Namespace: namespace})
	if err != nil {
		return ActorHandle{}, err
	}
	return handleFromInfo(reply.GetActor()), nil
}

// KillActor kills an actor. Without restart it is dead at once for this
// process and, through the control store, for everyone.
func (cw *CoreWorker) KillActor(ctx context.Context, h ActorHandle, noRestart bool) error {
	if _, err := cw.gcs.KillActor(ctx, &pb.KillActorRequest{ActorId: h.ID.Bytes(), NoRestart: noRestart}); err != nil {
		return err
	}
	if noRestart {
		a := cw.actorClient(h)
		cw.mu.Lock()
		a.dieLocked(&errs.ActorDiedError{ActorID: h.ID.String(), Name: h.Name, Reason: "killed by ray.Kill"})
		cw.mu.Unlock()
	}
	return nil
}

// actorClient sends one process's calls to one actor, in order.
type actorClient struct {
	cw       *CoreWorker
	h        ActorHandle
	idWire   []byte    // h.ID.Bytes(), shared by the calls' specs
	queue    []*task   // guarded by cw.mu; not yet sent, in call order
	inflight sentCalls // guarded by cw.mu
	addr     string    // guarded by cw.mu; set while connected
	version  uint64    // guarded by cw.mu; last actor version seen
	sendCh   chan *pb.TaskSpec
	cancel   context.CancelFunc
	gen      int   // guarded by cw.mu; connection generation
	watching bool  // guarded by cw.mu
	dead     error // guarded by cw.mu
	seq      uint64
	// warnedInfeasible: the user was told no node can hold the actor.
	warnedInfeasible bool // guarded by cw.mu
}

func (cw *CoreWorker) actorClient(h ActorHandle) *actorClient {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return cw.actorClientLocked(h)
}

func (cw *CoreWorker) actorClientLocked(h ActorHandle) *actorClient {
	a, ok := cw.actors[h.ID]
	if !ok {
		a = &actorClient{cw: cw, h: h, idWire: h.ID.Bytes()}
		cw.actors[h.ID] = a
	}
	return a
}

// SubmitActorTask calls a method on the actor and returns handles on the
// call's return objects; fn is the method's registered name,
// "Class.method".
func (cw *CoreWorker) SubmitActorTask(h ActorHandle, fn string, args []Arg, opts TaskOptions) ([]*Ref, error) {
	if opts.NumReturns <= 0 {
		opts.NumReturns = 1
	}
	// The job, the owner, the caller and the actor travel once per batch
	// on the actor's stream (streamCommon).
	t := &task{tid: ids.New(), retriesLeft: h.MaxTaskRetries, retryApp: opts.RetryExceptions, retryTypes: opts.RetryErrorTypes}
	spec := &t.specBuf
	spec.TaskId, spec.Function, spec.Name, spec.NumReturns = t.tid[:], fn, opts.Name, int32(opts.NumReturns)
	t.spec = spec
	args, err := cw.storeLargeArgs(args, spec.Function)
	if err != nil {
		return nil, err
	}
	refs := cw.buildTask(t, args)
	cw.mu.Lock()
	a := cw.actorClientLocked(h)
	t.actor = a
	if err := cw.prepareLocked(t, args); err != nil {
		cw.mu.Unlock()
		return nil, err
	}
	a.seq++
	spec.SeqNo = a.seq
	a.queue = append(a.queue, t)
	switch {
	case a.dead != nil:
		a.failQueuedLocked()
	case t.pendingDeps == 0: // the common case: on its way under this one lock
		cw.inlineArgsLocked(t)
		t.resolved = true
		a.pumpLocked()
	default:
		cw.mu.Unlock()
		cw.resolveDeps(t, sendResolvedCall)
		return refs, nil
	}
	cw.mu.Unlock()
	return refs, nil
}

// sendResolvedCall marks an actor call's arguments resolved and sends
// what can go, in call order.
func sendResolvedCall(cw *CoreWorker, t *task) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	t.resolved = true
	t.actor.pumpLocked()
}

func (a *actorClient) pumpLocked() {
	if a.dead != nil {
		a.failQueuedLocked()
		return
	}
	if a.addr == "" {
		a.watchLocked()
		return
	}
	// Sent calls leave from the front; what is left moves to the start of
	// the slice, so that appends reuse its array instead of allocating as
	// the front advances.
	n := 0
	for ; n < len(a.queue); n++ {
		t := a.queue[n]
		if !t.resolved {
			break // head of line waits for its arguments
		}
		if t.cancelled {
			a.cw.finishLocked(t, errs.ToInfo(&errs.CancelledError{Function: t.spec.Function, TaskID: t.id().String()}))
			continue
		}
		if t.depErr != nil {
			a.cw.finishLocked(t, t.depErr)
			continue
		}
		a.inflight.add(t)
		a.sendCh <- t.spec
	}
	a.queue = dropFront(a.queue, n)
}

// dropFront removes q's first n tasks, moving the rest to the start of
// its array: a queue that is appended to at the back and taken from at
// the front then reuses one array instead of allocating a new one each
// time the front has advanced to the end.
func dropFront(q []*task, n int) []*task {
	rest := copy(q, q[n:])
	clear(q[rest:])
	return q[:rest]
}

func (a *actorClient) failQueuedLocked() {
	q := a.queue
	a.queue = nil
	info := errs.ToInfo(a.dead)
	for _, t := range q {
		a.cw.finishLocked(t, info)
	}
}

func (a *actorClient) requeueLocked(t *task) {
	a.queue = append([]*task{t}, a.queue...)
}

func (a *actorClient) dieLocked(err error) {
	if a.dead != nil {
		return
	}
	a.dead = err
	a.disconnectLocked()
	info := errs.ToInfo(err)
	for _, t := range a.inflight.drain() {
		a.cw.finishLocked(t, info)
	}
	a.failQueuedLocked()
}

func (a *actorClient) disconnectLocked() {
	if a.addr == "" {
		return
	}
	a.addr = ""
	a.gen++
	close(a.sendCh)
	a.cancel()
}

func (a *actorClient) close() {
	a.cw.mu.Lock()
	defer a.cw.mu.Unlock()
	a.disconnectLocked()
}

// watchLocked starts following the actor's state in the control store
// until it is alive (then connects) or dead.
func (a *actorClient) watchLocked() {
	if a.watching || a.cw.closed {
		return
	}
	a.watching = true
	since := a.version
	a.cw.wg.Add(1)
	go func() {
		defer a.cw.wg.Done()
		a.watch(since)
	}()
}

func (a *actorClient) watch(since uint64) {
	cw := a.cw
	backoff := 10 * time.Millisecond
	for cw.ctx.Err() == nil {
		reply, err := cw.gcs.WaitActor(cw.ctx, &pb.WaitActorRequest{ActorId: a.h.ID.Bytes(), SinceVersion: since, TimeoutMs: 10000})
		if err != nil {
			if isUnavailable(err) {
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			cw.mu.Lock()
			a.watching = false
			a.dieLocked(&errs.ActorDiedError{ActorID: a.h.ID.String(), Name: a.h.Name, Reason: "control store: " + err.Error()})
			cw.mu.Unlock()
			return
		}
		info := reply.GetActor()
		since = info.GetVersion()
		if info.GetInfeasible() != nil {
			cw.mu.Lock()
			warn := !a.warnedInfeasible
			a.warnedInfeasible = true
			cw.mu.Unlock()
			if warn {
				slog.Warn("raygo: actor waits for a node that can hold its resources; no node in the cluster can now (add one, or lower the request)",
					"actor", a.h.Class, "error", errs.FromInfo(info.GetInfeasible()))
			}
		}
		switch info.GetState() {
		case pb.ActorState_ACTOR_STATE_DEAD:
			cw.mu.Lock()
			a.watching = false
			a.version = since
			cause := errs.FromInfo(info.GetDeathCause())
			if cause == nil {
				cause = &errs.ActorDiedError{ActorID: a.h.ID.String(), Name: a.h.Name, Reason: "dead"}
			}
			a.dieLocked(cause)
			cw.mu.Unlock()
			return
		case pb.ActorState_ACTOR_STATE_ALIVE:
			if err := a.connect(info); err != nil {
				// The process is gone already; wait for the next version.
				continue
			}
			return
		}
	}
}

// connect opens a stream to the actor's worker and sends what is queued.
func (a *actorClient) connect(info *pb.ActorInfo) error {
	cw := a.cw
	ctx, cancel := context.WithCancel(cw.ctx)
	stream, err := cw.openTaskStream(ctx, info.GetAddress())
	if err != nil {
		cancel()
		return err
	}
	sendCh := make(chan *pb.TaskSpec, 1024)
	cw.mu.Lock()
	defer cw.mu.Unlock()
	a.watching = false
	a.version = info.GetVersion()
	if a.dead != nil || cw.closed {
		cancel()
		close(sendCh)
		return nil
	}
	a.addr, a.sendCh, a.cancel = info.GetAddress(), sendCh, cancel
	a.gen++
	gen := a.gen
	cw.wg.Add(2)
	common := cw.streamCommon()
	common.ActorId, common.CallerId = a.idWire, cw.workerIDWire
	go cw.sendLoop(stream, sendCh, common)
	go a.recvLoop(stream, gen)
	a.pumpLocked()
	return nil
}

func (a *actorClient) recvLoop(stream taskStream, gen int) {
	cw := a.cw
	defer cw.wg.Done()
	for {
		batch, err := stream.Recv()
		cw.mu.Lock()
		if err != nil {
			if a.gen == gen {
				a.connLostLocked(err)
			}
			cw.mu.Unlock()
			return
		}
		moved := false
		for _, r := range batch.GetReplies() {
			if r.GetError().GetKind() == errs.KindActorNotHere {
				moved = true // the call never ran; connLostLocked requeues or fails it
				continue
			}
			if t := a.inflight.take(ids.MustFromBytes(r.GetTaskId())); t != nil {
				cw.replyLocked(t, r)
			}
		}
		if moved && a.gen == gen {
			a.connLostLocked(errors.New("the actor left this worker process"))
			cw.mu.Unlock()
			return
		}
		a.pumpLocked()
		cw.mu.Unlock()
	}
}

// connLostLocked handles the actor's process going away: calls in flight
// are retried (MaxTaskRetries) or fail with ActorDied, and the client
// waits for the control store to restart or bury the actor.
func (a *actorClient) connLostLocked(cause error) {
	a.disconnectLocked()
	failed := a.inflight.drain()
	sortBySeqDesc(failed)
	for _, t := range failed {
		switch {
		case t.cancelled:
			a.cw.finishLocked(t, errs.ToInfo(&errs.CancelledError{Function: t.spec.Function, TaskID: t.id().String()}))
		case t.retriesLeft != 0:
			a.cw.retryLocked(t)
		default:
			a.cw.finishLocked(t, errs.ToInfo(&errs.ActorDiedError{ActorID: a.h.ID.String(), Name: a.h.Name,
				Reason: fmt.Sprintf("the actor's process died while the call ran (%v); set MaxTaskRetries to retry calls", cause)}))
		}
	}
	a.watchLocked()
}

// sentCalls holds an actor's calls in flight in the order they were sent.
// Replies come back in that order unless the actor runs calls
// concurrently, so take finds a reply's call at the front in the common
// case (no map insert, lookup and delete per call) and scans otherwise.
type sentCalls struct {
	q    []*task // nil: taken out of order
	head int     // q[:head] are all taken
	n    int     // calls in q
}

func (s *sentCalls) add(t *task) {
	s.q = append(s.q, t)
	s.n++
}

// take removes and returns the call with id tid, or nil.
func (s *sentCalls) take(tid ids.ID) *task {
	for i := s.head; i < len(s.q); i++ {
		t := s.q[i]
		if t == nil || t.tid != tid {
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
			s.q = dropFront(s.q, s.head)
			s.head = 0
		}
		return t
	}
	return nil
}

// drain removes and returns every call, in the order sent.
func (s *sentCalls) drain() []*task {
	out := make([]*task, 0, s.n)
	for _, t := range s.q[s.head:] {
		if t != nil {
			out = append(out, t)
		}
	}
	*s = sentCalls{}
	return out
}
