package taskevents

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// ev builds a wire event of attempt a of task id with the given changes
// (status, unix ns pairs).
func ev(id ids.ID, a int32, changes ...int64) *pb.TaskEvent {
	e := &pb.TaskEvent{TaskId: id.Bytes(), Attempt: a}
	for i := 0; i+1 < len(changes); i += 2 {
		e.Changes = append(e.Changes, &pb.TaskStatusChange{Status: pb.TaskStatus(changes[i]), UnixNanos: changes[i+1]})
	}
	return e
}

func def(e *pb.TaskEvent, fn string) *pb.TaskEvent {
	e.HasDefinition, e.Function, e.Type = true, fn, NormalTask
	return e
}

const ms1 = int64(time.Millisecond)

func TestStateOf(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seen  []pb.TaskStatus
		state pb.TaskStatus
	}{
		{"nothing", nil, pb.TaskStatus_TASK_STATUS_NIL},
		{"submitted", []pb.TaskStatus{PendingArgs}, PendingArgs},
		{"waiting for a lease", []pb.TaskStatus{PendingArgs, PendingNode}, PendingNode},
		{"running before the owner's events", []pb.TaskStatus{Running}, Running},
		{"finished", []pb.TaskStatus{PendingArgs, PendingNode, SubmittedToWorker, Running, Finished}, Finished},
		{"finished without its running", []pb.TaskStatus{PendingArgs, Finished}, Finished},
		{"failed wins over finished", []pb.TaskStatus{Running, Finished, Failed}, Failed},
		{"failed before running", []pb.TaskStatus{PendingArgs, Failed}, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var times [numStatus]int64
			for i, s := range tc.seen {
				times[s] = int64(i + 1)
			}
			if got := stateOf(&times); got != tc.state {
				t.Fatalf("stateOf(%v) = %v, want %v", tc.seen, got, tc.state)
			}
		})
	}
}

// TestMerge feeds the events of one attempt in different orders and
// splits (owner and executor, each possibly first) and checks the row.
func TestMerge(t *testing.T) {
	id, job, node, worker := ids.New(), ids.New(), ids.New(), ids.New()
	owner := def(ev(id, 0, int64(PendingArgs), 10*ms1, int64(PendingNode), 11*ms1, int64(SubmittedToWorker), 12*ms1, int64(Finished), 40*ms1), "pkg.Square")
	owner.JobId, owner.Name = job.Bytes(), "square"
	owner.Required = &pb.Resources{Amounts: map[string]float64{"CPU": 1}}
	exec := ev(id, 0, int64(Running), 20*ms1, int64(Finished), 30*ms1)
	exec.NodeId, exec.WorkerId, exec.Pid, exec.JobId = node.Bytes(), worker.Bytes(), 4242, job.Bytes()
	want := Task{TaskID: id.String(), Name: "square", State: "FINISHED", JobID: job.String(), Type: "NORMAL_TASK",
		FuncOrClassName: "pkg.Square", NodeID: node.String(), WorkerID: worker.String(), WorkerPID: 4242,
		RequiredResources: map[string]float64{"CPU": 1}, CreationTimeMs: 10, StartTimeMs: 20, EndTimeMs: 30,
		Events: []StateChange{{"PENDING_ARGS_AVAIL", 10}, {"PENDING_NODE_ASSIGNMENT", 11}, {"SUBMITTED_TO_WORKER", 12}, {"RUNNING", 20}, {"FINISHED", 30}}}
	for _, tc := range []struct {
		name    string
		batches [][]*pb.TaskEvent
	}{
		{"owner then executor", [][]*pb.TaskEvent{{owner}, {exec}}},
		{"executor then owner", [][]*pb.TaskEvent{{exec}, {owner}}},
		{"one report", [][]*pb.TaskEvent{{exec, owner}}},
		{"repeated", [][]*pb.TaskEvent{{owner, exec}, {exec, owner}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(StoreConfig{})
			for _, b := range tc.batches {
				s.Add(b, 0)
			}
			got := s.Get(id.String())
			if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			if st := s.Stats(); st.Stored != 1 {
				t.Fatalf("stats %+v, want one row", st)
			}
		})
	}
}

func TestRetryTakesDefinition(t *testing.T) {
	s := NewStore(StoreConfig{})
	id, job := ids.New(), ids.New()
	first := def(ev(id, 0, int64(PendingArgs), 1*ms1, int64(Failed), 5*ms1), "pkg.Flaky")
	first.JobId = job.Bytes()
	first.Error = &pb.ErrorInfo{Kind: pb.ErrorKind_ERROR_KIND_WORKER_CRASHED, Message: "worker died"}
	s.Add([]*pb.TaskEvent{first, ev(id, 1, int64(PendingNode), 6*ms1)}, 0)
	got := s.Get(id.String())
	if len(got) != 2 {
		t.Fatalf("got %d attempts, want 2", len(got))
	}
	if got[0].Attempt != 0 || got[0].State != "FAILED" || got[0].ErrorType != "WORKER_DIED" || got[0].ErrorMessage != "worker died" {
		t.Fatalf("first attempt %+v", got[0])
	}
	if got[1].Attempt != 1 || got[1].FuncOrClassName != "pkg.Flaky" || got[1].JobID != job.String() || got[1].State != "PENDING_NODE_ASSIGNMENT" {
		t.Fatalf("retry did not take the definition: %+v", got[1])
	}
	if got[1].CreationTimeMs != 6 {
		t.Fatalf("retry created at %d, want 6", got[1].CreationTimeMs)
	}
}

