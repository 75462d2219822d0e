package coreworker

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker/executor"
	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/taskevents"
)

// Arg is one task argument: an encoded value, or a ref whose value the
// task receives (resolved before it runs).
type Arg struct {
	Data   []byte
	Nested []codec.Ref
	Ref    *Ref
}

// TaskOptions are the per-call options of a task or actor call.
type TaskOptions struct {
	Resources  resources.Set
	NumReturns int
	// MaxRetries counts retries after system failures (-1: forever). For
	// actor calls, a negative MaxRetries below -1 means "the actor's
	// MaxTaskRetries" (see UseActorRetries).
	MaxRetries int
	// OOMRetries counts retries after the memory monitor killed the
	// worker (-1: forever); a separate counter from MaxRetries.
	OOMRetries int
	// RetryExceptions retries application errors too; RetryErrorTypes, if
	// set, limits that to errors whose registered type name is listed.
	RetryExceptions bool
	RetryErrorTypes []string
	Name            string
	// Placement is where the task may run (strategy, affinity, labels).
	Placement tasksubmit.Placement
	// Key caches SchedulingKey(opts); empty means compute it.
	Key string
}

// UseActorRetries as an actor call's MaxRetries takes the actor's
// MaxTaskRetries.
const UseActorRetries = -2

// SchedulingKey names the scheduling class of tasks with these options.
// Callers that submit many tasks with the same options compute it once
// (TaskOptions.Key).
func SchedulingKey(opts TaskOptions) string {
	return tasksubmit.ClassKey(opts.Resources, opts.Placement, opts.MaxRetries != 0 || opts.OOMRetries != 0)
}

// prepared is a task ready to be recorded: its return handles, the
// entries it holds, and the slots of the arguments it waits for.
type prepared struct {
	refs  []*Ref
	slots []*memstore.Slot // per argument: the slot of an owned ref argument, else nil
}

// prepare builds a task's spec arguments and return objects, and counts
// the references it holds. On error nothing is held.
func (cw *CoreWorker) prepare(ctx context.Context, t *taskmgr.Task, args []Arg) (prepared, error) {
	var p prepared
	if err := cw.unusable(); err != nil {
		return p, err
	}
	if err := ctx.Err(); err != nil {
		return p, fmt.Errorf("raygo: %s not submitted: %w", t.Function(), err)
	}
	if id, ok := executor.TaskIDFrom(ctx); ok {
		t.Parent = id // kept here for recursive cancel; receivers need it not
	}
	spec := t.Spec
	spec.Args = make([]*pb.Arg, len(args))
	held := t.Args[:0] // room for two in the task
	var nested []ids.ID
	for i, a := range args {
		if a.Ref != nil {
			spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Ref{Ref: a.Ref.Proto()}}
			if a.Ref.entry == nil {
				return p, errObjectFreed(a.Ref.ID)
			}
			held = append(held, a.Ref.entry)
			if a.Ref.slot != nil {
				if p.slots == nil {
					p.slots = make([]*memstore.Slot, len(args))
				}
				p.slots[i] = a.Ref.slot
			}
			continue
		}
		v := &pb.Value{Data: a.Data, Size: int64(len(a.Data))}
		for _, n := range a.Nested {
			v.Nested = append(v.Nested, &pb.ObjectRef{Id: n.ID, OwnerId: n.OwnerID, OwnerAddress: n.OwnerAddress})
			if id, ok := ids.FromBytes(n.ID); ok {
				nested = append(nested, id)
			}
		}
		spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Value{Value: v}}
	}
	if len(held) > 0 {
		if err := cw.refs.Hold(held...); err != nil {
			return p, err
		}
	}
	held = append(held, cw.refs.HoldIDs(nested)...)
	t.Args = held
	n := len(t.Returns)
	if n > 0 {
		p.refs = make([]*Ref, n)
		for i := range n {
			e := cw.refs.NewOwnedSlot(ids.ForReturn(t.ID, i), nil)
			t.Returns[i] = taskmgr.Return{Entry: e, Slot: e.Slot()}
			p.refs[i] = cw.handle(e, e.Slot())
		}
		if n == 1 {
			cw.refs.AddOwned(t.Returns[0].Entry)
		} else {
			es := make([]*refcount.Entry, n)
			for i, r := range t.Returns {
				es[i] = r.Entry
			}
			cw.refs.AddOwned(es...)
		}
	}
	return p, nil
}

// slotsReady reports whether every owned argument's value is ready (the
// task's dependencies resolve at once).
func slotsReady(slots []*memstore.Slot) bool {
	for _, s := range slots {
		if s != nil && !s.Ready() {
			return false
		}
	}
	return true
}

// storeLargeArgs puts arguments larger than the inline threshold into the
// object store and passes them by ref, so task specs stay small. The task
// holds the refs until it finishes.
func (cw *CoreWorker) storeLargeArgs(ctx context.Context, args []Arg, fn string) ([]Arg, error) {
	var out []Arg
	for i, a := range args {
		if a.Ref != nil || len(a.Data) <= cw.cfg.InlineThreshold {
			continue
		}
		if out == nil {
			out = append([]Arg(nil), args...)
		}
		h, err := cw.put(ctx, [][]byte{a.Data}, a.Nested, fmt.Sprintf("argument %d of %s", i, fn))
		if err != nil {
			return nil, fmt.Errorf("raygo: store argument %d: %w", i, err)
		}
		out[i] = Arg{Ref: h}
	}
	if out == nil {
		return args, nil
	}
	return out, nil
}

