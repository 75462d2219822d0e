// Package taskmgr is the owner's task manager: every task this process
// submitted, from submission to its last reply, its attempts and retries,
// its results, and the lineage that rebuilding lost results needs. It is
// the counterpart of Ray's TaskManager
// (src/ray/core_worker/task_manager.h).
//
// The submitters (normal tasks, actor calls) carry tasks to workers; what
// comes back goes to the Manager: Complete with a reply, or Fail with a
// failure. The Manager decides (Decide, a pure function) whether a failed
// attempt is retried — and the submitter resubmits it — or the task fails,
// and fills the task's return objects in the memory store either way. It
// keeps the reference counter up to date: a task holds its arguments until
// it finishes, and a finished task whose results live in a node's store
// keeps its arguments' lineage (refcount lineage references) while those
// results are in scope, up to Config.MaxLineage tasks, so that lost
// results can be rebuilt (Rebuild): normal tasks with MaxRetries, and
// actor calls with MaxTaskRetries, other than 0.
package taskmgr

import (
	"math"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/taskevents"
)

// Kind says what a task is.
type Kind uint8

const (
	// Normal is a call of a remote function.
	Normal Kind = iota
	// ActorCall is a call of an actor method.
	ActorCall
	// ActorCreation runs an actor's constructor; it has no return objects.
	ActorCreation
)

// Return is one of a task's return objects: its reference-counter entry
// and its memory-store slot.
type Return struct {
	Entry *refcount.Entry
	Slot  *memstore.Slot
}

// Policy is how a task's failures are handled.
type Policy struct {
	// MaxRetries: attempts after system failures (a worker or an actor's
	// process died); -1 for no limit. For actor calls, MaxTaskRetries.
	MaxRetries int
	// OOMRetries: attempts after the memory monitor killed the worker; -1
	// for no limit. A counter of its own. (32 bits, beside
	// RetryExceptions: a Task stays within its size class, see Task.)
	OOMRetries int32
	// RetryExceptions retries application errors too (within MaxRetries),
	// only those whose registered type name is in RetryTypes if it is set.
	RetryExceptions bool
	RetryTypes      []string
}

// Task is one submitted task. The submitter that carries it reads Spec
// and the fields under "submitter"; the Manager owns the rest.
type Task struct {
	ID   ids.ID
	Kind Kind
	// Guarded by Manager.mu (kept beside Kind, and the counters 32-bit,
	// so that a task with its spec stays within 568 bytes: with the
	// allocator's 8-byte header for objects past 512 bytes, the 576-byte
	// size class, one below 640):
	cancelled   bool
	finished    bool
	listed      bool  // on the Manager's list of pending tasks
	oomKills    int32 // the memory monitor's kills so far
	retriesLeft int32 // clamped to math.MaxInt32 (for ever, in practice)
	oomLeft     int32

	Spec    *pb.TaskSpec
	Returns []Return
	// Args are the entries the task holds (refcount.Hold) until it
	// finishes: its ref arguments and the refs inside its value ones.
	Args   []*refcount.Entry
	Parent ids.ID // the task that submitted it (zero: the driver)
	Policy Policy

	// Sub is the submitter's own state for the task; the Manager never
	// reads it.
	Sub Sub

	prev, next *Task // guarded by Manager.mu: the Manager's list of pending tasks

	// Storage for the common case, allocated with the task.
	ret1    [1]Return
	args2   [2]*refcount.Entry
	specBuf pb.TaskSpec
}

// Function is the task's registered name.
func (t *Task) Function() string { return t.Spec.GetFunction() }

// Sub is a submitter's own state for a task, kept in the task so that
// submitting allocates nothing more; only the submitter carrying the task
// reads or writes it, under its own lock.
type Sub struct {
	Seq    uint64        // submission (or call) order
	Queue  any           // the queue the task belongs to (a scheduling class, an actor); nil: not submitted
	At     any           // where it is in flight (a lease), nil otherwise
	Ready  bool          // arguments resolved (actor calls wait for it in order)
	Sent   bool          // sent on a stream (actor calls)
	DepErr *pb.ErrorInfo // an argument failed (actor calls)
}

