// Package memstore is a process's in-memory object store: the values of
// the objects it owns or has read (small values inline, and for large ones
// the location of their copy in a node's shared-memory store), and the
// waiting for values not there yet. It is the counterpart of Ray's
// CoreWorkerMemoryStore, without a table of its own: a Slot holds one
// object's value and hangs off the object's entry in the reference
// counter (refcount), the process's one table of objects, so an object
// costs one map entry, not two.
//
// A Slot is made empty (pending) when a task that returns the object is
// submitted, and filled once (Fill) when the value arrives; filling wakes
// every waiter. Waiting never starts a goroutine: Get and Wait block the
// calling goroutine on one channel for all the slots they wait for, and
// OnReady runs a callback in the goroutine that fills the slot. Free
// empties a slot whose object went away: readers still holding it get an
// ObjectFreed error.
//
// Error values (a failed task's returns carry its error) count as ready.
// Get fails fast: it returns as soon as any of its objects holds an error,
// whatever its position, as Ray's ray.get does.
package memstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Slot holds one object's value. Its methods are safe for concurrent use.
type Slot struct {
	id    ids.ID
	value atomic.Pointer[pb.Value] // nil until ready; set once
	mark  uint64                   // guarded by Store.markMu: the last Marker that saw it

	// Guarded by Store.mu:
	waiters   []*waiter
	callbacks []func(*pb.Value)
}

// ID is the slot's object id.
func (s *Slot) ID() ids.ID { return s.id }

// Value returns the slot's value, or nil while it is pending.
func (s *Slot) Value() *pb.Value { return s.value.Load() }

// Ready reports whether the value has arrived.
func (s *Slot) Ready() bool { return s.value.Load() != nil }

// NewSlot makes an empty (pending) slot for the object id.
func NewSlot(id ids.ID) *Slot { return &Slot{id: id} }

// Marker finds the slots that appear more than once in a list without a
// map: each slot it sees is stamped with the marker's number. It holds
// the store's mark lock from BeginMark to End (plain stores, not atomic
// ones, on the Wait path), so markers of concurrent callers take turns.
type Marker struct {
	st *Store
	m  uint64
}

// BeginMark starts a Marker; the caller must call End.
func (st *Store) BeginMark() Marker {
	st.markMu.Lock()
	st.marks++
	return Marker{st: st, m: st.marks}
}

// Mark stamps s and reports whether this marker had stamped it already.
func (k Marker) Mark(s *Slot) (seen bool) {
	seen = s.mark == k.m
	s.mark = k.m
	return seen
}

// End releases the mark lock.
func (k Marker) End() { k.st.markMu.Unlock() }

// InitSlot readies a slot allocated with something else (a reference
// counter's entry holds its object's slot) for the object id; v, if not
// nil, is its value already. It must not be called on a slot in use.
func InitSlot(s *Slot, id ids.ID, v *pb.Value) {
	s.id = id
	if v != nil {
		s.value.Store(v)
	}
}

// NewReadySlot makes a slot that already holds v (a Put value).
func NewReadySlot(id ids.ID, v *pb.Value) *Slot {
	s := &Slot{id: id}
	s.value.Store(v)
	return s
}

// waiter is one blocked Get or Wait.
type waiter struct {
	need     int  // more ready slots to wake for
	failFast bool // wake on the first error value
	woken    bool
	ch       chan struct{}
}

func (w *waiter) wake() {
	if !w.woken {
		w.woken = true
		close(w.ch)
	}
}

// Store guards the waiting on slots: their waiters and callbacks. It is
// safe for concurrent use.
type Store struct {
	mu sync.Mutex // guards every slot's waiters and callbacks

	markMu sync.Mutex // guards marks and every slot's mark (Marker)
	marks  uint64
}

// New returns a store.
func New() *Store { return &Store{} }

// Fill is a value for a slot (FillAll).
type Fill struct {
	Slot  *Slot
	Value *pb.Value
}

// FillAll is Fill for many slots under one lock; callbacks run after, in
// order. Slots filled before are left as they are.
func (st *Store) FillAll(fills []Fill) {
	if len(fills) == 0 {
		return
	}
	var cbs [][]func(*pb.Value)
	st.mu.Lock()
	for i, f := range fills {
		if c, _ := st.fillLocked(f.Slot, f.Value); len(c) > 0 {
			if cbs == nil {
				cbs = make([][]func(*pb.Value), len(fills))
			}
			cbs[i] = c
		}
	}
	st.mu.Unlock()
	for i, c := range cbs {
		runCallbacks(c, fills[i].Value)
	}
}

// Fill stores a slot's value and wakes its waiters; false if it was
// filled before.
func (st *Store) Fill(s *Slot, v *pb.Value) bool {
	st.mu.Lock()
	cbs, ok := st.fillLocked(s, v)
	st.mu.Unlock()
	runCallbacks(cbs, v)
	return ok
}

func (st *Store) fillLocked(s *Slot, v *pb.Value) ([]func(*pb.Value), bool) {
	if s.value.Load() != nil {
		return nil, false
	}
	s.value.Store(v)
	isErr := v.GetError() != nil
	for _, w := range s.waiters {
		if isErr && w.failFast {
			w.wake()
			continue
		}
		if w.need--; w.need <= 0 {
			w.wake()
		}
	}
	s.waiters = nil
	cbs := s.callbacks
	s.callbacks = nil
	return cbs, true
}

func runCallbacks(cbs []func(*pb.Value), v *pb.Value) {
	for _, cb := range cbs {
		cb(v)
	}
}

