package coreworker

import (
	"context"
	"runtime"
	"time"
	"weak"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Ref is a counted handle on an object. The ray package wraps it in its
// typed ObjectRef[T]; every copy of an ObjectRef shares one *Ref, and when
// the last copy becomes unreachable the garbage collector's cleanup drops
// the process's local reference.
type Ref struct {
	ID        ids.ID
	OwnerAddr string
	OwnerID   ids.ID

	// Err is set on a handle for a call that could not be submitted
	// (FailedRef); such a handle names no object.
	Err error

	entry *refcount.Entry // nil: no entry (a freed object's handle)
	slot  *memstore.Slot  // owned objects: where the value arrives
}

// FailedRef returns a handle standing for a call that failed before it
// was submitted.
func FailedRef(err error) *Ref { return &Ref{Err: err} }

// Wire returns the ref's codec form for nesting in values.
func (r *Ref) Wire() codec.Ref {
	return codec.Ref{ID: r.ID.Bytes(), OwnerID: r.OwnerID.Bytes(), OwnerAddress: r.OwnerAddr}
}

// Proto returns the ref's wire form.
func (r *Ref) Proto() *pb.ObjectRef {
	return &pb.ObjectRef{Id: r.ID.Bytes(), OwnerAddress: r.OwnerAddr, OwnerId: r.OwnerID.Bytes()}
}

// handle makes a handle on an entry that already counts it; when the
// handle is collected the count goes.
func (cw *CoreWorker) handle(e *refcount.Entry, slot *memstore.Slot) *Ref {
	o := e.Owner()
	h := &Ref{ID: e.ID(), OwnerAddr: o.Addr, OwnerID: o.ID, entry: e, slot: slot}
	runtime.AddCleanup(h, cw.dropLocalFn, e)
	return h
}

// owned reports whether this process owns the ref's object.
func (cw *CoreWorker) owned(r *Ref) bool { return r.OwnerID == cw.cfg.WorkerID }

// HandleFromWire turns a deserialized ref into a counted handle. A ref
// owned elsewhere makes this process a borrower; the owner is told before
// the current task replies (or soon, in a driver). A ref owned here whose
// object was freed yields a handle whose Get fails with ObjectFreed.
func (cw *CoreWorker) HandleFromWire(w codec.Ref) *Ref {
	id, _ := ids.FromBytes(w.ID)
	ownerID, _ := ids.FromBytes(w.OwnerID)
	r := refcount.Ref{ID: id, Owner: refcount.Owner{Addr: w.OwnerAddress, ID: ownerID}}
	var reused *Ref
	// A ref decoded again while an earlier decode's handle lives gets that
	// handle: copies share one handle and no new cleanup is registered
	// (values holding many refs are often read more than once).
	e, ok := cw.refs.Decode(r, refcount.Object, func(aux any) bool {
		if wp, ok := aux.(weak.Pointer[Ref]); ok {
			reused = wp.Value()
		}
		return reused != nil
	})
	if e == nil {
		return &Ref{ID: id, OwnerAddr: w.OwnerAddress, OwnerID: ownerID}
	}
	if ok {
		return reused
	}
	if !e.Owned() {
		cw.bg.kick() // a driver registers borrows in the background
	}
	h := cw.handle(e, e.Slot())
	cw.refs.SetAux(e, weak.Make(h))
	return h
}

// Put stores an encoded value, the concatenation of parts, owned by this
// process, and returns its handle. Values above the inline threshold go to
// the local node's store; callSite names the function that made it (for
// `raygo memory`). Put by a hosted actor (ctx is its method's), the value
// is freed when that actor leaves this process (actorobjects.go).
func (cw *CoreWorker) Put(ctx context.Context, parts [][]byte, nested []codec.Ref, callSite string) (*Ref, error) {
	h, err := cw.put(ctx, parts, nested, callSite)
	if err == nil {
		cw.putBy(ctx, h)
	}
	return h, err
}

// put is Put for the core worker's own values (large task arguments):
// they are the tasks', not the actor's that submitted them.
func (cw *CoreWorker) put(ctx context.Context, parts [][]byte, nested []codec.Ref, callSite string) (*Ref, error) {
	if err := cw.unusable(); err != nil {
		return nil, err
	}
	id := ids.New()
	v, err := cw.makeValue(ctx, id, parts, callSite)
	if err != nil {
		return nil, err
	}
	return cw.own(id, v, nested), nil
}

// own records a ready owned object with one handle.
func (cw *CoreWorker) own(id ids.ID, v *pb.Value, nested []codec.Ref) *Ref {
	e := cw.refs.NewOwnedSlot(id, v)
	cw.refs.AddContaining(e, codecRefs(nested))
	return cw.handle(e, e.Slot())
}

func codecRefs(list []codec.Ref) []refcount.Ref {
	if len(list) == 0 {
		return nil
	}
	out := make([]refcount.Ref, 0, len(list))
	for _, n := range list {
		id, ok := ids.FromBytes(n.ID)
		if !ok {
			continue
		}
		owner, _ := ids.FromBytes(n.OwnerID)
		out = append(out, refcount.Ref{ID: id, Owner: refcount.Owner{Addr: n.OwnerAddress, ID: owner}})
	}
	return out
}

// Free deletes owned objects now, whatever refers to them: later Gets fail
// with ObjectFreed.
func (cw *CoreWorker) Free(refs []*Ref) {
	list := make([]ids.ID, 0, len(refs))
	for _, r := range refs {
		if cw.owned(r) {
			list = append(list, r.ID)
		}
	}
	cw.refs.Free(list)
}

func errObjectFreed(id ids.ID) error {
	return &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectFreed, Detail: "no reference to it remained, ray.Free deleted it, or the actor that put it left the process it shared"}
}

