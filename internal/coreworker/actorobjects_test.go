package coreworker

import (
	"testing"

	"github.com/raygo/raygo/internal/ids"
)

// TestActorObjectsTags: each actor gets one tag, kept until taken; a taken
// actor's next put gets a new tag; an actor that put nothing has none.
func TestActorObjectsTags(t *testing.T) {
	var a actorObjects
	if got := a.take(ids.New()); got != 0 {
		t.Fatalf("take of an actor that put nothing = %d, want 0", got)
	}
	x, y := ids.New(), ids.New()
	tx := a.tag(x)
	if tx == 0 || a.tag(x) != tx {
		t.Fatalf("tag(x) = %d then %d: want the same non-zero tag", tx, a.tag(x))
	}
	ty := a.tag(y)
	if ty == 0 || ty == tx {
		t.Fatalf("tag(y) = %d, tag(x) = %d: want distinct non-zero tags", ty, tx)
	}
	if got := a.take(x); got != tx {
		t.Fatalf("take(x) = %d, want %d", got, tx)
	}
	if got := a.take(x); got != 0 {
		t.Fatalf("take(x) again = %d, want 0", got)
	}
	if again := a.tag(x); again == tx || again == 0 {
		t.Fatalf("tag(x) after take = %d: want a new tag, not %d", again, tx)
	}
	a.last = ^uint32(0) // the counter wraps: 0 is never given
	if z := a.tag(ids.New()); z == 0 {
		t.Fatal("tag after wrapping = 0")
	}
}
