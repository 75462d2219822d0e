package coreworker

import (
	"context"
	"runtime"
	"sort"
	"sync"
	"time"
	"weak"

	"github.com/raygo/raygo/internal/coreworker/executor"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/taskevents"
)

// ActorOptions are the creation options of an actor.
type ActorOptions struct {
	Resources resources.Set
	Name      string
	Namespace string
	// GetIfExists returns the existing live actor of that name instead of
	// failing.
	GetIfExists bool
	// Detached actors outlive their creator and are not counted; others
	// end when their owner dies or when no handle to them remains.
	Detached bool
	// MaxRestarts: times the actor is restarted after its process dies
	// (-1: forever).
	MaxRestarts int
	// MaxTaskRetries: times a call is retried when the actor's process
	// dies while it runs (-1: forever). 0 makes calls at-most-once.
	MaxTaskRetries int
	// MaxConcurrency: calls that may run at once (default 1).
	MaxConcurrency int
	// Placement is where the actor may run (strategy, affinity, labels).
	Placement tasksubmit.Placement
}

// ActorRef is a handle on an actor. The ray package wraps it in its typed
// ActorHandle[T]; copies share one *ActorRef. A handle made by creating a
// non-detached actor, or read from a value, is counted like an object ref:
// when no handle remains anywhere (borrowers included) and no call is
// pending, the actor ends, as in Ray. Handles of detached actors and
// handles found by name (GetActor) are not counted.
type ActorRef struct {
	ID             ids.ID
	Class          string
	Name           string
	Namespace      string
	MaxTaskRetries int
	Owner          refcount.Owner
	Detached       bool
	// Counted says the handle counts as a reference to the actor.
	Counted bool

	entry *refcount.Entry
}

// actorArgs holds, per actor this process created, the references its
// constructor's arguments keep (restarts re-run it with them), released
// when the actor ends.
type actorArgs struct {
	mu   sync.Mutex
	held map[ids.ID][]*refcount.Entry
}

func (a *actorArgs) keep(id ids.ID, es []*refcount.Entry) {
	if len(es) == 0 {
		return
	}
	a.mu.Lock()
	if a.held == nil {
		a.held = map[ids.ID][]*refcount.Entry{}
	}
	a.held[id] = es
	a.mu.Unlock()
}

func (a *actorArgs) take(id ids.ID) []*refcount.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	es := a.held[id]
	delete(a.held, id)
	return es
}

