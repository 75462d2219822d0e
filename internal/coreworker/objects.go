package coreworker

import (
	"context"
	"runtime"
	"time"
	"weak"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// object is this process's record of one object: an object it owns, or one
// it borrows (holds refs to) from another owner.
//
// An entry lives while any of its counts is positive (or, for an owned
// object, while any other process borrows it). When the last count drops,
// an owned object is freed (its store copy deleted); a borrowed one is
// forgotten and its owner told.
type object struct {
	id        ids.ID
	owned     bool
	ownerAddr string
	ownerID   ids.ID

	ready   bool
	readyCh chan struct{} // closed when ready; made when first waited for (readyChanLocked)
	value   *pb.Value     // inline bytes or a store location; error objects carry Error

	local     int                 // live ObjectRef handles in this process
	submitted int                 // in-flight tasks that use the object as (or inside) an argument
	contained int                 // values (owned or cached here) that contain a ref to it
	borrowers map[string]struct{} // owner side: processes borrowing it
	nested    []ids.ID            // refs contained in this object's value

	gone       bool              // removed from CoreWorker.objects (handles may still point at it)
	decoded    weak.Pointer[Ref] // the handle the last decode of a ref to it made
	registered bool              // borrower side: the owner knows this process borrows it
	task       *task             // owner side: the task that produces it, while pending
	waiters    []waiterEntry     // Wait calls to tell when it is ready
	lastWait   uint64            // the last Wait call that looked at it (finds duplicates)
}

// readyChanLocked returns a channel closed when the object is ready. Most
// objects are never waited for, so the channel is made on first use.
func (o *object) readyChanLocked() <-chan struct{} {
	if o.readyCh == nil {
		o.readyCh = make(chan struct{})
		if o.ready {
			close(o.readyCh)
		}
	}
	return o.readyCh
}

func (o *object) deadLocked() bool {
	return o.local == 0 && o.submitted == 0 && o.contained == 0 && len(o.borrowers) == 0
}

// Ref is a counted handle on an object. The ray package wraps it in its
// typed ObjectRef[T]; every copy of an ObjectRef shares one *Ref, and when
// the last copy becomes unreachable the garbage collector's cleanup drops
// the process's local count.
type Ref struct {
	ID        ids.ID
	OwnerAddr string
	OwnerID   ids.ID

	// Err is set on a handle for a call that could not be submitted
	// (FailedRef); such a handle names no object.
	Err error

	obj *object // the entry this handle counts on (nil: none); check gone
}

// FailedRef returns a handle standing for a call that failed before it
// was submitted.
func FailedRef(err error) *Ref { return &Ref{Err: err} }

// lookupLocked finds the entry of a handle: the one it points at while
// that is still in the table, else by id.
func (cw *CoreWorker) lookupLocked(r *Ref) (*object, bool) {
	if o := r.obj; o != nil {
		return o, !o.gone
	}
	o, ok := cw.objects[r.ID]
	return o, ok
}

// Wire returns the ref's codec form for nesting in values.
func (r *Ref) Wire() codec.Ref {
	return codec.Ref{ID: r.ID.Bytes(), OwnerID: r.OwnerID.Bytes(), OwnerAddress: r.OwnerAddr}
}

// Proto returns the ref's wire form.
func (r *Ref) Proto() *pb.ObjectRef {
	return &pb.ObjectRef{Id: r.ID.Bytes(), OwnerAddress: r.OwnerAddr, OwnerId: r.OwnerID.Bytes()}
}

// newHandleLocked returns a fresh handle on o and counts it.
func (cw *CoreWorker) newHandleLocked(o *object) *Ref {
	o.local++
	return cw.handleOn(o)
}

// handleOn makes a handle on o whose collection drops one of o's local
// counts; the caller has counted it.
func (cw *CoreWorker) handleOn(o *object) *Ref {
	h := &Ref{ID: o.id, OwnerAddr: o.ownerAddr, OwnerID: o.ownerID, obj: o}
	runtime.AddCleanup(h, cw.dropLocalFn, o)
	return h
}

// dropLocal runs when a handle on o becomes unreachable. (The cleanup's
// argument is the entry itself, which never points back at its handles:
// its weak pointer does not count.)
func (cw *CoreWorker) dropLocal(o *object) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	if !o.gone && o.local > 0 {
		o.local--
		cw.maybeFreeLocked(o)
	}
}