// NewTask makes a task with n return objects (the caller fills Returns,
// and Spec, which is allocated with the task unless spec is given).
func NewTask(id ids.ID, kind Kind, spec *pb.TaskSpec, n int, p Policy) *Task {
	t := &Task{ID: id, Kind: kind, Spec: spec, Policy: p, retriesLeft: clamp32(p.MaxRetries), oomLeft: p.OOMRetries}
	t.Args = t.args2[:0]
	if spec == nil {
		t.Spec = &t.specBuf
		t.Spec.TaskId = t.ID[:]
	}
	switch {
	case n == 1:
		t.Returns = t.ret1[:]
	case n > 1:
		t.Returns = make([]Return, n)
	}
	return t
}

// clamp32 is n within int32 (retry counts: -1 is for ever, and more than
// two billion retries is for ever too).
func clamp32(n int) int32 { return int32(max(min(n, math.MaxInt32), math.MinInt32)) }

// Clamp32 is n within the 32-bit range (Policy.OOMRetries).
func Clamp32(n int) int32 { return clamp32(n) }

// Where says where a submitter had a task when asked to cancel it.
type Where uint8

const (
	// Unknown: not pending in that submitter (finished, lost with a
	// stream, or never submitted there).
	Unknown Where = iota
	// Queued: not sent yet (waiting for a lease, a retry's pause or its
	// actor's turn); Cancel took it out of its queue, and the caller fails
	// it as cancelled.
	Queued
	// InFlight: sent to a worker (or the actor's process), which was told.
	InFlight
)

// Results is what the submitters tell the Manager of their tasks: a
// reply, or a failed attempt; the decision says what to do next. The
// Manager implements it; submitters' tests use fakes.
type Results interface {
	// CompleteAll handles the replies of one batch as Complete would each,
	// and appends the tasks to resubmit (Decision Retry) to retry. done is
	// the caller's scratch: CompleteAll may change its entries.
	CompleteAll(done []Replied, retry []*Task) []*Task
	Fail(t *Task, f Failure) Decision
}

// Replied is a task and the reply its worker sent.
type Replied struct {
	Task  *Task
	Reply *pb.TaskReply
}

// Config bounds the Manager.
type Config struct {
	// MaxLineage bounds how many finished tasks are kept for lineage;
	// past it the oldest lineage is dropped (its results can no longer be
	// rebuilt). Default 100,000.
	MaxLineage int
	// OOMBackoff is the pause before the n-th retry after an out-of-memory
	// kill: n × OOMBackoff, at most MaxOOMBackoff. Defaults 1 s and 10 s.
	OOMBackoff, MaxOOMBackoff time.Duration
	// Events records what the Manager decides (a task FINISHED, an
	// attempt FAILED, a retry's new attempt); nil records nothing.
	Events *taskevents.Buffer
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxLineage: 100_000, OOMBackoff: time.Second, MaxOOMBackoff: 10 * time.Second}
}

// Manager tracks this process's submitted tasks. It is safe for
// concurrent use.
type Manager struct {
	cfg   Config
	refs  *refcount.Counter
	store *memstore.Store

	mu sync.Mutex
	// pending lists the tasks submitted and not finished, newest first,
	// through the tasks themselves: submitting a task hashes nothing.
	// Finding one by id (a cancel) walks the list, as Ray's task manager
	// walks its tasks to find a parent's children.
	pending  *Task                    // guarded by mu
	npending int                      // guarded by mu
	lineage  map[ids.ID]*lineageEntry // guarded by mu; finished tasks kept for lineage
	order    []ids.ID                 // guarded by mu; lineage, oldest first
	stats    Stats                    // guarded by mu
	// rebuilding: finished tasks running again to rebuild lost results
	// (rebuild.go); dropped: tasks whose lineage MaxLineage evicted, and
	// atMostOnce: actor calls with MaxTaskRetries(0) whose results went
	// to a store (no lineage kept), the last maxDropped of each, for the
	// error of a later rebuild.
	rebuilding map[ids.ID]*rebuild // guarded by mu
	dropped    droppedSet          // guarded by mu
	atMostOnce droppedSet          // guarded by mu
}

type lineageEntry struct {
	t    *Task
	live int // results still tracked by the reference counter
}

