package alloc

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func newAlloc(t testing.TB, size, align int64) *Allocator {
	t.Helper()
	a, err := New(size, align)
	if err != nil {
		t.Fatalf("New(%d, %d): %v", size, align, err)
	}
	mustCheck(t, a)
	return a
}

func mustAlloc(t testing.TB, a *Allocator, n int64) int64 {
	t.Helper()
	off, ok := a.Alloc(n)
	if !ok {
		t.Fatalf("Alloc(%d) failed; stats %+v", n, a.Stats())
	}
	mustCheck(t, a)
	return off
}

func mustFree(t testing.TB, a *Allocator, off int64) {
	t.Helper()
	if err := a.Free(off); err != nil {
		t.Fatalf("Free(%d): %v", off, err)
	}
	mustCheck(t, a)
}

func mustCheck(t testing.TB, a *Allocator) {
	t.Helper()
	if err := a.check(); err != nil {
		t.Fatalf("invariant broken: %v", err)
	}
}

func wantStats(t *testing.T, a *Allocator, want Stats) {
	t.Helper()
	if got := a.Stats(); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

func TestNewRejectsBadArguments(t *testing.T) {
	for _, align := range []int64{math.MinInt64, -8, 0, 1, 2, 4, 12, 24, 100, math.MaxInt64} {
		if _, err := New(1<<20, align); !errors.Is(err, ErrBadAlign) {
			t.Errorf("New(1<<20, %d) = %v, want ErrBadAlign", align, err)
		}
	}
	if _, err := New(-1, 64); !errors.Is(err, ErrBadSize) {
		t.Errorf("New(-1, 64) = %v, want ErrBadSize", err)
	}
	for _, align := range []int64{8, 16, 64, 4096, 1 << 62} {
		if _, err := New(1<<20, align); err != nil {
			t.Errorf("New(1<<20, %d): %v", align, err)
		}
	}
}

func TestNewRoundsSizeDown(t *testing.T) {
	a := newAlloc(t, 1000, 64)
	wantStats(t, a, Stats{Capacity: 960, Free: 960, FreeBlocks: 1, LargestFree: 960})
}

func TestZeroCapacity(t *testing.T) {
	for _, size := range []int64{0, 63} {
		a := newAlloc(t, size, 64)
		wantStats(t, a, Stats{})
		if _, ok := a.Alloc(1); ok {
			t.Errorf("size %d: Alloc(1) succeeded", size)
		}
		if err := a.Free(0); !errors.Is(err, ErrNotAllocated) {
			t.Errorf("size %d: Free(0) = %v, want ErrNotAllocated", size, err)
		}
		mustCheck(t, a)
	}
}

func TestAllocRoundsUpToAlign(t *testing.T) {
	a := newAlloc(t, 1<<16, 64)
	for _, tc := range []struct{ n, want int64 }{{1, 64}, {63, 64}, {64, 64}, {65, 128}, {1000, 1024}} {
		off := mustAlloc(t, a, tc.n)
		if off%64 != 0 {
			t.Errorf("Alloc(%d) = %d, not aligned to 64", tc.n, off)
		}
		if got, ok := a.BlockSize(off); !ok || got != tc.want {
			t.Errorf("BlockSize after Alloc(%d) = %d, %v; want %d", tc.n, got, ok, tc.want)
		}
	}
	wantStats(t, a, Stats{
		Capacity: 1 << 16, Used: 64 + 64 + 64 + 128 + 1024, Free: 1<<16 - 1344,
		Blocks: 5, FreeBlocks: 1, LargestFree: 1<<16 - 1344,
	})
}

func TestAllocRejectsBadSizes(t *testing.T) {
	a := newAlloc(t, 4096, 64)
	for _, n := range []int64{math.MinInt64, -1, 0, 4097, 8192, math.MaxInt64} {
		if off, ok := a.Alloc(n); ok {
			t.Errorf("Alloc(%d) = %d, true; want failure", n, off)
		}
	}
	wantStats(t, a, Stats{Capacity: 4096, Free: 4096, FreeBlocks: 1, LargestFree: 4096})
}

func TestHugeRegion(t *testing.T) {
	a := newAlloc(t, math.MaxInt64, 8)
	capacity := int64(math.MaxInt64 &^ 7)
	off := mustAlloc(t, a, 1)
	if _, ok := a.Alloc(capacity); ok {
		t.Fatal("Alloc(capacity) succeeded with 8 bytes in use")
	}
	rest := mustAlloc(t, a, capacity-9) // rounds up to capacity-8 without overflow
	if rest != 8 {
		t.Fatalf("second block at %d, want 8", rest)
	}
	wantStats(t, a, Stats{Capacity: capacity, Used: capacity, Blocks: 2})
	mustFree(t, a, off)
	mustFree(t, a, rest)
	wantStats(t, a, Stats{Capacity: capacity, Free: capacity, FreeBlocks: 1, LargestFree: capacity})
}

func TestExactFitTakesWholeRegion(t *testing.T) {
	a := newAlloc(t, 4096, 64)
	if off := mustAlloc(t, a, 4096); off != 0 {
		t.Fatalf("Alloc(4096) = %d, want 0", off)
	}
	wantStats(t, a, Stats{Capacity: 4096, Used: 4096, Blocks: 1})
	if _, ok := a.Alloc(1); ok {
		t.Fatal("Alloc(1) succeeded in a full region")
	}
}

// holes lays out [live 64][hole sizes[0]][live 64][hole sizes[1]]...[live
// 64][rest free] in a region of 1 MiB and returns the holes' offsets.
func holes(t *testing.T, sizes ...int64) (*Allocator, []int64) {
	t.Helper()
	a := newAlloc(t, 1<<20, 64)
	var offs []int64
	mustAlloc(t, a, 64)
	for _, n := range sizes {
		offs = append(offs, mustAlloc(t, a, n))
		mustAlloc(t, a, 64)
	}
	for _, off := range offs {
		mustFree(t, a, off)
	}
	return a, offs
}

func TestBestFit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		holes []int64
		n     int64
		want  int // index of the hole that must be used; -1 for the tail
	}{
		{"exact fit beats larger", []int64{512, 128, 256}, 128, 1},
		{"smallest that fits", []int64{512, 128, 256}, 200, 2},
		{"ties go to lowest offset", []int64{256, 128, 256, 256}, 256, 0},
		{"rounded size decides", []int64{192, 128}, 129, 0},
		{"tail when no hole fits", []int64{128, 256}, 512, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, offs := holes(t, tc.holes...)
			tailOff := offs[len(offs)-1] + tc.holes[len(offs)-1] + 64
			want := tailOff
			if tc.want >= 0 {
				want = offs[tc.want]
			}
			if got := mustAlloc(t, a, tc.n); got != want {
				t.Fatalf("Alloc(%d) = %d, want %d", tc.n, got, want)
			}
		})
	}
}

