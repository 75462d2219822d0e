package memstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func val(s string) *pb.Value { return &pb.Value{Data: []byte(s)} }

func errVal(msg string) *pb.Value {
	return &pb.Value{Error: errs.ToInfo(&errs.TaskError{Function: "f", Message: msg})}
}

// eventually polls cond until it holds or a generous deadline passes: for
// states no event announces (a waiter registered on a slot).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// waiters is the number of blocked Gets and Waits registered on s.
func (st *Store) waiters(s *Slot) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(s.waiters)
}

func newSlots(st *Store, n int) []*Slot {
	out := make([]*Slot, n)
	for i := range out {
		out[i] = NewSlot(ids.New())
	}
	return out
}

type getResult struct {
	vals []*pb.Value
	err  error
}

// goGet runs Get in a goroutine; blocked is closed when Get is about to
// block (its blocking callback ran).
func goGet(ctx context.Context, st *Store, slots []*Slot) (res <-chan getResult, blocked <-chan struct{}) {
	out := make(chan getResult, 1)
	b := make(chan struct{})
	go func() {
		vals, err := st.Get(ctx, slots, func() { close(b) })
		out <- getResult{vals, err}
	}()
	return out, b
}

func TestSlotBasics(t *testing.T) {
	id := ids.New()
	s := NewSlot(id)
	if s.ID() != id || s.Ready() || s.Value() != nil {
		t.Fatalf("new slot: id %v ready %v value %v", s.ID(), s.Ready(), s.Value())
	}
	v := val("x")
	r := NewReadySlot(id, v)
	if !r.Ready() || r.Value() != v {
		t.Fatalf("ready slot: ready %v value %v", r.Ready(), r.Value())
	}
}

func TestFillOnce(t *testing.T) {
	st := New()
	first, second := val("1"), val("2")
	p := newSlots(st, 1)[0]
	if !st.Fill(p, first) || p.Value() != first {
		t.Fatal("Fill of a pending slot failed")
	}
	if st.Fill(p, second) || p.Value() != first {
		t.Fatal("Fill of a filled slot accepted")
	}
}

func TestGetReadyDoesNotBlock(t *testing.T) {
	st := New()
	a, b := NewReadySlot(ids.New(), val("a")), NewReadySlot(ids.New(), val("b"))
	vals, err := st.Get(context.Background(), []*Slot{a, b, a}, func() { t.Error("blocking called for ready slots") })
	if err != nil {
		t.Fatal(err)
	}
	if vals[0] != a.Value() || vals[1] != b.Value() || vals[2] != a.Value() {
		t.Fatalf("values = %v", vals)
	}
	vals, err = st.Get(context.Background(), nil, nil)
	if err != nil || len(vals) != 0 {
		t.Fatalf("Get of nothing = %v, %v", vals, err)
	}
}

func TestGetWaitsForEverySlot(t *testing.T) {
	st := New()
	slots := newSlots(st, 3)
	res, blocked := goGet(context.Background(), st, slots)
	<-blocked
	eventually(t, "Get's waiter", func() bool { return st.waiters(slots[2]) == 1 })
	st.Fill(slots[2], val("c"))
	st.Fill(slots[0], val("a"))
	select {
	case r := <-res:
		t.Fatalf("Get returned with a slot still pending: %v", r)
	default:
	}
	if st.waiters(slots[1]) != 1 {
		t.Fatal("Get's waiter left the pending slot")
	}
	st.Fill(slots[1], val("b"))
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	for i, want := range []string{"a", "b", "c"} {
		if string(r.vals[i].GetData()) != want {
			t.Fatalf("value %d = %q, want %q", i, r.vals[i].GetData(), want)
		}
	}
	for _, s := range slots {
		if st.waiters(s) != 0 {
			t.Fatal("a waiter is left on a slot")
		}
	}
}

// Ray's ray.get fails fast: an error in any position ends the wait, even
// while objects before it are pending.
func TestGetFailsFastOnErrorInAnyPosition(t *testing.T) {
	for pos := range 3 {
		t.Run(fmt.Sprint("error at ", pos), func(t *testing.T) {
			st := New()
			slots := newSlots(st, 3)
			res, blocked := goGet(context.Background(), st, slots)
			<-blocked
			eventually(t, "Get's waiter", func() bool { return st.waiters(slots[pos]) == 1 })
			e := errVal("boom")
			st.Fill(slots[pos], e)
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			for i, v := range r.vals {
				switch {
				case i == pos && v != e:
					t.Fatalf("value %d = %v, want the error", i, v)
				case i != pos && v != nil:
					t.Fatalf("value %d = %v, want nil (pending)", i, v)
				}
			}
			for _, s := range slots {
				if st.waiters(s) != 0 {
					t.Fatal("a waiter is left on a slot")
				}
			}
		})
	}
}

