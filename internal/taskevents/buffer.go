package taskevents

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Buffer limits and defaults.
const (
	// DefaultInterval is how often a Buffer reports (Ray's
	// task_events_report_interval_ms is 1 s too).
	DefaultInterval = time.Second
	// DefaultMaxBuffered bounds the events one process holds before they
	// are reported; past it new events are dropped and counted.
	DefaultMaxBuffered = 100_000
	// MaxRequestBytes bounds one report's encoding; a flush sends as many
	// reports as it needs. The control store reads at most 1 MiB for one
	// (wirecheck.SmallMessageBytes).
	MaxRequestBytes = 512 << 10
	// MaxRequestEvents bounds the events of one report as sent; the
	// control store refuses more than MaxReportEvents.
	MaxRequestEvents = 8192
	// MaxErrorBytes bounds the error message kept for a failed attempt.
	MaxErrorBytes = 2 << 10
	// DefaultRate is how many task attempts (tasks and actor calls; not
	// actor creations, drivers or retries) one process records a second
	// once its burst is spent; DefaultBurst how many it records at once.
	// Attempts past them are submitted unrecorded (the head counts them).
	// Ray's workers send at most 10,000 events a second (about 2,500
	// tasks); recording every tiny task cost half the throughput of the
	// fastest workloads on two cores.
	DefaultRate  = 2_500
	DefaultBurst = 10_000
	// EnvRate overrides DefaultRate for the processes it is set in:
	// attempts a second, "0" for no limit (the burst is twice the rate).
	EnvRate = "RAYGO_TASK_EVENTS_RATE"
	// reportTimeout bounds one report call; stopTimeout the last flush.
	reportTimeout = 5 * time.Second
	stopTimeout   = 2 * time.Second
)

// BufferConfig configures a Buffer.
type BufferConfig struct {
	// Report sends one report to the control store. It must be safe to
	// call from the Buffer's goroutine; an error keeps the events for the
	// next flush (within MaxBuffered).
	Report func(context.Context, *pb.ReportTaskEventsRequest) error
	// JobID is the job of this process's tasks.
	JobID ids.ID
	// NodeID, WorkerID and PID say where this process runs; they go with
	// the executor's events.
	NodeID, WorkerID ids.ID
	PID              int32
	// Interval is how often the buffer reports (default DefaultInterval).
	Interval time.Duration
	// MaxBuffered bounds the events held (default DefaultMaxBuffered).
	MaxBuffered int
	// Rate bounds the new attempts recorded a second (Define of a
	// NormalTask or ActorTask, attempt 0), Burst how many at once: 0
	// means DefaultRate (DefaultBurst), a negative Rate no limit; a Burst
	// of 0 with a Rate set is twice the Rate (at least 1).
	Rate  float64
	Burst int
}

// Definition is what the owner knows of a task when it submits it. Its
// strings and Resources are kept as given until reported: the caller
// must not change Resources afterwards.
type Definition struct {
	TaskID           ids.ID
	Attempt          int32
	Type             pb.TaskType
	Name, Function   string
	ActorID          ids.ID
	ParentID         ids.ID // the task that submitted it; zero for a driver
	PlacementGroupID ids.ID
	Resources        map[string]float64
	// ArgsReady: every argument was ready at submission, so the task
	// waits for a lease at once (PENDING_NODE_ASSIGNMENT at the same time).
	ArgsReady bool
}

// record is one buffered event: a fixed-size struct, appended to a slice
// (no allocation but the slice's amortized growth).
type record struct {
	task    ids.ID
	at      int64 // unix nanoseconds
	err     *pb.ErrorInfo
	def     int32 // 1 + index in Buffer.defs; 0: none
	attempt int32
	status  pb.TaskStatus
	exec    bool // from the executor: node, worker and pid go with it
}

// Buffer collects one process's task events and reports them. Its record
// methods are safe for concurrent use and never block on the network; on
// a nil *Buffer they do nothing.
type Buffer struct {
	cfg      BufferConfig
	jobWire  []byte // never written
	nodeWire []byte
	workWire []byte

	mu       sync.Mutex
	recs     chunked[record]     // guarded by mu
	defs     chunked[Definition] // guarded by mu
	pendingN int                 // guarded by mu: len(pending), counted against the bound
	dropped  int64               // guarded by mu: dropped since the last report that went through
	budget   budget              // guarded by mu
	unrec    int64               // guarded by mu: attempts not recorded since the last report that went through

	pending []*pb.TaskEvent // owned by the flushing goroutine: built, not yet reported
	kick    chan struct{}   // a quarter full: report before the tick

	started  atomic.Bool
	stopOnce sync.Once
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}

	reported, droppedTotal, unrecTotal atomic.Int64
}

