package taskevents

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// head is a control store's side of reports: it checks each as the
// control store does, and keeps it in a real Store. down makes it refuse.
type head struct {
	store *Store
	mu    sync.Mutex
	reqs  int
	down  bool
	sizes []int
}

func (h *head) report(_ context.Context, req *pb.ReportTaskEventsRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return errs.Systemf("unavailable")
	}
	if err := ValidateReport(req); err != nil {
		return err
	}
	h.reqs++
	h.sizes = append(h.sizes, len(req.GetEvents()))
	h.store.Report(req)
	return nil
}

func newHead() *head { return &head{store: NewStore(StoreConfig{})} }

func TestBufferMergesPerAttempt(t *testing.T) {
	h := newHead()
	job, node, worker := ids.New(), ids.New(), ids.New()
	b := NewBuffer(BufferConfig{Report: h.report, JobID: job, NodeID: node, WorkerID: worker, PID: 7})
	id := ids.New()
	b.Define(Definition{TaskID: id, Type: NormalTask, Function: "pkg.F", Resources: map[string]float64{"CPU": 1}, ArgsReady: true}, 1*ms1)
	b.State(id, 0, SubmittedToWorker, 2*ms1)
	b.Exec(id, 0, Running, nil, 3*ms1)
	b.Exec(id, 0, Failed, errs.ToInfo(errs.Systemf("boom")), 4*ms1)
	b.Fail(id, 0, errs.ToInfo(errs.Systemf("boom")), 5*ms1)
	b.State(id, 1, PendingNode, 6*ms1)
	b.Flush(context.Background())
	if h.reqs != 1 || h.sizes[0] != 2 {
		t.Fatalf("%d reports of %v events, want one of 2 (one per attempt)", h.reqs, h.sizes)
	}
	got := h.store.Get(id.String())
	if len(got) != 2 {
		t.Fatalf("got %d attempts", len(got))
	}
	first := got[0]
	if first.State != "FAILED" || first.NodeID != node.String() || first.WorkerID != worker.String() || first.WorkerPID != 7 ||
		first.JobID != job.String() || !strings.Contains(first.ErrorMessage, "boom") || len(first.Events) != 5 {
		t.Fatalf("first attempt %+v", first)
	}
	if got[1].State != "PENDING_NODE_ASSIGNMENT" || got[1].FuncOrClassName != "pkg.F" {
		t.Fatalf("second attempt %+v", got[1])
	}
	if st := b.Stats(); st.Reported != 2 || st.Buffered != 0 || st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBufferBound(t *testing.T) {
	h := newHead()
	b := NewBuffer(BufferConfig{Report: h.report, MaxBuffered: 10})
	for range 25 {
		b.State(ids.New(), 0, PendingNode, ms1)
	}
	if st := b.Stats(); st.Buffered != 10 || st.Dropped != 15 {
		t.Fatalf("stats %+v, want 10 buffered and 15 dropped", st)
	}
	b.Flush(context.Background())
	if st := h.store.Stats(); st.Stored != 10 || st.DroppedAtSource != 15 {
		t.Fatalf("head stats %+v, want 10 stored, 15 dropped at source", st)
	}
	// Room again after the report.
	b.State(ids.New(), 0, PendingNode, ms1)
	if st := b.Stats(); st.Buffered != 1 {
		t.Fatalf("stats after a report %+v", st)
	}
}

// TestBufferHeadDown: reports that fail keep the events (within the
// bound) for the next flush, which sends them and the drop count.
func TestBufferHeadDown(t *testing.T) {
	h := newHead()
	h.down = true
	b := NewBuffer(BufferConfig{Report: h.report, MaxBuffered: 10})
	for range 6 {
		b.State(ids.New(), 0, PendingNode, ms1)
	}
	b.Flush(context.Background())
	if st := b.Stats(); st.Buffered != 6 {
		t.Fatalf("after a failed report: %+v, want 6 kept", st)
	}
	for range 6 {
		b.State(ids.New(), 0, PendingNode, ms1) // 4 fit
	}
	if st := b.Stats(); st.Buffered != 10 || st.Dropped != 2 {
		t.Fatalf("while the head is down: %+v, want 10 kept, 2 dropped", st)
	}
	h.mu.Lock()
	h.down = false
	h.mu.Unlock()
	b.Flush(context.Background())
	if st := h.store.Stats(); st.Stored != 10 || st.DroppedAtSource != 2 {
		t.Fatalf("head stats %+v, want 10 stored, 2 dropped at source", st)
	}
	if st := b.Stats(); st.Buffered != 0 || st.Reported != 10 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBufferSplitsReports(t *testing.T) {
	h := newHead()
	b := NewBuffer(BufferConfig{Report: h.report})
	n := MaxRequestEvents*2 + 5
	for range n {
		b.State(ids.New(), 0, PendingNode, ms1)
	}
	b.Flush(context.Background())
	if h.reqs != 3 || h.sizes[0] != MaxRequestEvents || h.store.Stats().Stored != n {
		t.Fatalf("%d reports of %v events, %d stored; want 3 reports, %d stored", h.reqs, h.sizes, h.store.Stats().Stored, n)
	}
	// Long names: the byte bound splits before the count does.
	h2 := newHead()
	b2 := NewBuffer(BufferConfig{Report: h2.report})
	long := strings.Repeat("x", 4000)
	for range 300 { // about 1.2 MB of names
		b2.Define(Definition{TaskID: ids.New(), Function: long}, ms1)
	}
	b2.Flush(context.Background())
	if h2.reqs < 3 || h2.store.Stats().Stored != 300 {
		t.Fatalf("%d reports (%v), %d stored; want each under %d bytes", h2.reqs, h2.sizes, h2.store.Stats().Stored, MaxRequestBytes)
	}
}

// TestBufferLoop: the goroutine reports every interval; Stop reports
// what is left once and ends it; records after Stop go nowhere.
func TestBufferLoop(t *testing.T) {
	h := newHead()
	b := NewBuffer(BufferConfig{Report: h.report, Interval: 10 * time.Millisecond})
	b.Start()
	b.State(ids.New(), 0, PendingNode, ms1)
	deadline := time.Now().Add(10 * time.Second)
	for h.store.Stats().Stored != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the loop never reported")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.State(ids.New(), 0, PendingNode, ms1)
	b.Stop()
	if got := h.store.Stats().Stored; got != 2 {
		t.Fatalf("after Stop: %d stored, want 2", got)
	}
	select {
	case <-b.done:
	default:
		t.Fatal("the goroutine still runs after Stop")
	}
	b.Stop() // idempotent
}

func TestNilBuffer(t *testing.T) {
	var b *Buffer
	b.Define(Definition{}, 1)
	b.State(ids.New(), 0, Running, 1)
	b.States(2, func(int) (ids.ID, int32, bool) { return ids.New(), 0, true }, Running, 1)
	b.Fail(ids.New(), 0, nil, 1)
	b.Exec(ids.New(), 0, Running, nil, 1)
	b.Start()
	b.Stop()
	if st := b.Stats(); st != (BufferStats{}) {
		t.Fatalf("nil buffer stats %+v", st)
	}
}

func TestValidateReport(t *testing.T) {
	good := func() *pb.TaskEvent { return def(ev(ids.New(), 0, int64(PendingArgs), ms1), "f") }
	many := make([]*pb.TaskEvent, MaxReportEvents+1)
	for i := range many {
		many[i] = good()
	}
	for _, tc := range []struct {
		name string
		req  *pb.ReportTaskEventsRequest
		bad  string // "" if valid
	}{
		{"valid", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{good()}, Dropped: 3}, ""},
		{"empty", &pb.ReportTaskEventsRequest{}, ""},
		{"too many events", &pb.ReportTaskEventsRequest{Events: many}, "exceeds"},
		{"negative dropped", &pb.ReportTaskEventsRequest{Dropped: -1}, "negative dropped"},
		{"short task id", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{{TaskId: []byte{1}}}}, "task id of 1 bytes"},
		{"negative attempt", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{{TaskId: ids.New().Bytes(), Attempt: -1}}}, "negative attempt"},
		{"bad node id", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{{TaskId: ids.New().Bytes(), NodeId: []byte{1, 2}}}}, "node id of 2 bytes"},
		{"long name", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{{TaskId: ids.New().Bytes(), Name: strings.Repeat("n", MaxNameBytes+1)}}}, "name of"},
		{"unknown status", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{ev(ids.New(), 0, 42, ms1)}}, "unknown task status 42"},
		{"no time", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{ev(ids.New(), 0, int64(Running), 0)}}, "at time 0"},
		{"unknown type", &pb.ReportTaskEventsRequest{Events: []*pb.TaskEvent{{TaskId: ids.New().Bytes(), Type: 9}}}, "unknown task type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateReport(tc.req)
			if tc.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.bad) || !errors.Is(err, errs.ErrInvalidRequest) {
				t.Fatalf("error %v, want an invalid-request error containing %q", err, tc.bad)
			}
		})
	}
}

