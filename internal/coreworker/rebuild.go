package coreworker

import (
	"context"
	"errors"
	"fmt"

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
// read then goes on with the new copy. Objects it cannot rebuild (made
// by ray.Put, by a task with MaxRetries(0), or whose lineage was
// dropped) fail with ObjectLost saying why. Borrowers do not rebuild:
// they see the object lost (the owner rebuilds it when it reads it).

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
		err := cw.rebuildArgs(ctx, t, depth)
		if err == nil {
			err = cw.normal.Resubmit(t)
		}
		if err != nil {
			cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: errs.ToInfo(err)})
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
	v := cw.refs.ValueOf(id)
	if v == nil {
		return nil, lostErr
	}
	return v, nil
}

// rebuildArgs rebuilds, before t runs again, the arguments of t that this
// process owns and that are lost: in a store, with no copy on an alive
// node.
func (cw *CoreWorker) rebuildArgs(ctx context.Context, t *taskmgr.Task, depth int) error {
	var alive map[string]bool
	for _, a := range t.Spec.GetArgs() {
		id, ok := ids.FromBytes(a.GetRef().GetId())
		if !ok {
			continue
		}
		primary, _, owned := cw.ownedInStore(id)
		if !owned {
			continue
		}
		if alive == nil {
			var err error
			if alive, err = cw.aliveNodes(ctx); err != nil {
				return err
			}
		}
		lost := true
		for _, node := range cw.dir.Locations(id, primary) {
			if alive[node] {
				lost = false
				break
			}
		}
		if !lost {
			continue
		}
		argLost := &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost,
			Detail: "an argument of " + t.Function() + ", held only on nodes that died (" + primary + ")"}
		if _, err := cw.rebuildLost(ctx, id, argLost, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// aliveNodes is the addresses of the alive nodes, by the control store.
func (cw *CoreWorker) aliveNodes(ctx context.Context) (map[string]bool, error) {
	reply, err := cw.gcs.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, fmt.Errorf("raygo: list the alive nodes to rebuild a lost object: %w", err)
	}
	out := map[string]bool{}
	for _, n := range reply.GetNodes() {
		if n.GetState() == pb.NodeState_NODE_STATE_ALIVE {
			out[n.GetAddress()] = true
		}
	}
	return out, nil
}

// rebuildable reports whether err, from reading the object r, calls for
// a rebuild: the object is lost and this process owns it.
func (cw *CoreWorker) rebuildable(r *Ref, err error) bool {
	return err != nil && errors.Is(err, errs.ErrObjectLost) && cw.owned(r)
}
