package coreworker

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Rebuilding lost objects (lineage reconstruction, the owner's side).
//
// When this process reads an object it owns and finds it lost (every
// copy was on nodes that died), it runs again the task that made it
// (taskmgr.Rebuild: a new attempt within the task's MaxRetries), after
// rebuilding the task's own arguments that are lost too, recursively; the
// read then goes on with the new copy. A result of an actor method is
// rebuilt by calling the method again on the actor, restarted elsewhere
// if it died with the node, within the call's MaxTaskRetries (as Ray
// does; the actor needs MaxRestarts to come back). Objects it cannot
// rebuild (made by ray.Put, by a task with MaxRetries(0) or an actor
// method with MaxTaskRetries(0), or whose lineage was dropped) fail with
// ObjectLost saying why; so does a rebuild whose actor is dead for good.
// A borrower (a task reading an argument another process owns) that
// finds an object lost asks its owner to rebuild it
// (CoreWorker.RebuildObject) and reads the copy the owner answers with.

// maxRebuildDepth bounds how deep a rebuild goes through lost arguments.
const maxRebuildDepth = 1000

// rebuildLost makes the owned object id again; lostErr is what it was
// found lost with. It returns the object's new value.
func (cw *CoreWorker) rebuildLost(ctx context.Context, id ids.ID, lostErr error, depth int) (*pb.Value, error) {
	if depth > maxRebuildDepth {
		return nil, fmt.Errorf("%w; not rebuilt: its lost arguments go deeper than %d tasks", lostErr, maxRebuildDepth)
	}
	rb, err := cw.tasks.Rebuild(id, lostErr)
	if err != nil {
		return nil, err
	}
	if t := rb.Task; t != nil {
		revived, err := cw.rebuildArgs(ctx, t, depth)
		if err == nil {
			err = cw.resubmit(t)
		}
		if err != nil {
			// The whole story in the message: the wire form of a wrapped
			// error keeps only the innermost raygo error's fields.
			cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: errs.ToInfo(&errs.ObjectError{ObjectID: id.String(),
				Kind: errs.KindObjectLost, Detail: "rebuilding it needs another object: " + err.Error()})})
		}
		// What was rebuilt only for this rebuild is freed again once it
		// ran; so are results of t that nothing needs (out of scope).
		cleanup := func() {
			cw.unrevive(revived)
			for _, r := range t.Returns {
				if e, ok := cw.refs.LineageOnly(r.Entry.ID()); ok {
					cw.freeOwned(e) // unless another rebuild serves it
				}
			}
		}
		if cw.stop.Go("coreworker.rebuilt", func(stop context.Context) {
			select {
			case <-rb.Done():
				cleanup()
			case <-stop.Done():
			}
		}) != nil {
			cleanup() // shutting down
		}
	}
	select {
	case <-rb.Done():
	case <-ctx.Done():
		return nil, ctxErr(ctx, "object "+id.String())
	}
	if err := rb.Err(); err != nil {
		return nil, fmt.Errorf("%w; rebuilding it failed: %w", lostErr, err)
	}
	v := cw.ownedValue(id)
	switch {
	case v == nil:
		return nil, fmt.Errorf("%w; it was rebuilt, but this process no longer serves it (out of scope, and no rebuild needs it)", lostErr)
	case memstore.IsFreed(v):
		return nil, fmt.Errorf("%w; it was rebuilt, but freed again before it could be read", lostErr)
	}
	return v, nil
}

// resubmit sends a task being rebuilt again: a normal task for a new
// lease, an actor call to its actor (restarted, if its process died),
// ahead of the calls made after it that are not sent yet.
func (cw *CoreWorker) resubmit(t *taskmgr.Task) error {
	if t.Kind == taskmgr.ActorCall {
		return cw.actors.Resubmit(t)
	}
	return cw.normal.Resubmit(t)
}

// ownedValue is the value of an owned object in scope, or rebuilt out of
// scope for a rebuild that needs it; nil otherwise.
func (cw *CoreWorker) ownedValue(id ids.ID) *pb.Value {
	if s := cw.ownedSlot(id); s != nil {
		return s.Value()
	}
	return nil
}

// revive marks an owned object as served for a rebuild under way, in
// scope or not (ownedSlot serves it out of scope): its value is not freed
// until the last unrevive, even if its last handle goes meanwhile (a
// free asked then is deferred: freeOwned). revive waits for frees under
// way to end, so that what the caller then reads is the value after them
// (freed: rebuild it), never one about to go.
func (cw *CoreWorker) revive(id ids.ID) {
	cw.reviving.Add(1) // frees from now on take freeOwned's slow path
	for cw.fastFrees.Load() != 0 {
		runtime.Gosched() // a free that found no revival: it is short
	}
	cw.reviveMu.Lock()
	if cw.revived == nil {
		cw.revived = map[ids.ID]int{}
	}
	cw.revived[id]++
	ch := cw.freeing[id]
	cw.reviveMu.Unlock()
	if ch != nil {
		<-ch
	}
}

