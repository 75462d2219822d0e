package taskevents

import (
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Store limits and defaults.
const (
	// DefaultMaxTasks is how many attempts a Store keeps by default
	// (Ray's task_events_max_num_task_in_gcs).
	DefaultMaxTasks = 100_000
	// maxInterned bounds the distinct names and functions shared between
	// rows; past it new strings are kept per row (still bounded by
	// MaxTasks).
	maxInterned = 1 << 16
)

// StoreConfig configures a Store.
type StoreConfig struct {
	// MaxTasks bounds the attempts kept; past it the oldest finished
	// attempt is evicted, else the oldest. Default DefaultMaxTasks.
	MaxTasks int
}

// row is one attempt, compact: ids as ids.ID, names interned, one time
// per state instead of a list of events. Rows live in Store.rows and
// link into two lists by index: every row in creation order (all), and
// each row in the list it is evicted from (live: not finished, in
// creation order; done: finished, in order of finishing).
type row struct {
	id, job, actor, parent, pg, node, worker ids.ID
	times                                    [numStatus]int64 // unix ns the attempt entered each state; 0: not seen
	name, fn, res                            uint32           // in Store.refs
	attempt, pid                             int32
	allPrev, allNext, grpPrev, grpNext       int32
	errKind                                  pb.ErrorKind
	typ                                      pb.TaskType
	state                                    pb.TaskStatus
	hasDef, done, startSeen, hasErr          bool
}

// list is a doubly linked list of rows by index; -1 ends it.
type list struct{ head, tail int32 }

// Store keeps the task events the control store receives: one row per
// (task, attempt), merged from every process's reports, at most MaxTasks
// rows. It is safe for concurrent use.
type Store struct {
	max int

	mu         sync.Mutex
	rows       slab                  // guarded by mu
	free       []int32               // guarded by mu: unused indexes in rows
	index      index                 // guarded by mu
	all        list                  // guarded by mu
	live, done list                  // guarded by mu
	stored     int                   // guarded by mu
	byState    [numStatus]int        // guarded by mu: stored rows by state
	maxAttempt int32                 // guarded by mu: the highest attempt stored so far
	evicted    int64                 // guarded by mu
	dropped    int64                 // guarded by mu: DroppedAtSource
	unrec      int64                 // guarded by mu: NotRecorded
	refs       refs                  // guarded by mu: what rows refer to by number
	onStart    []func(time.Duration) // guarded by mu
}

// NewStore returns an empty Store.
func NewStore(cfg StoreConfig) *Store {
	if cfg.MaxTasks <= 0 {
		cfg.MaxTasks = DefaultMaxTasks
	}
	s := &Store{max: cfg.MaxTasks,
		all: list{-1, -1}, live: list{-1, -1}, done: list{-1, -1}}
	s.refs.init()
	return s
}

// MaxTasks is the Store's bound on attempts kept.
func (s *Store) MaxTasks() int { return s.max }

// OnStart registers f, called (outside the Store's lock, on the
// goroutine of Add) once per attempt when both its submission time and
// its RUNNING time are known, with the time between them: a histogram of
// scheduling latency.
func (s *Store) OnStart(f func(submitToStart time.Duration)) {
	s.mu.Lock()
	s.onStart = append(s.onStart, f)
	s.mu.Unlock()
}

// Report stores one process's report: its events, and the counts of
// events it dropped and attempts it did not record.
func (s *Store) Report(req *pb.ReportTaskEventsRequest) {
	if n := req.GetNotRecorded(); n > 0 {
		s.mu.Lock()
		s.unrec += n
		s.mu.Unlock()
	}
	s.Add(req.GetEvents(), req.GetDropped())
}

// Add merges events into the rows of their attempts, and counts dropped
// events the reporter lost. Events without a valid 16-byte task id are
// skipped (the control store refuses them before, see ValidateReport).
func (s *Store) Add(events []*pb.TaskEvent, dropped int64) {
	var starts []time.Duration
	s.mu.Lock()
	if dropped > 0 {
		s.dropped += dropped
	}
	for _, ev := range events {
		id, ok := ids.FromBytes(ev.GetTaskId())
		if !ok || ev.GetAttempt() < 0 {
			continue
		}
		k := attemptKey{id, ev.GetAttempt()}
		i, ok := s.index.get(&s.rows, id, k.attempt)
		if !ok {
			i = s.newRowLocked(k)
		}
		r := s.rows.at(i)
		s.mergeLocked(i, r, ev)
		if st := stateOf(&r.times); st != r.state {
			s.byState[r.state]--
			s.byState[st]++
			r.state = st
		}
		if !r.done && (r.state == Finished || r.state == Failed) {
			r.done = true
			s.unlinkGrp(i, &s.live)
			s.pushGrp(i, &s.done)
		}
		if !r.startSeen && r.times[Running] != 0 {
			if created := createdAt(&r.times); created != 0 {
				r.startSeen = true
				if len(s.onStart) > 0 {
					starts = append(starts, time.Duration(max(0, r.times[Running]-created)))
				}
			}
		}
	}
	fs := s.onStart
	s.mu.Unlock()
	for _, d := range starts {
		for _, f := range fs {
			f(d)
		}
	}
}

// stateOf is an attempt's state from the times it entered each: FAILED
// if it failed, else FINISHED if it finished, else the latest state in
// the order of a task's life. Reports from different processes arrive in
// any order, so the state never depends on arrival.
func stateOf(times *[numStatus]int64) pb.TaskStatus {
	if times[Failed] != 0 {
		return Failed
	}
	for st := Finished; st > 0; st-- {
		if times[st] != 0 {
			return st
		}
	}
	return pb.TaskStatus_TASK_STATUS_NIL
}

// createdAt is when the attempt was submitted: its first pending state.
func createdAt(times *[numStatus]int64) int64 {
	for st := PendingArgs; st <= SubmittedToWorker; st++ {
		if times[st] != 0 {
			return times[st]
		}
	}
	return 0
}

// mergeLocked folds one event into its row: the definition fills the
// row's (a later one replaces it), each state keeps its earliest time,
// the executor's fields and an error replace what was there.
func (s *Store) mergeLocked(i int32, r *row, ev *pb.TaskEvent) {
	if job, ok := ids.FromBytes(ev.GetJobId()); ok {
		r.job = job
	}
	if ev.GetHasDefinition() {
		r.hasDef = true
		r.typ = ev.GetType()
		r.actor = ids.MustFromBytes(ev.GetActorId())
		r.parent = ids.MustFromBytes(ev.GetParentTaskId())
		r.pg = ids.MustFromBytes(ev.GetPlacementGroupId())
		s.refs.setDefinitionRefs(i, r, ev.GetName(), ev.GetFunction(), ev.GetRequired().GetAmounts())
	}
	for _, c := range ev.GetChanges() {
		st, at := c.GetStatus(), c.GetUnixNanos()
		if st <= 0 || int(st) >= numStatus || at <= 0 {
			continue
		}
		if r.times[st] == 0 || at < r.times[st] {
			r.times[st] = at
		}
	}
	if node, ok := ids.FromBytes(ev.GetNodeId()); ok {
		r.node = node
	}
	if w, ok := ids.FromBytes(ev.GetWorkerId()); ok {
		r.worker = w
	}
	if ev.GetPid() != 0 {
		r.pid = ev.GetPid()
	}
	if e := ev.GetError(); e != nil {
		r.errKind, r.hasErr = e.GetKind(), true
		if msg := e.GetMessage(); msg != "" {
			s.refs.errMsgs[i] = strings.Clone(trim(msg, MaxErrorBytes))
		}
		if r.errKind == pb.ErrorKind_ERROR_KIND_TASK && e.GetCause() != nil {
			r.errKind = kindDependency
		}
	}
}

// kindDependency marks, in a row, a TaskError caused by an argument's
// failure (Ray's DEPENDENCY_RESOLUTION_FAILED); no ErrorKind uses it.
const kindDependency pb.ErrorKind = -1

// newRowLocked makes the row of attempt k, evicting one first if the
// Store is full. An attempt after the first takes the definition of the
// one before it, when that is stored: a retry is not defined again.
func (s *Store) newRowLocked(k attemptKey) int32 {
	if s.stored >= s.max {
		s.evictLocked()
	}
	var i int32
	if n := len(s.free); n > 0 {
		i = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		i = s.rows.add()
	}
	r := s.rows.at(i)
	*r = row{id: k.task, attempt: k.attempt, allPrev: -1, allNext: -1, grpPrev: -1, grpNext: -1}
	if k.attempt > 0 {
		if p, ok := s.index.get(&s.rows, k.task, k.attempt-1); ok && s.rows.at(p).hasDef {
			src := s.rows.at(p)
			r.hasDef = true
			r.job, r.actor, r.parent, r.pg, r.typ = src.job, src.actor, src.parent, src.pg, src.typ
			s.refs.copyDefinitionRefs(i, r, p, src)
		}
	}
	s.index.put(&s.rows, i)
	s.stored++
	s.byState[r.state]++
	s.maxAttempt = max(s.maxAttempt, k.attempt)
	s.pushAll(i)
	s.pushGrp(i, &s.live)
	return i
}

// evictLocked drops the oldest finished row, else the oldest row.
func (s *Store) evictLocked() {
	i := s.done.head
	grp := &s.done
	if i < 0 {
		i, grp = s.live.head, &s.live
	}
	if i < 0 {
		return
	}
	r := s.rows.at(i)
	s.index.del(&s.rows, i)
	s.unlinkGrp(i, grp)
	s.unlinkAll(i)
	s.byState[r.state]--
	s.refs.forget(i)
	s.free = append(s.free, i)
	s.stored--
	s.evicted++
}

func (s *Store) pushAll(i int32) {
	r := s.rows.at(i)
	r.allPrev, r.allNext = s.all.tail, -1
	if s.all.tail >= 0 {
		s.rows.at(s.all.tail).allNext = i
	} else {
		s.all.head = i
	}
	s.all.tail = i
}

func (s *Store) unlinkAll(i int32) {
	r := s.rows.at(i)
	if r.allPrev >= 0 {
		s.rows.at(r.allPrev).allNext = r.allNext
	} else {
		s.all.head = r.allNext
	}
	if r.allNext >= 0 {
		s.rows.at(r.allNext).allPrev = r.allPrev
	} else {
		s.all.tail = r.allPrev
	}
	r.allPrev, r.allNext = -1, -1
}

func (s *Store) pushGrp(i int32, l *list) {
	r := s.rows.at(i)
	r.grpPrev, r.grpNext = l.tail, -1
	if l.tail >= 0 {
		s.rows.at(l.tail).grpNext = i
	} else {
		l.head = i
	}
	l.tail = i
}

func (s *Store) unlinkGrp(i int32, l *list) {
	r := s.rows.at(i)
	if r.grpPrev >= 0 {
		s.rows.at(r.grpPrev).grpNext = r.grpNext
	} else {
		l.head = r.grpNext
	}
	if r.grpNext >= 0 {
		s.rows.at(r.grpNext).grpPrev = r.grpPrev
	} else {
		l.tail = r.grpPrev
	}
	r.grpPrev, r.grpNext = -1, -1
}

// Stats returns the Store's counts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Stored: s.stored, Evicted: s.evicted, DroppedAtSource: s.dropped, NotRecorded: s.unrec}
}