// SubmitTask submits a call of the registered function fn and returns
// handles on its return objects. ctx's task (if ctx belongs to one)
// becomes the new task's parent: cancelling it cancels this one too. A
// ctx already done fails the submission.
func (cw *CoreWorker) SubmitTask(ctx context.Context, fn string, args []Arg, opts TaskOptions) ([]*Ref, error) {
	if err := cw.awaitRemovals(ctx); err != nil {
		return nil, err
	}
	if opts.NumReturns <= 0 {
		opts.NumReturns = 1
	}
	if opts.NumReturns > ids.MaxReturns {
		return nil, errs.Invalidf("raygo: %s: %d returns exceed the limit of %d", fn, opts.NumReturns, ids.MaxReturns)
	}
	args, err := cw.storeLargeArgs(ctx, args, fn)
	if err != nil {
		return nil, err
	}
	t := taskmgr.NewTask(ids.New(), taskmgr.Normal, nil, opts.NumReturns, taskmgr.Policy{MaxRetries: opts.MaxRetries,
		OOMRetries: taskmgr.Clamp32(opts.OOMRetries), RetryExceptions: opts.RetryExceptions, RetryTypes: opts.RetryErrorTypes})
	spec := t.Spec
	spec.Function, spec.Name = fn, opts.Name
	spec.NumReturns, spec.MaxRetries = int32(opts.NumReturns), int32(opts.MaxRetries)
	if o := opts.Placement.Options; o.GetCaptureChildTasks() {
		spec.Scheduling = o // its worker submits its children into the group
	}
	p, err := cw.prepare(ctx, t, args)
	if err != nil {
		return nil, err
	}
	key := opts.Key
	if key == "" {
		key = SchedulingKey(opts)
	}
	res, pl := opts.Resources, opts.Placement
	argsReady := slotsReady(p.slots)
	if cw.events == nil || !cw.events.Define(taskevents.Definition{TaskID: t.ID, Type: taskevents.NormalTask, Name: opts.Name, Function: fn,
		ParentID: t.Parent, PlacementGroupID: placementGroupOf(pl.Options), Resources: res, ArgsReady: argsReady}, taskevents.Now()) {
		spec.NoTaskEvents = true // no process records this task; set before the task is shared
	}
	cw.tasks.Add(t)
	taskmgr.ResolveDeps(cw.mem, t, p.slots, func(t *taskmgr.Task, depErr *pb.ErrorInfo) {
		switch {
		case depErr != nil:
			cw.tasks.FailDependency(t, depErr)
		case cw.tasks.Cancelled(t):
			cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseCancelled})
		default:
			if !argsReady && !t.Spec.NoTaskEvents {
				cw.events.State(t.ID, 0, taskevents.PendingNode, taskevents.Now())
			}
			if err := cw.normal.Submit(t, key, res, pl); err != nil {
				cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: errs.ToInfo(err)})
			}
		}
	})
	return p.refs, nil
}

// Cancel stops the task that produces ref. A queued task is dropped; a
// running one has its context cancelled, or with force its worker killed;
// with recursive, the tasks it submitted are cancelled too. Cancelled
// tasks are never retried. Cancelling a finished task does nothing. A ref
// this process does not own is cancelled by asking its owner.
func (cw *CoreWorker) Cancel(ctx context.Context, ref *Ref, force, recursive bool) error {
	tid := taskmgr.TaskOf(ref.ID)
	if !cw.owned(ref) {
		conn, err := cw.pool.Get(ref.OwnerAddr)
		if err != nil {
			return err
		}
		_, err = pb.NewCoreWorkerClient(conn).CancelTask(ctx, &pb.CancelTaskRequest{TaskId: tid[:], Force: force, Recursive: recursive, AsOwner: true})
		return err
	}
	return cw.cancelTask(ctx, tid, force, recursive)
}

// cancelTask cancels a task this process owns.
func (cw *CoreWorker) cancelTask(ctx context.Context, tid ids.ID, force, recursive bool) error {
	t, ok := cw.tasks.MarkCancelled(tid)
	if !ok {
		return nil // finished, or never ours
	}
	inFlight := false
	switch t.Kind {
	case taskmgr.ActorCall:
		w, err := cw.actors.Cancel(ctx, t, force, recursive)
		if err != nil {
			return err
		}
		inFlight = w == taskmgr.InFlight
	default:
		w, err := cw.normal.Cancel(ctx, t, force, recursive)
		if err != nil {
			return err
		}
		inFlight = w == taskmgr.InFlight
	}
	// Queued (dropped from its queue) or not yet submitted (its arguments
	// are still resolving): it ends here, now. In flight: its worker
	// answers Cancelled (or dies, when forced).
	if !inFlight {
		cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseCancelled})
	}
	return nil
}

// cancelChildren cancels, recursively, the pending tasks that the task
// parent (running here) submitted.
func (cw *CoreWorker) cancelChildren(ctx context.Context, parent ids.ID) {
	for _, t := range cw.tasks.Children(parent) {
		_ = cw.cancelTask(ctx, t.ID, false, true)
	}
}
