package taskevents

import (
	"context"
	"errors"
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
	h.store.Add(req.GetEvents(), req.GetDropped())
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
