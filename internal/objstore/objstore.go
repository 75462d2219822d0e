// Package objstore is a node's object store: immutable objects larger than
// the inline threshold, created by workers on the node and read by any
// worker in the cluster through its node daemon.
//
// Store is the interface the node daemon uses; Memory is an in-process
// implementation. The shared-memory implementation replaces it without
// changing callers.
package objstore

import (
	"fmt"
	"sync"

	"github.com/raygo/raygo/internal/ids"
)

// Store holds sealed, immutable objects by id. Implementations are safe
// for concurrent use.
type Store interface {
	// Put stores a sealed object. Putting an id that exists is a no-op
	// (objects are immutable and ids unique, so a retry writes the same
	// bytes). The store keeps data; callers must not modify it afterwards.
	Put(id ids.ID, data []byte, owner string) error
	// Get returns the object's bytes, which callers must not modify.
	Get(id ids.ID) ([]byte, bool)
	// Delete frees objects; unknown ids are ignored.
	Delete(id ...ids.ID)
	// Stats reports the store's current use.
	Stats() Stats
}

// Stats is a snapshot of a store's use.
type Stats struct {
	Objects  int64
	Bytes    int64
	Capacity int64
}

// Memory is a Store in the node daemon's heap, bounded by capacity bytes.
type Memory struct {
	capacity int64
	mu       sync.Mutex
	objects  map[ids.ID]entry // guarded by mu
	bytes    int64            // guarded by mu
}

type entry struct {
	data  []byte
	owner string
}

// NewMemory returns an empty store that holds at most capacity bytes.
func NewMemory(capacity int64) *Memory {
	return &Memory{capacity: capacity, objects: map[ids.ID]entry{}}
}

// ErrFull is returned by Put when an object does not fit.
type ErrFull struct {
	Size, Used, Capacity int64
}

func (e *ErrFull) Error() string {
	return fmt.Sprintf("objstore: object of %d bytes does not fit: %d of %d bytes in use", e.Size, e.Used, e.Capacity)
}

// Put implements Store.
func (m *Memory) Put(id ids.ID, data []byte, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objects[id]; ok {
		return nil
	}
	if m.capacity > 0 && m.bytes+int64(len(data)) > m.capacity {
		return &ErrFull{Size: int64(len(data)), Used: m.bytes, Capacity: m.capacity}
	}
	m.objects[id] = entry{data: data, owner: owner}
	m.bytes += int64(len(data))
	return nil
}

// Get implements Store.
func (m *Memory) Get(id ids.ID) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.objects[id]
	return e.data, ok
}

// Delete implements Store.
func (m *Memory) Delete(idList ...ids.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range idList {
		if e, ok := m.objects[id]; ok {
			m.bytes -= int64(len(e.data))
			delete(m.objects, id)
		}
	}
}

// Stats implements Store.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Objects: int64(len(m.objects)), Bytes: m.bytes, Capacity: m.capacity}
}
