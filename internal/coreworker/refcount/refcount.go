// Package refcount is a process's reference counter: the table of every
// object (and actor) the process owns or borrows, and why each is still
// needed. It is the counterpart of Ray's ReferenceCounter
// (src/ray/core_worker/reference_count.h).
//
// An entry counts, for one object:
//
//   - local: handles (ObjectRefs) alive in this process;
//   - submitted: pending tasks that take the object as an argument (or
//     inside one);
//   - contained: values held here (owned, or cached borrowed ones) that
//     contain a ref to it;
//   - borrowers (owner side): other processes that told the owner they
//     hold refs to it;
//   - lineage (owner side): finished tasks whose outputs are still in
//     scope and that took the object as an argument, so it may be needed
//     to rebuild them.
//
// When every count but lineage is zero the object is out of scope: its
// value can be dropped, and an owned object's store copy freed
// (Sink.ObjectFreed); a borrowed one's owner is told (Sink.BorrowEnded).
// The entry itself goes when lineage is zero too (Sink.LineageReleased
// for owned objects whose lineage was tracked).
//
// The Counter's table is the process's one table of objects: each entry
// carries its object's value slot (memstore.Slot), so an object costs one
// map entry.
//
// Actors are counted the same way (Kind Actor): handles are local refs,
// handles sent to other processes make them borrowers, and an owned
// actor with no reference left anywhere is reported to the Sink
// (ActorOutOfScope) so that its owner can end it, as Ray does.
//
// The Counter owns all of this state behind one mutex. It never calls out
// while holding it: the events an operation produces are delivered to the
// Sink after the lock is released, in the calling goroutine, so a Sink
// must not block for long.
package refcount

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Kind says what an entry counts references to.
type Kind uint8

const (
	// Object is an object (a task's return or a Put value).
	Object Kind = iota
	// Actor is an actor; its references are actor handles.
	Actor
)

// Owner names the process that owns an object: its address and worker id.
type Owner struct {
	Addr string
	ID   ids.ID
}

// Ref names an object and its owner, as refs travel on the wire.
type Ref struct {
	ID    ids.ID
	Owner Owner
}

// Sink receives the counter's events, one call per entry (no slice is
// made for them: an object's last handle going is the hot case). Calls
// come after the counter's lock is released, from whichever goroutine
// made the change.
type Sink interface {
	// ObjectFreed: the object went out of scope; drop its value (e.Slot)
	// and, if owned (e.Owned), its copy in a node's store.
	ObjectFreed(e *Entry)
	// BorrowEnded: this process holds no reference any more to the object,
	// and its owner (e.Owner) had been told that it borrowed it.
	BorrowEnded(e *Entry)
	// ActorOutOfScope: no reference to the owned actor remains anywhere.
	ActorOutOfScope(e *Entry)
	// LineageReleased: an owned object out of scope whose lineage is no
	// longer needed either (see TrackLineage); its entry is gone.
	LineageReleased(e *Entry)
}

// Entry is the counter's record of one object. Handles keep a pointer to
// their entry so that counting needs no lookup; its fields are read and
// written only by the Counter, under its lock.
type Entry struct {
	id    ids.ID
	owner Owner
	owned bool
	kind  Kind

	local, submitted, contained, lineage int32
	borrowers                            map[string]struct{} // owner side
	nested                               []*Entry            // refs contained in this object's value
	registered                           bool                // borrower side: the owner knows
	pending                              bool                // borrower side: registration queued
	outOfScope                           bool                // values freed, kept for lineage
	gone                                 bool                // removed from the table
	tracked                              bool                // owner side: report LineageReleased
	tag                                  atomic.Uint32       // the caller's mark (SetTag); read without the lock

	slot    *memstore.Slot // the object's value; set at creation (owned) or on first need (borrowed)
	slotBuf memstore.Slot  // storage for slot, allocated with the entry
	aux     any            // the caller's, through Aux/SetAux
}