// CreateActor registers an actor with the control store, which places it
// and runs its constructor. The handle is usable at once: calls wait for
// the actor to be alive.
func (cw *CoreWorker) CreateActor(ctx context.Context, class string, args []Arg, opts ActorOptions) (*ActorRef, error) {
	if err := cw.awaitRemovals(ctx); err != nil {
		return nil, err
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = 1
	}
	if opts.Namespace == "" {
		opts.Namespace = cw.cfg.Namespace
	}
	if opts.Detached && opts.Name == "" {
		return nil, errs.Invalidf("raygo: actor %s: a detached actor needs a name (it outlives its creator, so it can only be found by name)", class)
	}
	args, err := cw.storeLargeArgs(ctx, args, class)
	if err != nil {
		return nil, err
	}
	aid := ids.New()
	submitted := taskevents.Now()
	t := taskmgr.NewTask(ids.New(), taskmgr.ActorCreation, nil, 0, taskmgr.Policy{})
	spec := t.Spec
	spec.JobId, spec.Function, spec.Name = cw.jobWire, class, opts.Name
	spec.OwnerAddress, spec.OwnerId = cw.address, cw.idWire
	spec.Resources = &pb.Resources{Amounts: opts.Resources}
	spec.ActorId, spec.ActorCreation = aid.Bytes(), true
	spec.MaxConcurrency, spec.MaxRetries = int32(opts.MaxConcurrency), int32(opts.MaxTaskRetries)
	spec.Strategy, spec.Scheduling = opts.Placement.Strategy, opts.Placement.Options
	spec.RuntimeEnv = opts.Placement.RuntimeEnv
	p, err := cw.prepare(ctx, t, args)
	if err != nil {
		return nil, err
	}
	// The constructor's arguments must be ready before the control store
	// can pass them on.
	ready := make(chan *pb.ErrorInfo, 1)
	taskmgr.ResolveDeps(cw.mem, t, p.slots, func(_ *taskmgr.Task, depErr *pb.ErrorInfo) { ready <- depErr })
	var depErr *pb.ErrorInfo
	select {
	case depErr = <-ready:
	case <-ctx.Done():
		cw.refs.Release(false, t.Args...)
		return nil, ctxErr(ctx, "the arguments of actor "+class)
	}
	if depErr != nil {
		cw.refs.Release(false, t.Args...)
		cw.recordCreation(t, class, opts, submitted, 0, depErr)
		return nil, errs.FromInfo(depErr)
	}
	argsReady := taskevents.Now()
	reply, err := cw.gcs.CreateActor(ctx, &pb.CreateActorRequest{GetIfExists: opts.GetIfExists, FailIfInfeasible: cw.cfg.FailIfInfeasible, Actor: &pb.ActorInfo{
		ActorId: aid.Bytes(), JobId: cw.jobWire, Name: opts.Name, Namespace: opts.Namespace, ClassName: class,
		MaxRestarts: int32(opts.MaxRestarts), Detached: opts.Detached, OwnerId: cw.idWire, OwnerAddress: cw.address, OwnerNodeId: cw.ownerNode(),
		Creation: spec,
	}})
	if err != nil {
		cw.refs.Release(false, t.Args...)
		cw.recordCreation(t, class, opts, submitted, argsReady, errs.ToInfo(err))
		return nil, err
	}
	info := reply.GetActor()
	if reply.GetExisted() {
		cw.refs.Release(false, t.Args...)
		return actorRefFromInfo(info), nil // another's actor: not counted
	}
	cw.recordCreation(t, class, opts, submitted, argsReady, nil)
	cw.actorArgs.keep(aid, t.Args)
	a := actorRefFromInfo(info)
	if !opts.Detached {
		a.Counted = true
		a.entry = cw.refs.Own(aid, refcount.Actor, nil, nil)
		runtime.AddCleanup(a, cw.dropLocalFn, a.entry)
	}
	return a, nil
}

// recordCreation records an actor's creation task as its owner saw it:
// submitted, then (argsReady, if not zero) handed to the control store
// to place, or failed with why. It is recorded once the outcome is
// known: a GetIfExists that found another's actor records nothing.
func (cw *CoreWorker) recordCreation(t *taskmgr.Task, class string, opts ActorOptions, submitted, argsReady int64, why *pb.ErrorInfo) {
	if cw.events == nil {
		return
	}
	cw.events.Define(taskevents.Definition{TaskID: t.ID, Type: taskevents.ActorCreationTask, Name: opts.Name, Function: class,
		ActorID: ids.MustFromBytes(t.Spec.GetActorId()), ParentID: t.Parent, PlacementGroupID: placementGroupOf(opts.Placement.Options),
		Resources: opts.Resources}, submitted)
	if argsReady != 0 {
		cw.events.State(t.ID, 0, taskevents.PendingNode, argsReady)
	}
	if why != nil {
		cw.events.Fail(t.ID, 0, why, taskevents.Now())
	}
}

func actorRefFromInfo(info *pb.ActorInfo) *ActorRef {
	return &ActorRef{ID: ids.MustFromBytes(info.GetActorId()), Class: info.GetClassName(), Name: info.GetName(),
		Namespace: info.GetNamespace(), MaxTaskRetries: int(info.GetCreation().GetMaxRetries()), Detached: info.GetDetached(),
		Owner: refcount.Owner{Addr: info.GetOwnerAddress(), ID: ids.MustFromBytes(info.GetOwnerId())}}
}

