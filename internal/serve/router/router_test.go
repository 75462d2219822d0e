package router

import (
	"context"
	"errors"
	"testing"
	"time"
)

type result struct {
	lease *Lease
	err   error
}

// acquireAsync starts an Acquire and waits until it is queued (queuedAfter
// requests waiting) so that the test controls arrival order.
func acquireAsync(t *testing.T, rt *Router, ctx context.Context, queuedAfter int) <-chan result {
	t.Helper()
	ch := make(chan result, 1)
	go func() {
		l, err := rt.Acquire(ctx)
		ch <- result{l, err}
	}()
	waitFor(t, "request to queue", func() bool { return rt.Stats().Queued == queuedAfter })
	return ch
}

func recv(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Acquire did not return")
		return result{}
	}
}

func mustAcquire(t *testing.T, rt *Router) *Lease {
	t.Helper()
	l, err := rt.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestQueueFIFO(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
	held := mustAcquire(t, rt)
	var waiting []<-chan result
	for i := range 5 {
		waiting = append(waiting, acquireAsync(t, rt, context.Background(), i+1))
	}
	for i, ch := range waiting {
		select {
		case <-ch:
			t.Fatalf("waiter %d served while the replica is full", i)
		default:
		}
		held.Release()
		got := recv(t, ch)
		if got.err != nil {
			t.Fatalf("waiter %d: %v", i, got.err)
		}
		for j, later := range waiting[i+1:] {
			select {
			case <-later:
				t.Fatalf("waiter %d served before waiter %d's slot was released", i+1+j, i)
			default:
			}
		}
		held = got.lease
	}
	held.Release()
	if s := rt.Stats(); s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("stats after all released: %+v", s)
	}
}

func TestNewcomerDoesNotJumpQueue(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
	held := mustAcquire(t, rt)
	first := acquireAsync(t, rt, context.Background(), 1)
	second := acquireAsync(t, rt, context.Background(), 2)
	held.Release()
	r1 := recv(t, first)
	select {
	case <-second:
		t.Fatal("second waiter served while first holds the only slot")
	default:
	}
	r1.lease.Release()
	recv(t, second).lease.Release()
}

func TestBackPressure(t *testing.T) {
	rt := mustNew(t, Options{MaxQueuedRequests: 2, RetryAfter: 3 * time.Second})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
	held := mustAcquire(t, rt)
	w1 := acquireAsync(t, rt, context.Background(), 1)
	w2 := acquireAsync(t, rt, context.Background(), 2)

	_, err := rt.Acquire(context.Background())
	if !errors.Is(err, ErrBackPressure) {
		t.Fatalf("third waiter: got %v, want back pressure", err)
	}
	var bp *BackPressureError
	if !errors.As(err, &bp) || bp.Queued != 2 || bp.MaxQueued != 2 || bp.RetryAfter != 3*time.Second {
		t.Fatalf("back pressure error = %#v", bp)
	}

	// Once the queue drains below the bound, requests queue again.
	held.Release()
	l1 := recv(t, w1).lease
	w3 := acquireAsync(t, rt, context.Background(), 2)
	l1.Release()
	l2 := recv(t, w2).lease
	l2.Release()
	recv(t, w3).lease.Release()
}

func TestBackPressureUnboundedByDefault(t *testing.T) {
	for _, max := range []int{0, Unbounded} {
		rt := mustNew(t, Options{MaxQueuedRequests: max})
		mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
		held := mustAcquire(t, rt)
		ctx, cancel := context.WithCancel(context.Background())
		var chs []<-chan result
		for i := range 50 {
			chs = append(chs, acquireAsync(t, rt, ctx, i+1))
		}
		cancel()
		for _, ch := range chs {
			if r := recv(t, ch); !errors.Is(r.err, context.Canceled) {
				t.Fatalf("MaxQueuedRequests %d: got %v, want canceled", max, r.err)
			}
		}
		held.Release()
	}
}

