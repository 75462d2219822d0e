package objstore

import (
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Fill creates an object of size bytes for the daemon itself, lets fill
// write its bytes in place (in the region, or in the object's own file
// when it is larger than the region) and seals it; on fill's error the
// object is dropped and the error returned. An object that already exists
// is left as it is and fill is not called. Readers asking for the object
// while fill runs wait for the seal. The node's object manager pulls
// copies from other nodes through it (info.Secondary set); fill must not
// keep the slice.
func (s *Store) Fill(id ids.ID, size int64, info Info, fill func([]byte) error) error {
	create := &pb.StoreCreate{ObjectId: id.Bytes(), Size: size, OwnerAddress: info.Owner, CallSite: info.CallSite, Secondary: info.Secondary}
	if !info.OwnerID.IsNil() {
		create.OwnerId = info.OwnerID.Bytes()
	}
	loc, err := s.create(s.self, create)
	if err != nil || loc.Exists {
		return err
	}
	if loc.Path == "" {
		err = fill(s.reg.mem[loc.Offset : loc.Offset+size : loc.Offset+size])
	} else {
		err = withFileMap(loc.Path, loc.Size, true, fill)
	}
	if err != nil {
		s.abort(s.self, id)
		return err
	}
	return s.seal(s.self, id)
}

// MaxEvictedNotes bounds the evicted copies remembered until TakeEvicted;
// older notes are dropped (telling owners is best effort).
const MaxEvictedNotes = 1 << 16

// Evicted is a secondary copy the store evicted to make room.
type Evicted struct {
	ID    ids.ID
	Owner string // the owner's address
}

func (s *Store) noteEvictedLocked(e *entry) {
	if e.owner == "" {
		return
	}
	if len(s.evicted) >= MaxEvictedNotes {
		s.evicted = s.evicted[1:]
	}
	s.evicted = append(s.evicted, Evicted{ID: e.id, Owner: e.owner})
}

// TakeEvicted returns the secondary copies evicted since the last call,
// oldest first, so the node can tell their owners (whose directories
// then stop naming this node).
func (s *Store) TakeEvicted() []Evicted {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.evicted
	s.evicted = nil
	return out
}
