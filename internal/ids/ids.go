// Package ids makes and prints the identifiers raygo uses for jobs, nodes,
// workers, tasks, actors and objects. All are random 16-byte values (object
// ids derive from their task id and return index) printed as hex.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
)

// Size is the length in bytes of every id.
const Size = 16

// ID is a fixed-size identifier, usable as a map key.
type ID [Size]byte

// Nil is the zero ID.
var Nil ID

var (
	prefix  [8]byte
	counter atomic.Uint64
)

func init() {
	if _, err := rand.Read(prefix[:]); err != nil {
		panic("ids: no randomness: " + err.Error())
	}
	var c [8]byte
	_, _ = rand.Read(c[:])
	counter.Store(binary.LittleEndian.Uint64(c[:]) >> 16)
}

// New returns a fresh id: a per-process random prefix and a counter, which is
// unique cluster-wide with overwhelming probability and cheap on hot paths.
// Its last two bytes are always zero: ForReturn uses them to number a
// task's returns.
func New() ID {
	var id ID
	copy(id[:8], prefix[:])
	binary.BigEndian.PutUint64(id[8:], counter.Add(1)<<16)
	return id
}

// MaxReturns is the most return objects one task can have.
const MaxReturns = 1<<16 - 1

// ForReturn derives the id of a task's i-th return object: the task id with
// i+1 in its last two bytes, so return ids of different tasks never
// collide and never equal a task id. i must be in [0, MaxReturns).
func ForReturn(task ID, i int) ID {
	id := task
	binary.BigEndian.PutUint16(id[Size-2:], uint16(i+1))
	return id
}

// FromBytes converts a wire id; short or long input yields ok=false.
func FromBytes(b []byte) (ID, bool) {
	var id ID
	if len(b) != Size {
		return id, false
	}
	copy(id[:], b)
	return id, true
}

// MustFromBytes is FromBytes that returns Nil for malformed input.
func MustFromBytes(b []byte) ID {
	id, _ := FromBytes(b)
	return id
}

// Bytes returns a copy of the id as a slice for the wire.
func (id ID) Bytes() []byte { b := make([]byte, Size); copy(b, id[:]); return b }

// String prints the id as 32 hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ShortLen is the length of Short's form.
const ShortLen = 12

// Short prints an id in 12 hex digits, the one short form raygo uses
// everywhere (status, errors, log prefixes): the last 12 digits of String,
// so that it is found by grepping for it in anything that prints full
// ids. They hold the low 32 bits of the creating process's counter (which
// starts at random) and the return index, so ids of one process differ for
// the first 4 billion and objects of one task differ by their index.
func (id ID) Short() string { return hex.EncodeToString(id[Size-ShortLen/2:]) }

// ShortString is Short for an id already printed by String (or any hex
// id): its last ShortLen digits; "?" for none.
func ShortString(hexID string) string {
	switch {
	case hexID == "":
		return "?"
	case len(hexID) > ShortLen:
		return hexID[len(hexID)-ShortLen:]
	}
	return hexID
}

// IsNil reports whether id is the zero id.
func (id ID) IsNil() bool { return id == Nil }

// Parse reads a 32-hex-digit id.
func Parse(s string) (ID, bool) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != Size {
		return id, false
	}
	copy(id[:], b)
	return id, true
}
