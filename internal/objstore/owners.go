package objstore

import (
	"github.com/raygo/raygo/internal/ids"
)

// MaxDeadOwners bounds how many dead owners a store remembers. A create
// for a remembered dead owner (a task's return finished after its caller
// died, a late fetch) is refused with an OwnerDied error instead of
// leaving an object nobody will free; the oldest are forgotten first.
const MaxDeadOwners = 1 << 16

// deadOwners is a bounded set of owners known to be gone.
type deadOwners struct {
	set  map[ids.ID]struct{}
	ring []ids.ID // the set's members in the order they came, up to MaxDeadOwners
	next int      // where the next one goes once ring is full (the oldest)
}

func (d *deadOwners) has(id ids.ID) bool {
	_, ok := d.set[id]
	return ok && !id.IsNil()
}

func (d *deadOwners) add(id ids.ID) {
	if d.set == nil {
		d.set = map[ids.ID]struct{}{}
	}
	if _, ok := d.set[id]; ok || id.IsNil() {
		return
	}
	if len(d.ring) < MaxDeadOwners {
		d.ring = append(d.ring, id)
	} else {
		delete(d.set, d.ring[d.next])
		d.ring[d.next] = id
		d.next = (d.next + 1) % MaxDeadOwners
	}
	d.set[id] = struct{}{}
}

// ownerIndex maps an owner to its objects, so freeing an owner's objects
// costs what it owns, not the size of the store.
type ownerIndex map[ids.ID]map[*entry]struct{}

func (x *ownerIndex) add(e *entry) {
	if e.ownerID.IsNil() {
		return
	}
	if *x == nil {
		*x = ownerIndex{}
	}
	set := (*x)[e.ownerID]
	if set == nil {
		set = map[*entry]struct{}{}
		(*x)[e.ownerID] = set
	}
	set[e] = struct{}{}
}

func (x ownerIndex) remove(e *entry) {
	if set := x[e.ownerID]; set != nil {
		delete(set, e)
		if len(set) == 0 {
			delete(x, e.ownerID)
		}
	}
}

// FreeOwners frees every object owned by the given owners, whose
// processes are gone: primary and secondary copies, in memory, spilled or
// in files of their own. Objects still mapped by readers or being written
// go when their last reader releases them or their writer seals. Later
// creates for these owners are refused (see MaxDeadOwners). It returns how
// many objects it freed or marked.
func (s *Store) FreeOwners(owners ...ids.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.freeOwnersLocked(owners)
}

func (s *Store) freeOwnersLocked(owners []ids.ID) int {
	n := 0
	for _, o := range owners {
		if o.IsNil() {
			continue
		}
		s.dead.add(o)
		var list []*entry
		for e := range s.byOwner[o] {
			list = append(list, e)
		}
		for _, e := range list {
			if e.deleted {
				continue
			}
			n++
			if e.pins > 0 || !e.sealed {
				e.deleted = true
				continue
			}
			s.destroyLocked(e)
		}
	}
	if n > 0 {
		s.log.Debug("freed the objects of dead owners", "owners", len(owners), "objects", n)
	}
	return n
}
