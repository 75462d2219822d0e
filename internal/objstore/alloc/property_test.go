package alloc

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// paretoSize draws a request size from a Pareto distribution with shape
// alpha, truncated to [lo, hi]: most requests are small, but large ones
// carry much of the bytes.
func paretoSize(rng *rand.Rand, lo, hi, alpha float64) int64 {
	tail := math.Pow(lo/hi, alpha)
	u := rng.Float64()
	return int64(lo * math.Pow(1-u*(1-tail), -1/alpha))
}

// TestRandomWorkload runs a long seeded workload of mixed allocations and
// frees against a brute-force model. It checks that blocks never overlap,
// that Alloc makes the best-fit choice and fails only when no free run is
// large enough, that bad frees change nothing, and that freeing everything
// leaves one block. It logs external fragmentation, 1 - LargestFree/Free, by
// occupancy.
func TestRandomWorkload(t *testing.T) {
	const (
		capacity   = 64 << 20
		align      = 64
		checkEvery = 1000
	)
	ops := 200_000
	if testing.Short() {
		ops = 20_000
	}
	rng := rand.New(rand.NewPCG(0x5eed, 1))
	a := newAlloc(t, capacity, align)
	m := &shadow{capacity: capacity}

	// Fragmentation by occupancy decile: worst and mean.
	var (
		worst, sum [10]float64
		samples    [10]int
		near80     float64 // worst fragmentation at 78-82% occupancy
		fails      int     // failed allocs
		fragFails  int     // failed allocs with enough free bytes in total
		allocs     int
		minFailed  int64 = math.MaxInt64 // smallest request among fragFails
		lastFreed  int64 = -1
	)
	var target float64 // the occupancy the workload steers towards
	for op := range ops {
		if op%5000 == 0 {
			// Move the target occupancy so the workload fills, drains and
			// churns at many levels, not just one steady state.
			target = 0.5 + 0.45*rng.Float64()
		}
		fill := float64(m.used) / capacity
		wantAlloc := fill < target
		if rng.Float64() < 0.25 {
			wantAlloc = !wantAlloc
		}

		switch {
		case rng.IntN(100) == 0:
			// A bad free: a double free or an offset inside a live block.
			off := lastFreed
			if len(m.live) > 0 && (off < 0 || rng.IntN(2) == 0) {
				x := m.live[rng.IntN(len(m.live))]
				off = x.off + align*rng.Int64N(x.size/align)
				if off == x.off {
					off++
				}
			}
			if _, live := m.find(off); off < 0 || live {
				break // nothing freed yet, or the freed offset was reused
			}
			before := a.Stats()
			if err := a.Free(off); err == nil || !(errors.Is(err, ErrDoubleFree) || errors.Is(err, ErrNotAllocated)) {
				t.Fatalf("op %d: bad Free(%d) = %v", op, off, err)
			}
			if after := a.Stats(); after != before {
				t.Fatalf("op %d: bad Free(%d) changed stats from %+v to %+v", op, off, before, after)
			}

		case wantAlloc || len(m.live) == 0:
			n := paretoSize(rng, 64, capacity/4, 0.5)
			rounded := (n + align - 1) &^ (align - 1)
			allocs++
			// Checking the best-fit choice is O(blocks); do it for a sample.
			var gaps []span
			verifyChoice := op%16 == 0
			if verifyChoice {
				gaps = m.gaps()
			}
			off, ok := a.Alloc(n)
			if !ok {
				fails++
				if m.capacity-m.used >= rounded {
					fragFails++
					minFailed = min(minFailed, rounded)
				}
				if gaps == nil {
					gaps = m.gaps()
				}
				if l := largest(gaps); l >= rounded {
					t.Fatalf("op %d: Alloc(%d) failed with a free run of %d bytes", op, n, l)
				}
				break
			}
			if size, _ := a.BlockSize(off); size != rounded {
				t.Fatalf("op %d: Alloc(%d) reserved %d bytes, want %d", op, n, size, rounded)
			}
			if off%align != 0 {
				t.Fatalf("op %d: Alloc(%d) = %d, not aligned", op, n, off)
			}
			if err := m.add(off, rounded); err != nil {
				t.Fatalf("op %d: Alloc(%d): %v", op, n, err)
			}
			if verifyChoice {
				if want, _ := bestFit(gaps, rounded); off != want {
					t.Fatalf("op %d: Alloc(%d) = %d, best fit is %d", op, n, off, want)
				}
			}

		default:
			x := m.live[rng.IntN(len(m.live))]
			if err := a.Free(x.off); err != nil {
				t.Fatalf("op %d: %v", op, err)
			}
			m.remove(x.off)
			lastFreed = x.off
		}

		if s := a.Stats(); s.Free > 0 {
			frag := 1 - float64(s.LargestFree)/float64(s.Free)
			d := min(int(10*float64(s.Used)/capacity), 9)
			worst[d] = max(worst[d], frag)
			if occ := float64(s.Used) / capacity; occ >= 0.78 && occ <= 0.82 {
				near80 = max(near80, frag)
			}
			sum[d] += frag
			samples[d]++
		}
		if op%checkEvery == 0 {
			if err := m.compare(a); err != nil {
				t.Fatalf("op %d: %v", op, err)
			}
		}
	}
	if err := m.compare(a); err != nil {
		t.Fatalf("end: %v", err)
	}

	t.Logf("%d ops: %d allocs, %d failed, %d of them with enough free bytes in total (smallest such request %d bytes)",
		ops, allocs, fails, fragFails, minFailed)
	t.Logf("end state %+v", a.Stats())
	t.Logf("worst external fragmentation at 78-82%% occupancy: %.3f", near80)
	t.Logf("external fragmentation 1 - LargestFree/Free by occupancy:")
	for d := range 10 {
		if samples[d] > 0 {
			t.Logf("  %2d-%3d%%: worst %.3f mean %.3f (%d samples)", 10*d, 10*d+10, worst[d], sum[d]/float64(samples[d]), samples[d])
		}
	}

	for _, x := range m.live {
		if err := a.Free(x.off); err != nil {
			t.Fatal(err)
		}
	}
	mustCheck(t, a)
	wantStats(t, a, Stats{Capacity: capacity, Free: capacity, FreeBlocks: 1, LargestFree: capacity})
}
