package router

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// manualClock is a Clock that moves only when told to.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at   time.Time
	f    func()
	done bool // fired or stopped
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.done {
			return false
		}
		t.done = true
		return true
	}
}

// Advance moves the clock and runs, in order and on the caller's
// goroutine, the timers that fall due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	live := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t)
		default:
			live = append(live, t)
		}
	}
	c.timers = live
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// setLoad pretends n leases are held on replica id, without Lease values.
func setLoad(t testing.TB, r *Router, id string, n int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, ok := r.replicas[id]
	if !ok {
		t.Fatalf("setLoad: no replica %q", id)
	}
	r.inFlight += n - rep.inFlight
	rep.inFlight = n
	r.refreshLocked(rep)
}

// checkInvariants verifies the Router's bookkeeping; it holds at every
// moment, whatever requests are in progress.
func checkInvariants(r *Router) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum, running := 0, 0
	for id, rep := range r.replicas {
		if rep.id != id || rep.removed {
			return fmt.Errorf("replica %q: record id %q removed=%v", id, rep.id, rep.removed)
		}
		if rep.inFlight < 0 || rep.inFlight > rep.max {
			return fmt.Errorf("replica %q: in flight %d outside [0,%d]", id, rep.inFlight, rep.max)
		}
		sum += rep.inFlight
		if rep.desc.State == Running {
			running++
		}
		ok := rep.desc.State == Running && r.loadLocked(rep) < rep.max
		for t := range numTiers {
			want := ok && rep.member[t]
			in := rep.pos[t] >= 0 && rep.pos[t] < len(r.avail[t]) && r.avail[t][rep.pos[t]] == rep
			// A report that went stale frees its replica only when the
			// timer armed for that moment has run.
			lagging := want && !in && r.stopTimer != nil && !r.timerAt.After(r.clock.Now())
			if want != in && !lagging {
				return fmt.Errorf("replica %q tier %d: available=%v but listed=%v (pos %d)", id, t, want, in, rep.pos[t])
			}
		}
	}
	for t := range numTiers {
		for i, rep := range r.avail[t] {
			if rep.pos[t] != i || r.replicas[rep.id] != rep {
				return fmt.Errorf("tier %d index %d: stale entry %q", t, i, rep.id)
			}
		}
	}
	if sum != r.inFlight {
		return fmt.Errorf("in flight %d, replicas sum to %d", r.inFlight, sum)
	}
	if running != r.running {
		return fmt.Errorf("running %d, counted %d", r.running, running)
	}
	n := 0
	var prev *waiter
	for w := r.head; w != nil; w = w.next {
		if w.prev != prev || !w.queued {
			return fmt.Errorf("waiter list broken at %d", n)
		}
		prev = w
		n++
	}
	if prev != r.tail || n != r.queued {
		return fmt.Errorf("queue holds %d, counter says %d", n, r.queued)
	}
	if n > 0 && len(r.avail[tierAll]) > 0 {
		return fmt.Errorf("%d requests wait while %d replicas have room", n, len(r.avail[tierAll]))
	}
	return nil
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustNew(t testing.TB, opts Options) *Router {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func mustSet(t testing.TB, r *Router, reps ...Replica) {
	t.Helper()
	if err := r.Set(reps); err != nil {
		t.Fatal(err)
	}
}