// entryLocked returns the entry for a ref, creating a borrowed one for refs
// owned elsewhere. For a ref owned here whose entry is gone, it returns nil
// (the object was freed).
func (cw *CoreWorker) entryLocked(id ids.ID, ownerAddr string, ownerID ids.ID) *object {
	if o, ok := cw.objects[id]; ok {
		return o
	}
	if ownerID == cw.workerID {
		return nil
	}
	o := &object{id: id, ownerAddr: ownerAddr, ownerID: ownerID}
	cw.objects[id] = o
	return o
}

// HandleFromWire turns a deserialized ref into a counted handle. A ref
// owned elsewhere makes this process a borrower; the owner is told before
// the current task replies (see flushBorrows). A ref owned here whose
// object was freed yields a handle whose Get fails with ObjectFreed.
func (cw *CoreWorker) HandleFromWire(r codec.Ref) *Ref {
	id, _ := ids.FromBytes(r.ID)
	ownerID, _ := ids.FromBytes(r.OwnerID)
	cw.mu.Lock()
	defer cw.mu.Unlock()
	o := cw.entryLocked(id, r.OwnerAddress, ownerID)
	if o == nil {
		return &Ref{ID: id, OwnerAddr: r.OwnerAddress, OwnerID: ownerID}
	}
	if !o.owned && !o.registered {
		o.registered = true
		cw.pendingBorrows[o.ownerAddr] = append(cw.pendingBorrows[o.ownerAddr], id)
	}
	// A ref decoded again while an earlier decode's handle lives gets that
	// handle: copies share one handle, and no new cleanup is registered
	// (values holding many refs are often read more than once).
	if h := o.decoded.Value(); h != nil {
		return h
	}
	h := cw.newHandleLocked(o)
	o.decoded = weak.Make(h)
	return h
}

// maybeFreeLocked frees or forgets an object once nothing refers to it.
func (cw *CoreWorker) maybeFreeLocked(o *object) {
	if !o.deadLocked() {
		return
	}
	delete(cw.objects, o.id)
	o.gone = true
	if o.owned {
		if o.value != nil && o.value.InStore {
			cw.storeFrees[o.value.StoreAddress] = append(cw.storeFrees[o.value.StoreAddress], o.id)
			cw.kickBackground()
		}
	} else if o.registered {
		cw.borrowRemovals[o.ownerAddr] = append(cw.borrowRemovals[o.ownerAddr], o.id)
		cw.kickBackground()
	}
	for _, n := range o.nested {
		if c, ok := cw.objects[n]; ok && c.contained > 0 {
			c.contained--
			cw.maybeFreeLocked(c)
		}
	}
}

// addContainedLocked records that a value now holds refs to nested.
func (cw *CoreWorker) addContainedLocked(nested []codec.Ref) []ids.ID {
	out := make([]ids.ID, 0, len(nested))
	for _, r := range nested {
		id, _ := ids.FromBytes(r.ID)
		ownerID, _ := ids.FromBytes(r.OwnerID)
		o := cw.entryLocked(id, r.OwnerAddress, ownerID)
		if o == nil {
			continue
		}
		o.contained++
		out = append(out, id)
	}
	return out
}

// setReadyLocked stores an object's value and wakes its waiters.
func (cw *CoreWorker) setReadyLocked(o *object, v *pb.Value) {
	if o.ready {
		return
	}
	o.value = v
	o.ready = true
	o.task = nil
	if o.readyCh != nil {
		close(o.readyCh)
	}
	for _, e := range o.waiters {
		e.w.ch <- e.index // buffered for every index: never blocks
	}
	o.waiters = nil
}

// ownedEntryLocked creates an owned object entry with one local handle.
func (cw *CoreWorker) ownedEntryLocked(id ids.ID) (*object, *Ref) {
	o, h := cw.newOwned(id)
	cw.objects[id] = o
	return o, h
}

// newOwned makes an owned object entry with one handle on it, without the
// lock: the caller adds the entry to cw.objects (under cw.mu) before
// anything can look it up. (A handle's GC cleanup costs more than the rest
// of a submission's bookkeeping, so the submit path makes it unlocked.)
func (cw *CoreWorker) newOwned(id ids.ID) (*object, *Ref) {
	o := &object{id: id, owned: true, ownerAddr: cw.address, ownerID: cw.workerID, local: 1}
	return o, cw.handleOn(o)
}

// Put stores an encoded value, the concatenation of parts, owned by this
// process, and returns its handle. Values above the inline threshold go to
// the local node's store; callSite names the function that made it (for
// `raygo memory`).
func (cw *CoreWorker) Put(ctx context.Context, parts [][]byte, nested []codec.Ref, callSite string) (*Ref, error) {
	id := ids.New()
	v, err := cw.makeValue(ctx, id, parts, callSite)
	if err != nil {
		return nil, err
	}
	cw.mu.Lock()
	defer cw.mu.Unlock()
	o, h := cw.ownedEntryLocked(id)
	o.nested = cw.addContainedLocked(nested)
	cw.setReadyLocked(o, v)
	return h, nil
}