// unrevive ends revivals: an object no rebuild serves any more is freed
// if it is out of scope (a free deferred while it was served, or a value
// rebuilt out of scope).
func (cw *CoreWorker) unrevive(list []ids.ID) {
	for _, id := range list {
		cw.reviveMu.Lock()
		cw.revived[id]--
		last := cw.revived[id] <= 0
		var e *refcount.Entry
		if last {
			delete(cw.revived, id)
			e = cw.deferred[id]
			delete(cw.deferred, id)
		}
		cw.reviveMu.Unlock()
		cw.reviving.Add(-1)
		if !last {
			continue
		}
		if e == nil {
			e, _ = cw.refs.LineageOnly(id)
		}
		if e != nil {
			cw.freeOwned(e)
		}
	}
}

// freeOwned frees the value of an owned object out of scope, unless a
// rebuild serves it: then the last unrevive frees it. Without revivals
// (nearly always) it frees at once; with some, a revive of the object
// waits for its free to end.
func (cw *CoreWorker) freeOwned(e *refcount.Entry) {
	cw.fastFrees.Add(1)
	if cw.reviving.Load() == 0 {
		cw.freeValue(e)
		cw.fastFrees.Add(-1)
		return
	}
	cw.fastFrees.Add(-1)
	id := e.ID()
	cw.reviveMu.Lock()
	if cw.revived[id] > 0 {
		if cw.deferred == nil {
			cw.deferred = map[ids.ID]*refcount.Entry{}
		}
		cw.deferred[id] = e
		cw.reviveMu.Unlock()
		return
	}
	if cw.freeing[id] != nil {
		cw.reviveMu.Unlock()
		return // being freed
	}
	if cw.freeing == nil {
		cw.freeing = map[ids.ID]chan struct{}{}
	}
	ch := make(chan struct{})
	cw.freeing[id] = ch
	cw.reviveMu.Unlock()
	cw.freeValue(e)
	cw.reviveMu.Lock()
	delete(cw.freeing, id)
	cw.reviveMu.Unlock()
	close(ch)
}

func (cw *CoreWorker) isRevived(id ids.ID) bool {
	cw.reviveMu.Lock()
	defer cw.reviveMu.Unlock()
	return cw.revived[id] > 0
}

// rebuildArgs rebuilds, before t runs again, the arguments of t that this
// process owns and that are lost: in a store, with no copy on an alive
// node that answers (hasLiveCopy), or out of scope (their values freed:
// only the lineage kept them). Every argument of t this process owns is
// served until t has run, in scope or not (revived, returned for
// unrevive).
func (cw *CoreWorker) rebuildArgs(ctx context.Context, t *taskmgr.Task, depth int) (revived []ids.ID, err error) {
	var alive map[string]bool
	for _, a := range t.Spec.GetArgs() {
		id, ok := ids.FromBytes(a.GetRef().GetId())
		if !ok {
			continue
		}
		e, owned := cw.refs.Lookup(id)
		if !owned {
			e, owned = cw.refs.LineageOnly(id)
		}
		if !owned || !e.Owned() {
			continue
		}
		// Served until t has run, lost or not, from before its value is
		// looked at: its last handle may go while t waits for it, and a
		// free that raced with this look would leave t an argument the
		// look saw alive (two chaos runs lost chains to each).
		cw.revive(id)
		revived = append(revived, id)
		var v *pb.Value
		if s := e.Slot(); s != nil {
			v = s.Value()
			if v == nil {
				continue // not made yet: t waits for it as for any argument
			}
		}
		var argLost error
		switch {
		case v == nil || memstore.IsFreed(v):
			argLost = &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost,
				Detail: "an argument of " + t.Function() + " that was out of scope (its value freed)"}
		case v.GetInStore():
			if alive == nil {
				if alive, err = cw.aliveNodes(ctx); err != nil {
					return revived, err
				}
			}
			if cw.hasLiveCopy(ctx, id, v.GetStoreAddress(), alive) {
				continue
			}
			argLost = &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost,
				Detail: "an argument of " + t.Function() + ", held only on nodes that died (" + v.GetStoreAddress() + ")"}
		default:
			continue // its value is here, in memory
		}
		if _, err := cw.rebuildLost(ctx, id, argLost, depth+1); err != nil {
			return revived, err
		}
	}
	return revived, nil
}

// hasLiveCopy reports whether a node holding a copy of id (its primary,
// or one the directory knows) is alive and answers: the control store
// lists it alive, and it answers a call now. A node killed a moment ago
// is still listed alive until the control store's node timeout; the call
// finds it gone.
func (cw *CoreWorker) hasLiveCopy(ctx context.Context, id ids.ID, primary string, alive map[string]bool) bool {
	for _, node := range cw.dir.Locations(id, primary) {
		if alive[node] && cw.nodeAnswers(ctx, node) {
			return true
		}
	}
	return false
}