// TestEviction checks retention: the oldest finished attempt goes first,
// then the oldest.
func TestEviction(t *testing.T) {
	type step struct {
		task   int // index into the test's ids
		status pb.TaskStatus
	}
	for _, tc := range []struct {
		name    string
		max     int
		steps   []step
		kept    []int // newest first
		evicted int64
	}{
		{"under the bound", 3, []step{{0, PendingArgs}, {1, PendingArgs}}, []int{1, 0}, 0},
		{"oldest when none finished", 2, []step{{0, PendingArgs}, {1, PendingArgs}, {2, PendingArgs}}, []int{2, 1}, 1},
		{"finished before older pending", 2, []step{{0, PendingArgs}, {1, PendingArgs}, {1, Finished}, {2, PendingArgs}}, []int{2, 0}, 1},
		{"failed counts as finished", 2, []step{{0, PendingArgs}, {1, Failed}, {2, Running}}, []int{2, 0}, 1},
		{"oldest finished of several", 3, []step{{0, Running}, {1, Running}, {2, Running}, {2, Finished}, {1, Finished}, {3, PendingArgs}}, []int{3, 1, 0}, 1},
		{"bound of one", 1, []step{{0, PendingArgs}, {1, PendingArgs}, {2, PendingArgs}}, []int{2}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(StoreConfig{MaxTasks: tc.max})
			tids := make([]ids.ID, 8)
			for i := range tids {
				tids[i] = ids.New()
			}
			for i, st := range tc.steps {
				s.Add([]*pb.TaskEvent{ev(tids[st.task], 0, int64(st.status), int64(i+1)*ms1)}, 0)
			}
			rows, total := s.Tasks(nil, 0)
			var kept []int
			for _, r := range rows {
				for i, id := range tids {
					if r.TaskID == id.String() {
						kept = append(kept, i)
					}
				}
			}
			if !reflect.DeepEqual(kept, tc.kept) || total != len(tc.kept) {
				t.Fatalf("kept %v (total %d), want %v", kept, total, tc.kept)
			}
			if st := s.Stats(); st.Evicted != tc.evicted || st.Stored != len(tc.kept) {
				t.Fatalf("stats %+v, want %d evicted", st, tc.evicted)
			}
			n := 0
			for _, c := range s.CountByState() {
				n += c
			}
			if n != len(tc.kept) {
				t.Fatalf("CountByState %v counts %d rows, want %d", s.CountByState(), n, len(tc.kept))
			}
		})
	}
}

func TestTasksQuery(t *testing.T) {
	s := NewStore(StoreConfig{})
	var tids []ids.ID
	for i := range 10 {
		id := ids.New()
		tids = append(tids, id)
		st := Finished
		if i%2 == 1 {
			st = Failed
		}
		s.Add([]*pb.TaskEvent{def(ev(id, 0, int64(PendingArgs), int64(i+1)*ms1, int64(st), int64(i+2)*ms1), fmt.Sprintf("f%d", i%3))}, 3)
	}
	failed := func(t *Task) bool { return t.State == "FAILED" }
	for _, tc := range []struct {
		name      string
		keep      func(*Task) bool
		limit     int
		first     ids.ID
		rows, all int
	}{
		{"all", nil, 0, tids[9], 10, 10},
		{"limited", nil, 4, tids[9], 4, 10},
		{"filtered", failed, 0, tids[9], 5, 5},
		{"filtered and limited", failed, 2, tids[9], 2, 5},
		{"by function", func(t *Task) bool { return t.FuncOrClassName == "f0" }, 0, tids[9], 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, total := s.Tasks(tc.keep, tc.limit)
			if len(rows) != tc.rows || total != tc.all {
				t.Fatalf("%d rows of %d, want %d of %d", len(rows), total, tc.rows, tc.all)
			}
			if rows[0].TaskID != tc.first.String() {
				t.Fatalf("first row %s, want the newest %s", rows[0].TaskID, tc.first)
			}
		})
	}
	if got := s.CountByState(); !reflect.DeepEqual(got, map[string]int{"FINISHED": 5, "FAILED": 5}) {
		t.Fatalf("CountByState = %v", got)
	}
	if st := s.Stats(); st.DroppedAtSource != 30 {
		t.Fatalf("DroppedAtSource = %d, want 30", st.DroppedAtSource)
	}
	if got := s.Get("not hex"); got != nil {
		t.Fatalf("Get of a malformed id = %v", got)
	}
	if got := s.Get(ids.New().String()); got != nil {
		t.Fatalf("Get of an unknown id = %v", got)
	}
}

