package coreworker

import (
	"slices"
	"testing"

	"github.com/raygo/raygo/internal/ids"
)

// TestActorObjectsBookkeeping: objects are taken by the actor that put
// them, once; an object that went out of scope first is not; forget on an
// empty table does nothing.
func TestActorObjectsBookkeeping(t *testing.T) {
	var a actorObjects
	a.forget(ids.New()) // nothing recorded yet
	x, y := ids.New(), ids.New()
	o1, o2, o3 := ids.New(), ids.New(), ids.New()
	a.add(x, o1)
	a.add(x, o2)
	a.add(x, o2) // twice: counted once
	a.add(y, o3)
	if n := a.n.Load(); n != 3 {
		t.Fatalf("%d objects recorded, want 3", n)
	}
	a.forget(o1) // out of scope before its actor went
	got := a.take(x)
	if !slices.Equal(got, []ids.ID{o2}) {
		t.Fatalf("take(x) = %v, want [%v]", got, o2)
	}
	if again := a.take(x); len(again) != 0 {
		t.Fatalf("take(x) again = %v, want nothing", again)
	}
	a.forget(o2) // taken already: nothing
	if got := a.take(y); !slices.Equal(got, []ids.ID{o3}) {
		t.Fatalf("take(y) = %v, want [%v]", got, o3)
	}
	if n := a.n.Load(); n != 0 || len(a.byActor) != 0 || len(a.actorOf) != 0 {
		t.Fatalf("left: n=%d, %d actors, %d objects", n, len(a.byActor), len(a.actorOf))
	}
}