// budget is a token bucket of attempts: Burst at most, refilled at Rate
// a second.
type budget struct {
	rate, burst, tokens float64 // rate <= 0: no limit
	last                int64   // unix nanoseconds of the last refill
}

func newBudget(rate float64, burst int, now int64) budget {
	switch {
	case rate == 0:
		rate, burst = DefaultRate, DefaultBurst
	case rate > 0 && burst <= 0:
		burst = max(1, int(min(2*rate, 1<<30))) // at least one: a rate below 1 a second still records
	}
	return budget{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take spends one attempt's token at time now, if one is left.
func (g *budget) take(now int64) bool {
	if g.rate <= 0 {
		return true
	}
	if now > g.last { // a clock that steps back refills nothing
		g.tokens = min(g.burst, g.tokens+float64(now-g.last)*g.rate/1e9)
		g.last = now
	}
	if g.tokens < 1 {
		return false
	}
	g.tokens--
	return true
}

// RateFromEnv reads EnvRate: 0 (DefaultRate) when unset, -1 for "0" (no
// limit), else the rate; an error names a value that is not a
// non-negative number.
func RateFromEnv() (float64, error) {
	v := os.Getenv(EnvRate)
	if v == "" {
		return 0, nil
	}
	r, err := strconv.ParseFloat(v, 64)
	if err != nil || r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
		return 0, fmt.Errorf("%s=%q: want task attempts a second to record per process (a number; 0 for no limit)", EnvRate, v)
	}
	if r == 0 {
		return -1, nil
	}
	return r, nil
}

// NewBuffer returns a Buffer; Start begins its reports.
func NewBuffer(cfg BufferConfig) *Buffer {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	b := &Buffer{cfg: cfg, done: make(chan struct{}), kick: make(chan struct{}, 1), budget: newBudget(cfg.Rate, cfg.Burst, Now())}
	if !cfg.JobID.IsNil() {
		b.jobWire = cfg.JobID.Bytes()
	}
	if !cfg.NodeID.IsNil() {
		b.nodeWire = cfg.NodeID.Bytes()
	}
	if !cfg.WorkerID.IsNil() {
		b.workWire = cfg.WorkerID.Bytes()
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// Start starts the goroutine that reports every Interval; Stop ends it.
func (b *Buffer) Start() {
	if b == nil || !b.started.CompareAndSwap(false, true) {
		return
	}
	go b.loop() // owned by b: Stop ends it and waits
}

func (b *Buffer) loop() {
	defer close(b.done)
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
			b.flush(b.ctx)
		case <-b.kick:
			b.flush(b.ctx)
		}
	}
}

// Stop ends the reporting goroutine and reports what is buffered once
// (waiting at most 2 s for the control store). Records after Stop stay
// unreported. Stop is idempotent.
func (b *Buffer) Stop() {
	if b == nil {
		return
	}
	b.stopOnce.Do(func() {
		b.cancel()
		if b.started.Load() {
			<-b.done
		}
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		b.flush(ctx)
	})
}

// Flush reports what is buffered now (tests; Stop).
func (b *Buffer) Flush(ctx context.Context) {
	if b != nil {
		b.flush(ctx)
	}
}

// Now is the time events are stamped with: unix nanoseconds.
func Now() int64 { return time.Now().UnixNano() }

// appendLocked buffers r unless the buffer is full.
func (b *Buffer) appendLocked(r record) {
	if b.recs.n+b.pendingN >= b.cfg.MaxBuffered {
		b.dropped++
		b.droppedTotal.Add(1)
		return
	}
	b.recs.add(r)
	if b.recs.n == b.cfg.MaxBuffered/4 {
		// A fast process fills the buffer before the next tick: report
		// now rather than drop (the loop takes one kick at a time).
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// Define records a task's submission (PENDING_ARGS_AVAIL) with its
// definition, at time at, and reports whether it did. A new task or
// actor call past the process's budget (BufferConfig.Rate) is not
// recorded, only counted: its owner marks its spec (no_task_events) so
// that no process records anything more of it. On a nil *Buffer it
// records nothing and returns false.
func (b *Buffer) Define(d Definition, at int64) bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	if (d.Type == NormalTask || d.Type == ActorTask) && d.Attempt == 0 && !b.budget.take(at) {
		b.unrec++
		b.unrecTotal.Add(1)
		b.mu.Unlock()
		return false
	}
	if b.recs.n+b.pendingN < b.cfg.MaxBuffered {
		b.defs.add(d)
	}
	b.appendLocked(record{task: d.TaskID, attempt: d.Attempt, status: PendingArgs, at: at, def: int32(b.defs.n)})
	b.mu.Unlock()
	return true
}

// State records that the owner saw an attempt enter status.
func (b *Buffer) State(task ids.ID, attempt int32, status pb.TaskStatus, at int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.appendLocked(record{task: task, attempt: attempt, status: status, at: at})
	b.mu.Unlock()
}

// States records status for up to n attempts at once (one lock):
// item(i) is the i-th task and attempt, skipped when ok is false.
func (b *Buffer) States(n int, item func(i int) (task ids.ID, attempt int32, ok bool), status pb.TaskStatus, at int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	for i := range n {
		if id, attempt, ok := item(i); ok {
			b.appendLocked(record{task: id, attempt: attempt, status: status, at: at})
		}
	}
	b.mu.Unlock()
}

// Fail records that the owner failed an attempt, with why (nil: no
// detail).
func (b *Buffer) Fail(task ids.ID, attempt int32, why *pb.ErrorInfo, at int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.appendLocked(record{task: task, attempt: attempt, status: Failed, at: at, err: why})
	b.mu.Unlock()
}

// Exec records what the executor saw of an attempt: RUNNING, FINISHED or
// FAILED (with why), stamped with this process's node, worker and pid.
func (b *Buffer) Exec(task ids.ID, attempt int32, status pb.TaskStatus, why *pb.ErrorInfo, at int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.appendLocked(record{task: task, attempt: attempt, status: status, at: at, err: why, exec: true})
	b.mu.Unlock()
}

// BufferStats counts a Buffer's events so far.
type BufferStats struct {
	Reported int64 // merged events the control store took
	Dropped  int64 // events dropped (buffer full), all time
	// NotRecorded counts the attempts submitted past the budget, all time.
	NotRecorded int64
	Buffered    int // events held now
}

// Stats returns the counts.
func (b *Buffer) Stats() BufferStats {
	if b == nil {
		return BufferStats{}
	}
	b.mu.Lock()
	n := b.recs.n + b.pendingN
	b.mu.Unlock()
	return BufferStats{Reported: b.reported.Load(), Dropped: b.droppedTotal.Load(), NotRecorded: b.unrecTotal.Load(), Buffered: n}
}

type attemptKey struct {
	task    ids.ID
	attempt int32
}

// flush merges the buffered records per attempt and reports them, in
// requests of at most MaxRequestEvents events and MaxRequestBytes. What
// a failed report leaves stays for the next flush. Only one flush runs
// at a time (the loop, then Stop's).
func (b *Buffer) flush(ctx context.Context) {
	if b.cfg.Report == nil {
		return
	}
	b.mu.Lock()
	recs, defs, dropped, unrec := b.recs.take(), b.defs.take(), b.dropped, b.unrec
	b.dropped, b.unrec = 0, 0
	b.mu.Unlock()

	events := b.merge(b.pending, &recs, &defs)
	keep := b.cfg.MaxBuffered/chunkLen + 1
	b.mu.Lock()
	b.recs.recycle(recs, keep) // clears them: drops the errors and resources they hold
	b.defs.recycle(defs, keep)
	b.pendingN = len(events)
	b.mu.Unlock()
	b.pending = nil

	sent := 0
	for sent < len(events) || dropped > 0 || unrec > 0 {
		req := &pb.ReportTaskEventsRequest{Dropped: dropped, NotRecorded: unrec}
		size := 16
		end := sent
		for end < len(events) && end-sent < MaxRequestEvents {
			n := events[end].SizeVT() + 8
			if size+n > MaxRequestBytes && end > sent {
				break
			}
			size += n
			end++
		}
		req.Events = events[sent:end]
		rctx, cancel := context.WithTimeout(ctx, reportTimeout)
		err := b.cfg.Report(rctx, req)
		cancel()
		if err != nil {
			b.pending = events[sent:]
			b.mu.Lock()
			b.pendingN = len(b.pending)
			b.dropped += dropped
			b.unrec += unrec
			b.mu.Unlock()
			return
		}
		b.reported.Add(int64(end - sent))
		dropped, unrec = 0, 0
		sent = end
	}
	b.mu.Lock()
	b.pendingN = 0
	b.mu.Unlock()
}

// merge appends to out one wire event per attempt found in recs (events
// already in out for the same attempt are not merged: they were built by
// an earlier flush). Messages are allocated in blocks, not one by one.
func (b *Buffer) merge(out []*pb.TaskEvent, recs *chunked[record], defs *chunked[Definition]) []*pb.TaskEvent {
	if recs.n == 0 {
		return out
	}
	idx := make(map[attemptKey]int32, recs.n/2+1)
	idArena := make([]byte, 0, ids.Size*recs.n)
	var (
		evs     []pb.TaskEvent
		changes []pb.TaskStatusChange
		ptrs    []*pb.TaskStatusChange
	)
	change := func(st pb.TaskStatus, at int64) *pb.TaskStatusChange {
		if len(changes) == cap(changes) {
			changes = make([]pb.TaskStatusChange, 0, min(recs.n, 4096))
		}
		changes = changes[:len(changes)+1]
		c := &changes[len(changes)-1]
		c.Status, c.UnixNanos = st, at
		return c
	}
	const perEvent = 6 // room for an attempt's changes, without growing
	for i := range recs.n {
		r := recs.at(i)
		k := attemptKey{r.task, r.attempt}
		j, ok := idx[k]
		var ev *pb.TaskEvent
		if ok {
			ev = out[j]
		} else {
			if len(evs) == cap(evs) {
				evs = make([]pb.TaskEvent, 0, min(recs.n, 1024))
			}
			evs = evs[:len(evs)+1]
			ev = &evs[len(evs)-1]
			idArena = append(idArena, r.task[:]...)
			ev.TaskId, ev.Attempt, ev.JobId = idArena[len(idArena)-ids.Size:len(idArena):len(idArena)], r.attempt, b.jobWire
			if len(ptrs)+perEvent > cap(ptrs) {
				ptrs = make([]*pb.TaskStatusChange, 0, perEvent*min(recs.n, 1024))
			}
			ev.Changes = ptrs[len(ptrs) : len(ptrs) : len(ptrs)+perEvent]
			ptrs = ptrs[:len(ptrs)+perEvent]
			idx[k] = int32(len(out))
			out = append(out, ev)
		}
		if r.def > 0 {
			d := defs.at(int(r.def - 1))
			fillDefinition(ev, d)
			ev.Changes = append(ev.Changes, change(PendingArgs, r.at))
			if d.ArgsReady {
				ev.Changes = append(ev.Changes, change(PendingNode, r.at))
			}
		} else {
			ev.Changes = append(ev.Changes, change(r.status, r.at))
		}
		if r.exec {
			ev.NodeId, ev.WorkerId, ev.Pid = b.nodeWire, b.workWire, b.cfg.PID
		}
		if r.err != nil {
			ev.Error = SlimError(r.err)
		}
	}
	return out
}

func fillDefinition(ev *pb.TaskEvent, d *Definition) {
	ev.HasDefinition = true
	ev.Name, ev.Function, ev.Type = d.Name, d.Function, d.Type
	ev.ActorId = wireID(d.ActorID)
	ev.ParentTaskId = wireID(d.ParentID)
	ev.PlacementGroupId = wireID(d.PlacementGroupID)
	if len(d.Resources) > 0 {
		ev.Required = &pb.Resources{Amounts: d.Resources}
	}
}

func wireID(id ids.ID) []byte {
	if id.IsNil() {
		return nil
	}
	return id.Bytes()
}

// SlimError is the part of an error a task event carries: its kind and
// its message (at most MaxErrorBytes), not its payload.
func SlimError(info *pb.ErrorInfo) *pb.ErrorInfo {
	if info == nil {
		return nil
	}
	out := &pb.ErrorInfo{Kind: info.GetKind(), Message: trim(errs.FromInfo(info).Error(), MaxErrorBytes)}
	if c := info.GetCause(); c != nil {
		out.Cause = &pb.ErrorInfo{Kind: c.GetKind()} // a TaskError caused by an argument's failure
	}
	return out
}

// trim cuts s to at most n bytes, on a rune boundary, marking the cut.
func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + mark
}