func TestOnStart(t *testing.T) {
	s := NewStore(StoreConfig{})
	var mu sync.Mutex
	var got []time.Duration
	s.OnStart(func(d time.Duration) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	})
	a, b := ids.New(), ids.New()
	// a: running reported first, submission later; b: the usual order.
	s.Add([]*pb.TaskEvent{ev(a, 0, int64(Running), 50*ms1)}, 0)
	s.Add([]*pb.TaskEvent{ev(a, 0, int64(PendingArgs), 20*ms1), ev(b, 0, int64(PendingArgs), 10*ms1)}, 0)
	s.Add([]*pb.TaskEvent{ev(b, 0, int64(Running), 12*ms1, int64(Finished), 13*ms1)}, 0)
	s.Add([]*pb.TaskEvent{ev(b, 0, int64(Running), 12*ms1)}, 0) // again: not counted twice
	want := []time.Duration{30 * time.Millisecond, 2 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("OnStart saw %v, want %v", got, want)
	}
}

func TestErrorTypes(t *testing.T) {
	for k, want := range map[pb.ErrorKind]string{
		pb.ErrorKind_ERROR_KIND_TASK:           "TASK_EXECUTION_EXCEPTION",
		kindDependency:                         "DEPENDENCY_RESOLUTION_FAILED",
		pb.ErrorKind_ERROR_KIND_WORKER_CRASHED: "WORKER_DIED",
		pb.ErrorKind_ERROR_KIND_CANCELLED:      "TASK_CANCELLED",
		pb.ErrorKind_ERROR_KIND_ACTOR_DIED:     "ACTOR_DIED",
		pb.ErrorKind_ERROR_KIND_OUT_OF_MEMORY:  "OUT_OF_MEMORY",
		pb.ErrorKind_ERROR_KIND_NODE_DIED:      "NODE_DIED",
		pb.ErrorKind_ERROR_KIND_TIMEOUT:        "TIMEOUT",
		pb.ErrorKind(999):                      "SYSTEM",
	} {
		if got := ErrorTypeName(k); got != want {
			t.Errorf("ErrorTypeName(%v) = %s, want %s", k, got, want)
		}
	}
	// A TaskError caused by an argument's failure is a dependency failure.
	s := NewStore(StoreConfig{})
	id := ids.New()
	e := ev(id, 0, int64(Failed), ms1)
	e.Error = &pb.ErrorInfo{Kind: pb.ErrorKind_ERROR_KIND_TASK, Message: "an argument failed", Cause: &pb.ErrorInfo{Kind: pb.ErrorKind_ERROR_KIND_TASK}}
	s.Add([]*pb.TaskEvent{e}, 0)
	if got := s.Get(id.String())[0].ErrorType; got != "DEPENDENCY_RESOLUTION_FAILED" {
		t.Fatalf("error type %s", got)
	}
}

func TestInternBounded(t *testing.T) {
	s := NewStore(StoreConfig{MaxTasks: 10})
	for i := range maxInterned + 100 {
		s.Add([]*pb.TaskEvent{def(ev(ids.New(), 0, int64(PendingArgs), ms1), fmt.Sprintf("fn%d", i))}, 0)
	}
	if len(s.refs.strTab) > maxInterned+1 {
		t.Fatalf("%d strings interned, bound %d", len(s.refs.strTab), maxInterned)
	}
	rows, _ := s.Tasks(nil, 1)
	if rows[0].FuncOrClassName != fmt.Sprintf("fn%d", maxInterned+99) {
		t.Fatalf("newest row's function %q", rows[0].FuncOrClassName)
	}
}

// TestRowHasNoPointers: the collector must never have to scan a Store's
// rows (see refs).
func TestRowHasNoPointers(t *testing.T) {
	var check func(reflect.Type, string)
	check = func(ty reflect.Type, path string) {
		switch ty.Kind() {
		case reflect.Struct:
			for i := range ty.NumField() {
				check(ty.Field(i).Type, path+"."+ty.Field(i).Name)
			}
		case reflect.Array:
			check(ty.Elem(), path+"[]")
		case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			t.Errorf("row field %s is a %s: rows must hold no pointers", path, ty.Kind())
		}
	}
	check(reflect.TypeOf(row{}), "row")
}

func TestResourceShapes(t *testing.T) {
	s := NewStore(StoreConfig{MaxTasks: 100})
	var last ids.ID
	for i := range maxResShapes + 10 {
		last = ids.New()
		e := def(ev(last, 0, int64(PendingArgs), ms1), "f")
		e.Required = &pb.Resources{Amounts: map[string]float64{"CPU": float64(i + 1), "GPU": 1}}
		s.Add([]*pb.TaskEvent{e}, 0)
	}
	if len(s.refs.resTab) > maxResShapes+1 {
		t.Fatalf("%d shapes kept, bound %d", len(s.refs.resTab), maxResShapes)
	}
	got := s.Get(last.String())[0].RequiredResources
	if got["CPU"] != maxResShapes+10 || got["GPU"] != 1 {
		t.Fatalf("newest row's resources %v", got)
	}
	if n := len(s.refs.over); n > 100 {
		t.Fatalf("%d overflow entries for at most 100 rows", n)
	}
}