func TestGetErrorAlreadyThereReturnsAtOnce(t *testing.T) {
	st := New()
	slots := newSlots(st, 4)
	e := errVal("boom")
	st.Fill(slots[1], val("b"))
	st.Fill(slots[2], e)
	st.Fill(slots[3], val("d"))
	vals, err := st.Get(context.Background(), slots, func() { t.Error("Get blocked although an object failed") })
	if err != nil {
		t.Fatal(err)
	}
	// Pending slots read nil; ready ones, before or after the error, read
	// their values.
	if vals[0] != nil || string(vals[1].GetData()) != "b" || vals[2] != e || string(vals[3].GetData()) != "d" {
		t.Fatalf("values = %v", vals)
	}
}

// An error that arrives while Get registers its waiter is seen under the
// lock: blockUntil's own check.
func TestBlockSeesErrorAlreadyThere(t *testing.T) {
	st := New()
	slots := newSlots(st, 2)
	st.Fill(slots[1], errVal("boom"))
	if err := st.block(context.Background(), slots, 2, true); err != nil {
		t.Fatal(err)
	}
	st.Fill(slots[0], val("a"))
	if err := st.block(context.Background(), slots, 2, false); err != nil {
		t.Fatal(err)
	}
}

func TestGetContextCancelled(t *testing.T) {
	st := New()
	slots := newSlots(st, 2)
	st.Fill(slots[0], val("a"))
	ctx, cancel := context.WithCancel(context.Background())
	res, blocked := goGet(ctx, st, slots)
	<-blocked
	cancel()
	r := <-res
	if !errors.Is(r.err, context.Canceled) || r.vals != nil {
		t.Fatalf("Get = %v, %v; want context.Canceled", r.vals, r.err)
	}
	if st.waiters(slots[1]) != 0 {
		t.Fatal("the cancelled Get left its waiter")
	}
	// The slot still fills and reads normally afterwards.
	st.Fill(slots[1], val("b"))
	vals, err := st.Get(context.Background(), slots, nil)
	if err != nil || string(vals[1].GetData()) != "b" {
		t.Fatalf("Get after cancel = %v, %v", vals, err)
	}
}

func TestGetDeadline(t *testing.T) {
	st := New()
	slots := newSlots(st, 1)
	ctx, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	_, err := st.Get(ctx, slots, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want DeadlineExceeded", err)
	}
}

// Get of the same pending slot twice counts it twice and still wakes.
func TestGetDuplicateSlot(t *testing.T) {
	st := New()
	s := newSlots(st, 1)[0]
	res, blocked := goGet(context.Background(), st, []*Slot{s, s})
	<-blocked
	eventually(t, "Get's waiter", func() bool { return st.waiters(s) == 2 })
	st.Fill(s, val("x"))
	r := <-res
	if r.err != nil || r.vals[0] != s.Value() || r.vals[1] != s.Value() {
		t.Fatalf("Get = %v, %v", r.vals, r.err)
	}
}

type waitResult struct {
	ready []bool
	err   error
}

func goWait(ctx context.Context, st *Store, slots []*Slot, n int, timeout <-chan time.Time) (<-chan waitResult, <-chan struct{}) {
	out := make(chan waitResult, 1)
	b := make(chan struct{})
	go func() {
		ready, err := st.Wait(ctx, slots, n, timeout, func() { close(b) })
		out <- waitResult{ready, err}
	}()
	return out, b
}

func TestWaitEnoughReadyDoesNotBlock(t *testing.T) {
	st := New()
	slots := newSlots(st, 3)
	st.Fill(slots[0], val("a"))
	st.Fill(slots[2], errVal("boom")) // errors count as ready
	ready, err := st.Wait(context.Background(), slots, 2, nil, func() { t.Error("Wait blocked") })
	if err != nil {
		t.Fatal(err)
	}
	if !ready[0] || ready[1] || !ready[2] {
		t.Fatalf("ready = %v", ready)
	}
	ready, err = st.Wait(context.Background(), slots, 0, nil, func() { t.Error("Wait(0) blocked") })
	if err != nil || !ready[0] || ready[1] || !ready[2] {
		t.Fatalf("Wait(0) = %v, %v", ready, err)
	}
}

