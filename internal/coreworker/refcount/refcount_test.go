package refcount

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// sinkEvent is one Sink call, printed for comparison.
type sinkEvent string

// fakeSink records the counter's events in order. hook, if set, runs
// inside every sinkEvent (to check that the counter calls out unlocked).
type fakeSink struct {
	mu     sync.Mutex
	events []sinkEvent
	hook   func()
}

func (s *fakeSink) add(e sinkEvent) {
	s.mu.Lock()
	s.events = append(s.events, e)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func names(list []ids.ID, name map[ids.ID]string) string {
	out := make([]string, len(list))
	for i, id := range list {
		if n, ok := name[id]; ok {
			out[i] = n
		} else {
			out[i] = id.Short()
		}
	}
	return strings.Join(out, ",")
}

// The sink prints ids through the test's names, set with name().
var idNames = struct {
	sync.Mutex
	m map[ids.ID]string
}{m: map[ids.ID]string{}}

func name(n string) ids.ID {
	id := ids.New()
	idNames.Lock()
	idNames.m[id] = n
	idNames.Unlock()
	return id
}

func printed(list []ids.ID) string {
	idNames.Lock()
	defer idNames.Unlock()
	return names(list, idNames.m)
}

func (s *fakeSink) ObjectFreed(e *Entry) {
	s.add(sinkEvent(fmt.Sprintf("freed(%s owned=%v)", printed([]ids.ID{e.ID()}), e.Owned())))
}
func (s *fakeSink) BorrowEnded(e *Entry) {
	s.add(sinkEvent(fmt.Sprintf("ended(%s: %s)", e.Owner().Addr, printed([]ids.ID{e.ID()}))))
}
func (s *fakeSink) ActorOutOfScope(e *Entry) {
	s.add(sinkEvent(fmt.Sprintf("actor(%s)", printed([]ids.ID{e.ID()}))))
}
func (s *fakeSink) LineageReleased(e *Entry) {
	s.add(sinkEvent(fmt.Sprintf("lineage(%s)", printed([]ids.ID{e.ID()}))))
}

// take returns the events so far and forgets them.
func (s *fakeSink) take() []sinkEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

// expect checks the events since the last call.
func (s *fakeSink) expect(t *testing.T, want ...sinkEvent) {
	t.Helper()
	got := s.take()
	if !slices.Equal(got, want) {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

var (
	self  = Owner{Addr: "self:1", ID: ids.New()}
	other = Owner{Addr: "other:1", ID: ids.New()}
	third = Owner{Addr: "third:1", ID: ids.New()}
)

func newCounter() (*Counter, *fakeSink) {
	s := &fakeSink{}
	return New(self, s), s
}

func borrowedRef(n string, owner Owner) Ref { return Ref{ID: name(n), Owner: owner} }

func checkCounts(t *testing.T, c *Counter, id ids.ID, want Counts) {
	t.Helper()
	got := c.CountsOf(id)
	slices.Sort(got.Borrowers)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts of %s = %+v, want %+v", printed([]ids.ID{id}), got, want)
	}
}

func TestOwnedFreedWhenLastHandleGoes(t *testing.T) {
	c, s := newCounter()
	if c.Self() != self {
		t.Fatal("Self")
	}
	id := name("A")
	e := c.Own(id, Object, nil, nil)
	if e.ID() != id || e.Owner() != self || !e.Owned() {
		t.Fatalf("entry %v", e)
	}
	if err := c.AddLocal(e); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, c, id, Counts{Local: 2, Owned: true, InScope: true})
	if got, ok := c.Lookup(id); !ok || got != e || !c.Live(e) {
		t.Fatal("Lookup/Live of a live entry")
	}
	c.RemoveLocal(e)
	s.expect(t)
	c.RemoveLocal(e)
	s.expect(t, "freed(A owned=true)")
	if c.Len() != 0 || c.Live(e) {
		t.Fatalf("Len = %d, Live = %v after the last handle went", c.Len(), c.Live(e))
	}
	if _, ok := c.Lookup(id); ok {
		t.Fatal("Lookup found a freed entry")
	}
	checkCounts(t, c, id, Counts{Gone: true})
	err := c.AddLocal(e)
	var oe *errs.ObjectError
	if !errors.As(err, &oe) || !errors.Is(err, errs.ErrObjectFreed) || oe.ObjectID != id.String() {
		t.Fatalf("AddLocal of a freed entry = %v, want ObjectFreed naming it", err)
	}
	// Removing more handles than there were does nothing.
	c.RemoveLocal(e)
	s.expect(t)
}

func TestNewOwnedAddOwned(t *testing.T) {
	c, s := newCounter()
	a, b := c.NewOwned(name("A"), nil), c.NewOwned(name("B"), nil)
	if c.Len() != 0 {
		t.Fatal("NewOwned added to the table")
	}
	c.AddOwned(a, b)
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	checkCounts(t, c, b.ID(), Counts{Local: 1, Owned: true, InScope: true})
	c.RemoveLocal(b)
	s.expect(t, "freed(B owned=true)")
}

// A pending task that takes the object keeps it after its handles go.
func TestSubmittedKeepsObject(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	b := c.Own(name("B"), Object, nil, nil)
	if err := c.Hold(a, b); err != nil {
		t.Fatal(err)
	}
	if err := c.Hold(a); err != nil {
		t.Fatal(err)
	}
	c.RemoveLocal(a)
	c.RemoveLocal(b)
	s.expect(t)
	checkCounts(t, c, a.ID(), Counts{Submitted: 2, Owned: true, InScope: true})
	c.Release(false, a, b)
	s.expect(t, "freed(B owned=true)")
	c.Release(false, a)
	s.expect(t, "freed(A owned=true)")
	// Releasing more than was held does nothing.
	c.Release(false, a)
	c.Release(false)
	s.expect(t)
}

// Hold fails on a freed entry and then holds nothing.
func TestHoldIsAllOrNothing(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	b := c.Own(name("B"), Object, nil, nil)
	c.RemoveLocal(b)
	s.expect(t, "freed(B owned=true)")
	if err := c.Hold(a, b); !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("Hold of a freed entry = %v", err)
	}
	checkCounts(t, c, a.ID(), Counts{Local: 1, Owned: true, InScope: true})
}