// Free deletes owned objects now, whatever refers to them: later Gets fail
// with ObjectFreed.
func (cw *CoreWorker) Free(refs []*Ref) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	for _, r := range refs {
		o, ok := cw.objects[r.ID]
		if !ok || !o.owned {
			continue
		}
		o.local, o.submitted, o.contained, o.borrowers = 0, 0, 0, nil
		cw.maybeFreeLocked(o)
	}
}

// Get waits for each object and returns its encoded bytes (or its error).
// Bytes of objects in the local store alias shared memory: they are valid
// until release is called, which the caller must do once it has decoded
// them (also when Get fails).
func (cw *CoreWorker) Get(ctx context.Context, refs []*Ref) (data [][]byte, objErrs []error, release func(), err error) {
	data = make([][]byte, len(refs))
	objErrs = make([]error, len(refs))
	var releases []func()
	release = func() {
		for _, f := range releases {
			f()
		}
		releases = nil
	}
	blocked := false
	defer func() {
		if blocked {
			cw.notifyBlocked(false)
		}
		if err != nil {
			release()
		}
	}()
	for i, r := range refs {
		v, err := cw.valueOf(ctx, r, &blocked)
		if err != nil {
			return nil, nil, release, err
		}
		d, rel, err := cw.valueBytes(ctx, r, v)
		if err != nil {
			return nil, nil, release, err
		}
		if rel != nil {
			releases = append(releases, rel)
		}
		data[i], objErrs[i] = d, errs.FromInfo(v.GetError())
	}
	return data, objErrs, release, nil
}

// valueOf returns an object's value (inline bytes, a store location, or
// an error), waiting until it is ready. The first time a task's Get has
// to wait, it tells the node daemon the task is blocked (*blocked is set;
// the caller reports the end).
func (cw *CoreWorker) valueOf(ctx context.Context, r *Ref, blocked *bool) (*pb.Value, error) {
	cw.mu.Lock()
	o, ok := cw.lookupLocked(r)
	if ok && o.ready {
		v := o.value
		cw.mu.Unlock()
		return v, nil
	}
	cw.mu.Unlock()
	if !*blocked && cw.inTask() {
		*blocked = true
		cw.blocking(ctx)
	}
	return cw.waitValue(ctx, r, ok, o)
}

// waitValue waits until the object is ready: locally for owned objects,
// through the owner otherwise.
func (cw *CoreWorker) waitValue(ctx context.Context, r *Ref, known bool, o *object) (*pb.Value, error) {
	if r.OwnerID == cw.workerID {
		if !known {
			return nil, &errs.ObjectError{ObjectID: r.ID.String(), Kind: errs.KindObjectFreed, Detail: "no reference to it remained, or ray.Free deleted it"}
		}
		cw.mu.Lock()
		ready := o.readyChanLocked()
		cw.mu.Unlock()
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, getTimeout(ctx, r)
		}
		cw.mu.Lock()
		defer cw.mu.Unlock()
		if o.gone {
			return nil, &errs.ObjectError{ObjectID: r.ID.String(), Kind: errs.KindObjectFreed}
		}
		return o.value, nil
	}
	v, err := cw.askOwner(ctx, r)
	if err != nil {
		return nil, err
	}
	cw.mu.Lock()
	if o, ok := cw.objects[r.ID]; ok {
		cw.setReadyLocked(o, v)
	}
	cw.mu.Unlock()
	return v, nil
}

func getTimeout(ctx context.Context, r *Ref) error {
	if ctx.Err() == context.DeadlineExceeded {
		return &errs.Status{Kind: errs.KindTimeout, Message: "raygo: Get timed out waiting for object " + r.ID.String()}
	}
	return ctx.Err()
}

// askOwner asks a remote owner for an object's value, waiting until it is ready.
func (cw *CoreWorker) askOwner(ctx context.Context, r *Ref) (*pb.Value, error) {
	conn, err := cw.pool.Get(r.OwnerAddr)
	if err != nil {
		return nil, err
	}
	reply, err := pb.NewCoreWorkerClient(conn).WaitObject(ctx, &pb.WaitObjectRequest{ObjectId: r.ID.Bytes()})
	if err != nil {
		if ctx.Err() != nil {
			return nil, getTimeout(ctx, r)
		}
		if isUnavailable(err) {
			return nil, &errs.ObjectError{ObjectID: r.ID.String(), Kind: errs.KindOwnerDied, Detail: "owner at " + r.OwnerAddr + " is unreachable"}
		}
		return nil, err
	}
	return reply.GetValue(), nil
}