// Stats counts tasks by outcome, for reports and tests.
type Stats struct {
	Submitted, Finished, Failed, Retried, Cancelled int
	Lineage                                         int
}

// New returns a Manager that fills results into store and counts
// references in refs. Zero fields of cfg take their defaults.
func New(cfg Config, refs *refcount.Counter, store *memstore.Store) *Manager {
	def := DefaultConfig()
	if cfg.MaxLineage <= 0 {
		cfg.MaxLineage = def.MaxLineage
	}
	if cfg.OOMBackoff <= 0 {
		cfg.OOMBackoff = def.OOMBackoff
	}
	if cfg.MaxOOMBackoff <= 0 {
		cfg.MaxOOMBackoff = def.MaxOOMBackoff
	}
	return &Manager{cfg: cfg, refs: refs, store: store, lineage: map[ids.ID]*lineageEntry{}, rebuilding: map[ids.ID]*rebuild{}}
}

// Add records a submitted task. Its return entries and slots must be in
// the reference counter and the memory store, and its Args held.
func (m *Manager) Add(t *Task) {
	m.mu.Lock()
	m.listLocked(t)
	m.stats.Submitted++
	m.mu.Unlock()
}

// listLocked puts t on the list of pending tasks (first), unless it is.
func (m *Manager) listLocked(t *Task) {
	if t.listed {
		return
	}
	t.listed, t.prev, t.next = true, nil, m.pending
	if m.pending != nil {
		m.pending.prev = t
	}
	m.pending = t
	m.npending++
}

// Lookup returns a pending task.
func (m *Manager) Lookup(id ids.ID) (*Task, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.findLocked(id)
	return t, t != nil
}

// findLocked returns the pending task id, or nil.
func (m *Manager) findLocked(id ids.ID) *Task {
	for t := m.pending; t != nil; t = t.next {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// PendingTasks lists the tasks not finished, newest first.
func (m *Manager) PendingTasks() []*Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Task, 0, m.npending)
	for t := m.pending; t != nil; t = t.next {
		out = append(out, t)
	}
	return out
}

// Pending is the number of tasks not finished.
func (m *Manager) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.npending
}

// Stats returns the counts so far.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Lineage = len(m.lineage)
	return s
}

// Children returns the pending tasks that the task parent submitted. It
// looks through every pending task, as Ray's task manager does: a cancel
// is rare, a submission is not, so nothing is indexed per submission.
func (m *Manager) Children(parent ids.ID) []*Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Task
	for t := m.pending; t != nil; t = t.next {
		if t.Parent == parent {
			out = append(out, t)
		}
	}
	return out
}

// MarkCancelled records that the task was cancelled: it is never retried
// again, and any failure or error reply it gets from now on ends it with
// a CancelledError (a reply with results, from an attempt that finished
// before the cancel reached it, keeps them). It returns false if the task
// is not pending.
func (m *Manager) MarkCancelled(id ids.ID) (*Task, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.findLocked(id)
	if t == nil {
		return nil, false
	}
	t.cancelled = true
	return t, true
}

// Cancelled reports whether the task was cancelled.
func (m *Manager) Cancelled(t *Task) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return t.cancelled
}

// Complete ends a task with its worker's reply: the results go to the
// memory store (or, for a reply carrying an error, Fail decides). It
// returns the decision taken.
func (m *Manager) Complete(t *Task, r *pb.TaskReply) Decision {
	if info := r.GetError(); info != nil {
		return m.Fail(t, Failure{Cause: CauseApp, Info: info})
	}
	done := [1]Replied{{Task: t, Reply: r}}
	m.CompleteAll(done[:], nil)
	if done[0].Task == nil { // finished before
		return Decision{Action: Ignore}
	}
	return Decision{Action: Done}
}