func TestHoldIDs(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	b := c.Own(name("B"), Object, nil, nil)
	if got := c.HoldIDs(nil); got != nil {
		t.Fatalf("HoldIDs(nil) = %v", got)
	}
	held := c.HoldIDs([]ids.ID{a.ID(), ids.New(), b.ID()})
	if len(held) != 2 || held[0] != a || held[1] != b {
		t.Fatalf("HoldIDs held %v, want A and B", held)
	}
	c.RemoveLocal(a)
	c.RemoveLocal(b)
	s.expect(t)
	c.Release(false, held...)
	s.expect(t, "freed(A owned=true)", "freed(B owned=true)")
	if got := c.HoldIDs([]ids.ID{a.ID()}); len(got) != 0 {
		t.Fatalf("HoldIDs held a freed object: %v", got)
	}
}

// Ray's TestNestedObject: an object whose value contains refs keeps the
// inner objects in scope until it goes itself.
func TestNestedRefsKeepInnerObjects(t *testing.T) {
	c, s := newCounter()
	inner := c.Own(name("inner"), Object, nil, nil)
	inner2 := c.Own(name("inner2"), Object, nil, nil)
	mid := c.Own(name("mid"), Object, []Ref{{ID: inner.ID(), Owner: self}}, nil)
	outer := c.Own(name("outer"), Object, []Ref{{ID: mid.ID(), Owner: self}, {ID: inner2.ID(), Owner: self}}, nil)
	c.RemoveLocal(inner)
	c.RemoveLocal(inner2)
	c.RemoveLocal(mid)
	s.expect(t)
	checkCounts(t, c, inner.ID(), Counts{Contained: 1, Owned: true, InScope: true})
	checkCounts(t, c, mid.ID(), Counts{Contained: 1, Owned: true, InScope: true})
	c.RemoveLocal(outer)
	// One sinkEvent for the whole cascade.
	s.expect(t, "freed(outer owned=true)", "freed(mid owned=true)", "freed(inner owned=true)", "freed(inner2 owned=true)")
	if c.Len() != 0 {
		t.Fatalf("Len = %d after the outer object went", c.Len())
	}
}

// A ref to an object already freed here is skipped when a value that
// contains it is recorded.
func TestContainsFreedOwnedRefIsSkipped(t *testing.T) {
	c, s := newCounter()
	gone := c.Own(name("gone"), Object, nil, nil)
	c.RemoveLocal(gone)
	s.expect(t, "freed(gone owned=true)")
	outer := c.Own(name("outer"), Object, []Ref{{ID: gone.ID(), Owner: self}}, nil)
	if c.Len() != 1 {
		t.Fatalf("Len = %d: the freed ref came back", c.Len())
	}
	c.RemoveLocal(outer)
	s.expect(t, "freed(outer owned=true)")
}