func TestWaitForN(t *testing.T) {
	st := New()
	slots := newSlots(st, 4)
	res, blocked := goWait(context.Background(), st, slots, 2, nil)
	<-blocked
	eventually(t, "Wait's waiter", func() bool { return st.waiters(slots[3]) == 1 })
	st.Fill(slots[3], errVal("boom"))
	select {
	case r := <-res:
		t.Fatalf("Wait(2) returned after one ready: %v", r)
	default:
	}
	st.Fill(slots[1], val("b"))
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.ready[0] || !r.ready[1] || r.ready[2] || !r.ready[3] {
		t.Fatalf("ready = %v", r.ready)
	}
	for _, s := range slots {
		if st.waiters(s) != 0 {
			t.Fatal("Wait left a waiter behind")
		}
	}
}

func TestWaitTimeoutChannel(t *testing.T) {
	st := New()
	slots := newSlots(st, 3)
	st.Fill(slots[0], val("a"))
	timeout := make(chan time.Time)
	res, blocked := goWait(context.Background(), st, slots, 3, timeout)
	<-blocked
	eventually(t, "Wait's waiter", func() bool { return st.waiters(slots[2]) == 1 })
	st.Fill(slots[2], val("c"))
	close(timeout)
	r := <-res
	if r.err != nil {
		t.Fatalf("Wait after its timeout = %v, want no error", r.err)
	}
	if !r.ready[0] || r.ready[1] || !r.ready[2] {
		t.Fatalf("ready = %v", r.ready)
	}
	if st.waiters(slots[1]) != 0 {
		t.Fatal("Wait left a waiter on the pending slot")
	}
}

func TestWaitContextCancelled(t *testing.T) {
	st := New()
	slots := newSlots(st, 2)
	ctx, cancel := context.WithCancel(context.Background())
	res, blocked := goWait(ctx, st, slots, 1, nil)
	<-blocked
	cancel()
	r := <-res
	if !errors.Is(r.err, context.Canceled) || r.ready != nil {
		t.Fatalf("Wait = %v, %v; want context.Canceled", r.ready, r.err)
	}
	for _, s := range slots {
		if st.waiters(s) != 0 {
			t.Fatal("Wait left a waiter behind")
		}
	}
}

// Wait for more objects than it was given returns once all are ready,
// instead of blocking for ever.
func TestWaitMoreThanGiven(t *testing.T) {
	st := New()
	slots := newSlots(st, 2)
	res, blocked := goWait(context.Background(), st, slots, 5, nil)
	<-blocked
	st.Fill(slots[0], val("a"))
	st.Fill(slots[1], val("b"))
	r := <-res
	if r.err != nil || !r.ready[0] || !r.ready[1] {
		t.Fatalf("Wait(5 of 2) = %v, %v", r.ready, r.err)
	}
}

func TestOnReady(t *testing.T) {
	st := New()
	slots := newSlots(st, 1)
	s := slots[0]
	var calls []string
	var mu sync.Mutex
	record := func(tag string) func(*pb.Value) {
		return func(v *pb.Value) {
			mu.Lock()
			calls = append(calls, tag+"="+string(v.GetData()))
			mu.Unlock()
		}
	}
	st.OnReady(s, record("1"))
	st.OnReady(s, record("2"))
	if len(calls) != 0 {
		t.Fatal("callback ran before the value arrived")
	}
	st.Fill(s, val("x"))
	st.Fill(s, val("y")) // ignored
	if fmt.Sprint(calls) != "[1=x 2=x]" {
		t.Fatalf("calls = %v, want each callback once with x", calls)
	}
	// A ready slot's callback runs at once, in this goroutine.
	st.OnReady(s, record("3"))
	if fmt.Sprint(calls) != "[1=x 2=x 3=x]" {
		t.Fatalf("calls = %v", calls)
	}
}