// CompleteAll is Complete for a batch of replies, taking the Manager's
// lock once and the store's once for all the successful ones (a reply
// stream carries up to a thousand). Failed replies go through Fail. It
// sets done[i].Task to nil for replies it ignored.
func (m *Manager) CompleteAll(done []Replied, retry []*Task) []*Task {
	nvals := 0
	m.mu.Lock()
	for i := range done {
		d := &done[i]
		if d.Reply.GetError() != nil {
			continue
		}
		if d.Task.finished {
			d.Task = nil
			continue
		}
		m.finishLocked(d.Task)
		m.stats.Finished++
		nvals += len(d.Task.Returns)
	}
	if m.cfg.Events != nil {
		m.cfg.Events.States(len(done), func(i int) (ids.ID, int32, bool) {
			d := &done[i]
			if d.Task == nil || d.Reply.GetError() != nil || d.Task.Spec.GetNoTaskEvents() {
				return ids.Nil, 0, false
			}
			return d.Task.ID, d.Task.Spec.GetAttempt(), true
		}, taskevents.Finished, taskevents.Now())
	}
	var rebuilt []*rebuild
	if len(m.rebuilding) > 0 {
		for i := range done {
			d := &done[i]
			if d.Task != nil && d.Reply.GetError() == nil {
				if rb := m.rebuilding[d.Task.ID]; rb != nil {
					delete(m.rebuilding, d.Task.ID)
					rb.values, rb.task = d.Reply.GetReturns(), d.Task
					rebuilt = append(rebuilt, rb)
					d.Task = nil // its results replace the lost ones below; its lineage stays as it was
				}
			}
		}
	}
	m.mu.Unlock()
	for _, rb := range rebuilt {
		m.finishRebuild(rb)
	}
	fills := make([]memstore.Fill, 0, nvals)
	for _, d := range done {
		if d.Task == nil {
			continue
		}
		if d.Reply.GetError() != nil {
			if m.Fail(d.Task, Failure{Cause: CauseApp, Info: d.Reply.GetError()}).Action == Retry {
				retry = append(retry, d.Task)
			}
			continue
		}
		fills = m.resultsOf(d.Task, d.Reply, fills)
	}
	m.store.FillAll(fills)
	for _, d := range done {
		if d.Task != nil && d.Reply.GetError() == nil {
			m.release(d.Task, repliedInStore(d.Reply))
		}
	}
	return retry
}

// resultsOf appends the fills of a finished task's return objects from
// its reply, recording the refs their values contain first.
func (m *Manager) resultsOf(t *Task, r *pb.TaskReply, fills []memstore.Fill) []memstore.Fill {
	vals := r.GetReturns()
	for i, ret := range t.Returns {
		if i >= len(vals) {
			// A reply short of values (a peer out of step): the missing
			// results fail instead of leaving their waiters blocked.
			fills = append(fills, memstore.Fill{Slot: ret.Slot, Value: &pb.Value{Error: errs.ToInfo(errs.Systemf(
				"raygo: %s replied with %d of its %d return values", t.Function(), len(vals), len(t.Returns)))}})
			continue
		}
		v := vals[i]
		if n := v.GetNested(); len(n) > 0 {
			m.refs.SetContains(ret.Entry, WireRefs(n), true)
		}
		fills = append(fills, memstore.Fill{Slot: ret.Slot, Value: v})
	}
	return fills
}

// repliedInStore reports whether any of a reply's values lives in a store.
func repliedInStore(r *pb.TaskReply) bool {
	for _, v := range r.GetReturns() {
		if v.GetInStore() {
			return true
		}
	}
	return false
}

// release drops the task's holds on its arguments; a task whose results
// live in a store keeps its lineage (and its arguments' lineage refs) if
// it may run again: a normal task with retries, an actor call with
// MaxTaskRetries (an actor handle among its arguments gains a lineage
// ref too, which does not keep the actor alive).
func (m *Manager) release(t *Task, keepLineage bool) {
	if keepLineage && t.Kind == ActorCall && t.Policy.MaxRetries == 0 {
		m.mu.Lock()
		m.atMostOnce.add(t.ID, t.Function())
		m.mu.Unlock()
	}
	keepLineage = keepLineage && (t.Kind == Normal || t.Kind == ActorCall) && t.Policy.MaxRetries != 0
	if !keepLineage {
		m.refs.Release(false, t.Args...)
		return
	}
	// The arguments take their lineage refs before the lineage entry
	// exists (an eviction or release of it drops refs that are there),
	// and the entry exists before a tracked result can be reported
	// released (addLineage tracks them under m.mu): a result dropped
	// meanwhile by another goroutine still releases the lineage.
	m.refs.Release(true, t.Args...)
	es := make([]*refcount.Entry, len(t.Returns))
	for i, r := range t.Returns {
		es[i] = r.Entry
	}
	if !m.addLineage(t, es) {
		m.refs.ReleaseLineage(t.Args...) // every result is gone already
	}
}

