package coreworker

import (
	"context"
	"sync"

	"github.com/raygo/raygo/internal/coreworker/executor"
	"github.com/raygo/raygo/internal/ids"
)

// Objects of actors that share a process.
//
// In Ray every actor is a process of its own, so an actor's death is its
// owner's death: what it put goes with it. Here actors that need no CPU
// share a worker process (the node daemon's MaxActorsPerProcess), whose
// core worker owns what all of them put. Killing the process frees all
// of it (the store frees a dead process's objects); killing one of its
// actors (ray.Kill, a restart elsewhere, ExitActor) leaves the process
// running, so the core worker remembers which hosted actor put each
// object it owns (ray.Put and PutBuffer in the actor's constructor or
// methods) and frees those when the actor is dropped, as ray.Free does:
// every copy in the stores goes, and later reads, here or by borrowers,
// fail with ObjectFreed.

// actorObjects numbers the hosted actors that put objects: each such
// object's reference-counter entry carries its actor's number (a tag),
// and dropping the actor frees the owned objects in scope with that tag
// (refcount.FreeTagged). A put costs one tag store, a free nothing; an
// object-to-actor map here cost a quarter of an actor's CPU in a put
// loop (its lookups missed the cache as the map grew with every object
// awaiting the collector). It is safe for concurrent use.
type actorObjects struct {
	mu   sync.Mutex
	tags map[ids.ID]uint32 // guarded by mu: hosted actor -> its tag
	last uint32            // guarded by mu: the last tag given
}

// tag returns actor's tag, giving it one if it has none.
func (a *actorObjects) tag(actor ids.ID) uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tags[actor]
	if !ok {
		if a.tags == nil {
			a.tags = map[ids.ID]uint32{}
		}
		a.last++
		if a.last == 0 { // after 2^32 actors: 0 means untagged
			a.last++
		}
		t = a.last
		a.tags[actor] = t
	}
	return t
}

// take removes and returns actor's tag (0 if it put nothing).
func (a *actorObjects) take(actor ids.ID) uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tags[actor]
	delete(a.tags, actor)
	return t
}

// putBy records that the hosted actor whose method ctx belongs to (if
// any) put the owned object h. An object put by a method still running
// after its actor was dropped is freed at once: nothing of that actor
// remains to hold it.
func (cw *CoreWorker) putBy(ctx context.Context, h *Ref) {
	if cw.exec == nil {
		return
	}
	actor, _, ok := executor.ActorFrom(ctx)
	if !ok || h.entry == nil {
		return
	}
	cw.refs.SetTag(h.entry, cw.actorObjs.tag(actor))
	// Checked after the tag is set: a drop that freed the actor's objects
	// before has marked the method's actor dropped first. (Only this
	// object goes: a restart of the actor in this process puts under a
	// new tag.)
	if _, dropped, _ := executor.ActorFrom(ctx); dropped {
		cw.refs.Free([]ids.ID{h.ID})
	}
}

// freeActorObjects frees the objects a hosted actor put, now that it is
// dropped from this process.
func (cw *CoreWorker) freeActorObjects(actor ids.ID) {
	cw.refs.FreeTagged(cw.actorObjs.take(actor))
}