// Ray's borrower protocol, borrower side: a ref decoded from another
// process is queued for registration with its owner; once registered,
// the owner is told when the last reference here goes.
func TestBorrowedRegisteredThenEnded(t *testing.T) {
	c, s := newCounter()
	r := borrowedRef("X", other)
	e, reused := c.Decode(r, Object, nil)
	if e == nil || reused || e.Owned() || e.Owner() != other {
		t.Fatalf("Decode = %v, %v", e, reused)
	}
	e2, _ := c.Decode(r, Object, nil)
	if e2 != e {
		t.Fatal("second Decode made another entry")
	}
	checkCounts(t, c, r.ID, Counts{Local: 2, InScope: true})
	got := c.TakeBorrows()
	if len(got) != 1 || !slices.Equal(got[other.Addr], []ids.ID{r.ID}) {
		t.Fatalf("TakeBorrows = %v, want X once for other", got)
	}
	if got := c.TakeBorrows(); got != nil {
		t.Fatalf("second TakeBorrows = %v, want nothing", got)
	}
	c.RemoveLocal(e)
	s.expect(t)
	c.RemoveLocal(e)
	s.expect(t, "freed(X owned=false)", "ended(other:1: X)")
	if c.Len() != 0 {
		t.Fatal("borrowed entry left in the table")
	}
	if c.RegisteredBorrow(r.ID) {
		t.Fatal("RegisteredBorrow true for an ended borrow")
	}
	// Decoded again later: a new borrow, registered again. While it is
	// only queued the old borrow-ended message must still go (the add
	// follows it); once registered, that message would undo the add.
	e3, _ := c.Decode(r, Object, nil)
	if e3 == e {
		t.Fatal("Decode reused a gone entry")
	}
	if c.RegisteredBorrow(r.ID) {
		t.Fatal("RegisteredBorrow true for a borrow not yet registered")
	}
	if got := c.TakeBorrows(); !slices.Equal(got[other.Addr], []ids.ID{r.ID}) {
		t.Fatalf("TakeBorrows after re-decode = %v", got)
	}
	if !c.RegisteredBorrow(r.ID) {
		t.Fatal("RegisteredBorrow false for a registered borrow")
	}
	if c.RegisteredBorrow(name("unknown")) {
		t.Fatal("RegisteredBorrow true for an unknown id")
	}
}

// A borrow dropped before it was registered is not reported to the
// owner (it never knew) and leaves the registration queue.
func TestBorrowDroppedBeforeRegistration(t *testing.T) {
	c, s := newCounter()
	x, _ := c.Decode(borrowedRef("X", other), Object, nil)
	y, _ := c.Decode(borrowedRef("Y", other), Object, nil)
	z, _ := c.Decode(borrowedRef("Z", third), Object, nil)
	c.RemoveLocal(x)
	c.RemoveLocal(z)
	s.expect(t, "freed(X owned=false)", "freed(Z owned=false)")
	got := c.TakeBorrows()
	if len(got) != 1 || !slices.Equal(got[other.Addr], []ids.ID{y.ID()}) {
		t.Fatalf("TakeBorrows = %v, want only Y for other", got)
	}
	c.RemoveLocal(y)
	s.expect(t, "freed(Y owned=false)", "ended(other:1: Y)")
}

// Several borrows of one owner end in one sinkEvent.
func TestBorrowsEndedInOrder(t *testing.T) {
	c, s := newCounter()
	x, _ := c.Decode(borrowedRef("X", other), Object, nil)
	y, _ := c.Decode(borrowedRef("Y", other), Object, nil)
	outer := c.Own(name("outer"), Object, []Ref{{ID: x.ID(), Owner: other}, {ID: y.ID(), Owner: other}}, nil)
	c.TakeBorrows()
	c.RemoveLocal(x)
	c.RemoveLocal(y)
	s.expect(t)
	c.RemoveLocal(outer)
	s.expect(t, "freed(outer owned=true)", "freed(X owned=false)", "ended(other:1: X)", "freed(Y owned=false)", "ended(other:1: Y)")
}