func TestSplitReturnsRemainder(t *testing.T) {
	a := newAlloc(t, 1024, 64)
	off := mustAlloc(t, a, 100)
	wantStats(t, a, Stats{Capacity: 1024, Used: 128, Free: 896, Blocks: 1, FreeBlocks: 1, LargestFree: 896})
	if next := mustAlloc(t, a, 896); next != off+128 {
		t.Fatalf("remainder at %d, want %d", next, off+128)
	}
}

func TestCoalesce(t *testing.T) {
	// Each case lays out blocks A B C D E of 64 bytes at the start of a
	// 1024-byte region, whose free tail [320, 1024) follows E, frees some of
	// them and expects the resulting free runs.
	const tail = 1024 - 5*64
	for _, tc := range []struct {
		name  string
		frees []int   // indexes into A..E, in order
		runs  []int64 // free run sizes expected after the frees, by offset
	}{
		{"no free neighbour", []int{1}, []int64{64, tail}},
		{"left", []int{0, 1}, []int64{128, tail}},
		{"right", []int{2, 1}, []int64{128, tail}},
		{"both", []int{0, 2, 1}, []int64{192, tail}},
		{"right into region tail", []int{4}, []int64{64 + tail}},
		{"both into region tail", []int{2, 4, 3}, []int64{192 + tail}},
		{"separate", []int{0, 2}, []int64{64, 64, tail}},
		{"everything", []int{2, 0, 4, 1, 3}, []int64{1024}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAlloc(t, 1024, 64)
			var offs []int64
			for range 5 {
				offs = append(offs, mustAlloc(t, a, 64))
			}
			for _, i := range tc.frees {
				mustFree(t, a, offs[i])
			}
			var runs []int64
			for b := a.blocks[0]; b != nil; b = b.next {
				if b.free {
					runs = append(runs, b.size)
				}
			}
			if !slices.Equal(runs, tc.runs) {
				t.Fatalf("free runs %v, want %v", runs, tc.runs)
			}
			if got := a.Stats().FreeBlocks; got != len(tc.runs) {
				t.Fatalf("FreeBlocks = %d, want %d", got, len(tc.runs))
			}
		})
	}
}