// slotFor returns where r's value arrives: the owned object's slot, or
// for a borrowed one the slot its owner fills (asked for the first time
// it is needed).
func (cw *CoreWorker) slotFor(r *Ref) (*memstore.Slot, error) {
	if r.slot != nil {
		return r.slot, nil
	}
	if r.entry == nil {
		return nil, errObjectFreed(r.ID)
	}
	s, created := cw.refs.SlotFor(r.entry)
	if s == nil {
		return nil, errObjectFreed(r.ID)
	}
	if created {
		cw.resolver.fill(s, r.OwnerAddr)
	}
	return s, nil
}

// Get waits for the objects and returns their encoded bytes. It fails
// fast: as soon as any object holds an error, whatever its position, that
// error is returned. Bytes of objects in the local store alias shared
// memory: they are valid until release, which the caller calls once it
// has decoded them (release is never nil).
func (cw *CoreWorker) Get(ctx context.Context, refs []*Ref) (data [][]byte, release func(), err error) {
	var releases []func()
	release = func() {
		for _, f := range releases {
			f()
		}
		releases = nil
	}
	slots := make([]*memstore.Slot, len(refs))
	for i, r := range refs {
		if slots[i], err = cw.slotFor(r); err != nil {
			return nil, release, err
		}
	}
	blocking, done := cw.blockingFor(ctx)
	vals, err := cw.mem.Get(ctx, slots, blocking)
	done()
	if err != nil {
		return nil, release, ctxErr(ctx, "object "+refs[0].ID.String())
	}
	for i, v := range vals {
		if v != nil && v.GetError() != nil {
			if memstore.IsFreed(v) {
				return nil, release, errObjectFreed(refs[i].ID)
			}
			return nil, release, errs.FromInfo(v.GetError())
		}
	}
	data = make([][]byte, len(refs))
	for i, v := range vals {
		d, rel, err := cw.valueBytes(ctx, refs[i], v)
		if err != nil {
			release()
			return nil, release, err
		}
		if rel != nil {
			releases = append(releases, rel)
		}
		data[i] = d
	}
	return data, release, nil
}

// Wait returns the indexes of refs that are ready, at most numReturns of
// them, once numReturns are ready or the timeout passes (negative: no
// limit). Failed objects count as ready.
func (cw *CoreWorker) Wait(ctx context.Context, refs []*Ref, numReturns int, timeout time.Duration) ([]bool, error) {
	return cw.WaitFunc(ctx, len(refs), func(i int) *Ref { return refs[i] }, numReturns, timeout)
}

// WaitFunc is Wait over n refs given by ref(i), for callers that hold
// their refs in another form (it spares them building a slice).
func (cw *CoreWorker) WaitFunc(ctx context.Context, n int, ref func(i int) *Ref, numReturns int, timeout time.Duration) ([]bool, error) {
	// One pass finds duplicates, freed objects and what is ready; only a
	// Wait that must block collects the pending slots.
	ready := make([]bool, n)
	count, err := cw.waitScan(n, ref, ready)
	if err != nil {
		return nil, err
	}
	if count >= numReturns || count == n || timeout == 0 {
		return trimReady(ready, numReturns), nil
	}
	pending := make([]*memstore.Slot, 0, n-count)
	at := make([]int, 0, n-count)
	for i := range n {
		if !ready[i] {
			s, err := cw.slotFor(ref(i))
			if err != nil {
				return nil, err
			}
			pending = append(pending, s)
			at = append(at, i)
		}
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	blocking, unblock := cw.blockingFor(ctx)
	more, err := cw.mem.Wait(ctx, pending, numReturns-count, timer, blocking)
	unblock()
	if err != nil {
		return nil, ctxErr(ctx, "objects")
	}
	for k, ok := range more {
		ready[at[k]] = ok
	}
	return trimReady(ready, numReturns), nil
}

// waitScan is Wait's first pass: it refuses a freed object or a ref
// given twice, and flags and counts what is ready.
func (cw *CoreWorker) waitScan(n int, ref func(i int) *Ref, ready []bool) (count int, err error) {
	mark := cw.mem.BeginMark()
	defer mark.End()
	for i := range n {
		r := ref(i)
		s, err := cw.slotFor(r)
		if err != nil {
			return 0, err
		}
		if mark.Mark(s) {
			return 0, errs.Invalidf("raygo: Wait: ref %s appears twice", r.ID)
		}
		if s.Ready() {
			ready[i] = true
			count++
		}
	}
	return count, nil
}

// trimReady keeps the first n ready flags.
func trimReady(ready []bool, n int) []bool {
	c := 0
	for i, r := range ready {
		if r {
			if c >= n {
				ready[i] = false
			}
			c++
		}
	}
	return ready
}