func TestDecodeOwnedRef(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	e, reused := c.Decode(Ref{ID: a.ID(), Owner: self}, Object, nil)
	if e != a || reused {
		t.Fatalf("Decode of an owned ref = %v, %v", e, reused)
	}
	if got := c.TakeBorrows(); got != nil {
		t.Fatalf("an owned ref was queued as a borrow: %v", got)
	}
	c.RemoveLocal(a)
	c.RemoveLocal(a)
	s.expect(t, "freed(A owned=true)")
	if e, _ := c.Decode(Ref{ID: a.ID(), Owner: self}, Object, nil); e != nil {
		t.Fatalf("Decode of a freed owned ref = %v, want nil", e)
	}
}

func TestDecodeReusesCachedHandle(t *testing.T) {
	c, _ := newCounter()
	r := borrowedRef("X", other)
	e, _ := c.Decode(r, Object, nil)
	if c.Aux(e) != nil {
		t.Fatal("Aux of a new entry")
	}
	c.SetAux(e, "handle")
	var offered any
	if e2, reused := c.Decode(r, Object, func(aux any) bool { offered = aux; return true }); e2 != e || !reused {
		t.Fatalf("Decode with reuse = %v, %v", e2, reused)
	}
	if offered != "handle" || c.Aux(e) != "handle" {
		t.Fatalf("reuse was offered %v", offered)
	}
	checkCounts(t, c, r.ID, Counts{Local: 1, InScope: true})
	if _, reused := c.Decode(r, Object, func(any) bool { return false }); reused {
		t.Fatal("reused although refused")
	}
	checkCounts(t, c, r.ID, Counts{Local: 2, InScope: true})
}

// A task's return value arrives with refs inside: the worker that made it
// registered this process with their owners already.
func TestSetContainsRegistered(t *testing.T) {
	c, s := newCounter()
	ret := c.NewOwned(name("ret"), nil)
	c.AddOwned(ret)
	// Y was decoded here before (queued); X is new.
	y, _ := c.Decode(borrowedRef("Y", other), Object, nil)
	x := borrowedRef("X", other)
	c.SetContains(ret, []Ref{x, {ID: y.ID(), Owner: other}}, true)
	if got := c.TakeBorrows(); got != nil {
		t.Fatalf("registered refs still queued: %v", got)
	}
	checkCounts(t, c, x.ID, Counts{Contained: 1, InScope: true})
	c.RemoveLocal(y)
	s.expect(t)
	c.RemoveLocal(ret)
	s.expect(t, "freed(ret owned=true)", "freed(X owned=false)", "ended(other:1: X)", "freed(Y owned=false)", "ended(other:1: Y)")
}

func TestSetContainsUnregisteredAndMarkRegistered(t *testing.T) {
	c, s := newCounter()
	ret := c.NewOwned(name("ret"), nil)
	own := c.Own(name("own"), Object, nil, nil)
	c.AddOwned(ret)
	c.SetContains(ret, nil, false) // nothing to record
	x := borrowedRef("X", other)
	c.SetContains(ret, []Ref{x, {ID: own.ID(), Owner: self}}, false)
	xe, _ := c.Lookup(x.ID)
	c.MarkRegistered([]*Entry{xe, own})
	c.RemoveLocal(own)
	s.expect(t)
	c.RemoveLocal(ret)
	s.expect(t, "freed(ret owned=true)", "freed(X owned=false)", "ended(other:1: X)", "freed(own owned=true)")

	// Not registered: the owner is never told.
	ret2 := c.Own(name("ret2"), Object, nil, nil)
	c.SetContains(ret2, []Ref{borrowedRef("W", other)}, false)
	c.RemoveLocal(ret2)
	s.expect(t, "freed(ret2 owned=true)", "freed(W owned=false)")
}

// A value that arrives for an object already freed keeps nothing alive.
func TestSetContainsAfterFree(t *testing.T) {
	c, s := newCounter()
	ret := c.Own(name("ret"), Object, nil, nil)
	c.RemoveLocal(ret)
	s.expect(t, "freed(ret owned=true)")
	c.SetContains(ret, []Ref{borrowedRef("X", other)}, true)
	if c.Len() != 0 {
		t.Fatalf("Len = %d: refs of a freed value were recorded", c.Len())
	}
}