func TestSlimError(t *testing.T) {
	long := errs.ToInfo(errs.Systemf("%s", strings.Repeat("é", MaxErrorBytes)))
	got := SlimError(long)
	if len(got.GetMessage()) > MaxErrorBytes || !strings.HasSuffix(got.GetMessage(), "…") {
		t.Fatalf("message of %d bytes, want at most %d, marked cut", len(got.GetMessage()), MaxErrorBytes)
	}
	if SlimError(nil) != nil {
		t.Fatal("SlimError(nil) != nil")
	}
}

// TestBufferBudget: new tasks and actor calls past the budget are not
// recorded, only counted (and the count reaches the head); the budget
// refills at its rate, up to its burst; actor creations, drivers and
// retries are always recorded; a negative rate is no limit.
func TestBufferBudget(t *testing.T) {
	h := newHead()
	b := NewBuffer(BufferConfig{Report: h.report, Rate: 10, Burst: 3})
	t0 := Now()
	define := func(typ pb.TaskType, attempt int32, at int64) bool {
		return b.Define(Definition{TaskID: ids.New(), Attempt: attempt, Type: typ, Function: "f"}, at)
	}
	var got []bool
	for range 4 {
		got = append(got, define(NormalTask, 0, t0))
	}
	if want := []bool{true, true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("a burst of 3 recorded %v, want %v", got, want)
	}
	if !define(ActorCreationTask, 0, t0) || !define(DriverTask, 0, t0) || !define(NormalTask, 1, t0) {
		t.Fatal("an actor creation, a driver or a retry was not recorded past the budget")
	}
	if define(ActorTask, 0, t0) {
		t.Fatal("an actor call was recorded past the budget")
	}
	if !define(ActorTask, 0, t0+int64(100*time.Millisecond)) { // 10 a second: one more after 100 ms
		t.Fatal("no token 100 ms later at 10 a second")
	}
	if define(NormalTask, 0, t0+int64(100*time.Millisecond)) {
		t.Fatal("two tokens 100 ms later at 10 a second")
	}
	if define(NormalTask, 0, t0) { // a clock that stepped back refills nothing
		t.Fatal("recorded at an earlier time with no token left")
	}
	got = got[:0]
	for range 4 { // an hour later: the burst again, not 36,000
		got = append(got, define(NormalTask, 0, t0+int64(time.Hour)))
	}
	if want := []bool{true, true, true, false}; !slices.Equal(got, want) {
		t.Fatalf("an hour later recorded %v, want %v", got, want)
	}
	if st := b.Stats(); st.NotRecorded != 5 {
		t.Fatalf("NotRecorded = %d, want 5", st.NotRecorded)
	}
	b.Flush(context.Background())
	if st := h.store.Stats(); st.NotRecorded != 5 {
		t.Fatalf("the head counts %d attempts not recorded, want 5", st.NotRecorded)
	}
	if n := h.store.Stats().Stored; n != 10 {
		t.Fatalf("the head stores %d attempts, want the 10 recorded", n)
	}
	b.Flush(context.Background()) // the count went through once
	if st := h.store.Stats(); st.NotRecorded != 5 {
		t.Fatalf("after a second flush the head counts %d, want 5", st.NotRecorded)
	}

	free := NewBuffer(BufferConfig{Rate: -1})
	for i := range 50_000 {
		if !free.Define(Definition{TaskID: ids.New(), Type: NormalTask}, t0) {
			t.Fatalf("no limit: attempt %d not recorded", i)
		}
	}
	def := NewBuffer(BufferConfig{})
	n := 0
	for range DefaultBurst + 10 {
		if def.Define(Definition{TaskID: ids.New(), Type: NormalTask}, t0) {
			n++
		}
	}
	if n != DefaultBurst {
		t.Fatalf("the default budget recorded %d at once, want %d", n, DefaultBurst)
	}
	slow := NewBuffer(BufferConfig{Rate: 0.5}) // one every 2 s, a burst of 1
	t1 := Now()
	if !slow.Define(Definition{TaskID: ids.New(), Type: NormalTask}, t1) {
		t.Fatal("a rate of 0.5 a second recorded nothing")
	}
	if slow.Define(Definition{TaskID: ids.New(), Type: NormalTask}, t1+int64(time.Second)) ||
		!slow.Define(Definition{TaskID: ids.New(), Type: NormalTask}, t1+int64(2*time.Second)) {
		t.Fatal("a rate of 0.5 a second: want the next attempt recorded 2 s later, not 1 s")
	}
	if (*Buffer)(nil).Define(Definition{Type: NormalTask}, t0) {
		t.Fatal("a nil Buffer says it recorded")
	}
}