// nodeProbeTimeout bounds hasLiveCopy's call to a node.
const nodeProbeTimeout = time.Second

func (cw *CoreWorker) nodeAnswers(ctx context.Context, node string) bool {
	conn, err := cw.pool.Get(node)
	if err != nil {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, nodeProbeTimeout)
	defer cancel()
	_, err = pb.NewNodeDaemonClient(conn).NodeStats(pctx, &pb.NodeStatsRequest{})
	return err == nil
}

// aliveNodes is the addresses of the alive nodes, by the control store.
func (cw *CoreWorker) aliveNodes(ctx context.Context) (map[string]bool, error) {
	reply, err := cw.gcs.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, fmt.Errorf("raygo: list the alive nodes: %w", err)
	}
	out := map[string]bool{}
	for _, n := range reply.GetNodes() {
		if n.GetState() == pb.NodeState_NODE_STATE_ALIVE {
			out[n.GetAddress()] = true
		}
	}
	return out, nil
}

// rebuilt handles err from reading object r: when it says the object is
// lost, the object is made again (by this process if it owns it, else by
// its owner) and rebuilt returns its new value to read; lost is the error
// when that fails. Both are nil for any other err.
func (cw *CoreWorker) rebuilt(ctx context.Context, r *Ref, err error) (v *pb.Value, lost error) {
	if err == nil || !errors.Is(err, errs.ErrObjectLost) {
		return nil, nil
	}
	if cw.owned(r) {
		v, lost = cw.rebuildLost(ctx, r.ID, err, 0)
	} else if r.OwnerAddr != "" {
		v, lost = cw.askOwnerToRebuild(ctx, r, err)
	} else {
		return nil, err
	}
	if lost == nil && v == nil {
		lost = err
	}
	return v, lost
}

// RebuildObject is a borrower's request to make a lost object again: the
// owner checks that no alive node that answers holds a copy (else it
// answers the value as it is, and the borrower reads a copy that is
// there) and rebuilds it.
func (s service) RebuildObject(ctx context.Context, req *pb.RebuildObjectRequest) (*pb.RebuildObjectReply, error) {
	cw := s.cw
	id := ids.MustFromBytes(req.GetObjectId())
	primary, _, owned := cw.ownedInStore(id)
	if !owned {
		return nil, &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost,
			Detail: "its owner " + cw.address + " no longer has it (freed, or not an object in a store)"}
	}
	alive, err := cw.aliveNodes(ctx)
	if err != nil {
		return nil, err
	}
	if cw.hasLiveCopy(ctx, id, primary, alive) {
		return &pb.RebuildObjectReply{Value: cw.refs.ValueOf(id)}, nil
	}
	lost := &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost, Detail: "held only on nodes that died (" + primary + ")"}
	// The borrower reads the rebuilt copy after this answer: it is served
	// for a while even if it goes out of scope here meanwhile.
	cw.revive(id)
	if _, err := cw.stop.AfterFunc("coreworker.unrevive", borrowerGrace, func() { cw.unrevive([]ids.ID{id}) }); err != nil {
		defer cw.unrevive([]ids.ID{id}) // shutting down
	}
	v, err := cw.rebuildLost(ctx, id, lost, 0)
	if err != nil {
		return nil, wholeStory(err)
	}
	return &pb.RebuildObjectReply{Value: v}, nil
}

// wholeStory keeps the whole of err's message across the wire: there an
// error that wraps an ObjectError keeps only the ObjectError's fields,
// so what the wrapping says (why the object could not be rebuilt) goes
// into its detail.
func wholeStory(err error) error {
	var oe *errs.ObjectError
	if !errors.As(err, &oe) || err == error(oe) {
		return err
	}
	return &errs.ObjectError{ObjectID: oe.ObjectID, Kind: oe.Kind, Detail: oe.Detail + strings.TrimPrefix(err.Error(), oe.Error())}
}

// borrowerGrace is how long an object rebuilt at a borrower's request
// stays served after the answer, whatever its scope here.
const borrowerGrace = 30 * time.Second

// askOwnerToRebuild is a borrower's side of RebuildObject.
func (cw *CoreWorker) askOwnerToRebuild(ctx context.Context, r *Ref, lostErr error) (*pb.Value, error) {
	conn, err := cw.pool.Get(r.OwnerAddr)
	if err != nil {
		return nil, fmt.Errorf("%w; its owner at %s could not be asked to rebuild it: %w", lostErr, r.OwnerAddr, err)
	}
	reply, err := pb.NewCoreWorkerClient(conn).RebuildObject(ctx, &pb.RebuildObjectRequest{ObjectId: r.ID.Bytes()})
	if err != nil {
		if errors.Is(err, errs.ErrObjectLost) {
			return nil, err // the owner says why
		}
		return nil, fmt.Errorf("%w; its owner at %s could not rebuild it: %w", lostErr, r.OwnerAddr, err)
	}
	return reply.GetValue(), nil
}
