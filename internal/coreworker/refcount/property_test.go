package refcount

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
)

// countingSink counts the counter's events per object.
type countingSink struct {
	mu       sync.Mutex
	freed    map[ids.ID]int // ObjectFreed
	owned    map[ids.ID]bool
	ended    map[ids.ID]int // BorrowEnded
	endedBy  map[ids.ID]string
	lineage  map[ids.ID]int // LineageReleased
	outOfOrd []string       // LineageReleased before ObjectFreed
}

func newCountingSink() *countingSink {
	return &countingSink{freed: map[ids.ID]int{}, owned: map[ids.ID]bool{}, ended: map[ids.ID]int{},
		endedBy: map[ids.ID]string{}, lineage: map[ids.ID]int{}}
}

func (s *countingSink) ObjectFreed(e *Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freed[e.ID()]++
	s.owned[e.ID()] = e.Owned()
}

func (s *countingSink) BorrowEnded(e *Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended[e.ID()]++
	s.endedBy[e.ID()] = e.Owner().Addr
}

func (s *countingSink) ActorOutOfScope(*Entry) {}

func (s *countingSink) LineageReleased(e *Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := e.ID()
	if s.freed[id] == 0 {
		s.outOfOrd = append(s.outOfOrd, id.Short())
	}
	s.lineage[id]++
}

// mObj is the model of one object: the references it has, stated by
// source rather than as the counter's counts.
type mObj struct {
	id       ids.ID
	e        *Entry
	owned    bool
	local    int
	held     int
	lineage  int
	borrower map[string]bool
	contains []int // model objects its value refers to (created before it)
	forced   bool  // Free'd: containers no longer keep it
	tracked  bool
	pending  bool // borrowed: decoded, registration queued
	register bool // borrowed: its owner was told
	out      bool // out of scope (model); never comes back
	gone     bool // out of the table
}

type model struct {
	c    *Counter
	sink *countingSink
	objs []*mObj
}

// containedBy is how many in-scope values refer to object i.
func (m *model) containedBy(i int) int {
	if m.objs[i].forced {
		return 0
	}
	n := 0
	for _, o := range m.objs[i+1:] {
		if o.out {
			continue
		}
		for _, j := range o.contains {
			if j == i {
				n++
			}
		}
	}
	return n
}

// settle recomputes which objects are in scope: an object is in scope
// while it has a handle, a hold, a borrower or an in-scope value that
// refers to it. Containers come after their contents, so one pass from
// the newest object settles everything.
func (m *model) settle() {
	for i := len(m.objs) - 1; i >= 0; i-- {
		o := m.objs[i]
		if !o.out && o.local == 0 && o.held == 0 && len(o.borrower) == 0 && m.containedBy(i) == 0 {
			o.out = true
			o.pending = false
		}
		if o.out && o.lineage == 0 {
			o.gone = true
		}
	}
}

func (m *model) check(t *rapid.T) {
	m.sink.mu.Lock()
	defer m.sink.mu.Unlock()
	if len(m.sink.outOfOrd) > 0 {
		t.Fatalf("LineageReleased before ObjectFreed for %v", m.sink.outOfOrd)
	}
	inTable := 0
	for i, o := range m.objs {
		// The property: freed exactly when no reference is left, and once.
		wantFreed := 0
		if o.out {
			wantFreed = 1
		}
		if got := m.sink.freed[o.id]; got != wantFreed {
			t.Fatalf("object %d (%s): freed %d times, want %d (model %+v)", i, o.e, got, wantFreed, *o)
		}
		if wantFreed == 1 && m.sink.owned[o.id] != o.owned {
			t.Fatalf("object %d freed with owned=%v", i, m.sink.owned[o.id])
		}
		wantEnded := 0
		if o.out && o.register {
			wantEnded = 1
		}
		if got := m.sink.ended[o.id]; got != wantEnded {
			t.Fatalf("object %d: borrow ended %d times, want %d", i, got, wantEnded)
		}
		if wantEnded == 1 && m.sink.endedBy[o.id] != other.Addr {
			t.Fatalf("object %d: borrow ended at %q", i, m.sink.endedBy[o.id])
		}
		wantLineage := 0
		if o.gone && o.tracked {
			wantLineage = 1
		}
		if got := m.sink.lineage[o.id]; got != wantLineage {
			t.Fatalf("object %d: lineage released %d times, want %d", i, got, wantLineage)
		}
		// The counts match the model's references, and none is negative.
		got := m.c.CountsOf(o.id)
		var want Counts
		switch {
		case o.gone:
			want = Counts{Gone: true}
		case o.out:
			want = Counts{Lineage: o.lineage, Owned: o.owned}
		default:
			want = Counts{Local: o.local, Submitted: o.held, Contained: m.containedBy(i), Lineage: o.lineage,
				Owned: o.owned, InScope: true}
			for b := range o.borrower {
				want.Borrowers = append(want.Borrowers, b)
			}
			slices.Sort(want.Borrowers)
		}
		slices.Sort(got.Borrowers)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("object %d: counts %+v, want %+v", i, got, want)
		}
		if got.Local < 0 || got.Submitted < 0 || got.Contained < 0 || got.Lineage < 0 {
			t.Fatalf("object %d: negative count %+v", i, got)
		}
		if !o.gone {
			inTable++
		}
	}
	if m.c.Len() != inTable {
		t.Fatalf("Len = %d, model has %d entries", m.c.Len(), inTable)
	}
}

