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
	set   map[ids.ID]struct{}
	order []ids.ID // oldest first
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
	if len(d.order) == MaxDeadOwners {
		delete(d.set, d.order[0])
		d.order = append(d.order[:0], d.order[1:]...)
	}
	d.set[id] = struct{}{}
	d.order = append(d.order, id)
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
	gone := make(map[ids.ID]bool, len(owners))
	for _, o := range owners {
		if !o.IsNil() {
			gone[o] = true
			s.dead.add(o)
		}
	}
	if len(gone) == 0 {
		return 0
	}
	n := 0
	for _, e := range s.objects {
		if !gone[e.ownerID] || e.deleted {
			continue
		}
		n++
		if e.pins > 0 || !e.sealed {
			e.deleted = true
			continue
		}
		s.destroyLocked(e)
	}
	if n > 0 {
		s.log.Debug("freed the objects of dead owners", "owners", len(gone), "objects", n)
	}
	return n
}