// Ray's lineage pinning: a finished task whose outputs live in a node
// store keeps its arguments' entries (not their values) until its
// lineage is released.
func TestLineageKeepsEntryAfterOutOfScope(t *testing.T) {
	c, s := newCounter()
	arg := c.Own(name("arg"), Object, nil, nil)
	borrowed, _ := c.Decode(borrowedRef("B", other), Object, nil)
	if n := c.TrackLineage(arg, borrowed); n != 1 {
		t.Fatalf("TrackLineage = %d, want 1 (borrowed entries are not tracked)", n)
	}
	if err := c.Hold(arg, borrowed); err != nil {
		t.Fatal(err)
	}
	c.RemoveLocal(arg)
	c.RemoveLocal(borrowed)
	s.expect(t)
	c.Release(true, arg, borrowed)
	// The value goes; the entry stays for lineage. Borrowed entries keep
	// no lineage.
	s.expect(t, "freed(arg owned=true)", "freed(B owned=false)")
	checkCounts(t, c, arg.ID(), Counts{Lineage: 1, Owned: true})
	if c.Len() != 1 || c.Live(arg) {
		t.Fatalf("Len = %d, Live = %v", c.Len(), c.Live(arg))
	}
	if _, ok := c.Lookup(arg.ID()); ok {
		t.Fatal("Lookup found an out-of-scope entry")
	}
	if err := c.AddLocal(arg); !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("AddLocal of an out-of-scope entry = %v", err)
	}
	if err := c.Hold(arg); !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("Hold of an out-of-scope entry = %v", err)
	}
	if e, _ := c.Decode(Ref{ID: arg.ID(), Owner: self}, Object, nil); e != nil {
		t.Fatal("Decode revived an out-of-scope entry")
	}
	if got := c.HoldIDs([]ids.ID{arg.ID()}); len(got) != 0 {
		t.Fatal("HoldIDs held an out-of-scope entry")
	}
	if n := c.TrackLineage(arg); n != 0 {
		t.Fatalf("TrackLineage of an out-of-scope entry = %d", n)
	}
	c.SetContains(arg, []Ref{borrowedRef("late", other)}, true)
	c.RemoveLocal(arg)
	s.expect(t)
	c.ReleaseLineage(arg)
	s.expect(t, "lineage(arg)")
	if c.Len() != 0 {
		t.Fatal("entry kept after its lineage was released")
	}
	c.ReleaseLineage(arg)
	s.expect(t)
}

// Two finished tasks took the object: both lineage refs must go.
func TestLineageCountsEveryTask(t *testing.T) {
	c, s := newCounter()
	arg := c.Own(name("arg"), Object, nil, nil)
	c.TrackLineage(arg)
	if err := c.Hold(arg, arg); err != nil {
		t.Fatal(err)
	}
	c.Release(true, arg)
	c.Release(true, arg)
	c.RemoveLocal(arg)
	s.expect(t, "freed(arg owned=true)")
	c.ReleaseLineage(arg)
	s.expect(t)
	checkCounts(t, c, arg.ID(), Counts{Lineage: 1, Owned: true})
	c.ReleaseLineage(arg)
	s.expect(t, "lineage(arg)")
}

// An entry with lineage that is still in scope only loses the lineage ref.
func TestReleaseLineageInScope(t *testing.T) {
	c, s := newCounter()
	arg := c.Own(name("arg"), Object, nil, nil)
	c.TrackLineage(arg)
	c.Hold(arg)
	c.Release(true, arg)
	c.ReleaseLineage(arg)
	s.expect(t)
	checkCounts(t, c, arg.ID(), Counts{Local: 1, Owned: true, InScope: true})
	c.RemoveLocal(arg)
	s.expect(t, "freed(arg owned=true)", "lineage(arg)")
}

// An out-of-scope object kept for lineage releases its nested refs with
// its value.
func TestLineageEntryReleasesNested(t *testing.T) {
	c, s := newCounter()
	inner := c.Own(name("inner"), Object, nil, nil)
	outer := c.Own(name("outer"), Object, []Ref{{ID: inner.ID(), Owner: self}}, nil)
	c.RemoveLocal(inner)
	c.Hold(outer)
	c.RemoveLocal(outer)
	c.Release(true, outer)
	s.expect(t, "freed(outer owned=true)", "freed(inner owned=true)")
	checkCounts(t, c, outer.ID(), Counts{Lineage: 1, Owned: true})
	checkCounts(t, c, inner.ID(), Counts{Gone: true})
}

