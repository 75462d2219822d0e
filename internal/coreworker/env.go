package coreworker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/registry"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
)

// env is the executor's view of the process (executor.Env).
type env struct{ cw *CoreWorker }

// ResolveArgs returns each argument's encoded bytes: inline values as
// they are, refs from this process's memory store or from their owners
// (all asked at once, waited for together), then from a node's store.
// Arguments in the local store alias shared memory until release. An
// argument that holds an error fails the task with a TaskError whose
// cause is that error, as Ray wraps it.
func (e env) ResolveArgs(ctx context.Context, spec *pb.TaskSpec) (args [][]byte, release func(), err error) {
	cw := e.cw
	args = make([][]byte, len(spec.GetArgs()))
	vals := make([]*pb.Value, len(args))
	var releases []func()
	release = func() {
		for _, f := range releases {
			f()
		}
	}
	byOwner := map[string][]int{}
	for i, a := range spec.GetArgs() {
		if v := a.GetValue(); v != nil {
			vals[i] = v
			continue
		}
		r := a.GetRef()
		id, ok := ids.FromBytes(r.GetId())
		if !ok {
			return nil, release, errs.Invalidf("raygo: %s: argument %d: malformed object id", spec.GetFunction(), i)
		}
		if s := cw.knownSlot(id); s != nil && s.Ready() {
			vals[i] = s.Value()
			continue
		}
		if owner, _ := ids.FromBytes(r.GetOwnerId()); owner == cw.cfg.WorkerID {
			if cw.knownSlot(id) == nil {
				return nil, release, errObjectFreed(id)
			}
			byOwner[""] = append(byOwner[""], i) // owned here, pending: wait on its slot
			continue
		}
		byOwner[r.GetOwnerAddress()] = append(byOwner[r.GetOwnerAddress()], i)
	}
	if len(byOwner) > 0 {
		if err := e.fetchArgs(ctx, spec, byOwner, vals); err != nil {
			return nil, release, err
		}
	}
	for i, v := range vals {
		if info := v.GetError(); info != nil {
			if info.GetKind() == errs.KindOwnerDied && spec.GetArgs()[i].GetRef().GetOwnerAddress() == spec.GetOwnerAddress() {
				// The argument's owner is this task's caller, which this
				// worker could not reach (a partition): a caller that
				// hears this answer is alive, and runs the task again
				// (an unavailable answer is retried as a system failure).
				return nil, release, &errs.Status{Kind: errs.KindUnavailable, Message: fmt.Sprintf("raygo: %s: argument %d: "+
					"its owner, this task's caller at %s, could not be reached from this worker: %v",
					spec.GetFunction(), i, spec.GetOwnerAddress(), errs.FromInfo(info))}
			}
			return nil, release, argError(spec, i, info)
		}
		if !v.GetInStore() {
			args[i] = v.GetData()
			continue
		}
		d, rel, err := cw.valueBytes(ctx, argRef(spec.GetArgs()[i]), v)
		if err != nil {
			return nil, release, err
		}
		if rel != nil {
			releases = append(releases, rel)
		}
		args[i] = d
	}
	return args, release, nil
}

// argRef is a ref argument's handle form (uncounted: the task's caller
// holds the object while the task runs), for reading its value.
func argRef(a *pb.Arg) *Ref {
	r := a.GetRef()
	return &Ref{ID: ids.MustFromBytes(r.GetId()), OwnerAddr: r.GetOwnerAddress(), OwnerID: ids.MustFromBytes(r.GetOwnerId())}
}