// ActorFromWire turns an actor handle read from a value into a handle; a
// counted one makes this process a borrower of the actor (registered with
// its owner before the current task replies, or soon in a driver).
func (cw *CoreWorker) ActorFromWire(a ActorRef) *ActorRef {
	h := a
	h.entry = nil
	if !a.Counted || a.Owner.ID.IsNil() {
		h.Counted = false
		return &h
	}
	var reused *ActorRef
	e, ok := cw.refs.Decode(refcount.Ref{ID: a.ID, Owner: a.Owner}, refcount.Actor, func(aux any) bool {
		if wp, ok := aux.(weak.Pointer[ActorRef]); ok {
			reused = wp.Value()
		}
		return reused != nil
	})
	if e == nil { // owned here, and already out of scope
		h.Counted = false
		return &h
	}
	if ok {
		return reused
	}
	if !e.Owned() {
		cw.bg.kick()
	}
	p := &h
	p.entry = e
	runtime.AddCleanup(p, cw.dropLocalFn, e)
	cw.refs.SetAux(e, weak.Make(p))
	return p
}

// actorOutOfScope ends an actor this process owns whose handles are all
// gone (none here, none borrowed, no call pending), as Ray does; its name
// becomes free.
func (cw *CoreWorker) actorOutOfScope(id ids.ID) {
	held := cw.actorArgs.take(id)
	_ = cw.stop.Go("coreworker.actorscope", func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, _ = cw.gcs.KillActor(ctx, &pb.KillActorRequest{ActorId: id.Bytes(), NoRestart: true,
			Reason: "all its handles went out of scope", Cause: errs.ActorOutOfScope})
		cw.refs.Release(false, held...)
		cw.actors.Forget(id)
	})
}

// SubmitActorTask calls a method on the actor and returns handles on the
// call's return objects; fn is the method's registered name,
// "Class.method". opts.MaxRetries is the call's MaxTaskRetries, or
// UseActorRetries for the actor's.
func (cw *CoreWorker) SubmitActorTask(ctx context.Context, a *ActorRef, fn string, args []Arg, opts TaskOptions) ([]*Ref, error) {
	if err := cw.awaitRemovals(ctx); err != nil {
		return nil, err
	}
	if opts.NumReturns < 0 || opts.NumReturns > ids.MaxReturns {
		return nil, errs.Invalidf("raygo: %s: %d returns: want 0 to %d", fn, opts.NumReturns, ids.MaxReturns)
	}
	retries := opts.MaxRetries
	if retries == UseActorRetries {
		retries = a.MaxTaskRetries
	}
	args, err := cw.storeLargeArgs(ctx, args, fn)
	if err != nil {
		return nil, err
	}
	t := taskmgr.NewTask(ids.New(), taskmgr.ActorCall, nil, opts.NumReturns, taskmgr.Policy{MaxRetries: retries,
		RetryExceptions: opts.RetryExceptions, RetryTypes: opts.RetryErrorTypes})
	spec := t.Spec
	spec.Function, spec.Name, spec.NumReturns, spec.MaxRetries = fn, opts.Name, int32(opts.NumReturns), int32(retries)
	p, err := cw.prepare(ctx, t, args)
	if err != nil {
		return nil, err
	}
	if a.entry != nil { // a pending call keeps the actor in scope
		if err := cw.refs.Hold(a.entry); err != nil {
			cw.refs.Release(false, t.Args...)
			return nil, err
		}
		t.Args = append(t.Args, a.entry)
	}
	if cw.events == nil || !cw.events.Define(taskevents.Definition{TaskID: t.ID, Type: taskevents.ActorTask, Name: opts.Name, Function: fn,
		ActorID: a.ID, ParentID: t.Parent}, taskevents.Now()) {
		spec.NoTaskEvents = true // no process records this call; set before the task is shared
	}
	cw.tasks.Add(t)
	resolved := slotsReady(p.slots)
	if !resolved {
		cw.submitActorCall(t, a, false)
		taskmgr.ResolveDeps(cw.mem, t, p.slots, func(t *taskmgr.Task, depErr *pb.ErrorInfo) { cw.actors.Resolved(t, depErr) })
		return p.refs, nil
	}
	if depErr := taskmgr.InlineArgs(t.Spec, p.slots); depErr != nil {
		cw.submitActorCall(t, a, false)
		cw.actors.Resolved(t, depErr) // fails it in its turn
		return p.refs, nil
	}
	cw.submitActorCall(t, a, true)
	return p.refs, nil
}

