package coreworker

import (
	"sync"
	"testing"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// reviveWorker is a core worker with only what revive, unrevive and
// freeOwned use: the reference counter (its events go to the real sink)
// and the memory store. Values are in memory, so no node is involved.
func reviveWorker() *CoreWorker {
	cw := &CoreWorker{mem: memstore.New()}
	cw.refs = refcount.New(refcount.Owner{ID: ids.New()}, sink{cw})
	return cw
}

// owned adds an owned object with a value in memory and one handle, whose
// lineage a later task keeps (so that its last handle leaves it
// lineage-only, as a finished task's argument is).
func owned(cw *CoreWorker) *refcount.Entry {
	id := ids.New()
	e := cw.refs.NewOwnedSlot(id, &pb.Value{Data: []byte("value"), Size: 5})
	cw.refs.AddContaining(e, nil) // one handle
	if err := cw.refs.Hold(e); err != nil {
		panic(err)
	}
	cw.refs.Release(true, e) // a task took it and finished: a lineage ref
	return e
}

func TestReviveDefersFree(t *testing.T) {
	cw := reviveWorker()
	e := owned(cw)
	// A rebuild serves it; then its last handle goes.
	cw.revive(e.ID())
	cw.refs.RemoveLocal(e)
	if _, ok := cw.refs.LineageOnly(e.ID()); !ok {
		t.Fatalf("want the object out of scope, kept for lineage: %v", cw.refs.CountsOf(e.ID()))
	}
	if v := cw.ownedValue(e.ID()); v == nil || memstore.IsFreed(v) {
		t.Fatalf("a revived object's value was freed when its last handle went: %v", v)
	}
	cw.unrevive([]ids.ID{e.ID()})
	if v := e.Slot().Value(); !memstore.IsFreed(v) {
		t.Fatalf("after the last unrevive the value is %v, want it freed", v)
	}
	if cw.ownedValue(e.ID()) != nil {
		t.Fatal("an out-of-scope object no rebuild serves is still served")
	}
}

func TestFreeWithoutRevivalIsImmediate(t *testing.T) {
	cw := reviveWorker()
	e := owned(cw)
	cw.refs.RemoveLocal(e)
	if v := e.Slot().Value(); !memstore.IsFreed(v) {
		t.Fatalf("value %v, want freed", v)
	}
}

// TestReviveNeverSeesAValueAboutToGo races frees of objects' last
// handles with revivals of the same objects: whatever a revive then reads
// stays until the unrevive (a freed value is fine: the caller rebuilds
// it), as rebuildArgs relies on.
func TestReviveNeverSeesAValueAboutToGo(t *testing.T) {
	cw := reviveWorker()
	for range 2000 {
		e := owned(cw)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			cw.refs.RemoveLocal(e)
		}()
		cw.revive(e.ID())
		seen := e.Slot().Value()
		wg.Wait()
		if now := e.Slot().Value(); !memstore.IsFreed(seen) && memstore.IsFreed(now) {
			t.Fatal("a revived object's value was freed after the revive saw it")
		}
		cw.unrevive([]ids.ID{e.ID()})
		if !memstore.IsFreed(e.Slot().Value()) {
			t.Fatalf("not freed after the last unrevive: %v seen=%v counts=%v lineageOnly=%v", e.Slot().Value(), seen, cw.refs.CountsOf(e.ID()), func() bool { _, ok := cw.refs.LineageOnly(e.ID()); return ok }())
		}
	}
}
