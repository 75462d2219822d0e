package autoscale

import (
	"fmt"
	"math"
	"time"
)

// MaxWindowSamples bounds the observations one Policy keeps. At one
// observation per MetricsInterval a window holds LookBackPeriod /
// MetricsInterval of them (3 with Ray's defaults, 300 when fed every
// 0.1 s over 30 s); past this bound the oldest are dropped, which shortens
// the window rather than growing memory.
const MaxWindowSamples = 4096

// minLastSegment is how long the newest observation counts for when a
// decision is asked at (or before) its own timestamp, so that it still
// weighs something; Ray uses the same 1 ms.
const minLastSegment = time.Millisecond

type sample struct {
	at   time.Time
	load float64
}

// window is the load's recent history: a step function in which each
// observation holds until the next one. It is not safe for concurrent use;
// Policy guards it.
type window struct {
	samples []sample // ascending by at; samples[0] may precede the window
}

// add records an observation, keeping at most one sample at or before
// at-lookBack (the value in force when the window opens).
func (w *window) add(at time.Time, load float64, lookBack time.Duration) error {
	if math.IsNaN(load) || math.IsInf(load, 0) || load < 0 {
		return fmt.Errorf("%w: load %v at %v", ErrBadObservation, load, at)
	}
	if n := len(w.samples); n > 0 {
		last := &w.samples[n-1]
		switch {
		case at.Before(last.at):
			return fmt.Errorf("%w: observation at %v, newest at %v", ErrOutOfOrder, at, last.at)
		case at.Equal(last.at):
			last.load = load
			return nil
		}
	}
	w.samples = append(w.samples, sample{at: at, load: load})
	w.prune(at, lookBack)
	return nil
}

// prune drops samples that can no longer matter to a window ending at or
// after newest, and the oldest beyond MaxWindowSamples.
func (w *window) prune(newest time.Time, lookBack time.Duration) {
	start := newest.Add(-lookBack)
	// Keep the last sample at or before start: it is the value in force
	// when the window opens.
	drop := 0
	for drop+1 < len(w.samples) && !w.samples[drop+1].at.After(start) {
		drop++
	}
	drop = max(drop, len(w.samples)-MaxWindowSamples)
	if drop > 0 {
		w.samples = append(w.samples[:0], w.samples[drop:]...)
	}
}

// aggregate returns the load over the window [now-lookBack, now] by agg,
// and false when nothing was ever observed. The window starts no earlier
// than the first observation (nothing is assumed before it). When now is
// before the newest observation (clock skew) the window ends just after
// it. Once the newest observation is older than staleAfter, the load
// counts as zero from newest+staleAfter on.
func (w *window) aggregate(now time.Time, lookBack, staleAfter time.Duration, agg Aggregation) (float64, bool) {
	n := len(w.samples)
	if n == 0 {
		return 0, false
	}
	newest := w.samples[n-1].at
	end := now
	if !end.After(newest) {
		end = newest.Add(minLastSegment)
	}
	start := end.Add(-lookBack)
	if first := w.samples[0].at; start.Before(first) {
		start = first
	}
	staleAt := newest.Add(staleAfter)

	// Durations are summed in integral nanoseconds, so a constant load
	// averages to exactly itself.
	var (
		weighted float64
		total    time.Duration
		hi, lo   = math.Inf(-1), math.Inf(1)
	)
	segment := func(from, to time.Time, load float64) {
		from, to = maxTime(from, start), minTime(to, end)
		if !to.After(from) {
			return
		}
		d := to.Sub(from)
		weighted += load * float64(d)
		total += d
		hi, lo = max(hi, load), min(lo, load)
	}
	for i, s := range w.samples {
		next := staleAt
		if i+1 < n {
			next = w.samples[i+1].at
		}
		segment(s.at, next, s.load)
	}
	segment(staleAt, end, 0)

	if total == 0 {
		// Unreachable with lookBack > 0 (the window is at least 1 ns
		// long); kept so a zero window cannot divide by zero.
		return w.samples[n-1].load, true
	}
	switch agg {
	case Max:
		return hi, true
	case Min:
		return lo, true
	}
	return weighted / float64(total), true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