// Ray counts actor handles like object refs: an owned actor with no
// handle left anywhere is reported out of scope (its owner ends it).
func TestActorOutOfScope(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("actor"), Actor, nil, nil)
	if err := c.AddLocal(a); err != nil {
		t.Fatal(err)
	}
	c.Hold(a) // calls pending
	if missing := c.AddBorrower("peer:1", []ids.ID{a.ID()}); missing != nil {
		t.Fatalf("AddBorrower missing %v", missing)
	}
	c.RemoveLocal(a)
	c.RemoveLocal(a)
	c.Release(false, a)
	s.expect(t)
	checkCounts(t, c, a.ID(), Counts{Borrowers: []string{"peer:1"}, Owned: true, InScope: true})
	c.RemoveBorrower("peer:1", []ids.ID{a.ID()})
	s.expect(t, "actor(actor)")
	if c.Len() != 0 {
		t.Fatal("actor entry left")
	}
}

// A borrowed actor handle: the owner is told when it goes, and no value
// is freed (an actor has none).
func TestBorrowedActorHandle(t *testing.T) {
	c, s := newCounter()
	r := borrowedRef("actor", other)
	e, _ := c.Decode(r, Actor, nil)
	c.TakeBorrows()
	c.RemoveLocal(e)
	s.expect(t, "ended(other:1: actor)")
}

// An actor handle contained in an object goes with it.
func TestActorHandleInsideObject(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("actor"), Actor, nil, nil)
	obj := c.Own(name("obj"), Object, []Ref{{ID: a.ID(), Owner: self}}, nil)
	c.RemoveLocal(a)
	s.expect(t)
	c.RemoveLocal(obj)
	s.expect(t, "freed(obj owned=true)", "actor(actor)")
}

// Ray's borrower protocol, owner side.
func TestBorrowersKeepOwnedObject(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	b := c.Own(name("B"), Object, nil, nil)
	x, _ := c.Decode(borrowedRef("X", other), Object, nil)
	freed := c.Own(name("F"), Object, nil, nil)
	c.RemoveLocal(freed)
	s.take()
	unknown := ids.New()
	missing := c.AddBorrower("p1", []ids.ID{a.ID(), b.ID(), unknown, x.ID(), freed.ID()})
	if !slices.Equal(missing, []ids.ID{unknown, x.ID(), freed.ID()}) {
		t.Fatalf("missing = %v, want the unknown, borrowed and freed ids", missing)
	}
	c.AddBorrower("p2", []ids.ID{a.ID()})
	c.AddBorrower("p2", []ids.ID{a.ID()}) // twice is once
	checkCounts(t, c, a.ID(), Counts{Local: 1, Borrowers: []string{"p1", "p2"}, Owned: true, InScope: true})
	c.RemoveLocal(a)
	c.RemoveLocal(b)
	s.expect(t)
	c.RemoveBorrower("p1", []ids.ID{a.ID(), unknown})
	s.expect(t)
	c.RemoveBorrower("p3", []ids.ID{a.ID()}) // not a borrower
	s.expect(t)
	c.RemoveBorrower("p2", []ids.ID{a.ID()})
	s.expect(t, "freed(A owned=true)")
	// p1 dies still borrowing B.
	c.BorrowerDied("p1")
	s.expect(t, "freed(B owned=true)")
	c.BorrowerDied("p1")
	s.expect(t)
	c.RemoveLocal(x)
}

func TestBorrowerDiedLeavesOthers(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	b := c.Own(name("B"), Object, nil, nil)
	c.AddBorrower("p1", []ids.ID{a.ID(), b.ID()})
	c.AddBorrower("p2", []ids.ID{b.ID()})
	c.RemoveLocal(a)
	c.RemoveLocal(b)
	c.BorrowerDied("p1")
	s.expect(t, "freed(A owned=true)")
	checkCounts(t, c, b.ID(), Counts{Borrowers: []string{"p2"}, Owned: true, InScope: true})
}

