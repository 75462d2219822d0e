// Package objstore is a node's object store, the counterpart of Ray's
// plasma store: immutable objects larger than the inline threshold, kept
// in one shared-memory region per node that every process on the node
// maps, so reads are zero-copy.
//
// The node daemon owns the Store: the region (an anonymous memfd, sized
// by --object-store-memory, optionally pre-faulted), the allocator that
// places objects in it (package alloc), the object table with its pins,
// an LRU of evictable copies, spilling to disk, and back-pressure.
// Processes talk to it over an abstract unix socket (SocketName) with a
// small framed protocol (package framed; pb.StoreRequest / pb.StoreReply):
// hello (token and uid checked), a greeting carrying the region's fd, then
// create, seal, abort, get (pin), release; owners delete through the
// daemon (FreeObjects).
//
// Life of an object: a writer creates it (space reserved; it waits up to
// Config.PutTimeout for room, evicting secondary copies and spilling
// unpinned primary copies to disk first), fills it, and seals it; from
// then on it is immutable. Readers pin it with get and release it when
// done; a pinned object is never moved, spilled or freed. The owner
// deletes it when its last reference goes; a pinned object goes when its
// last reader releases it. A spilled object is restored into the region on
// its next get (or read from its file when the region has no room).
// Objects larger than the whole region live in files of their own in the
// spill directory.
//
// Crash safety: a client's connection is its lease on what it holds. When
// a process dies, the store drops the objects it was still creating and
// releases its pins; nothing it held leaks.
//
// Zero-copy lifetime: Client.Get returns a Buffer whose bytes alias the
// shared region. They stay valid until Release. Each Buffer is mapped at
// an address this process never reuses, and Release makes that range
// inaccessible, so a stale slice faults loudly instead of reading memory
// that now holds another object.
package objstore