// addLineage keeps t's lineage while the results es are in scope; false
// if none is.
func (m *Manager) addLineage(t *Task, es []*refcount.Entry) bool {
	var evict []*Task
	m.mu.Lock()
	// The counter reports a tracked result's release after its own lock
	// is released, and LineageReleased takes m.mu: it finds the entry.
	live := m.refs.TrackLineage(es...)
	if live == 0 {
		m.mu.Unlock()
		return false
	}
	m.lineage[t.ID] = &lineageEntry{t: t, live: live}
	m.order = append(m.order, t.ID)
	for len(m.lineage) > m.cfg.MaxLineage && len(m.order) > 0 {
		id := m.order[0]
		m.order = m.order[1:]
		if le, ok := m.lineage[id]; ok {
			delete(m.lineage, id)
			evict = append(evict, le.t)
			m.dropped.add(id, "")
		}
	}
	if len(m.order) > 2*len(m.lineage)+64 { // compact ids already released
		kept := m.order[:0]
		for _, id := range m.order {
			if _, ok := m.lineage[id]; ok {
				kept = append(kept, id)
			}
		}
		clear(m.order[len(kept):])
		m.order = kept
	}
	m.mu.Unlock()
	for _, e := range evict {
		m.refs.ReleaseLineage(e.Args...)
	}
	return true
}

// LineageReleased is the reference counter's event: result oid's lineage
// is no longer needed. When all of a task's tracked results are released
// its lineage goes, and with it its arguments' lineage refs.
func (m *Manager) LineageReleased(oid ids.ID) {
	tid := TaskOf(oid)
	m.mu.Lock()
	le, ok := m.lineage[tid]
	done := ok && le.live <= 1
	if ok {
		le.live--
		if done {
			delete(m.lineage, tid)
		}
	}
	m.mu.Unlock()
	if done {
		m.refs.ReleaseLineage(le.t.Args...)
	}
}

// LineageOf returns the spec of the finished task that produced object
// oid, while its lineage is kept.
func (m *Manager) LineageOf(oid ids.ID) (*pb.TaskSpec, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	le, ok := m.lineage[TaskOf(oid)]
	if !ok {
		return nil, false
	}
	return le.t.Spec, true
}

// TaskOf returns the id of the task whose return object oid is (see
// ids.ForReturn).
func TaskOf(oid ids.ID) ids.ID {
	oid[ids.Size-2], oid[ids.Size-1] = 0, 0
	return oid
}

func (m *Manager) finishLocked(t *Task) {
	t.finished = true
	if !t.listed {
		return
	}
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		m.pending = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next, t.listed = nil, nil, false
	m.npending--
}

// Fail handles a failed attempt: it retries the task (Decision.Action is
// Retry: the caller resubmits it, after Delay) or fails it, filling every
// return object with the error.
func (m *Manager) Fail(t *Task, f Failure) Decision {
	m.mu.Lock()
	if t.finished {
		m.mu.Unlock()
		return Decision{Action: Ignore}
	}
	st := State{RetriesLeft: int(t.retriesLeft), OOMLeft: int(t.oomLeft), OOMKills: int(t.oomKills), Cancelled: t.cancelled,
		Attempt: int(t.Spec.GetAttempt())}
	d := Decide(t.Policy, st, f, m.cfg)
	switch d.Action {
	case Retry:
		if f.Cause == CauseOOM {
			t.oomKills++
			if t.oomLeft > 0 {
				t.oomLeft--
			}
		} else if t.retriesLeft > 0 {
			t.retriesLeft--
		}
		t.Spec.Attempt++
		m.stats.Retried++
		m.mu.Unlock()
		m.recordRetry(t, int32(st.Attempt), f.Info)
		return d
	case Fail:
		if f.Cause == CauseOOM {
			t.oomKills++
		}
		if rb := m.rebuilding[t.ID]; rb != nil {
			// A rebuild that failed for good: the lost results stay lost,
			// and say why; the lineage and its holds stay as they were.
			delete(m.rebuilding, t.ID)
			m.finishLocked(t)
			m.stats.Failed++
			m.mu.Unlock()
			info := d.Err
			if info == nil {
				info = m.failureInfo(t, f)
			}
			rb.err = info
			close(rb.done)
			m.recordFailed(t, int32(st.Attempt), info)
			return d
		}
		m.finishLocked(t)
		if st.Cancelled || f.Cause == CauseCancelled {
			m.stats.Cancelled++
		} else {
			m.stats.Failed++
		}
	}
	m.mu.Unlock()
	info := d.Err
	if info == nil {
		info = m.failureInfo(t, f)
	}
	if d.Action == Fail {
		m.recordFailed(t, int32(st.Attempt), info)
	}
	for _, r := range t.Returns {
		m.store.Fill(r.Slot, &pb.Value{Error: info})
	}
	m.release(t, false)
	return d
}