// TestBudgetHeldOverReportFailure: a count not reported (head down) goes
// with the next report that goes through.
func TestBudgetHeldOverReportFailure(t *testing.T) {
	h := newHead()
	b := NewBuffer(BufferConfig{Report: h.report, Rate: 1, Burst: 1})
	t0 := Now()
	b.Define(Definition{TaskID: ids.New(), Type: NormalTask}, t0)
	b.Define(Definition{TaskID: ids.New(), Type: NormalTask}, t0)
	h.mu.Lock()
	h.down = true
	h.mu.Unlock()
	b.Flush(context.Background())
	h.mu.Lock()
	h.down = false
	h.mu.Unlock()
	b.Flush(context.Background())
	if st := h.store.Stats(); st.NotRecorded != 1 || st.Stored != 1 {
		t.Fatalf("head: %d not recorded, %d stored; want 1 and 1", st.NotRecorded, st.Stored)
	}
}

func TestRateFromEnv(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want float64
		bad  bool
	}{{"", 0, false}, {"0", -1, false}, {"2500", 2500, false}, {"0.5", 0.5, false},
		{"-1", 0, true}, {"abc", 0, true}, {"NaN", 0, true}, {"+Inf", 0, true}} {
		t.Setenv(EnvRate, tc.v)
		got, err := RateFromEnv()
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s=%q: %v, %v; want %v (error %v)", EnvRate, tc.v, got, err, tc.want, tc.bad)
		}
		if err != nil && !strings.Contains(err.Error(), EnvRate) {
			t.Errorf("error %q does not name %s", err, EnvRate)
		}
	}
}