// A callback registered while another goroutine fills the slot runs
// exactly once, whichever wins.
func TestOnReadyRacesFill(t *testing.T) {
	st := New()
	for range 200 {
		s := newSlots(st, 1)[0]
		var n atomic.Int32
		done := make(chan struct{})
		go func() {
			st.Fill(s, val("x"))
			close(done)
		}()
		st.OnReady(s, func(v *pb.Value) {
			if string(v.GetData()) != "x" {
				t.Errorf("callback got %v", v)
			}
			n.Add(1)
		})
		<-done
		if n.Load() != 1 {
			t.Fatalf("callback ran %d times", n.Load())
		}
	}
}

func TestFree(t *testing.T) {
	st := New()
	ready := NewReadySlot(ids.New(), val("r"))
	pending := newSlots(st, 1)[0]

	var cbVal *pb.Value
	st.OnReady(pending, func(v *pb.Value) { cbVal = v })
	res, blocked := goGet(context.Background(), st, []*Slot{pending})
	<-blocked
	eventually(t, "Get's waiter", func() bool { return st.waiters(pending) == 1 })

	if v := st.Free(pending); v != nil {
		t.Fatalf("Free of a pending slot returned %v", v)
	}
	if v := st.Free(ready); string(v.GetData()) != "r" {
		t.Fatalf("Free of a ready slot returned %v, want r", v)
	}
	// The waiter woke with the freed value; the callback ran with it.
	r := <-res
	if r.err != nil || !IsFreed(r.vals[0]) {
		t.Fatalf("Get of a freed pending slot = %v, %v; want the freed value", r.vals, r.err)
	}
	if !IsFreed(cbVal) {
		t.Fatalf("callback got %v, want the freed value", cbVal)
	}
	// Handles holding the slots read the freed value from now on.
	if !IsFreed(ready.Value()) || !IsFreed(pending.Value()) {
		t.Fatal("freed slots do not read freed")
	}
	if err := errs.FromInfo(ready.Value().GetError()); !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("freed value's error = %v, want ErrObjectFreed", err)
	}
	if st.Fill(pending, val("late")) || !IsFreed(pending.Value()) {
		t.Fatal("a freed slot accepted a value")
	}
	if IsFreed(val("x")) || IsFreed(nil) {
		t.Fatal("IsFreed of another value")
	}
}

func TestFreedValueNamesTheObject(t *testing.T) {
	id := ids.New()
	err := errs.FromInfo(FreedValue(id).GetError())
	var oe *errs.ObjectError
	if !errors.As(err, &oe) || oe.ObjectID != id.String() || !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("FreedValue's error = %#v", err)
	}
}

func TestMark(t *testing.T) {
	st := New()
	a, b := NewSlot(ids.New()), NewSlot(ids.New())
	k1 := st.BeginMark()
	if k1.Mark(a) || k1.Mark(b) {
		t.Fatal("first Mark reported a duplicate")
	}
	if !k1.Mark(a) {
		t.Fatal("second Mark by the same marker missed the duplicate")
	}
	k1.End()
	k2 := st.BeginMark()
	defer k2.End()
	if k2.Mark(a) || !k2.Mark(a) {
		t.Fatal("a new marker did not start afresh")
	}
}

// Markers of concurrent callers take turns: each sees exactly its own
// duplicates (the race detector checks the plain stamps).
func TestMarkConcurrent(t *testing.T) {
	st := New()
	slots := []*Slot{NewSlot(ids.New()), NewSlot(ids.New()), NewSlot(ids.New())}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				k := st.BeginMark()
				for i, s := range append(slots, slots[1]) {
					if seen := k.Mark(s); seen != (i == 3) {
						t.Errorf("Mark of slot %d: seen %v", i, seen)
					}
				}
				k.End()
			}
		})
	}
	wg.Wait()
}