func TestFreeEverythingLeavesOneBlock(t *testing.T) {
	const capacity = 1 << 20
	a := newAlloc(t, capacity, 64)
	rng := rand.New(rand.NewPCG(1, 2))
	var offs []int64
	for {
		off, ok := a.Alloc(rng.Int64N(4096) + 1)
		if !ok {
			break
		}
		offs = append(offs, off)
	}
	rng.Shuffle(len(offs), func(i, j int) { offs[i], offs[j] = offs[j], offs[i] })
	for _, off := range offs {
		if err := a.Free(off); err != nil {
			t.Fatal(err)
		}
	}
	mustCheck(t, a)
	wantStats(t, a, Stats{Capacity: capacity, Free: capacity, FreeBlocks: 1, LargestFree: capacity})
}

func TestFreeErrors(t *testing.T) {
	a := newAlloc(t, 4096, 64)
	live := mustAlloc(t, a, 256) // [0, 256)
	freed := mustAlloc(t, a, 64) // [256, 320)
	mustAlloc(t, a, 64)          // [320, 384), keeps freed from merging
	mustFree(t, a, freed)

	for _, tc := range []struct {
		name   string
		off    int64
		want   error
		detail string
	}{
		{"double free", freed, ErrDoubleFree, "block [256, 320) is already free"},
		{"start of free tail", 384, ErrDoubleFree, "block [384, 4096) is already free"},
		{"interior aligned", live + 128, ErrNotAllocated, "inside a block"},
		{"interior unaligned", live + 1, ErrNotAllocated, "alignment 64"},
		{"inside free block", 512, ErrNotAllocated, "inside a block"},
		{"negative", -64, ErrNotAllocated, "outside the region [0, 4096)"},
		{"at capacity", 4096, ErrNotAllocated, "outside the region"},
		{"far out", math.MaxInt64, ErrNotAllocated, "outside the region"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := a.Stats()
			err := a.Free(tc.off)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Free(%d) = %v, want %v", tc.off, err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Offset != tc.off || e.Op != "free" {
				t.Fatalf("Free(%d) = %#v, want *Error naming the offset", tc.off, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "alloc: ") || !strings.Contains(msg, strconv.FormatInt(tc.off, 10)) || !strings.Contains(msg, tc.detail) {
				t.Fatalf("message %q lacks the prefix, the offset or %q", msg, tc.detail)
			}
			mustCheck(t, a)
			if after := a.Stats(); after != before {
				t.Fatalf("failed Free changed stats from %+v to %+v", before, after)
			}
		})
	}
	if _, ok := a.BlockSize(live); !ok {
		t.Fatal("live block lost after failed frees")
	}
}

func TestBlockSize(t *testing.T) {
	a := newAlloc(t, 4096, 64)
	off := mustAlloc(t, a, 100)
	if n, ok := a.BlockSize(off); !ok || n != 128 {
		t.Fatalf("BlockSize(%d) = %d, %v; want 128, true", off, n, ok)
	}
	for _, bad := range []int64{off + 64, 128, -1, 4096} {
		if n, ok := a.BlockSize(bad); ok {
			t.Errorf("BlockSize(%d) = %d, true; want false", bad, n)
		}
	}
	mustFree(t, a, off)
	if _, ok := a.BlockSize(off); ok {
		t.Fatal("BlockSize of a freed block succeeded")
	}
}

func TestErrorMessage(t *testing.T) {
	err := &Error{Op: "free", Offset: 4096, Err: ErrDoubleFree, Detail: "block [4096, 4160) is already free"}
	const want = "alloc: free at offset 4096: double free: block [4096, 4160) is already free"
	if got := err.Error(); got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