// pick draws an object index, or -1 if there is none.
func (m *model) pick(t *rapid.T, label string) int {
	if len(m.objs) == 0 {
		t.Skip("no objects yet")
	}
	return rapid.IntRange(0, len(m.objs)-1).Draw(t, label)
}

var borrowerAddrs = []string{"p1", "p2", "p3"}

// TestPropertyCounting runs random sequences of counter operations
// against a model that states references by source: no count ever goes
// negative, no object is freed while something refers to it, and every
// object is freed (once) as soon as nothing does.
func TestPropertyCounting(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sink := newCountingSink()
		m := &model{c: New(self, sink), sink: sink}
		addr := rapid.SampledFrom(borrowerAddrs)
		t.Repeat(map[string]func(*rapid.T){
			"own": func(t *rapid.T) {
				var contains []int
				var refs []Ref
				if len(m.objs) > 0 {
					for _, j := range rapid.SliceOfN(rapid.IntRange(0, len(m.objs)-1), 0, 3).Draw(t, "contains") {
						o := m.objs[j]
						if o.out && !o.owned {
							continue // a gone borrowed ref would make a new entry
						}
						refs = append(refs, Ref{ID: o.id, Owner: o.e.Owner()})
						if !o.out {
							contains = append(contains, j)
						}
					}
				}
				id := ids.New()
				e := m.c.Own(id, Object, refs, nil)
				m.objs = append(m.objs, &mObj{id: id, e: e, owned: true, local: 1, contains: contains})
			},
			"decodeNew": func(t *rapid.T) {
				id := ids.New()
				e, _ := m.c.Decode(Ref{ID: id, Owner: other}, Object, nil)
				m.objs = append(m.objs, &mObj{id: id, e: e, local: 1, pending: true})
			},
			"decodeAgain": func(t *rapid.T) {
				i := m.pick(t, "i")
				o := m.objs[i]
				if o.out && !o.owned {
					t.Skip("a gone borrowed ref would make a new entry")
				}
				e, _ := m.c.Decode(Ref{ID: o.id, Owner: o.e.Owner()}, Object, nil)
				switch {
				case o.out:
					if e != nil {
						t.Fatalf("Decode revived freed object %d", i)
					}
				default:
					if e != o.e {
						t.Fatalf("Decode of object %d returned another entry", i)
					}
					o.local++
				}
			},
			"addLocal": func(t *rapid.T) {
				i := m.pick(t, "i")
				o := m.objs[i]
				err := m.c.AddLocal(o.e)
				if o.out != (err != nil) {
					t.Fatalf("AddLocal(%d) = %v with out=%v", i, err, o.out)
				}
				if err != nil && !errors.Is(err, errs.ErrObjectFreed) {
					t.Fatalf("AddLocal error %v", err)
				}
				if err == nil {
					o.local++
				}
			},
			"removeLocal": func(t *rapid.T) {
				i := m.pick(t, "i")
				o := m.objs[i]
				m.c.RemoveLocal(o.e)
				if !o.out && o.local > 0 {
					o.local--
				}
			},
			"hold": func(t *rapid.T) {
				i := m.pick(t, "i")
				o := m.objs[i]
				err := m.c.Hold(o.e)
				if o.out != (err != nil) {
					t.Fatalf("Hold(%d) = %v with out=%v", i, err, o.out)
				}
				if err == nil {
					o.held++
				}
			},
			"release": func(t *rapid.T) {
				i := m.pick(t, "i")
				keep := rapid.Bool().Draw(t, "keepLineage")
				o := m.objs[i]
				m.c.Release(keep, o.e)
				if !o.gone && o.held > 0 {
					o.held--
					if keep && o.owned {
						o.lineage++
					}
				}
			},
			"releaseLineage": func(t *rapid.T) {
				i := m.pick(t, "i")
				o := m.objs[i]
				m.c.ReleaseLineage(o.e)
				if !o.gone && o.lineage > 0 {
					o.lineage--
				}
			},
			"track": func(t *rapid.T) {
				i := m.pick(t, "i")
				o := m.objs[i]
				n := m.c.TrackLineage(o.e)
				want := 0
				if o.owned && !o.out {
					want = 1
					o.tracked = true
				}
				if n != want {
					t.Fatalf("TrackLineage(%d) = %d, want %d", i, n, want)
				}
			},
			"addBorrower": func(t *rapid.T) {
				i := m.pick(t, "i")
				a := addr.Draw(t, "addr")
				o := m.objs[i]
				missing := m.c.AddBorrower(a, []ids.ID{o.id})
				if ok := o.owned && !o.out; ok != (len(missing) == 0) {
					t.Fatalf("AddBorrower(%d) missing %v (owned %v out %v)", i, missing, o.owned, o.out)
				}
				if len(missing) == 0 {
					if o.borrower == nil {
						o.borrower = map[string]bool{}
					}
					o.borrower[a] = true
				}
			},
			"removeBorrower": func(t *rapid.T) {
				i := m.pick(t, "i")
				a := addr.Draw(t, "addr")
				m.c.RemoveBorrower(a, []ids.ID{m.objs[i].id})
				delete(m.objs[i].borrower, a)
			},
			"borrowerDied": func(t *rapid.T) {
				a := addr.Draw(t, "addr")
				m.c.BorrowerDied(a)
				for _, o := range m.objs {
					delete(o.borrower, a)
				}
			},
			"free": func(t *rapid.T) {
				i := m.pick(t, "i")
				o := m.objs[i]
				n := m.c.Free([]ids.ID{o.id})
				want := 0
				if o.owned && !o.out {
					want = 1
					o.local, o.held, o.borrower, o.forced = 0, 0, nil, true
				}
				if n != want {
					t.Fatalf("Free(%d) = %d, want %d", i, n, want)
				}
			},
			"takeBorrows": func(t *rapid.T) {
				got := m.c.TakeBorrows()
				var want []ids.ID
				for _, o := range m.objs {
					if o.pending && !o.out {
						want = append(want, o.id)
						o.pending, o.register = false, true
					}
				}
				gotList := got[other.Addr]
				if len(got) > 1 || !sameIDs(gotList, want) {
					t.Fatalf("TakeBorrows = %v, want %v", got, want)
				}
			},
			"": func(t *rapid.T) {
				m.settle()
				m.check(t)
			},
		})
		// Drop every reference: everything is freed and leaves the table.
		for _, o := range m.objs {
			for range o.local {
				m.c.RemoveLocal(o.e)
			}
			for range o.held {
				m.c.Release(false, o.e)
			}
			for range o.lineage {
				m.c.ReleaseLineage(o.e)
			}
			o.local, o.held, o.lineage = 0, 0, 0
		}
		for _, a := range borrowerAddrs {
			m.c.BorrowerDied(a)
		}
		for _, o := range m.objs {
			o.borrower = nil
		}
		m.settle()
		m.check(t)
		if m.c.Len() != 0 {
			t.Fatalf("%d entries left with no reference", m.c.Len())
		}
	})
}

func sameIDs(a, b []ids.ID) bool {
	if len(a) != len(b) {
		return false
	}
	set := map[ids.ID]int{}
	for _, id := range a {
		set[id]++
	}
	for _, id := range b {
		set[id]--
	}
	for _, n := range set {
		if n != 0 {
			return false
		}
	}
	return true
}
