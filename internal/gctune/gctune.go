// Package gctune keeps a minimum of headroom between a process's live heap
// and the point where its garbage collector next runs.
//
// Go's collector runs when the heap has grown by GOGC percent (100 by
// default) of what was live after the last cycle. A worker process whose
// live heap is a few MiB but which allocates for every task it runs (a
// trivial actor call allocates about a kilobyte) then collects hundreds
// of times a second, and with one P (a worker sized to one CPU) the
// collector's share comes straight out of the tasks. While the live heap
// is small, the tuner raises GOGC so that the next cycle waits for at
// least Headroom bytes of new allocation (GOGC at most 400: the tuner sets
// GOGC from the last cycle's live heap, and a heap that grows fast would
// overshoot a higher one); once the live heap is Headroom or more, GOGC is
// back at its base and nothing changes. The memory it costs is bounded by
// Headroom.
//
// It watches the collector with a cleanup on a sentinel object, made anew
// after each cycle, and reads the live heap from runtime/metrics.
package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// DefaultHeadroom is the headroom raygo's worker processes keep.
const DefaultHeadroom = 32 << 20

// maxPercent bounds the GOGC the tuner sets.
const maxPercent = 400

// Tuner adjusts GOGC after every collection until Stop.
type Tuner struct {
	headroom uint64
	base     int // GOGC to return to (and never go below)

	mu      sync.Mutex
	stopped bool // guarded by mu
	percent int  // guarded by mu; the GOGC last set
	sample  []metrics.Sample
}

type sentinel struct{ _ [16]byte } // large enough to stay out of the tiny allocator

// Start begins tuning for the given headroom. The base GOGC is the one in
// force now (GOGC from the environment, or 100); a base of off (-1) is
// left alone and Start returns a Tuner that does nothing.
func Start(headroom uint64) *Tuner {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	t := &Tuner{headroom: headroom, base: base, percent: base,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	if base < 0 || headroom == 0 {
		t.stopped = true
		return t
	}
	t.adjust()
	t.arm()
	return t
}

// Stop ends tuning and puts GOGC back to its base.
func (t *Tuner) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.base)
	t.percent = t.base
}

// Percent is the GOGC the tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// arm makes a sentinel whose cleanup runs after the next collection.
func (t *Tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *Tuner) { t.afterGC() }, t)
}

func (t *Tuner) afterGC() {
	if t.adjust() {
		t.arm()
	}
}

// adjust sets GOGC for the live heap now; false once stopped.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	want := t.base
	if s := t.sample[0]; s.Value.Kind() == metrics.KindUint64 {
		want = percentFor(s.Value.Uint64(), t.headroom, t.base)
	}
	// Only changes worth a call: setting GOGC has a cost of its own.
	if want != t.percent && math.Abs(float64(want-t.percent)) >= float64(t.percent)/8 {
		debug.SetGCPercent(want)
		t.percent = want
	}
	return true
}

// percentFor is the GOGC that lets the heap grow by at least headroom over
// live, and never less than base.
func percentFor(live, headroom uint64, base int) int {
	if live == 0 {
		return maxPercent
	}
	p := headroom * 100 / live
	if p > maxPercent {
		p = maxPercent
	}
	return max(base, int(p))
}