// recordRetry records that attempt failed (why: the failure, nil if
// unknown) and that the next attempt waits to be scheduled again.
func (m *Manager) recordRetry(t *Task, attempt int32, why *pb.ErrorInfo) {
	ev := m.cfg.Events
	if ev == nil || t.Spec.GetNoTaskEvents() {
		return
	}
	now := taskevents.Now()
	ev.Fail(t.ID, attempt, why, now)
	next := taskevents.PendingNode
	if t.Kind == ActorCall {
		next = taskevents.PendingArgs // an actor call waits for no node
	}
	ev.State(t.ID, attempt+1, next, now)
}

// recordFailed records that the task failed for good in attempt.
func (m *Manager) recordFailed(t *Task, attempt int32, why *pb.ErrorInfo) {
	if m.cfg.Events != nil && !t.Spec.GetNoTaskEvents() {
		m.cfg.Events.Fail(t.ID, attempt, why, taskevents.Now())
	}
}

// failureInfo builds the error a failed task's results carry.
func (m *Manager) failureInfo(t *Task, f Failure) *pb.ErrorInfo {
	if t.cancelled || f.Cause == CauseCancelled {
		return errs.ToInfo(&errs.CancelledError{Function: t.Function(), TaskID: t.ID.String()})
	}
	if f.Cause == CauseOOM {
		return errs.ToInfo(&errs.OutOfMemoryError{Function: t.Function(), NodeID: f.Info.GetNodeId(), WorkerID: f.Info.GetWorkerId(),
			Attempts: int(t.oomKills), Message: f.Info.GetMessage()})
	}
	if f.Cause == CauseDependency {
		// Ray wraps an argument's failure in the dependent task's error:
		// the result matches both (errors.Is and errors.As reach the cause).
		return &pb.ErrorInfo{Kind: errs.KindTask, Function: t.Function(), TaskId: t.ID.String(),
			Message: "an argument of " + t.Function() + " failed: " + errs.FromInfo(f.Info).Error(), Cause: f.Info}
	}
	if f.Info != nil {
		return f.Info
	}
	return errs.ToInfo(errs.Systemf("raygo: task %s failed", t.Function()))
}

// FailDependency fails a task whose argument resolved to an error: the
// task's results carry a TaskError of this task whose cause is the
// argument's error, as Ray wraps it.
func (m *Manager) FailDependency(t *Task, argErr *pb.ErrorInfo) {
	m.Fail(t, Failure{Cause: CauseDependency, Info: argErr})
}

// WireRefs converts wire refs to the reference counter's form; malformed
// ids are skipped.
func WireRefs(list []*pb.ObjectRef) []refcount.Ref {
	out := make([]refcount.Ref, 0, len(list))
	for _, r := range list {
		id, ok := ids.FromBytes(r.GetId())
		if !ok {
			continue
		}
		owner, _ := ids.FromBytes(r.GetOwnerId())
		out = append(out, refcount.Ref{ID: id, Owner: refcount.Owner{Addr: r.GetOwnerAddress(), ID: owner}})
	}
	return out
}
