package alloc

import (
	"strings"
	"testing"
)

// TestCheckDetectsCorruption makes sure check, which every other test relies
// on, notices each kind of broken invariant.
func TestCheckDetectsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt func(a *Allocator, offs []int64)
		want    string
	}{
		{"gap between blocks", func(a *Allocator, offs []int64) { a.blocks[offs[1]].off += 64 }, "follows a block"},
		{"unaligned size", func(a *Allocator, offs []int64) { a.blocks[offs[0]].size = 65 }, "not a positive multiple"},
		{"short tiling", func(a *Allocator, _ []int64) { a.capacity += 64 }, "blocks cover"},
		{"map entry", func(a *Allocator, offs []int64) { a.blocks[offs[1]] = &block{off: offs[1], size: 64} }, "not the map's entry"},
		{"stray map entry", func(a *Allocator, _ []int64) { a.blocks[1<<20] = &block{} }, "map has"},
		{"prev link", func(a *Allocator, offs []int64) { a.blocks[offs[2]].prev = nil }, "prev link"},
		{"adjacent free", func(a *Allocator, offs []int64) {
			b := a.blocks[offs[2]] // next to the free block at offs[1]
			b.free = true
			a.used -= b.size
			a.live--
			a.free.insert(b)
		}, "adjacent"},
		{"live block in index", func(a *Allocator, offs []int64) {
			b := a.blocks[offs[1]]
			b.free = false
			a.used += b.size
			a.live++
		}, "holds live block"},
		{"used counter", func(a *Allocator, _ []int64) { a.used += 64 }, "counters"},
		{"free block not indexed", func(a *Allocator, offs []int64) {
			a.free.remove(a.blocks[offs[1]])
		}, "free index holds"},
		{"index order", func(a *Allocator, _ []int64) {
			r := a.free.root
			r.left, r.right = r.right, r.left
		}, "out of order"},
		{"heap order", func(a *Allocator, _ []int64) {
			r := a.free.root
			if r.left != nil {
				r.left.prio = r.prio + 1
			} else {
				r.right.prio = r.prio + 1
			}
		}, "outranks"},
		{"index counter", func(a *Allocator, _ []int64) { a.free.n++ }, "counter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Live blocks at 0, 64, ..., with every other one freed, so the
			// free index has several nodes.
			a := newAlloc(t, 4096, 64)
			var offs []int64
			for range 16 {
				offs = append(offs, mustAlloc(t, a, 64))
			}
			for i := 1; i < 16; i += 2 {
				mustFree(t, a, offs[i])
			}
			tc.corrupt(a, offs)
			err := a.check()
			if err == nil {
				t.Fatal("check() = nil on a corrupted allocator")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("check() = %v, want it to mention %q", err, tc.want)

			}
		})
	}
}