// CountByState returns how many stored attempts are in each state, by
// Ray's name of the state (states with none are left out).
func (s *Store) CountByState() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, numStatus)
	for st, n := range s.byState {
		if n > 0 {
			out[statusNames[st]] = n
		}
	}
	return out
}

// Tasks returns up to limit rows (limit <= 0: all) for which keep returns
// true (nil: all), newest first, and how many matched in all. keep runs
// under the Store's lock: it must not call the Store.
func (s *Store) Tasks(keep func(*Task) bool, limit int) (rows []Task, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.stored
	if limit > 0 {
		n = min(n, limit)
	}
	if keep == nil {
		rows = make([]Task, 0, n)
	} else {
		rows = make([]Task, 0, min(n, 1024))
	}
	b := s.newBuilder()
	var scratch Task
	for i := s.all.tail; i >= 0; i = s.rows.at(i).allPrev {
		r := s.rows.at(i)
		if limit > 0 && len(rows) >= limit {
			if keep == nil {
				return rows, s.stored
			}
			scratch = Task{}
			b.build(i, r, &scratch)
			if keep(&scratch) {
				total++
			}
			continue
		}
		rows = append(rows, Task{})
		t := &rows[len(rows)-1]
		b.build(i, r, t)
		if keep != nil && !keep(t) {
			rows = rows[:len(rows)-1]
			continue
		}
		total++
	}
	return rows, total
}