func TestCancelWhileQueued(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
	held := mustAcquire(t, rt)
	w1 := acquireAsync(t, rt, context.Background(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	w2 := acquireAsync(t, rt, ctx, 2)
	w3 := acquireAsync(t, rt, context.Background(), 3)

	cancel()
	r2 := recv(t, w2)
	if !errors.Is(r2.err, context.Canceled) || errors.Is(r2.err, ErrNoReplicas) {
		t.Fatalf("cancelled waiter: %v, want plain context.Canceled", r2.err)
	}
	if q := rt.Stats().Queued; q != 2 {
		t.Fatalf("queued after cancel = %d, want 2", q)
	}
	// The cancelled waiter's place is skipped; the order of the rest holds.
	held.Release()
	l1 := recv(t, w1).lease
	l1.Release()
	l3 := recv(t, w3).lease
	l3.Release()
	if s := rt.Stats(); s.InFlight != 0 || s.Queued != 0 || s.Replicas[0].InFlight != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestDeadlineWithFullReplicasIsNotNoReplicas(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
	held := mustAcquire(t, rt)
	defer held.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := rt.Acquire(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrNoReplicas) {
		t.Fatalf("got %v, want plain deadline exceeded", err)
	}
}

func TestNoReplicas(t *testing.T) {
	for _, tc := range []struct {
		name string
		reps []Replica
	}{
		{"none", nil},
		{"all draining or unhealthy", []Replica{{ID: "a", State: Draining}, {ID: "b", State: Unhealthy}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := mustNew(t, Options{})
			mustSet(t, rt, tc.reps...)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			_, err := rt.Acquire(ctx)
			if !errors.Is(err, ErrNoReplicas) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v, want no replicas and deadline exceeded", err)
			}
			if s := rt.Stats(); s.Queued != 0 || s.Running != 0 {
				t.Fatalf("stats: %+v", s)
			}
		})
	}
}

func TestScaleFromZero(t *testing.T) {
	rt := mustNew(t, Options{})
	w := acquireAsync(t, rt, context.Background(), 1)
	if s := rt.Stats(); s.Running != 0 || s.Queued != 1 {
		t.Fatalf("stats while scaled to zero: %+v", s)
	}
	mustSet(t, rt, Replica{ID: "a"})
	r := recv(t, w)
	if r.err != nil || r.lease.Replica() != "a" {
		t.Fatalf("got %v, %v", r.lease, r.err)
	}
	r.lease.Release()
}

func TestRemovedReplica(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1}, Replica{ID: "b", MaxOngoingRequests: 1})
	la, lb := mustAcquire(t, rt), mustAcquire(t, rt)
	if la.Replica() == lb.Replica() {
		t.Fatalf("both leases on %q", la.Replica())
	}
	if la.Replica() != "a" {
		la, lb = lb, la
	}
	w := acquireAsync(t, rt, context.Background(), 1)

	mustSet(t, rt, Replica{ID: "b", MaxOngoingRequests: 1})
	if s := rt.Stats(); s.InFlight != 1 || len(s.Replicas) != 1 {
		t.Fatalf("stats after removing a: %+v", s)
	}
	// Releasing the removed replica's lease frees nothing and serves no one.
	la.Release()
	la.Release()
	select {
	case r := <-w:
		t.Fatalf("waiter served by removed replica's release: %v %v", r.lease.Replica(), r.err)
	case <-time.After(20 * time.Millisecond):
	}
	if s := rt.Stats(); s.InFlight != 1 || s.Queued != 1 {
		t.Fatalf("stats after releasing removed lease: %+v", s)
	}
	// Re-adding a replica of the same ID starts a fresh record that the old
	// lease cannot touch.
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1}, Replica{ID: "b", MaxOngoingRequests: 1})
	r := recv(t, w)
	if r.lease.Replica() != "a" {
		t.Fatalf("waiter served by %q, want re-added a", r.lease.Replica())
	}
	la.Release()
	if s := rt.Stats(); s.InFlight != 2 {
		t.Fatalf("old lease changed new record: %+v", s)
	}
	r.lease.Release()
	lb.Release()
	if err := checkInvariants(rt); err != nil {
		t.Fatal(err)
	}
	if rt.Remove("a") != true || rt.Remove("a") != false {
		t.Fatal("Remove reported wrongly")
	}
}

func TestDrainingKeepsLeases(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 2})
	l := mustAcquire(t, rt)
	if err := rt.Update(Replica{ID: "a", MaxOngoingRequests: 2, State: Draining}); err != nil {
		t.Fatal(err)
	}
	if s := rt.Stats(); s.InFlight != 1 || s.Replicas[0].InFlight != 1 || s.Replicas[0].State != Draining {
		t.Fatalf("stats while draining: %+v", s)
	}
	w := acquireAsync(t, rt, context.Background(), 1)
	l.Release()
	select {
	case r := <-w:
		t.Fatalf("draining replica took a new request: %v %v", r.lease, r.err)
	case <-time.After(20 * time.Millisecond):
	}
	if s := rt.Stats(); s.InFlight != 0 || s.Queued != 1 {
		t.Fatalf("stats: %+v", s)
	}
	if err := rt.Update(Replica{ID: "b"}); err != nil {
		t.Fatal(err)
	}
	r := recv(t, w)
	if r.lease.Replica() != "b" {
		t.Fatalf("served by %q, want b", r.lease.Replica())
	}
	r.lease.Release()
}

func TestReleaseIdempotent(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
	l := mustAcquire(t, rt)
	w1 := acquireAsync(t, rt, context.Background(), 1)
	w2 := acquireAsync(t, rt, context.Background(), 2)
	l.Release()
	l.Release()
	r1 := recv(t, w1)
	select {
	case <-w2:
		t.Fatal("double release served a second waiter")
	case <-time.After(20 * time.Millisecond):
	}
	r1.lease.Release()
	recv(t, w2).lease.Release()
	if s := rt.Stats(); s.InFlight != 0 {
		t.Fatalf("in flight %d", s.InFlight)
	}
}

