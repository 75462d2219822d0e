package objstore

import (
	"sync/atomic"
	"testing"
	"unsafe"
)

// TestPopulateOnlyOnce: a client populates the whole 2 MiB pieces an
// object covers, one call per run of pieces it has not populated before,
// and never a piece again; pieces an object only partly covers are left
// to fault; a failed call marks nothing.
func TestPopulateOnlyOnce(t *testing.T) {
	const mib = 1 << 20
	region := make([]byte, 12*mib)
	type call struct{ off, n int64 }
	var calls []call
	fail := false
	populateCall = func(b []byte) error {
		calls = append(calls, call{int64(uintptr(unsafe.Pointer(&b[0])) - uintptr(unsafe.Pointer(&region[0]))), int64(len(b))})
		if fail {
			return errNoPopulate
		}
		return nil
	}
	t.Cleanup(func() { populateCall = populateWrite })
	c := &Client{populated: make([]atomic.Uint64, 1)}
	put := func(off, n int64) []call {
		calls = nil
		c.populate(off, region[off:off+n])
		return calls
	}
	// [1, 9) MiB covers pieces 1..3 ([2, 8) MiB) whole.
	if got := put(1*mib, 8*mib); len(got) != 1 || got[0] != (call{2 * mib, 6 * mib}) {
		t.Fatalf("first object: calls %v, want one for [2, 8) MiB", got)
	}
	// [0, 10) MiB: pieces 0 and 4 are new, 1..3 done: two calls.
	if got := put(0, 10*mib); len(got) != 2 || got[0] != (call{0, 2 * mib}) || got[1] != (call{8 * mib, 2 * mib}) {
		t.Fatalf("second object: calls %v, want [0, 2) and [8, 10) MiB", got)
	}
	if got := put(0, 10*mib); len(got) != 0 {
		t.Fatalf("the same pieces again: calls %v, want none", got)
	}
	if got := put(10*mib, mib/2); len(got) != 0 {
		t.Fatalf("an object under populateAbove: calls %v", got)
	}
	fail = true
	if got := put(10*mib, 2*mib); len(got) != 1 {
		t.Fatalf("piece 5: calls %v, want one", got)
	}
	fail = false
	if got := put(10*mib, 2*mib); len(got) != 1 {
		t.Fatalf("a piece whose call failed is asked again: calls %v", got)
	}
}
