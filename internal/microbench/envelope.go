package microbench

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"runtime/debug"
	"time"
)

// The scalability envelope is the single-node part of Ray's
// release/benchmarks (README.md there, and "Ray's scalability envelope"
// in TARGETS.md): how far one node goes in queued tasks, actors, arguments
// and returns of one task, refs in one Get and object size. Each row runs
// once at full size and reports its wall time and the peak memory of the
// driver and of the worker processes.

// Limits on EnvelopeConfig values.
const (
	// MinEnvelopeScale is the smallest scale accepted: anything above 0.
	MinEnvelopeScale = 0.0
	// MaxEnvelopeScale is the largest scale: the envelope's full size.
	MaxEnvelopeScale = 1.0
)

// EnvelopeConfig says how big the envelope rows are.
type EnvelopeConfig struct {
	// Scale multiplies every count of the envelope (tasks, actors, args,
	// returns, refs, object bytes), for quick runs and tests: more than 0
	// and at most 1. Targets are judged only at full size.
	Scale float64
}

// NewEnvelopeConfig returns the full-size envelope.
func NewEnvelopeConfig() EnvelopeConfig { return EnvelopeConfig{Scale: 1} }

// Validate reports a value out of range, wrapping ErrInvalidConfig.
func (c EnvelopeConfig) Validate() error {
	if !(c.Scale > MinEnvelopeScale && c.Scale <= MaxEnvelopeScale) {
		return fmt.Errorf("%w: envelope scale %v: want more than %v and at most %v", ErrInvalidConfig, c.Scale, MinEnvelopeScale, MaxEnvelopeScale)
	}
	return nil
}

// count scales a full-size count, to at least 1.
func (c EnvelopeConfig) count(n int) int {
	return max(1, int(math.Round(float64(n)*c.Scale)))
}

// EnvelopeRow is one row of the envelope.
type EnvelopeRow struct {
	// Name is the row's name, in snake case.
	Name string
	// Count is the row's full size, in units of What.
	Count int
	// What names Count's unit: "tasks", "actors", "bytes"…
	What string
	// Ray is Ray's published figure for the row, as TARGETS.md gives it.
	Ray string
	// Target is raygo's target for the row on a 2-core node, as TARGETS.md
	// words it; "" when it sets none.
	Target string
	// MaxTime is the time Target allows at full size (0: no time target).
	MaxTime time.Duration
	// MaxMem is the peak memory Target allows at full size, driver and
	// workers together (0: no memory target).
	MaxMem int64
	// Timeout bounds the row at full size; scaled rows get at least a
	// minute.
	Timeout time.Duration
	// Run runs the row with n units (Count scaled) and reports what it
	// measured. It needs an initialized ray.
	Run func(ctx context.Context, n int) (Outcome, error)
}

// Outcome is what an envelope row measured.
type Outcome struct {
	// Units is how many units the row did: its scaled Count, or fewer
	// where the machine could not hold more (Capped says why).
	Units int
	// Time is the row's measured wall time.
	Time time.Duration
	// Capped says why Count is less than asked, e.g. "memory: one process
	// per actor"; "" when it is not.
	Capped string
	// Notes are further remarks on the row, for the notes under the table.
	Notes []string
}

// EnvelopeResult is the outcome of one envelope row.
type EnvelopeResult struct {
	EnvelopeRow
	Outcome
	// Asked is the count asked for: Count scaled.
	Asked int
	// Scale is the scale the row ran at.
	Scale float64
	// DriverPeak is this process's peak resident set during the row
	// (VmHWM), in bytes; -1 when unknown. With an embedded cluster it
	// holds the control store, the node daemon and its object store too.
	DriverPeak int64
	// DriverPeakSinceStart says DriverPeak could not be reset before the
	// row, so it is the peak since the process started.
	DriverPeakSinceStart bool
	// WorkersPeak is the highest summed resident set of this process's
	// child processes (the node's workers) sampled every 100 ms during the
	// row, in bytes; -1 when unknown.
	WorkersPeak int64
	// Err is the row's failure; nil when it ran.
	Err error
}

// Verdict judges the row against its target: "pass", "miss", "—" where
// TARGETS.md sets none, "error" for a failed row, and "n/a" for a row run
// at less than full size (scaled, or capped) or whose memory is unknown.
func (r EnvelopeResult) Verdict() string {
	switch {
	case r.Err != nil:
		return "error"
	case r.MaxTime <= 0 && r.MaxMem <= 0:
		return dash
	case r.Units < r.Count:
		return "n/a"
	}
	ok := r.MaxTime <= 0 || r.Time <= r.MaxTime
	if r.MaxMem > 0 {
		if r.DriverPeak < 0 || r.WorkersPeak < 0 {
			return "n/a"
		}
		ok = ok && r.DriverPeak+r.WorkersPeak <= r.MaxMem
	}
	if ok {
		return "pass"
	}
	return "miss"
}

