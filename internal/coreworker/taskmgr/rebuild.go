package taskmgr

import (
	"fmt"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/taskevents"
)

// Rebuilding lost results (lineage reconstruction, as Ray's
// ObjectRecoveryManager). A finished task whose results live in a store
// keeps its lineage while a result is in scope (release, addLineage).
// When the owner finds such a result lost with its node, Rebuild runs the
// task again as a new attempt, within its MaxRetries: the same task id
// and return ids, its arguments still held by the lineage. Its reply's
// values replace the lost ones in their slots (memstore.Replace), the
// lineage and its holds staying as they were; a rebuild that fails for
// good leaves the results lost and says why.
//
// Actor calls are rebuilt the same way, as in Ray, when they may run
// again: a call with MaxTaskRetries other than 0 keeps its lineage, and
// its rebuild is the same call sent again to the actor (restarted
// elsewhere if its process died with the node), counted against the
// call's MaxTaskRetries; the caller's submitter (Task.Kind says which)
// carries it. A call with MaxTaskRetries(0) runs at most once: its lost
// results cannot be rebuilt, and the error says so (atMostOnce).

// maxDropped is how many tasks whose lineage was evicted (or, for actor
// calls with MaxTaskRetries(0), never kept) are remembered, so that a
// later rebuild says why it cannot run.
const maxDropped = 1 << 14

// rebuild is one task running again for its lost results.
type rebuild struct {
	done   chan struct{} // closed when the attempt ends
	task   *Task
	values []*pb.Value   // the new results
	err    *pb.ErrorInfo // set when the attempt failed for good
}

// droppedSet remembers the last maxDropped ids added, each with a note
// (for at-most-once actor calls, the method's name).
type droppedSet struct {
	ids  map[ids.ID]string
	ring []ids.ID
	next int
}

func (d *droppedSet) add(id ids.ID, note string) {
	if d.ids == nil {
		d.ids = map[ids.ID]string{}
	}
	if _, ok := d.ids[id]; ok {
		d.ids[id] = note
		return
	}
	if len(d.ring) < maxDropped {
		d.ring = append(d.ring, id)
	} else {
		delete(d.ids, d.ring[d.next])
		d.ring[d.next] = id
		d.next = (d.next + 1) % maxDropped
	}
	d.ids[id] = note
}

func (d *droppedSet) has(id ids.ID) bool { _, ok := d.ids[id]; return ok }

// note returns id's note, if id is remembered.
func (d *droppedSet) note(id ids.ID) (string, bool) { n, ok := d.ids[id]; return n, ok }

// Rebuilding is one rebuild of a task's results: Task is to be submitted
// again (nil when another caller's rebuild of it is under way already);
// Done closes when the attempt ends, and Err then says whether it
// produced the results.
type Rebuilding struct {
	Task *Task
	rb   *rebuild
}

// Done is closed when the rebuild ends.
func (r Rebuilding) Done() <-chan struct{} { return r.rb.done }

// Err is nil once the results are back, or why they are not (after Done).
func (r Rebuilding) Err() error {
	if r.rb.err != nil {
		return errs.FromInfo(r.rb.err)
	}
	return nil
}

// Rebuild starts running again the finished task that produced object
// oid (lost: see the comment above), or joins the rebuild of it under way.
// It fails when the task's lineage is not kept (a Put object, a task
// with MaxRetries(0), an actor call with MaxTaskRetries(0), lineage
// evicted past MaxLineage, or results that went out of scope) or its
// retries are used up; lostErr, the error the object was found lost
// with, is wrapped with why. The caller submits Task again through the
// submitter of its Kind (normal tasks, actor calls).
func (m *Manager) Rebuild(oid ids.ID, lostErr error) (Rebuilding, error) {
	tid := TaskOf(oid)
	m.mu.Lock()
	defer m.mu.Unlock()
	if rb := m.rebuilding[tid]; rb != nil {
		return Rebuilding{rb: rb}, nil
	}
	le, ok := m.lineage[tid]
	if !ok {
		if fn, once := m.atMostOnce.note(tid); once {
			return Rebuilding{}, fmt.Errorf("%w; it cannot be rebuilt: it was made by an actor method (%s) with MaxTaskRetries(0), "+
				"whose calls run at most once (give the actor MaxTaskRetries, and MaxRestarts, to have such results rebuilt)", lostErr, fn)
		}
	}
	switch {
	case !ok && m.dropped.has(tid):
		return Rebuilding{}, fmt.Errorf("%w; it cannot be rebuilt: the lineage of the task that made it was dropped "+
			"(a process keeps the lineage of its %d most recent tasks: coreworker.Config.MaxLineage)", lostErr, m.cfg.MaxLineage)
	case !ok:
		return Rebuilding{}, fmt.Errorf("%w; it cannot be rebuilt: no task of this process that can run again made it "+
			"(ray.Put objects, results of tasks with MaxRetries(0) and of actor methods with MaxTaskRetries(0) have no lineage)", lostErr)
	}
	t := le.t
	if t.Policy.MaxRetries >= 0 && t.retriesLeft <= 0 {
		if t.Kind == ActorCall {
			return Rebuilding{}, fmt.Errorf("%w; it cannot be rebuilt: the actor method %s used all of its %d task retries (MaxTaskRetries)",
				lostErr, t.Function(), t.Policy.MaxRetries)
		}
		return Rebuilding{}, fmt.Errorf("%w; it cannot be rebuilt: %s used all of its %d retries", lostErr, t.Function(), t.Policy.MaxRetries)
	}
	if t.retriesLeft > 0 {
		t.retriesLeft--
	}
	t.finished, t.cancelled = false, false
	t.Spec.Attempt++
	if m.cfg.Events != nil && !t.Spec.GetNoTaskEvents() { // the rebuild is a new attempt, waiting for a worker
		m.cfg.Events.State(t.ID, t.Spec.Attempt, taskevents.PendingNode, taskevents.Now())
	}
	m.listLocked(t)
	m.stats.Retried++
	rb := &rebuild{done: make(chan struct{}), task: t}
	m.rebuilding[tid] = rb
	return Rebuilding{Task: t, rb: rb}, nil
}

// finishRebuild puts a rebuilt task's results in place of the lost ones.
func (m *Manager) finishRebuild(rb *rebuild) {
	t := rb.task
	for i, ret := range t.Returns {
		v := &pb.Value{Error: errs.ToInfo(errs.Systemf("raygo: %s replied with %d of its %d return values", t.Function(), len(rb.values), len(t.Returns)))}
		if i < len(rb.values) {
			v = rb.values[i]
		}
		m.store.Replace(ret.Slot, v)
	}
	close(rb.done)
}