// ID is the entry's object (or actor) id.
func (e *Entry) ID() ids.ID { return e.id }

// Owner is the entry's owner.
func (e *Entry) Owner() Owner { return e.owner }

// Owned reports whether this process owns the object.
func (e *Entry) Owned() bool { return e.owned }

// Kind says what the entry counts references to.
func (e *Entry) Kind() Kind { return e.kind }

// Slot is the object's value slot: set when the entry was made for an
// owned object, else by SlotFor (nil until then). Once the entry is out
// of scope it no longer changes.
func (e *Entry) Slot() *memstore.Slot { return e.slot }

func (e *Entry) inScope() bool {
	return e.local > 0 || e.submitted > 0 || e.contained > 0 || len(e.borrowers) > 0
}

// Counter is a process's reference table. It is safe for concurrent use.
type Counter struct {
	self Owner
	sink Sink

	mu      sync.Mutex
	objects map[ids.ID]*Entry   // guarded by mu
	borrows map[string][]ids.ID // guarded by mu; owner -> ids to register as borrowed
}

// New returns an empty counter for the process self, reporting to sink.
func New(self Owner, sink Sink) *Counter {
	return &Counter{self: self, sink: sink, objects: map[ids.ID]*Entry{}, borrows: map[string][]ids.ID{}}
}

// Self is the process the counter counts for.
func (c *Counter) Self() Owner { return c.self }

// event is one Sink call to make after unlock.
type event struct {
	kind uint8 // evFreed, evEnded, evActor, evReleased
	e    *Entry
}

const (
	evFreed = iota
	evEnded
	evActor
	evReleased
)

// events collects what an operation reports, delivered after unlock. The
// first few sit in the struct itself, on the caller's stack.
type events struct {
	inline [4]event
	n      int     // events in inline
	more   []event // past the first four
}

func (ev *events) add(kind uint8, e *Entry) {
	if ev.n < len(ev.inline) {
		ev.inline[ev.n] = event{kind, e}
		ev.n++
		return
	}
	ev.more = append(ev.more, event{kind, e})
}

func (c *Counter) deliver(ev *events) {
	for i := range ev.n {
		c.deliverOne(ev.inline[i])
	}
	for _, x := range ev.more {
		c.deliverOne(x)
	}
}

func (c *Counter) deliverOne(x event) {
	switch x.kind {
	case evFreed:
		c.sink.ObjectFreed(x.e)
	case evEnded:
		c.sink.BorrowEnded(x.e)
	case evActor:
		c.sink.ActorOutOfScope(x.e)
	case evReleased:
		c.sink.LineageReleased(x.e)
	}
}

// unlock releases the lock and delivers what the operation produced.
func (c *Counter) unlock(ev *events) {
	c.mu.Unlock()
	if ev.n > 0 {
		c.deliver(ev)
	}
}

// NewOwned makes an entry for an object this process will own, whose
// value arrives in slot, with one local reference, without adding it to
// the table: a caller preparing a task makes its return entries outside
// the lock and adds them with AddOwned.
func (c *Counter) NewOwned(id ids.ID, slot *memstore.Slot) *Entry {
	return &Entry{id: id, owner: c.self, owned: true, local: 1, slot: slot}
}

// AddOwned adds entries made by NewOwned to the table.
func (c *Counter) AddOwned(es ...*Entry) {
	c.mu.Lock()
	for _, e := range es {
		c.objects[e.id] = e
	}
	c.mu.Unlock()
}

// NewOwnedSlot is NewOwned with the object's slot allocated with the
// entry (one allocation for both); v, if not nil, is its value already.
func (c *Counter) NewOwnedSlot(id ids.ID, v *pb.Value) *Entry {
	e := &Entry{id: id, owner: c.self, owned: true, local: 1}
	memstore.InitSlot(&e.slotBuf, id, v)
	e.slot = &e.slotBuf
	return e
}