// EnvelopeProgress is told when each envelope row starts and ends; i
// counts from 1 to n. Its methods are called from RunEnvelope's goroutine.
type EnvelopeProgress interface {
	Start(i, n int, name string)
	Done(i, n int, r EnvelopeResult)
}

// GiB is 2³⁰ bytes.
const GiB = 1 << 30

// Envelope returns the envelope's rows in the order they run. The caller
// may modify the returned slice.
func Envelope() []EnvelopeRow {
	return []EnvelopeRow{
		{Name: "tasks_1m_queued", Count: 1_000_000, What: "tasks", Ray: "190 s",
			Target: "≤ 30 s, ≤ 2 GiB", MaxTime: 30 * time.Second, MaxMem: 2 * GiB, Timeout: 10 * time.Minute, Run: tasksQueued},
		{Name: "actors_10k", Count: 10_000, What: "actors", Ray: "15.7 s (cluster)",
			Target: "≤ 5 s", MaxTime: 5 * time.Second, Timeout: 10 * time.Minute, Run: actorsCreated},
		{Name: "task_10k_args", Count: 10_000, What: "args", Ray: "17.3 s",
			Target: "≤ 1 s", MaxTime: time.Second, Timeout: 2 * time.Minute, Run: taskManyArgs},
		{Name: "task_3k_returns", Count: 3_000, What: "returns", Ray: "5.7 s",
			Timeout: 2 * time.Minute, Run: taskManyReturns},
		{Name: "get_10k_refs", Count: 10_000, What: "refs", Ray: "23.7 s",
			Target: "≤ 1 s", MaxTime: time.Second, Timeout: 2 * time.Minute, Run: getManyRefs},
		{Name: "largest_object", Count: largestObjectBytes, What: "bytes", Ray: "100 GiB+ object",
			Timeout: 5 * time.Minute, Run: largestObject},
	}
}

// SelectEnvelope returns the rows whose names filter matches (all of them
// for a nil filter), in order. It fails with ErrNoMatch when none does.
func SelectEnvelope(rows []EnvelopeRow, filter *regexp.Regexp) ([]EnvelopeRow, error) {
	var out []EnvelopeRow
	for _, r := range rows {
		if filter == nil || filter.MatchString(r.Name) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		expr := ""
		if filter != nil {
			expr = filter.String()
		}
		return nil, fmt.Errorf("%w %q", ErrNoMatch, expr)
	}
	return out, nil
}

// RunEnvelope runs rows in order with ray already initialized and returns
// their results in the same order. A failed row does not stop the others;
// the end of ctx does: the row then running fails with ctx's error and
// the ones after it are left out. Each row is bounded by its Timeout
// (scaled, at least a minute). progress may be nil.
func RunEnvelope(ctx context.Context, cfg EnvelopeConfig, rows []EnvelopeRow, progress EnvelopeProgress) []EnvelopeResult {
	out := make([]EnvelopeResult, 0, len(rows))
	for i, row := range rows {
		if ctx.Err() != nil {
			break
		}
		if progress != nil {
			progress.Start(i+1, len(rows), row.Name)
		}
		r := runEnvelopeRow(ctx, cfg, row)
		out = append(out, r)
		if progress != nil {
			progress.Done(i+1, len(rows), r)
		}
	}
	return out
}

// runEnvelopeRow runs one row under its timeout with its memory followed,
// turning a panic into an error.
func runEnvelopeRow(ctx context.Context, cfg EnvelopeConfig, row EnvelopeRow) (r EnvelopeResult) {
	r = EnvelopeResult{EnvelopeRow: row, Asked: cfg.count(row.Count), Scale: cfg.Scale, DriverPeak: -1, WorkersPeak: -1}
	if row.Run == nil {
		r.Err = fmt.Errorf("microbench: %s has nothing to run", row.Name)
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, max(time.Minute, time.Duration(float64(row.Timeout)*cfg.Scale)))
	defer cancel()

	// Give the last row's garbage back, so that this row's peak is its
	// own.
	runtime.GC()
	debug.FreeOSMemory()
	r.DriverPeakSinceStart = !resetDriverPeak()
	s := startMemSampler(sampleInterval)
	defer func() {
		if p := recover(); p != nil {
			r.Err = fmt.Errorf("microbench: %s panicked: %v", row.Name, p)
		}
		r.WorkersPeak = s.Stop()
		r.DriverPeak = driverPeak()
	}()
	r.Outcome, r.Err = row.Run(ctx, r.Asked)
	if r.Err == nil && (r.Time <= 0 || r.Units <= 0) {
		r.Err = fmt.Errorf("microbench: %s measured %d %s in %s", row.Name, r.Units, row.What, r.Time)
	}
	return r
}