// Many goroutines Get, Wait and register callbacks while others fill and
// delete slots in random order: every reader sees each slot's one value
// (or the freed value, for deleted ones), and no waiter is left behind.
func TestConcurrentGetWaitFill(t *testing.T) {
	const nSlots, readers = 64, 16
	st := New()
	slots := newSlots(st, nSlots)
	want := make([]*pb.Value, nSlots)
	for i := range want {
		if i%7 == 3 {
			want[i] = errVal(fmt.Sprint("e", i))
		} else {
			want[i] = val(fmt.Sprint("v", i))
		}
	}
	// Slots 60..63 are deleted instead of filled.
	deleted := func(i int) bool { return i >= 60 }

	var wg sync.WaitGroup
	var callbacks atomic.Int32
	check := func(i int, v *pb.Value) {
		if deleted(i) {
			if !IsFreed(v) {
				t.Errorf("slot %d: got %v, want freed", i, v)
			}
		} else if v != want[i] {
			t.Errorf("slot %d: got %v, want %v", i, v, want[i])
		}
	}
	start := make(chan struct{})
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			<-start
			for range 20 {
				pick := make([]*Slot, 1+rng.IntN(5))
				idx := make([]int, len(pick))
				for k := range pick {
					idx[k] = rng.IntN(nSlots)
					pick[k] = slots[idx[k]]
				}
				switch r % 3 {
				case 0:
					vals, err := st.Get(context.Background(), pick, nil)
					if err != nil {
						t.Error(err)
						return
					}
					failed := false
					for k, v := range vals {
						if v != nil {
							check(idx[k], v)
							failed = failed || v.GetError() != nil
						}
					}
					if !failed {
						for k, v := range vals {
							if v == nil {
								t.Errorf("Get returned slot %d pending without an error", idx[k])
							}
						}
					}
				case 1:
					n := 1 + rng.IntN(len(pick))
					ready, err := st.Wait(context.Background(), pick, n, nil, nil)
					if err != nil {
						t.Error(err)
						return
					}
					c := 0
					for k, ok := range ready {
						if ok {
							c++
							check(idx[k], pick[k].Value())
						}
					}
					if c < n {
						t.Errorf("Wait(%d) returned %d ready", n, c)
					}
				case 2:
					done := make(chan struct{})
					i := idx[0]
					st.OnReady(pick[0], func(v *pb.Value) {
						check(i, v)
						callbacks.Add(1)
						close(done)
					})
					<-done
				}
			}
		}()
	}
	order := rand.Perm(nSlots)
	for f := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for k := f; k < nSlots; k += 4 {
				i := order[k]
				if deleted(i) {
					st.Free(slots[i])
				} else {
					st.Fill(slots[i], want[i])
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, s := range slots {
		if n := st.waiters(s); n != 0 {
			t.Fatalf("slot %d has %d waiters left", i, n)
		}
	}
}

func TestInitSlot(t *testing.T) {
	var s Slot
	id := ids.New()
	InitSlot(&s, id, nil)
	if s.ID() != id || s.Ready() {
		t.Fatal("InitSlot(nil)")
	}
	var r Slot
	v := val("v")
	InitSlot(&r, id, v)
	if r.Value() != v {
		t.Fatal("InitSlot(v)")
	}
}

// FillAll fills many slots under one lock: waiters wake, callbacks run
// (after the lock, in order), and a slot filled before keeps its value.
func TestFillAll(t *testing.T) {
	st := New()
	a, b, c := NewSlot(ids.New()), NewSlot(ids.New()), NewSlot(ids.New())
	st.Fill(b, &pb.Value{Data: []byte("earlier")})
	var got []string
	st.OnReady(a, func(v *pb.Value) { got = append(got, "a="+string(v.GetData())) })
	st.OnReady(c, func(v *pb.Value) { got = append(got, "c="+string(v.GetData())) })
	waited := make(chan []*pb.Value, 1)
	go func() {
		vals, _ := st.Get(context.Background(), []*Slot{a, c}, nil)
		waited <- vals
	}()
	st.FillAll([]Fill{{a, &pb.Value{Data: []byte("1")}}, {b, &pb.Value{Data: []byte("2")}}, {c, &pb.Value{Data: []byte("3")}}})
	if vals := <-waited; string(vals[0].GetData()) != "1" || string(vals[1].GetData()) != "3" {
		t.Fatalf("Get after FillAll: %v", vals)
	}
	if string(b.Value().GetData()) != "earlier" {
		t.Fatalf("a slot filled before: %q, want it kept", b.Value().GetData())
	}
	if strings.Join(got, " ") != "a=1 c=3" {
		t.Fatalf("callbacks ran as %v, want a=1 then c=3", got)
	}
	// OnReady on a ready slot runs at once; FillAll of nothing is nothing.
	st.OnReady(b, func(v *pb.Value) { got = append(got, "b="+string(v.GetData())) })
	st.FillAll(nil)
	if got[len(got)-1] != "b=earlier" {
		t.Fatalf("OnReady on a ready slot: %v", got)
	}
}