// Get returns every stored attempt of a task (hex task id), oldest
// attempt first; none for an id not stored or malformed.
func (s *Store) Get(taskID string) []Task {
	id, ok := parseID(taskID)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Task
	b := s.newBuilder()
	for a := int32(0); a <= s.maxAttempt; a++ {
		if i, ok := s.index.get(&s.rows, id, a); ok {
			out = append(out, Task{})
			b.build(i, s.rows.at(i), &out[len(out)-1])
		}
	}
	return out
}

// builder turns rows into Tasks, sharing the hex form of ids that repeat
// (jobs, nodes, workers, actors) and one backing array for events.
type builder struct {
	refs   *refs
	hexes  map[ids.ID]string
	events []StateChange
}

func (s *Store) newBuilder() *builder {
	return &builder{refs: &s.refs, hexes: make(map[ids.ID]string, 64)}
}

const maxHexCache = 4096

func (b *builder) hex(id ids.ID) string {
	if id.IsNil() {
		return ""
	}
	if h, ok := b.hexes[id]; ok {
		return h
	}
	h := id.String()
	if len(b.hexes) < maxHexCache {
		b.hexes[id] = h
	}
	return h
}

func (b *builder) build(i int32, r *row, t *Task) {
	t.TaskID = r.id.String()
	t.Attempt = r.attempt
	name, fn := b.refs.names(i, r)
	t.Name = name
	if t.Name == "" {
		t.Name = fn
	}
	t.State = statusNames[r.state]
	t.JobID = b.hex(r.job)
	t.ActorID = b.hex(r.actor)
	t.Type = TypeName(r.typ)
	t.FuncOrClassName = fn
	if !r.parent.IsNil() {
		t.ParentTaskID = r.parent.String()
	}
	t.NodeID = b.hex(r.node)
	t.WorkerID = b.hex(r.worker)
	t.WorkerPID = r.pid
	if r.hasErr {
		t.ErrorType = ErrorTypeName(r.errKind)
		t.ErrorMessage = b.refs.errMsgs[i]
	}
	t.RequiredResources = b.refs.resources(i, r)
	t.PlacementGroupID = b.hex(r.pg)
	t.CreationTimeMs = ms(createdAt(&r.times))
	t.StartTimeMs = ms(r.times[Running])
	if r.times[Failed] != 0 {
		t.EndTimeMs = ms(r.times[Failed])
	} else {
		t.EndTimeMs = ms(r.times[Finished])
	}
	n := 0
	for st := 1; st < numStatus; st++ {
		if r.times[st] != 0 {
			n++
		}
	}
	if n == 0 {
		return
	}
	if len(b.events)+n > cap(b.events) {
		b.events = make([]StateChange, 0, max(n, 4096))
	}
	start := len(b.events)
	for st := 1; st < numStatus; st++ {
		if r.times[st] != 0 {
			b.events = append(b.events, StateChange{State: statusNames[st], TimeMs: ms(r.times[st])})
		}
	}
	t.Events = b.events[start:len(b.events):len(b.events)]
}