// fetchArgs fills vals for the arguments asked of owners (byOwner: owner
// address -> argument indexes; "" for objects owned here), waiting for
// them all without a goroutine per argument.
func (e env) fetchArgs(ctx context.Context, spec *pb.TaskSpec, byOwner map[string][]int, vals []*pb.Value) error {
	cw := e.cw
	type got struct {
		i int
		v *pb.Value
	}
	n := 0
	for _, idx := range byOwner {
		n += len(idx)
	}
	ch := make(chan got, n) // every callback has room: none blocks
	for owner, idx := range byOwner {
		list := make([]ids.ID, len(idx))
		for k, i := range idx {
			list[k] = ids.MustFromBytes(spec.GetArgs()[i].GetRef().GetId())
		}
		if owner == "" {
			for k, i := range idx {
				i := i
				s := cw.knownSlot(list[k])
				if s == nil { // freed meanwhile
					ch <- got{i, memstore.FreedValue(list[k])}
					continue
				}
				cw.mem.OnReady(s, func(v *pb.Value) { ch <- got{i, v} })
			}
			continue
		}
		cw.resolver.request(list, owner, func(k int, v *pb.Value) { ch <- got{idx[k], v} })
	}
	var blocked func()
	blocking, done := cw.blockingFor(ctx)
	defer done()
	for range n {
		select {
		case g := <-ch:
			vals[g.i] = g.v
			continue
		default:
		}
		if blocked == nil && blocking != nil {
			blocked = blocking
			blocking()
		}
		select {
		case g := <-ch:
			vals[g.i] = g.v
		case <-ctx.Done():
			return ctxErr(ctx, "the arguments of "+spec.GetFunction())
		}
	}
	return nil
}

// argError is the error of a task whose argument i holds an error.
func argError(spec *pb.TaskSpec, i int, info *pb.ErrorInfo) error {
	cause := errs.FromInfo(info)
	return &errs.TaskError{Function: spec.GetFunction(), Attempt: int(spec.GetAttempt()), Cause: cause,
		Message: "argument " + strconv.Itoa(i) + " of " + spec.GetFunction() + " failed: " + cause.Error()}
}

// StoreReturns turns encoded results into reply values: large ones into
// the node's store, and refs nested in them registered with their owners
// as borrowed by the caller.
func (e env) StoreReturns(ctx context.Context, spec *pb.TaskSpec, rets []registry.Encoded) ([]*pb.Value, error) {
	cw := e.cw
	out := make([]*pb.Value, len(rets))
	caller := spec.GetOwnerAddress()
	var byOwner map[string][]ids.ID
	for i, r := range rets {
		// The caller owns the task's returns: the store frees them when it
		// is gone.
		v, err := cw.makeValueFor(ctx, ids.MustFromBytes(spec.GetReturnIds()[i]), [][]byte{r.Data}, spec.GetFunction(),
			ids.MustFromBytes(spec.GetOwnerId()), caller)
		if errors.Is(err, objstore.ErrConnLost) {
			// This node is going away: the task ran, but its result
			// cannot be kept here. Unavailable: its caller runs it again
			// elsewhere (taskmgr.Decide), as if this worker had died.
			return nil, fmt.Errorf("%w: %s: store its result on this node: %w", errs.ErrUnavailable, spec.GetFunction(), err)
		}
		if err != nil {
			return nil, err
		}
		for _, n := range r.Nested {
			v.Nested = append(v.Nested, &pb.ObjectRef{Id: n.ID, OwnerId: n.OwnerID, OwnerAddress: n.OwnerAddress})
			if n.OwnerAddress != caller {
				if byOwner == nil {
					byOwner = map[string][]ids.ID{}
				}
				byOwner[n.OwnerAddress] = append(byOwner[n.OwnerAddress], ids.MustFromBytes(n.ID))
			}
		}
		out[i] = v
	}
	for owner, list := range byOwner {
		cw.registerBorrower(ctx, owner, list, caller)
	}
	return out, nil
}

// FlushBorrows tells owners of refs this process started borrowing.
func (e env) FlushBorrows(ctx context.Context) { e.cw.flushBorrows(ctx) }

// ActorExited frees what an actor hosted here put (actorobjects.go) and
// tells the control store it ended itself: it is dead for good (not
// restarted) with reason.
func (e env) ActorExited(actor ids.ID, reason string) {
	e.cw.freeActorObjects(actor)
	ctx, cancel := context.WithTimeout(e.cw.stop.Ctx(), 10*time.Second)
	defer cancel()
	_, _ = e.cw.gcs.KillActor(ctx, &pb.KillActorRequest{ActorId: actor.Bytes(), NoRestart: true, Reason: reason, Cause: errs.ActorExited})
}
