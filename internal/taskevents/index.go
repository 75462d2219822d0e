package taskevents

import (
	"encoding/binary"

	"github.com/raygo/raygo/internal/ids"
)

// index finds a Store's row of an attempt: an open-addressing hash table
// with linear probing and backward-shift deletion, so that the endless
// inserts and evictions of a full Store leave no tombstones behind to
// lengthen probes (Go's maps keep them, which made lookups several times
// slower in a Store at its bound). It holds row numbers only; the keys
// are the rows' own id and attempt. Not safe for concurrent use: the
// Store's lock guards it.
type index struct {
	slots []int32 // 1 + row number; 0: empty
	mask  uint64
	n     int
}

const minIndexSlots = 1024

// hashKey mixes an attempt's key (splitmix64's finalizer over both halves
// of the id and the attempt).
func hashKey(id *ids.ID, attempt int32) uint64 {
	h := binary.LittleEndian.Uint64(id[:8]) ^ binary.LittleEndian.Uint64(id[8:])*0x9E3779B97F4A7C15 ^ uint64(uint32(attempt))<<7
	h ^= h >> 30
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 27
	h *= 0x94D049BB133111EB
	h ^= h >> 31
	return h
}

// find returns the slot holding the row of (id, attempt), or the empty
// slot where it would go, and whether it was found.
func (x *index) find(rows *slab, id *ids.ID, attempt int32) (uint64, bool) {
	if x.slots == nil {
		x.slots, x.mask = make([]int32, minIndexSlots), minIndexSlots-1
	}
	for j := hashKey(id, attempt) & x.mask; ; j = (j + 1) & x.mask {
		v := x.slots[j]
		if v == 0 {
			return j, false
		}
		if r := rows.at(v - 1); r.id == *id && r.attempt == attempt {
			return j, true
		}
	}
}

// get returns the row of (id, attempt).
func (x *index) get(rows *slab, id ids.ID, attempt int32) (int32, bool) {
	j, ok := x.find(rows, &id, attempt)
	if !ok {
		return 0, false
	}
	return x.slots[j] - 1, true
}

// put records row i, whose key is not in the index yet.
func (x *index) put(rows *slab, i int32) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow(rows)
	}
	r := rows.at(i)
	j, _ := x.find(rows, &r.id, r.attempt)
	x.slots[j] = i + 1
	x.n++
}

// grow doubles the table (at least minIndexSlots), keeping it at most
// half full.
func (x *index) grow(rows *slab) {
	old := x.slots
	size := max(minIndexSlots, 2*len(old))
	x.slots, x.mask = make([]int32, size), uint64(size-1)
	for _, v := range old {
		if v != 0 {
			r := rows.at(v - 1)
			j, _ := x.find(rows, &r.id, r.attempt)
			x.slots[j] = v
		}
	}
}

// del removes row i's key, shifting back the entries after it in its
// probe run that would no longer be found past the hole.
func (x *index) del(rows *slab, i int32) {
	r := rows.at(i)
	hole, ok := x.find(rows, &r.id, r.attempt)
	if !ok {
		return
	}
	x.n--
	for j := (hole + 1) & x.mask; x.slots[j] != 0; j = (j + 1) & x.mask {
		o := rows.at(x.slots[j] - 1)
		home := hashKey(&o.id, o.attempt) & x.mask
		// The entry at j may fill the hole unless its home lies
		// cyclically in (hole, j].
		if (j-home)&x.mask >= (j-hole)&x.mask {
			x.slots[hole] = x.slots[j]
			hole = j
		}
	}
	x.slots[hole] = 0
}
