package coreworker

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/rpc"
)

// TestWholeStory: why a rebuild failed survives the wire (where an error
// wrapping an ObjectError keeps only its fields); other errors pass.
func TestWholeStory(t *testing.T) {
	lost := &errs.ObjectError{ObjectID: "1f", Kind: errs.KindObjectLost, Detail: "held only on nodes that died (n1)"}
	wrapped := fmt.Errorf("%w; it cannot be rebuilt: f used all of its 3 retries", lost)
	got := rpc.FromStatus(rpc.ToStatus(wholeStory(wrapped)))
	if !errors.Is(got, errs.ErrObjectLost) || !strings.Contains(got.Error(), "held only on nodes that died (n1); it cannot be rebuilt: f used all of its 3 retries") {
		t.Fatalf("across the wire: %v", got)
	}
	if got := wholeStory(lost); got != error(lost) {
		t.Fatalf("a bare ObjectError changed: %v", got)
	}
	other := errs.Systemf("boom")
	if got := wholeStory(other); got != other {
		t.Fatalf("another error changed: %v", got)
	}
}