func TestReportedQueueLen(t *testing.T) {
	clk := newManualClock()
	rt := mustNew(t, Options{Clock: clk, QueueLenTTL: time.Second})
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 2})
	if err := rt.ReportQueueLen("a", 2, clk.Now()); err != nil {
		t.Fatal(err)
	}
	if q := rt.Stats().Replicas[0].QueueLen; q != 2 {
		t.Fatalf("reported queue len %d, want 2", q)
	}

	// Full by the report: the request waits until the report goes stale.
	w := acquireAsync(t, rt, context.Background(), 1)
	clk.Advance(time.Second)
	select {
	case <-w:
		t.Fatal("served while the report is still fresh")
	case <-time.After(20 * time.Millisecond):
	}
	clk.Advance(time.Millisecond)
	l := recv(t, w).lease
	if q := rt.Stats().Replicas[0].QueueLen; q != -1 {
		t.Fatalf("stale queue len shown as %d", q)
	}

	// A fresh report that frees room serves the waiter at once; an older
	// one is ignored; acquires and releases keep the report current.
	if err := rt.ReportQueueLen("a", 2, clk.Now()); err != nil {
		t.Fatal(err)
	}
	w = acquireAsync(t, rt, context.Background(), 1)
	if err := rt.ReportQueueLen("a", 0, clk.Now().Add(-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rt.Stats().Queued != 1 {
		t.Fatal("older report was applied")
	}
	if err := rt.ReportQueueLen("a", 1, clk.Now()); err != nil {
		t.Fatal(err)
	}
	l2 := recv(t, w).lease
	if q := rt.Stats().Replicas[0].QueueLen; q != 2 {
		t.Fatalf("queue len after acquire = %d, want 2", q)
	}
	l2.Release()
	l.Release()
	if q := rt.Stats().Replicas[0].QueueLen; q != 0 {
		t.Fatalf("queue len after releases = %d, want 0", q)
	}

	if err := rt.ReportQueueLen("zz", 1, clk.Now()); !errors.Is(err, ErrUnknownReplica) {
		t.Fatalf("unknown replica: %v", err)
	}
	if err := rt.ReportQueueLen("a", -1, clk.Now()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative length: %v", err)
	}
}

func TestClose(t *testing.T) {
	rt, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, rt, Replica{ID: "a", MaxOngoingRequests: 1})
	l := mustAcquire(t, rt)
	w := acquireAsync(t, rt, context.Background(), 1)
	// An armed timer must be stopped by Close.
	if err := rt.ReportQueueLen("a", 5, time.Now()); err != nil {
		t.Fatal(err)
	}
	rt.Close()
	rt.Close()
	if r := recv(t, w); !errors.Is(r.err, ErrClosed) {
		t.Fatalf("waiter: %v, want ErrClosed", r.err)
	}
	if _, err := rt.Acquire(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	l.Release()
}

func TestAcquireWithDoneContext(t *testing.T) {
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if rt.Stats().InFlight != 0 {
		t.Fatal("slot taken by a cancelled request")
	}
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		ok   bool
	}{
		{"zero value", Options{}, true},
		{"unbounded", Options{MaxQueuedRequests: -1}, true},
		{"bounded", Options{MaxQueuedRequests: 10}, true},
		{"below -1", Options{MaxQueuedRequests: -2}, false},
		{"negative ttl", Options{QueueLenTTL: -time.Second}, false},
		{"negative retry", Options{RetryAfter: -time.Second}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("New(%+v) = %v", tc.opts, err)
			}
		})
	}
	rt := mustNew(t, Options{})
	mustSet(t, rt, Replica{ID: "keep"})
	for _, tc := range []struct {
		name string
		reps []Replica
	}{
		{"empty id", []Replica{{ID: ""}}},
		{"duplicate", []Replica{{ID: "x"}, {ID: "x"}}},
		{"negative limit", []Replica{{ID: "x", MaxOngoingRequests: -1}}},
		{"bad state", []Replica{{ID: "x", State: 7}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := rt.Set(tc.reps); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Set: %v, want ErrInvalid", err)
			}
			if s := rt.Stats(); len(s.Replicas) != 1 || s.Replicas[0].ID != "keep" {
				t.Fatalf("failed Set changed the replicas: %+v", s.Replicas)
			}
		})
	}
}

func TestSetMaxQueuedRequests(t *testing.T) {
	r, err := New(Options{MaxQueuedRequests: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Set([]Replica{{ID: "a", MaxOngoingRequests: 1}}); err != nil {
		t.Fatal(err)
	}
	lease, err := r.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiting := make(chan error, 2)
	go func() { _, err := r.Acquire(ctx); waiting <- err }()
	for r.Stats().Queued != 1 {
		time.Sleep(time.Millisecond)
	}
	if _, err := r.Acquire(ctx); !errors.Is(err, ErrBackPressure) {
		t.Fatalf("past the bound of 1: %v, want back-pressure", err)
	}
	if err := r.SetMaxQueuedRequests(2); err != nil {
		t.Fatal(err)
	}
	go func() { _, err := r.Acquire(ctx); waiting <- err }()
	for r.Stats().Queued != 2 {
		time.Sleep(time.Millisecond)
	}
	if err := r.SetMaxQueuedRequests(-2); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetMaxQueuedRequests(-2): %v", err)
	}
	lease.Release()
	cancel()
	for range 2 {
		<-waiting
	}
}