// Ray's Free: owned objects go now, whatever refers to them.
func TestFree(t *testing.T) {
	c, s := newCounter()
	inner := c.Own(name("inner"), Object, nil, nil)
	a := c.Own(name("A"), Object, []Ref{{ID: inner.ID(), Owner: self}}, nil)
	c.RemoveLocal(inner)
	c.AddLocal(a)
	c.Hold(a)
	c.AddBorrower("p1", []ids.ID{a.ID()})
	x, _ := c.Decode(borrowedRef("X", other), Object, nil)
	n := c.Free([]ids.ID{a.ID(), x.ID(), ids.New(), a.ID()})
	if n != 1 {
		t.Fatalf("Free = %d, want 1 (borrowed, unknown and repeated ids skipped)", n)
	}
	s.expect(t, "freed(A owned=true)", "freed(inner owned=true)")
	if c.Live(a) {
		t.Fatal("freed object still live")
	}
	// The holders of a freed object let go without effect.
	c.Release(true, a)
	c.RemoveLocal(a)
	c.RemoveBorrower("p1", []ids.ID{a.ID()})
	s.expect(t)
	checkCounts(t, c, x.ID(), Counts{Local: 1, InScope: true})
	if c.Len() != 1 {
		t.Fatalf("Len = %d, want only X left", c.Len())
	}
}

// FreeTagged frees the owned objects in scope carrying the tag, and
// nothing else: other tags, untagged, borrowed, already out of scope,
// actor handles.
func TestFreeTagged(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	b := c.Own(name("B"), Object, nil, nil)
	tagged8 := c.Own(name("tagged8"), Object, nil, nil)
	plain := c.Own(name("plain"), Object, nil, nil)
	gone := c.Own(name("gone"), Object, nil, nil)
	actor := c.Own(name("actor"), Actor, nil, nil)
	x, _ := c.Decode(borrowedRef("X", other), Object, nil)
	for _, e := range []*Entry{a, b, gone, actor, x} {
		c.SetTag(e, 7)
	}
	c.SetTag(tagged8, 8)
	if a.Tag() != 7 || tagged8.Tag() != 8 || plain.Tag() != 0 {
		t.Fatalf("tags %d %d %d, want 7 8 0", a.Tag(), tagged8.Tag(), plain.Tag())
	}
	c.RemoveLocal(gone)
	s.expect(t, "freed(gone owned=true)")
	if n := c.FreeTagged(0); n != 0 {
		t.Fatalf("FreeTagged(0) = %d, want 0", n)
	}
	if n := c.FreeTagged(7); n != 2 {
		t.Fatalf("FreeTagged(7) = %d, want 2 (A and B)", n)
	}
	got := s.take()
	slices.Sort(got)
	if want := []sinkEvent{"freed(A owned=true)", "freed(B owned=true)"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for _, e := range []*Entry{tagged8, plain, actor, x} {
		if !c.Live(e) {
			t.Fatalf("%v freed by another tag's FreeTagged", e)
		}
	}
	if n := c.FreeTagged(7); n != 0 {
		t.Fatalf("FreeTagged(7) again = %d, want 0", n)
	}
}

// Free of an object kept for lineage frees its value; the entry stays for
// the lineage.
func TestFreeKeepsLineage(t *testing.T) {
	c, s := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	c.TrackLineage(a)
	c.Hold(a, a)
	c.Release(true, a)
	c.Free([]ids.ID{a.ID()})
	s.expect(t, "freed(A owned=true)")
	checkCounts(t, c, a.ID(), Counts{Lineage: 1, Owned: true})
	c.ReleaseLineage(a)
	s.expect(t, "lineage(A)")
}

// A contained object that was freed outright does not go negative when
// its container goes.
func TestFreeContainedThenContainerGoes(t *testing.T) {
	c, s := newCounter()
	inner := c.Own(name("inner"), Object, nil, nil)
	outer := c.Own(name("outer"), Object, []Ref{{ID: inner.ID(), Owner: self}}, nil)
	c.Free([]ids.ID{inner.ID()})
	s.expect(t, "freed(inner owned=true)")
	c.RemoveLocal(outer)
	s.expect(t, "freed(outer owned=true)")
	if c.Len() != 0 {
		t.Fatal("entries left")
	}
}

// The counter calls its Sink without its lock held: a Sink may call back.
func TestSinkMayCallBack(t *testing.T) {
	c, s := newCounter()
	calls := 0
	s.hook = func() { calls++; _ = c.Len(); c.TakeBorrows() }
	a := c.Own(name("A"), Object, nil, nil)
	c.RemoveLocal(a)
	if calls != 1 {
		t.Fatalf("hook ran %d times", calls)
	}
}

func TestEntryString(t *testing.T) {
	c, _ := newCounter()
	a := c.Own(name("A"), Object, nil, nil)
	c.Hold(a)
	got := a.String()
	want := a.ID().Short() + "{local=1 submitted=1 contained=0 lineage=0 borrowers=0 owned=true}"
	if got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

// Many goroutines add and drop handles and holds on shared objects: each
// object is freed exactly once, after the last reference went.
func TestConcurrentCounting(t *testing.T) {
	c, s := newCounter()
	const objects, workers, rounds = 8, 8, 200
	es := make([]*Entry, objects)
	for i := range es {
		es[i] = c.Own(name(fmt.Sprint("o", i)), Object, nil, nil)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				e := es[(w+r)%objects]
				if err := c.AddLocal(e); err != nil {
					t.Error(err)
					return
				}
				if err := c.Hold(e); err != nil {
					t.Error(err)
					return
				}
				c.RemoveLocal(e)
				c.AddBorrower(fmt.Sprint("w", w), []ids.ID{e.ID()})
				c.Release(false, e)
				c.RemoveBorrower(fmt.Sprint("w", w), []ids.ID{e.ID()})
			}
		}()
	}
	wg.Wait()
	s.expect(t)
	for _, e := range es {
		c.RemoveLocal(e)
	}
	if got := len(s.take()); got != objects || c.Len() != 0 {
		t.Fatalf("%d events for %d objects, %d entries left", got, objects, c.Len())
	}
}