// Wait returns the indexes of refs that are ready, at most numReturns of
// them, once numReturns are ready or the timeout passes (negative: none).
func (cw *CoreWorker) Wait(ctx context.Context, refs []*Ref, numReturns int, timeout time.Duration) ([]bool, error) {
	return cw.WaitFunc(ctx, len(refs), func(i int) *Ref { return refs[i] }, numReturns, timeout)
}

// WaitFunc is Wait over n refs given by ref(i), for callers that hold
// their refs in another form (it spares them building a slice).
func (cw *CoreWorker) WaitFunc(ctx context.Context, n int, ref func(i int) *Ref, numReturns int, timeout time.Duration) ([]bool, error) {
	ready := make([]bool, n)
	count, pending := 0, 0
	cw.mu.Lock()
	cw.waitCalls++
	mark := cw.waitCalls
	// First pass: what is ready, duplicates, freed objects.
	for i := range n {
		r := ref(i)
		o, ok := cw.lookupLocked(r)
		if ok {
			if o.lastWait == mark { // seen earlier in this call
				cw.mu.Unlock()
				return nil, errs.Invalidf("raygo: Wait: ref %s appears twice", r.ID)
			}
			o.lastWait = mark
		}
		switch {
		case ok && o.ready:
			ready[i] = true
			count++
		case r.OwnerID == cw.workerID && !ok:
			cw.mu.Unlock()
			return nil, &errs.ObjectError{ObjectID: r.ID.String(), Kind: errs.KindObjectFreed}
		default:
			pending++
		}
	}
	if count >= numReturns || pending == 0 || timeout == 0 {
		cw.mu.Unlock()
		return trimReady(ready, numReturns), nil
	}
	// Second pass, only when it must block: the pending refs, owned ones
	// (woken through their entries) and borrowed ones (asked of owners).
	var owned, remote []int
	var ownedObjs []*object
	for i := range n {
		if ready[i] {
			continue
		}
		r := ref(i)
		if r.OwnerID == cw.workerID {
			o, _ := cw.lookupLocked(r)
			owned = append(owned, i)
			ownedObjs = append(ownedObjs, o)
		} else {
			remote = append(remote, i)
		}
	}
	// Not enough are ready: hear of the rest. The channel holds an index
	// for every ref, so a wake-up never blocks.
	w := &waiter{ch: make(chan int, n)}
	for k, o := range ownedObjs {
		o.waiters = append(o.waiters, waiterEntry{w: w, index: owned[k]})
	}
	cw.mu.Unlock()
	defer func() {
		cw.mu.Lock()
		cw.removeWaiterLocked(w, ownedObjs)
		cw.mu.Unlock()
	}()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, i := range remote {
		r := ref(i)
		cw.wg.Add(1)
		go func() {
			defer cw.wg.Done()
			if _, err := cw.waitValue(wctx, r, false, nil); err == nil || wctx.Err() == nil {
				w.ch <- i
			}
		}()
	}
	if cw.inTask() {
		cw.blocking(ctx)
		defer cw.notifyBlocked(false)
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	for count < numReturns && pending > 0 {
		select {
		case i := <-w.ch:
			if !ready[i] {
				ready[i] = true
				count++
				pending--
			}
		case <-timer:
			return trimReady(ready, numReturns), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return trimReady(ready, numReturns), nil
}

// waiter is one Wait call: objects it waits for send their index in the
// call's ref list on ch (buffered for all of them) when they become ready.
type waiter struct {
	ch chan int
}

type waiterEntry struct {
	w     *waiter
	index int
}

// removeWaiterLocked unregisters w from objects.
func (cw *CoreWorker) removeWaiterLocked(w *waiter, objects []*object) {
	for _, o := range objects {
		kept := o.waiters[:0]
		for _, e := range o.waiters {
			if e.w != w {
				kept = append(kept, e)
			}
		}
		o.waiters = kept
	}
}

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

// blocking is called when a task starts waiting for objects: the node
// daemon lends its CPU to others, and its stream's queue moves on (see
// pushTasks).
func (cw *CoreWorker) blocking(ctx context.Context) {
	cw.notifyBlocked(true)
	if hook, ok := ctx.Value(blockHookKey{}).(func()); ok {
		hook()
	}
}