// Own makes and adds an owned entry with one local reference, recording
// the refs its value contains; slot holds its value (nil for an actor).
func (c *Counter) Own(id ids.ID, kind Kind, contains []Ref, slot *memstore.Slot) *Entry {
	e := c.NewOwned(id, slot)
	e.kind = kind
	c.mu.Lock()
	c.objects[id] = e
	e.nested = c.containLocked(contains)
	c.mu.Unlock()
	return e
}

// AddContaining adds an entry made by NewOwned or NewOwnedSlot to the
// table with the refs its value contains (a Put value holding refs).
func (c *Counter) AddContaining(e *Entry, contains []Ref) {
	c.mu.Lock()
	c.objects[e.id] = e
	e.nested = c.containLocked(contains)
	c.mu.Unlock()
}

// SetContains records the refs an object's value contains (a task's
// return value arrived); they stay in scope while it does. registered
// says the owners of borrowed ones already know this process borrows them
// (the worker that made the value told them before replying).
func (c *Counter) SetContains(e *Entry, contains []Ref, registered bool) {
	if len(contains) == 0 {
		return
	}
	c.mu.Lock()
	if e.gone || e.outOfScope {
		// Freed before its value arrived: nothing keeps the refs.
		c.mu.Unlock()
		return
	}
	nested := c.containLocked(contains)
	if registered {
		for _, n := range nested {
			if !n.owned && !n.registered {
				if n.pending {
					c.dropPendingLocked(n)
				}
				n.registered = true
			}
		}
	}
	e.nested = append(e.nested, nested...)
	c.mu.Unlock()
}

// containLocked counts one containing value for each ref, making borrowed
// entries for refs owned elsewhere. Refs owned here whose entries are
// gone are skipped (their objects were freed).
func (c *Counter) containLocked(refs []Ref) []*Entry {
	if len(refs) == 0 {
		return nil
	}
	out := make([]*Entry, 0, len(refs))
	for _, r := range refs {
		e := c.entryLocked(r)
		if e == nil {
			continue
		}
		e.contained++
		out = append(out, e)
	}
	return out
}

// entryLocked returns the live entry for a ref, making a borrowed one for
// refs owned elsewhere; nil for a ref owned here whose entry is gone.
func (c *Counter) entryLocked(r Ref) *Entry {
	if e, ok := c.objects[r.ID]; ok && !e.outOfScope {
		return e
	}
	if r.Owner.ID == c.self.ID {
		return nil
	}
	e := &Entry{id: r.ID, owner: r.Owner}
	c.objects[r.ID] = e
	return e
}

// Lookup returns the live entry for id.
func (c *Counter) Lookup(id ids.ID) (*Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.objects[id]
	if !ok || e.outOfScope {
		return nil, false
	}
	return e, true
}

// LineageOnly returns the entry of an owned object that is out of scope
// but still in the table because the lineage of a later task needs it
// (its value was freed): the owner rebuilds it when that later task is
// rebuilt.
func (c *Counter) LineageOnly(id ids.ID) (*Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.objects[id]
	if !ok || !e.outOfScope || e.gone || !e.owned || e.lineage == 0 {
		return nil, false
	}
	return e, true
}

// ValueOf returns the value of object id if this process has it (owned,
// or borrowed and fetched), else nil. It makes no slot.
func (c *Counter) ValueOf(id ids.ID) *pb.Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.objects[id]; ok && !e.outOfScope && e.slot != nil {
		return e.slot.Value()
	}
	return nil
}

// Live reports whether e is still in the table and in scope.
func (c *Counter) Live(e *Entry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !e.gone && !e.outOfScope
}

// AddLocal counts one more handle on e. It fails with ObjectFreed if e is
// gone.
func (c *Counter) AddLocal(e *Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gone || e.outOfScope {
		return freedErr(e.id)
	}
	e.local++
	return nil
}

