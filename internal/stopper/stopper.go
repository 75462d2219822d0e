// Package stopper owns goroutines. Every long-lived goroutine of a
// component is started through its Stopper, which names it, refuses new
// work once the component is stopping, and waits for all of them when it
// stops. It plays the role of CockroachDB's stop.Stopper, kept small.
//
//	s := stopper.New()
//	s.Go("reader", func(ctx context.Context) {
//		for ctx.Err() == nil { ... }
//	})
//	s.Stop() // cancels ctx, waits for "reader"
//
// A goroutine started with Go must return once its context is done (or
// once whatever it blocks on is closed by the component's own Close).
// Running lists what is still running by name, which tests use to find
// the owner of a goroutine that does not stop.
package stopper

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// ErrStopped is returned by Go and AfterFunc once Stop has begun.
var ErrStopped = errors.New("stopper: stopped")

// Stopper owns a set of goroutines. The zero value is not usable; call
// New. It is safe for concurrent use.
type Stopper struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped bool           // guarded by mu
	running map[string]int // guarded by mu; goroutines by name
	timers  map[*time.Timer]struct{}
	wg      sync.WaitGroup
}

// New returns a running Stopper.
func New() *Stopper {
	ctx, cancel := context.WithCancel(context.Background())
	return &Stopper{ctx: ctx, cancel: cancel, running: map[string]int{}, timers: map[*time.Timer]struct{}{}}
}

// Ctx is done once Stop begins. Goroutines started with Go receive it.
func (s *Stopper) Ctx() context.Context { return s.ctx }

// Stopping reports whether Stop has begun.
func (s *Stopper) Stopping() bool { return s.ctx.Err() != nil }

// Go runs f in a new goroutine named name, unless the stopper is
// stopping (then it returns ErrStopped and f never runs).
func (s *Stopper) Go(name string, f func(ctx context.Context)) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return ErrStopped
	}
	s.running[name]++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.done(name)
		f(s.ctx)
	}()
	return nil
}

func (s *Stopper) done(name string) {
	s.mu.Lock()
	if s.running[name]--; s.running[name] <= 0 {
		delete(s.running, name)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// AfterFunc runs f in its own goroutine named name after d, unless the
// stopper stops first (then f never runs). The returned function cancels
// it; it reports whether f was stopped from running.
func (s *Stopper) AfterFunc(name string, d time.Duration, f func()) (cancel func() bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, ErrStopped
	}
	s.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		_, pending := s.timers[t]
		delete(s.timers, t)
		if pending {
			s.running[name]++
		}
		s.mu.Unlock()
		if !pending { // Stop or cancel got it first
			return
		}
		defer s.done(name)
		f()
	})
	s.timers[t] = struct{}{}
	return func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, pending := s.timers[t]; !pending {
			return false
		}
		delete(s.timers, t)
		t.Stop()
		s.wg.Done()
		return true
	}, nil
}

// Stop cancels Ctx, refuses new goroutines, cancels pending AfterFuncs and
// waits for every goroutine to return. It is safe to call more than once;
// later calls wait too.
func (s *Stopper) Stop() {
	s.begin()
	s.wg.Wait()
}

// begin refuses new goroutines, drops pending AfterFuncs and cancels Ctx.
func (s *Stopper) begin() {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		for t := range s.timers {
			t.Stop()
			delete(s.timers, t)
			s.wg.Done()
		}
	}
	s.mu.Unlock()
	s.cancel()
}

// StopWithin is Stop that waits at most d for the goroutines to return.
// It returns the names of those still running then (nil when all
// returned); they go on, and a later Stop waits for them. Use it where a
// goroutine may run code the component does not control (a user's task
// that ignores its context) and the process is about to exit anyway.
func (s *Stopper) StopWithin(d time.Duration) []string {
	s.begin()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }() // ends when the stragglers do
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return s.Running()
	}
}

// Sleep waits d, or until ctx is done; it reports whether the whole d
// passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Running returns the names of the goroutines still running, sorted, a
// name repeated once per goroutine.
func (s *Stopper) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n, c := range s.running {
		for range c {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