// Replace puts v in a filled slot in place of its value (a result that
// was lost and has been made again; a freed one too, when a rebuild
// needs it again); a pending slot is filled with it.
// Readers that already took the old value keep it.
func (st *Store) Replace(s *Slot, v *pb.Value) {
	st.mu.Lock()
	if old := s.value.Load(); old != nil {
		s.value.Store(v)
		st.mu.Unlock()
		return
	}
	cbs, _ := st.fillLocked(s, v)
	st.mu.Unlock()
	runCallbacks(cbs, v)
}

// OnReady calls cb with the slot's value once it is ready: at once, in
// this goroutine, if it is; otherwise in the goroutine that fills it. cb
// must not block.
func (st *Store) OnReady(s *Slot, cb func(*pb.Value)) {
	if v := s.value.Load(); v != nil {
		cb(v)
		return
	}
	st.mu.Lock()
	if v := s.value.Load(); v != nil {
		st.mu.Unlock()
		cb(v)
		return
	}
	s.callbacks = append(s.callbacks, cb)
	st.mu.Unlock()
}

// Free empties the slot of an object that went away and returns the
// value it held (nil if it was pending). Readers that still hold the slot
// (ray.Free deletes objects that are referenced) read an ObjectFreed error
// from now on; a pending slot is filled with it, so whoever waits wakes.
func (st *Store) Free(s *Slot) *pb.Value {
	st.mu.Lock()
	v := s.value.Swap(freed)
	var cbs []func(*pb.Value)
	if v == nil {
		s.value.Store(nil)
		cbs, _ = st.fillLocked(s, freed)
	}
	st.mu.Unlock()
	runCallbacks(cbs, freed)
	return v
}

// freed is what a freed slot holds: an ObjectFreed error naming no
// object (one value for all: freeing must not allocate). Readers that
// know the object's id say which (IsFreed, FreedValue).
var freed = &pb.Value{Error: errs.ToInfo(&errs.ObjectError{Kind: errs.KindObjectFreed,
	Detail: "no reference to it remained, ray.Free deleted it, or the actor that put it left the process it shared"})}

// IsFreed reports whether v is the value of a freed slot.
func IsFreed(v *pb.Value) bool { return v == freed }

// FreedValue is the value of the object id once deleted.
func FreedValue(id ids.ID) *pb.Value {
	return &pb.Value{Error: errs.ToInfo(&errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectFreed,
		Detail: "it was freed while being waited for"})}
}

// Get waits until every slot is ready, or any holds an error, and returns
// their values (nil for those still pending when an error cut the wait
// short). It returns ctx's error if ctx ends first. blocking, if not nil,
// is called once before the first time Get has to block.
func (st *Store) Get(ctx context.Context, slots []*Slot, blocking func()) ([]*pb.Value, error) {
	out := make([]*pb.Value, len(slots))
	if !fillReady(slots, out) {
		if blocking != nil {
			blocking()
		}
		if err := st.block(ctx, slots, len(slots), true); err != nil {
			return nil, err
		}
		fillReady(slots, out)
	}
	return out, nil
}

// fillReady copies ready values into out (all of them: the ones after an
// error too); it returns true if every slot is ready or one holds an
// error (Get can return).
func fillReady(slots []*Slot, out []*pb.Value) bool {
	all, failed := true, false
	for i, s := range slots {
		v := s.value.Load()
		out[i] = v
		if v == nil {
			all = false
		} else if v.GetError() != nil {
			failed = true
		}
	}
	return all || failed
}

// Wait blocks until n of the slots are ready (errors count as ready; an n
// above len(slots) waits for all of them), ctx ends, or timeout fires
// (nil: never), then reports which are ready. It returns ctx's error only
// when ctx ended.
func (st *Store) Wait(ctx context.Context, slots []*Slot, n int, timeout <-chan time.Time, blocking func()) ([]bool, error) {
	n = min(n, len(slots)) // more could never be ready: it would block for ever
	ready := make([]bool, len(slots))
	count := 0
	for i, s := range slots {
		if s.Ready() {
			ready[i] = true
			count++
		}
	}
	if count < n {
		if blocking != nil {
			blocking()
		}
		err := st.blockUntil(ctx, slots, n, false, timeout)
		if err != nil {
			return nil, err
		}
		for i, s := range slots {
			ready[i] = s.Ready()
		}
	}
	return ready, nil
}

func (st *Store) block(ctx context.Context, slots []*Slot, n int, failFast bool) error {
	return st.blockUntil(ctx, slots, n, failFast, nil)
}

// blockUntil registers one waiter on the pending slots and waits until
// n are ready (or, with failFast, one holds an error), ctx ends or done
// fires.
func (st *Store) blockUntil(ctx context.Context, slots []*Slot, n int, failFast bool, done <-chan time.Time) error {
	w := &waiter{failFast: failFast, ch: make(chan struct{})}
	st.mu.Lock()
	ready := 0
	for _, s := range slots {
		v := s.value.Load()
		if v == nil {
			continue
		}
		if failFast && v.GetError() != nil {
			st.mu.Unlock()
			return nil
		}
		ready++
	}
	if ready >= n {
		st.mu.Unlock()
		return nil
	}
	w.need = n - ready
	var pending []*Slot
	for _, s := range slots {
		if s.value.Load() == nil {
			s.waiters = append(s.waiters, w)
			pending = append(pending, s)
		}
	}
	st.mu.Unlock()
	var err error
	select {
	case <-w.ch:
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	st.mu.Lock()
	w.woken = true // no wake from here on
	for _, s := range pending {
		s.removeWaiterLocked(w)
	}
	st.mu.Unlock()
	return err
}

func (s *Slot) removeWaiterLocked(w *waiter) {
	for i, x := range s.waiters {
		if x == w {
			last := len(s.waiters) - 1
			s.waiters[i] = s.waiters[last]
			s.waiters[last] = nil
			s.waiters = s.waiters[:last]
			return
		}
	}
}