// RemoveLocal drops one handle on e (a handle was collected).
func (c *Counter) RemoveLocal(e *Entry) {
	var ev events
	c.mu.Lock()
	if !e.gone && !e.outOfScope && e.local > 0 {
		e.local--
		c.maybeReleaseLocked(e, &ev)
	}
	c.unlock(&ev)
}

// Decode returns the entry for a ref read off the wire with one more
// local reference, making a borrowed entry for a ref owned elsewhere; a
// borrowed entry seen for the first time is queued for registration with
// its owner (TakeBorrows). For a ref owned here whose object was freed it
// returns nil.
//
// reuse, if not nil, is offered the entry's Aux value (a handle cached by
// an earlier decode, say); when it returns true the caller reuses that
// handle and no reference is counted.
func (c *Counter) Decode(r Ref, kind Kind, reuse func(aux any) bool) (e *Entry, reused bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e = c.entryLocked(r)
	if e == nil {
		return nil, false
	}
	if e.local == 0 && e.submitted == 0 && e.contained == 0 {
		e.kind = kind
	}
	if !e.owned && !e.registered && !e.pending {
		e.pending = true
		c.borrows[e.owner.Addr] = append(c.borrows[e.owner.Addr], e.id)
	}
	if reuse != nil && e.aux != nil && reuse(e.aux) {
		return e, true
	}
	e.local++
	return e, false
}

// SlotFor returns e's value slot, making an empty one if e has none yet
// (a borrowed object read for the first time: created is then true and
// the caller asks the owner for the value). It returns nil for an entry
// out of scope.
func (c *Counter) SlotFor(e *Entry) (s *memstore.Slot, created bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gone || e.outOfScope {
		return nil, false
	}
	if e.slot == nil {
		memstore.InitSlot(&e.slotBuf, e.id, nil)
		e.slot = &e.slotBuf
		created = true
	}
	return e.slot, created
}

// Tag returns the caller's mark on e (SetTag); 0 if none.
func (e *Entry) Tag() uint32 { return e.tag.Load() }

// SetTag marks e with tag, a number of the caller's (0: none), which
// FreeTagged finds.
func (c *Counter) SetTag(e *Entry, tag uint32) { e.tag.Store(tag) }

// FreeTagged frees, as Free does, every owned object in scope marked
// tag (not 0), and returns how many. It scans the whole table: for rare
// events (a hosted actor leaving its process).
func (c *Counter) FreeTagged(tag uint32) int {
	if tag == 0 {
		return 0
	}
	var ev events
	n := 0
	c.mu.Lock()
	for _, e := range c.objects {
		if e.owned && !e.outOfScope && e.kind == Object && e.tag.Load() == tag {
			c.freeLocked(e, &ev)
			n++
		}
	}
	c.unlock(&ev)
	return n
}

// Aux returns the caller's value stored on e.
func (c *Counter) Aux(e *Entry) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.aux
}

// SetAux stores a value of the caller's on e.
func (c *Counter) SetAux(e *Entry, v any) {
	c.mu.Lock()
	e.aux = v
	c.mu.Unlock()
}

// TakeBorrows returns the borrowed refs not yet registered with their
// owners, by owner address, and marks them registered: the caller tells
// the owners (a worker does before a task replies, while the task's
// caller still holds the refs, so an object is never briefly unowned).
func (c *Counter) TakeBorrows() map[string][]ids.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.borrows) == 0 {
		return nil
	}
	out := c.borrows
	c.borrows = map[string][]ids.ID{}
	for _, list := range out {
		for _, id := range list {
			if e, ok := c.objects[id]; ok {
				e.pending, e.registered = false, true
			}
		}
	}
	return out
}

// MarkRegistered records that the owners of these borrowed refs already
// know this process borrows them (the worker that returned a value
// containing them registered this process, its caller).
func (c *Counter) MarkRegistered(refs []*Entry) {
	c.mu.Lock()
	for _, e := range refs {
		if !e.owned {
			e.registered = true
		}
	}
	c.mu.Unlock()
}

