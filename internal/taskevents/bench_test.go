package taskevents

import (
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// synth makes the events of n tasks as a cluster reports them: per task
// an owner event (definition, pending states, finished) and an executor
// event (running, finished), in reports of 1,000 events.
type synth struct {
	job, node  ids.ID
	workers    []ids.ID
	fns        []string
	res        map[string]float64
	now        int64
	batch      []*pb.TaskEvent
	ownerEv    []pb.TaskEvent
	execEv     []pb.TaskEvent
	ownerCh    [][4]pb.TaskStatusChange
	execCh     [][2]pb.TaskStatusChange
	ownerChPtr [][]*pb.TaskStatusChange
	execChPtr  [][]*pb.TaskStatusChange
}

const synthBatch = 500 // tasks per report: 1,000 events

func newSynth() *synth {
	s := &synth{job: ids.New(), node: ids.New(), res: map[string]float64{"CPU": 1}, now: time.Now().UnixNano()}
	for i := range 16 {
		s.workers = append(s.workers, ids.New())
		s.fns = append(s.fns, fmt.Sprintf("bench.Func%d", i))
	}
	s.ownerEv = make([]pb.TaskEvent, synthBatch)
	s.execEv = make([]pb.TaskEvent, synthBatch)
	s.ownerCh = make([][4]pb.TaskStatusChange, synthBatch)
	s.execCh = make([][2]pb.TaskStatusChange, synthBatch)
	s.ownerChPtr = make([][]*pb.TaskStatusChange, synthBatch)
	s.execChPtr = make([][]*pb.TaskStatusChange, synthBatch)
	for i := range synthBatch {
		s.ownerChPtr[i] = []*pb.TaskStatusChange{&s.ownerCh[i][0], &s.ownerCh[i][1], &s.ownerCh[i][2], &s.ownerCh[i][3]}
		s.execChPtr[i] = []*pb.TaskStatusChange{&s.execCh[i][0], &s.execCh[i][1]}
	}
	return s
}

// next fills the next report (reusing the messages, as a decoder's
// output would be garbage after Add anyway) with tasks tasks.
func (s *synth) next(tasks int) []*pb.TaskEvent {
	s.batch = s.batch[:0]
	jobB, nodeB := s.job.Bytes(), s.node.Bytes()
	for i := range tasks {
		id := ids.New()
		idB := id.Bytes()
		t := s.now
		s.now += 1000
		w := s.workers[i%len(s.workers)]
		o := &s.ownerEv[i]
		o.Reset()
		o.TaskId, o.JobId, o.HasDefinition, o.Function, o.Type = idB, jobB, true, s.fns[i%len(s.fns)], NormalTask
		o.Required = &pb.Resources{Amounts: s.res}
		for k, st := range []pb.TaskStatus{PendingArgs, PendingNode, SubmittedToWorker, Finished} {
			s.ownerCh[i][k] = pb.TaskStatusChange{Status: st, UnixNanos: t + int64(k)*100}
		}
		o.Changes = s.ownerChPtr[i]
		e := &s.execEv[i]
		e.Reset()
		e.TaskId, e.JobId, e.NodeId, e.WorkerId, e.Pid = idB, jobB, nodeB, w.Bytes(), 1234
		s.execCh[i][0] = pb.TaskStatusChange{Status: Running, UnixNanos: t + 250}
		s.execCh[i][1] = pb.TaskStatusChange{Status: Finished, UnixNanos: t + 280}
		e.Changes = s.execChPtr[i]
		s.batch = append(s.batch, o, e)
	}
	return s.batch
}

// feed adds n synthetic tasks to st.
func (s *synth) feed(st *Store, n int) {
	for done := 0; done < n; done += synthBatch {
		st.Add(s.next(min(synthBatch, n-done)), 0)
	}
}

// BenchmarkStoreAdd measures merging: ns per task (two events).
func BenchmarkStoreAdd(b *testing.B) {
	st := NewStore(StoreConfig{})
	s := newSynth()
	s.feed(st, DefaultMaxTasks) // full: every task evicts one
	b.ReportAllocs()
	b.ResetTimer()
	s.feed(st, b.N)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkTasks100k measures a query of every row of a full default
// store (`raygo list tasks --limit 100000`).
func BenchmarkTasks100k(b *testing.B) {
	st := NewStore(StoreConfig{})
	newSynth().feed(st, DefaultMaxTasks)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rows, total := st.Tasks(nil, 100_000)
		if len(rows) != 100_000 || total != 100_000 {
			b.Fatalf("%d rows of %d", len(rows), total)
		}
	}
}

// BenchmarkTasks100kFiltered is the same query with a filter on state.
func BenchmarkTasks100kFiltered(b *testing.B) {
	st := NewStore(StoreConfig{})
	newSynth().feed(st, DefaultMaxTasks)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, total := st.Tasks(func(t *Task) bool { return t.State == "FINISHED" }, 100)
		if total != 100_000 {
			b.Fatalf("total %d", total)
		}
	}
}

// BenchmarkBufferRecord measures the hot path of a submitting process.
func BenchmarkBufferRecord(b *testing.B) {
	buf := NewBuffer(BufferConfig{MaxBuffered: 1 << 30})
	id := ids.New()
	b.ReportAllocs()
	for i := range b.N {
		buf.State(id, 0, SubmittedToWorker, int64(i))
		if i%100_000 == 0 { // a flush empties it, as the loop would
			buf.mu.Lock()
			buf.recs.recycle(buf.recs.take(), 1<<10)
			buf.mu.Unlock()
		}
	}
}

var memTest = flag.Bool("taskevents.memory", false, "run TestStoreMemory: 10M synthetic tasks through a default Store (about a minute)")

// TestStoreMemory checks that the head's memory stays bounded: the heap
// in use after 10M tasks through a default Store is within 20% of the
// heap after 1M. Run with -taskevents.memory -v to see the figures.
func TestStoreMemory(t *testing.T) {
	if !*memTest {
		t.Skip("run with -taskevents.memory")
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	base := heap()
	st := NewStore(StoreConfig{})
	s := newSynth()
	s.feed(st, 1_000_000)
	after1M := heap()
	s.feed(st, 9_000_000)
	after10M := heap()
	stats := st.Stats()
	runtime.KeepAlive(st)
	t.Logf("heap in use: before %.1f MiB, after 1M tasks %.1f MiB, after 10M %.1f MiB (%d rows stored, %d evicted)",
		mib(base), mib(after1M), mib(after10M), stats.Stored, stats.Evicted)
	if stats.Stored != DefaultMaxTasks || stats.Evicted != 10_000_000-DefaultMaxTasks {
		t.Fatalf("stats %+v, want %d stored and %d evicted", stats, DefaultMaxTasks, 10_000_000-DefaultMaxTasks)
	}
	if float64(after10M) > 1.2*float64(after1M) {
		t.Fatalf("heap after 10M tasks %.1f MiB exceeds the heap after 1M (%.1f MiB) + 20%%", mib(after10M), mib(after1M))
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
