// Package objdir is an owner's object directory: for each object the
// process owns, the nodes that hold a copy of it besides its primary copy
// (the node whose store the value names). It is the counterpart of Ray's
// ownership-based object directory: a node that finishes pulling a copy
// tells the owner (Add, Ray's AddObjectLocation), a node that drops one
// may tell it (Remove), pullers ask the owner where copies are
// (Locations), and when the owner frees the object it frees every copy
// (Free returns every node to tell).
//
//	d := objdir.New()
//	d.Add(id, "10.0.0.2:7001", alive)   // a node pulled a copy
//	d.Locations(id, "10.0.0.1:7001")    // [10.0.0.1:7001 10.0.0.2:7001]
//	d.Free(id, "10.0.0.1:7001")         // both: send FreeObjects to each
//
// A node that begins a pull registers too (StartPull): it serves the
// chunks it has received to nodes that registered after it, and learns
// where to read from: the complete copies and the nodes that began
// pulling before it. Reads thus only go to earlier pullers, so no two
// pulls wait on each other, and a broadcast spreads over the receivers
// instead of reading every copy from the primary.
//
// The directory knows nothing of reference counts: Add and StartPull take
// the owner's liveness test and run it under the directory's lock, and
// the owner calls Free after the object has left its reference table. So
// an Add racing a free either lands before Free (and Free returns its
// node) or sees the object gone and is refused (the node drops its
// copy): no copy outlives its object unannounced. Safe for concurrent
// use.
package objdir

import (
	"slices"
	"sync"

	"github.com/raygo/raygo/internal/ids"
)

// MaxCopies bounds the secondary copies, and separately the pulls,
// recorded per object (a cluster's node count is far below it); more are
// not recorded, so those nodes' copies go only when their owner's process
// ends (objstore's FreeOwners) or by eviction.
const MaxCopies = 4096

// Directory records the secondary copies of owned objects.
type Directory struct {
	mu      sync.Mutex
	objects map[ids.ID]*entry // guarded by mu
}

type entry struct {
	copies  []string // complete copies, in the order they were made
	pulling []string // nodes pulling a copy, in the order they began
}

// New returns an empty directory.
func New() *Directory { return &Directory{objects: map[ids.ID]*entry{}} }

// Add records that node holds a complete copy of id (it is no longer
// pulling), if alive (called under the directory's lock) says the object
// is still owned and in scope; it reports whether it was. Adding a node
// twice records it once.
func (d *Directory) Add(id ids.ID, node string, alive func() bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !alive() {
		return false
	}
	e := d.entryLocked(id)
	e.pulling = slices.DeleteFunc(e.pulling, func(n string) bool { return n == node })
	if !slices.Contains(e.copies, node) && len(e.copies) < MaxCopies {
		e.copies = append(e.copies, node)
	}
	return true
}

// StartPull records that node began pulling id, if alive says the
// object is still owned, and returns where it should read from: primary,
// the complete copies, then the nodes that began pulling before it.
// A node that registers again keeps its place.
func (d *Directory) StartPull(id ids.ID, node, primary string, alive func() bool) ([]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !alive() {
		return nil, false
	}
	e := d.entryLocked(id)
	i := slices.Index(e.pulling, node)
	if i < 0 {
		if len(e.pulling) >= MaxCopies {
			return withPrimary(primary, e.copies), true
		}
		i = len(e.pulling)
		e.pulling = append(e.pulling, node)
	}
	return withPrimary(primary, append(slices.Clone(e.copies), e.pulling[:i]...)), true
}

func (d *Directory) entryLocked(id ids.ID) *entry {
	e := d.objects[id]
	if e == nil {
		e = &entry{}
		d.objects[id] = e
	}
	return e
}

// Remove forgets node's copy of id, complete or being pulled (it dropped
// or evicted it, or its pull failed).
func (d *Directory) Remove(id ids.ID, node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.objects[id]
	if e == nil {
		return
	}
	drop := func(n string) bool { return n == node }
	e.copies = slices.DeleteFunc(e.copies, drop)
	e.pulling = slices.DeleteFunc(e.pulling, drop)
	if len(e.copies) == 0 && len(e.pulling) == 0 {
		delete(d.objects, id)
	}
}

// Locations returns the nodes holding a complete copy of id: primary
// first (when not empty), then the copies in the order they were made.
func (d *Directory) Locations(id ids.ID, primary string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var copies []string
	if e := d.objects[id]; e != nil {
		copies = e.copies
	}
	return withPrimary(primary, copies)
}

// Free forgets id and returns every node holding or pulling a copy of
// it, primary first: the owner tells each of them to delete it.
func (d *Directory) Free(id ids.ID, primary string) []string {
	d.mu.Lock()
	e := d.objects[id]
	delete(d.objects, id)
	d.mu.Unlock()
	if e == nil {
		return withPrimary(primary, nil)
	}
	return withPrimary(primary, append(slices.Clone(e.copies), e.pulling...))
}

// Len is the number of objects with recorded copies.
func (d *Directory) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.objects)
}

func withPrimary(primary string, copies []string) []string {
	out := make([]string, 0, len(copies)+1)
	if primary != "" {
		out = append(out, primary)
	}
	for _, n := range copies {
		if n != primary {
			out = append(out, n)
		}
	}
	return out
}