// RegisteredBorrow reports whether this process holds id as a borrowed
// ref its owner already knows of (registered, in scope). A borrow-ended
// message queued for an earlier entry of the same id must then not be
// sent: the owner would drop this process while it borrows the object
// again.
func (c *Counter) RegisteredBorrow(id ids.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.objects[id]
	return ok && !e.owned && !e.outOfScope && e.registered
}

// Hold counts one more pending use of each entry (a task argument, or an
// actor with calls pending). It fails with ObjectFreed, and holds
// nothing, if one of them is gone.
func (c *Counter) Hold(es ...*Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range es {
		if e.gone || e.outOfScope {
			return freedErr(e.id)
		}
	}
	for _, e := range es {
		e.submitted++
	}
	return nil
}

// HoldIDs is Hold by id, for refs nested in argument values: ids not in
// the table are skipped. It returns the entries it held.
func (c *Counter) HoldIDs(list []ids.ID) []*Entry {
	if len(list) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Entry, 0, len(list))
	for _, id := range list {
		if e, ok := c.objects[id]; ok && !e.outOfScope {
			e.submitted++
			out = append(out, e)
		}
	}
	return out
}

// Release drops one pending use of each entry (the task finished). With
// keepLineage, owned entries gain a lineage reference each instead: the
// finished task's lineage may be needed to rebuild its outputs, and that
// needs its arguments (see ReleaseLineage).
func (c *Counter) Release(keepLineage bool, es ...*Entry) {
	if len(es) == 0 {
		return
	}
	var ev events
	c.mu.Lock()
	for _, e := range es {
		if e.gone || e.submitted <= 0 {
			continue
		}
		e.submitted--
		if keepLineage && e.owned {
			e.lineage++
		}
		c.maybeReleaseLocked(e, &ev)
	}
	c.unlock(&ev)
}

// ReleaseLineage drops a lineage reference from each entry (the lineage
// of a task that took them as arguments was evicted or is no longer
// needed).
func (c *Counter) ReleaseLineage(es ...*Entry) {
	var ev events
	c.mu.Lock()
	for _, e := range es {
		if e.gone || e.lineage <= 0 {
			continue
		}
		e.lineage--
		c.maybeReleaseLocked(e, &ev)
	}
	c.unlock(&ev)
}

// AddBorrower records (owner side) that the process at addr holds refs to
// the objects ids. Ids not owned here, or gone, are skipped; it returns
// the ids it did not find, so the borrower can be told they are freed.
func (c *Counter) AddBorrower(addr string, list []ids.ID) (missing []ids.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range list {
		e, ok := c.objects[id]
		if !ok || !e.owned || e.outOfScope {
			missing = append(missing, id)
			continue
		}
		if e.borrowers == nil {
			e.borrowers = map[string]struct{}{}
		}
		e.borrowers[addr] = struct{}{}
	}
	return missing
}

// RemoveBorrower records (owner side) that the process at addr no longer
// holds refs to ids.
func (c *Counter) RemoveBorrower(addr string, list []ids.ID) {
	var ev events
	c.mu.Lock()
	for _, id := range list {
		if e, ok := c.objects[id]; ok && e.borrowers != nil {
			delete(e.borrowers, addr)
			c.maybeReleaseLocked(e, &ev)
		}
	}
	c.unlock(&ev)
}

// BorrowerDied forgets the process at addr as a borrower of everything
// (it died; its refs died with it).
func (c *Counter) BorrowerDied(addr string) {
	var ev events
	c.mu.Lock()
	for _, e := range c.objects {
		if _, ok := e.borrowers[addr]; ok {
			delete(e.borrowers, addr)
			c.maybeReleaseLocked(e, &ev)
		}
	}
	c.unlock(&ev)
}