func (cw *CoreWorker) submitActorCall(t *taskmgr.Task, a *ActorRef, resolved bool) {
	if err := cw.actors.Submit(t, a.ID, a.Name, resolved); err != nil {
		cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: errs.ToInfo(err)})
	}
}

// TerminateActor ends the actor gracefully: the end is queued behind the
// calls this process already made to it, which finish first. The actor
// is not restarted; later calls fail with ActorDiedError. The returned
// ref is ready once the actor has ended.
func (cw *CoreWorker) TerminateActor(ctx context.Context, a *ActorRef) (*Ref, error) {
	refs, err := cw.SubmitActorTask(ctx, a, executor.TerminateMethod, nil, TaskOptions{NumReturns: 1})
	if err != nil {
		return nil, err
	}
	return refs[0], nil
}

// GetActor looks up a live named actor. The handle is not counted: it
// does not keep the actor alive.
func (cw *CoreWorker) GetActor(ctx context.Context, name, namespace string) (*ActorRef, error) {
	if namespace == "" {
		namespace = cw.cfg.Namespace
	}
	reply, err := cw.gcs.GetActor(ctx, &pb.GetActorRequest{Name: name, Namespace: namespace})
	if err != nil {
		return nil, err
	}
	return actorRefFromInfo(reply.GetActor()), nil
}

// NamedActor is a live named actor, as ListNamedActors reports it.
type NamedActor struct {
	Name, Namespace, Class string
	ID                     ids.ID
	Detached               bool
}

// ListNamedActors lists the live named actors of a namespace (all
// namespaces with all), sorted by namespace and name.
func (cw *CoreWorker) ListNamedActors(ctx context.Context, namespace string, all bool) ([]NamedActor, error) {
	if namespace == "" {
		namespace = cw.cfg.Namespace
	}
	reply, err := cw.gcs.ListActors(ctx, &pb.ListActorsRequest{})
	if err != nil {
		return nil, err
	}
	var out []NamedActor
	for _, a := range reply.GetActors() {
		if a.GetName() == "" || a.GetState() == pb.ActorState_ACTOR_STATE_DEAD || (!all && a.GetNamespace() != namespace) {
			continue
		}
		out = append(out, NamedActor{Name: a.GetName(), Namespace: a.GetNamespace(), Class: a.GetClassName(),
			ID: ids.MustFromBytes(a.GetActorId()), Detached: a.GetDetached()})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// KillActor kills an actor. Without restart it is dead at once for this
// process and, through the control store, for everyone.
func (cw *CoreWorker) KillActor(ctx context.Context, a *ActorRef, noRestart bool) error {
	reason := "killed by ray.Kill"
	if !noRestart {
		reason = "killed by ray.Kill (restart allowed)"
	}
	if _, err := cw.gcs.KillActor(ctx, &pb.KillActorRequest{ActorId: a.ID.Bytes(), NoRestart: noRestart, Reason: reason}); err != nil {
		return err
	}
	if noRestart {
		cw.actors.MarkDead(a.ID, a.Name, &errs.ActorDiedError{ActorID: a.ID.String(), Name: a.Name, Reason: reason, Cause: errs.ActorKilled})
	}
	return nil
}

// ExitActor ends the actor whose method ctx belongs to once the method
// returns (ray.exit_actor): it is not restarted, and calls queued behind
// it fail with an ActorDiedError.
func ExitActor(ctx context.Context) error { return executor.ExitActor(ctx) }