func ms(ns int64) int64 { return ns / int64(time.Millisecond) }

// ErrorTypeName is Ray's error_type for a failure of the given kind (its
// ErrorType names where Ray has one, else raygo's kind name).
func ErrorTypeName(k pb.ErrorKind) string {
	switch k {
	case kindDependency:
		return "DEPENDENCY_RESOLUTION_FAILED"
	case pb.ErrorKind_ERROR_KIND_TASK, pb.ErrorKind_ERROR_KIND_NOT_REGISTERED, pb.ErrorKind_ERROR_KIND_BAD_ARGUMENT:
		return "TASK_EXECUTION_EXCEPTION"
	case pb.ErrorKind_ERROR_KIND_WORKER_CRASHED, pb.ErrorKind_ERROR_KIND_WORKER_STARTUP:
		return "WORKER_DIED"
	case pb.ErrorKind_ERROR_KIND_ACTOR_DIED, pb.ErrorKind_ERROR_KIND_ACTOR_NOT_HERE, pb.ErrorKind_ERROR_KIND_ACTOR_INTERRUPTED:
		return "ACTOR_DIED"
	case pb.ErrorKind_ERROR_KIND_CANCELLED:
		return "TASK_CANCELLED"
	case pb.ErrorKind_ERROR_KIND_INFEASIBLE:
		return "TASK_UNSCHEDULABLE_ERROR"
	case pb.ErrorKind_ERROR_KIND_PLACEMENT_GROUP_REMOVED:
		return "TASK_PLACEMENT_GROUP_REMOVED"
	case pb.ErrorKind_ERROR_KIND_OBJECT_FREED, pb.ErrorKind_ERROR_KIND_OBJECT_LOST, pb.ErrorKind_ERROR_KIND_OWNER_DIED,
		pb.ErrorKind_ERROR_KIND_OUT_OF_MEMORY, pb.ErrorKind_ERROR_KIND_NODE_DIED:
		return strings.TrimPrefix(k.String(), "ERROR_KIND_")
	case pb.ErrorKind_ERROR_KIND_UNSPECIFIED:
		return "SYSTEM"
	}
	if name, ok := pb.ErrorKind_name[int32(k)]; ok {
		return strings.TrimPrefix(name, "ERROR_KIND_")
	}
	return "SYSTEM"
}