// Free drops owned objects now, whatever still refers to them (ray.Free):
// later reads fail with ObjectFreed. It returns how many it freed.
func (c *Counter) Free(list []ids.ID) int {
	var ev events
	n := 0
	c.mu.Lock()
	for _, id := range list {
		e, ok := c.objects[id]
		if !ok || !e.owned || e.outOfScope {
			continue
		}
		c.freeLocked(e, &ev)
		n++
	}
	c.unlock(&ev)
	return n
}

// freeLocked drops every count of an owned object in scope.
func (c *Counter) freeLocked(e *Entry, ev *events) {
	e.local, e.submitted, e.contained, e.borrowers = 0, 0, 0, nil
	c.maybeReleaseLocked(e, ev)
}

// maybeReleaseLocked handles an entry whose counts dropped: out of scope
// (free the value, or tell the owner) and, once lineage is gone too, out
// of the table.
func (c *Counter) maybeReleaseLocked(e *Entry, ev *events) {
	if e.inScope() {
		return
	}
	if !e.outOfScope {
		e.outOfScope = true
		switch {
		case e.kind == Actor && e.owned:
			ev.add(evActor, e)
		case e.owned:
			ev.add(evFreed, e)
		default:
			if e.kind == Object {
				ev.add(evFreed, e)
			}
			if e.pending {
				c.dropPendingLocked(e)
			}
			if e.registered {
				ev.add(evEnded, e)
			}
		}
		nested := e.nested
		e.nested = nil
		for _, n := range nested {
			if !n.gone && n.contained > 0 {
				n.contained--
				c.maybeReleaseLocked(n, ev)
			}
		}
	}
	if e.lineage > 0 {
		return
	}
	e.gone = true
	if cur, ok := c.objects[e.id]; ok && cur == e {
		delete(c.objects, e.id)
	}
	if e.tracked {
		ev.add(evReleased, e)
	}
}

// TrackLineage asks for a LineageReleased event when each owned entry
// leaves the table (its owner keeps the lineage of the task that made it
// until then). Entries already out of scope are skipped; it returns how
// many it tracks, so the caller knows how many events to expect.
func (c *Counter) TrackLineage(es ...*Entry) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range es {
		if e.gone || e.outOfScope || !e.owned {
			continue
		}
		e.tracked = true
		n++
	}
	return n
}

func (c *Counter) dropPendingLocked(e *Entry) {
	list := c.borrows[e.owner.Addr]
	for i, id := range list {
		if id == e.id {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.borrows, e.owner.Addr)
	} else {
		c.borrows[e.owner.Addr] = list
	}
	e.pending = false
}

// Len is the number of entries in the table (in scope or kept for
// lineage).
func (c *Counter) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.objects)
}

// Counts is a snapshot of one entry's counts, for tests and reports.
type Counts struct {
	Local, Submitted, Contained, Lineage int
	Borrowers                            []string
	Owned, InScope, Gone                 bool
}

// CountsOf returns the counts of the entry for id (zero Counts, Gone set,
// when there is none).
func (c *Counter) CountsOf(id ids.ID) Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.objects[id]
	if !ok {
		return Counts{Gone: true}
	}
	out := Counts{Local: int(e.local), Submitted: int(e.submitted), Contained: int(e.contained), Lineage: int(e.lineage),
		Owned: e.owned, InScope: !e.outOfScope}
	for b := range e.borrowers {
		out.Borrowers = append(out.Borrowers, b)
	}
	return out
}

func freedErr(id ids.ID) error {
	return &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectFreed,
		Detail: "no reference to it remained, ray.Free deleted it, or the actor that put it left the process it shared"}
}

// String prints an entry's counts, for debugging.
func (e *Entry) String() string {
	return fmt.Sprintf("%s{local=%d submitted=%d contained=%d lineage=%d borrowers=%d owned=%v}",
		e.id.Short(), e.local, e.submitted, e.contained, e.lineage, len(e.borrowers), e.owned)
}
