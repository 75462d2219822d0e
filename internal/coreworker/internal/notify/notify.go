// Package notify lets a test running in a testing/synctest bubble wait
// for a condition that its fakes make true: each fake calls Notify when
// it records something, and WaitFor re-checks the condition after every
// such event, with everything the event set off finished first. Nothing
// sleeps. It is for tests only (it calls synctest.Wait).
package notify

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Notifier wakes waiters whenever one of the fakes records something. The
// zero value is ready to use.
type Notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

// Notify wakes every WaitFor.
func (n *Notifier) Notify() {
	n.mu.Lock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
	n.mu.Unlock()
}

func (n *Notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

// WaitFor waits until cond holds, re-checking it after every event. The
// deadline is on the bubble's clock: a test whose condition never comes
// fails instead of hanging.
func (n *Notifier) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Minute)
	for {
		ch := n.changed()
		// What follows an event (a submitter updating its own state after
		// a fake's call returned) finishes before cond is checked: a
		// condition on that state would otherwise be checked too early
		// and never again.
		synctest.Wait()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
