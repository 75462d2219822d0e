package coreworker

import (
	"context"
	"sync"
	"sync/atomic"

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

// actorObjects maps hosted actors to the objects they put that are still
// in scope. It is safe for concurrent use.
type actorObjects struct {
	n       atomic.Int64 // objects recorded: forget does nothing while zero
	mu      sync.Mutex
	byActor map[ids.ID]map[ids.ID]struct{} // guarded by mu
	actorOf map[ids.ID]ids.ID              // guarded by mu
}

func (a *actorObjects) add(actor, obj ids.ID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.byActor == nil {
		a.byActor, a.actorOf = map[ids.ID]map[ids.ID]struct{}{}, map[ids.ID]ids.ID{}
	}
	set := a.byActor[actor]
	if set == nil {
		set = map[ids.ID]struct{}{}
		a.byActor[actor] = set
	}
	if _, ok := set[obj]; !ok {
		set[obj] = struct{}{}
		a.actorOf[obj] = actor
		a.n.Add(1)
	}
}

// forget drops an object that went out of scope.
func (a *actorObjects) forget(obj ids.ID) {
	if a.n.Load() == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	actor, ok := a.actorOf[obj]
	if !ok {
		return
	}
	delete(a.actorOf, obj)
	a.n.Add(-1)
	if set := a.byActor[actor]; set != nil {
		delete(set, obj)
		if len(set) == 0 {
			delete(a.byActor, actor)
		}
	}
}

// take removes and returns the objects recorded for actor.
func (a *actorObjects) take(actor ids.ID) []ids.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	set := a.byActor[actor]
	delete(a.byActor, actor)
	out := make([]ids.ID, 0, len(set))
	for obj := range set {
		delete(a.actorOf, obj)
		out = append(out, obj)
	}
	a.n.Add(-int64(len(out)))
	return out
}

// putBy records that the hosted actor whose method ctx belongs to (if
// any) put the owned object id. An object put by a method still running
// after its actor was dropped is freed at once: nothing of that actor
// remains to hold it.
func (cw *CoreWorker) putBy(ctx context.Context, id ids.ID) {
	if cw.exec == nil {
		return
	}
	actor, _, ok := executor.ActorFrom(ctx)
	if !ok {
		return
	}
	cw.actorObjs.add(actor, id)
	// Checked after add: a drop that took the actor's objects before this
	// one was added has marked the method's actor dropped first. (Only
	// this object goes: a restart of the actor in this process puts under
	// the same actor id.)
	if _, dropped, _ := executor.ActorFrom(ctx); dropped {
		cw.actorObjs.forget(id)
		cw.refs.Free([]ids.ID{id})
	}
}

// freeActorObjects frees the objects a hosted actor put, now that it is
// dropped from this process.
func (cw *CoreWorker) freeActorObjects(actor ids.ID) {
	if list := cw.actorObjs.take(actor); len(list) > 0 {
		cw.refs.Free(list)
	}
}
