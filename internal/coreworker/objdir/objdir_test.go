package objdir

import (
	"slices"
	"sync"
	"testing"

	"github.com/raygo/raygo/internal/ids"
)

// owner fakes the owner's reference table: the objects in scope.
type owner struct {
	mu   sync.Mutex
	live map[ids.ID]bool
}

func (o *owner) alive(id ids.ID) func() bool {
	return func() bool { o.mu.Lock(); defer o.mu.Unlock(); return o.live[id] }
}

func (o *owner) drop(id ids.ID) { o.mu.Lock(); delete(o.live, id); o.mu.Unlock() }

func TestDirectory(t *testing.T) {
	const p, a, b = "primary:1", "a:1", "b:1"
	type step struct {
		op     string // add, remove, free, drop (the object leaves the owner's table)
		node   string
		wantOK bool     // add's answer
		want   []string // Locations after the step; for free, what Free returned
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"copies follow the primary in order", []step{
			{op: "add", node: b, wantOK: true, want: []string{p, b}},
			{op: "add", node: a, wantOK: true, want: []string{p, b, a}},
		}},
		{"a node added twice is recorded once", []step{
			{op: "add", node: a, wantOK: true, want: []string{p, a}},
			{op: "add", node: a, wantOK: true, want: []string{p, a}},
		}},
		{"the primary is not a copy of its own", []step{
			{op: "add", node: p, wantOK: true, want: []string{p}},
		}},
		{"remove forgets one copy", []step{
			{op: "add", node: a, wantOK: true}, {op: "add", node: b, wantOK: true},
			{op: "remove", node: a, want: []string{p, b}},
			{op: "remove", node: a, want: []string{p, b}},
		}},
		{"free returns every copy and forgets them", []step{
			{op: "add", node: a, wantOK: true}, {op: "add", node: b, wantOK: true},
			{op: "free", want: []string{p, a, b}},
			{op: "free", want: []string{p}},
		}},
		{"an add after the object left the owner is refused", []step{
			{op: "drop"},
			{op: "add", node: a, wantOK: false, want: []string{p}},
			{op: "free", want: []string{p}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, id := New(), ids.New()
			o := &owner{live: map[ids.ID]bool{id: true}}
			for i, s := range tt.steps {
				var got []string
				switch s.op {
				case "add":
					if ok := d.Add(id, s.node, o.alive(id)); ok != s.wantOK {
						t.Fatalf("step %d: Add = %v, want %v", i, ok, s.wantOK)
					}
					got = d.Locations(id, p)
				case "remove":
					d.Remove(id, s.node)
					got = d.Locations(id, p)
				case "free":
					got = d.Free(id, p)
				case "drop":
					o.drop(id)
					continue
				}
				if s.want != nil && !slices.Equal(got, s.want) {
					t.Fatalf("step %d (%s %s): %v, want %v", i, s.op, s.node, got, s.want)
				}
			}
		})
	}
}

// TestAddRacingFree checks the directory's promise: an Add that races the
// owner's free either is refused or is in what Free returns, never lost.
func TestAddRacingFree(t *testing.T) {
	for range 200 {
		d, id := New(), ids.New()
		o := &owner{live: map[ids.ID]bool{id: true}}
		var ok bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); ok = d.Add(id, "a:1", o.alive(id)) }()
		o.drop(id) // the owner's free: out of its table first, then Free
		freed := d.Free(id, "p:1")
		wg.Wait()
		if ok && !slices.Contains(freed, "a:1") {
			// The add landed after Free: it must have been refused.
			t.Fatalf("Add accepted after Free returned %v", freed)
		}
		if d.Len() != 0 {
			t.Fatalf("directory keeps %d objects after the free", d.Len())
		}
	}
}

func TestEmptyPrimary(t *testing.T) {
	d, id := New(), ids.New()
	d.Add(id, "a:1", func() bool { return true })
	if got := d.Locations(id, ""); !slices.Equal(got, []string{"a:1"}) {
		t.Fatalf("Locations = %v", got)
	}
}

// TestPulls: each puller reads from the complete copies and the pullers
// that began before it, never from later ones (no two pulls wait on each
// other); a finished pull becomes a copy; a free reaches pullers too.
func TestPulls(t *testing.T) {
	const p = "primary:1"
	d, id := New(), ids.New()
	live := func() bool { return true }
	steps := []struct {
		node string
		want []string
	}{
		{"b:1", []string{p}},
		{"c:1", []string{p, "b:1"}},
		{"d:1", []string{p, "b:1", "c:1"}},
		{"b:1", []string{p}}, // again: keeps its place
	}
	for _, s := range steps {
		got, ok := d.StartPull(id, s.node, p, live)
		if !ok || !slices.Equal(got, s.want) {
			t.Fatalf("StartPull(%s) = %v, %v; want %v", s.node, got, ok, s.want)
		}
	}
	if got := d.Locations(id, p); !slices.Equal(got, []string{p}) {
		t.Fatalf("Locations lists pulls: %v", got)
	}
	d.Add(id, "c:1", live) // c finished
	if got, _ := d.StartPull(id, "e:1", p, live); !slices.Equal(got, []string{p, "c:1", "b:1", "d:1"}) {
		t.Fatalf("after c finished: %v", got)
	}
	d.Remove(id, "d:1") // d's pull failed
	if got, _ := d.StartPull(id, "f:1", p, live); !slices.Equal(got, []string{p, "c:1", "b:1", "e:1"}) {
		t.Fatalf("after d failed: %v", got)
	}
	if got := d.Free(id, p); !slices.Equal(got, []string{p, "c:1", "b:1", "e:1", "f:1"}) {
		t.Fatalf("Free = %v, want every copy and pull", got)
	}
	if _, ok := d.StartPull(id, "g:1", p, func() bool { return false }); ok || d.Len() != 0 {
		t.Fatalf("a pull of a freed object was recorded")
	}
}