func TestSlotFor(t *testing.T) {
	c, _ := newCounter()
	slot := memstore.NewSlot(name("owned"))
	own := c.Own(slot.ID(), Object, nil, slot)
	if s, created := c.SlotFor(own); s != slot || created || own.Slot() != slot {
		t.Fatalf("SlotFor(owned) = %v, %v; want its slot", s, created)
	}
	b, _ := c.Decode(borrowedRef("B", other), Object, nil)
	if b.Slot() != nil {
		t.Fatal("a borrowed entry has a slot before it is read")
	}
	s, created := c.SlotFor(b)
	if s == nil || !created || s.ID() != b.ID() || b.Slot() != s {
		t.Fatalf("SlotFor(borrowed) = %v, %v", s, created)
	}
	if s2, created := c.SlotFor(b); s2 != s || created {
		t.Fatal("second SlotFor made another slot")
	}
	c.RemoveLocal(b)
	if s, _ := c.SlotFor(b); s != nil {
		t.Fatal("SlotFor of an entry out of scope")
	}
	if own.Kind() != Object || b.Kind() != Object {
		t.Fatal("Kind")
	}
}

func TestNewOwnedSlotAndAddContaining(t *testing.T) {
	c, sink := newCounter()
	v := &pb.Value{Data: []byte("v")}
	inner := c.NewOwnedSlot(name("inner"), nil)
	c.AddOwned(inner)
	if inner.Slot() == nil || inner.Slot().Ready() || inner.Slot().ID() != inner.ID() {
		t.Fatal("NewOwnedSlot(nil): want a pending slot of the entry's id")
	}
	outer := c.NewOwnedSlot(name("outer"), v)
	if outer.Slot().Value() != v {
		t.Fatal("NewOwnedSlot(v): slot does not hold v")
	}
	c.AddContaining(outer, []Ref{{ID: inner.ID(), Owner: self}})
	c.RemoveLocal(inner)
	sink.expect(t) // held by outer's value
	c.RemoveLocal(outer)
	sink.expect(t, "freed(outer owned=true)", "freed(inner owned=true)")
}

func TestValueOf(t *testing.T) {
	c, _ := newCounter()
	v := &pb.Value{Data: []byte("v"), InStore: true, StoreAddress: "node-1", Size: 10}
	ready, pending, borrowedID := name("ready"), name("pending"), name("borrowed")
	e := c.NewOwnedSlot(ready, v)
	c.AddOwned(e, c.NewOwnedSlot(pending, nil))
	borrowed, _ := c.Decode(Ref{ID: borrowedID, Owner: other}, Object, nil)
	for id, want := range map[ids.ID]*pb.Value{ready: v, pending: nil, borrowedID: nil, name("unknown"): nil} {
		if got := c.ValueOf(id); got != want {
			t.Errorf("ValueOf(%s) = %v, want %v", id, got, want)
		}
	}
	if borrowed.Slot() != nil {
		t.Error("ValueOf made a slot")
	}
	c.RemoveLocal(e)
	if got := c.ValueOf(ready); got != nil {
		t.Errorf("ValueOf a freed object = %v", got)
	}
}
