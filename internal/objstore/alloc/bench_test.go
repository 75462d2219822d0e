package alloc

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkAllocFree measures one Free of a random live block plus one Alloc
// of a random size (64 B to 64 KiB, log-uniform) in a steady state with a
// fixed number of live blocks. ns/op is the cost of the pair.
func BenchmarkAllocFree(b *testing.B) {
	for _, live := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			sizes := make([]int64, 1<<16)
			for i := range sizes {
				sizes[i] = 64 << rng.IntN(11)
				sizes[i] += rng.Int64N(sizes[i])
			}
			victims := make([]int, 1<<16)
			for i := range victims {
				victims[i] = rng.IntN(live)
			}
			// About 64 KiB per live block on average: a region 70% full.
			a, err := New(int64(live)<<16, 64)
			if err != nil {
				b.Fatal(err)
			}
			offs := make([]int64, live)
			for i := range offs {
				off, ok := a.Alloc(sizes[i%len(sizes)])
				if !ok {
					b.Fatalf("prefill: region full after %d blocks", i)
				}
				offs[i] = off
			}

			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				v := victims[i&(len(victims)-1)]
				if err := a.Free(offs[v]); err != nil {
					b.Fatal(err)
				}
				off, ok := a.Alloc(sizes[i&(len(sizes)-1)])
				if !ok {
					b.Fatalf("region full: %+v", a.Stats())
				}
				offs[v] = off
			}
			b.StopTimer()
			s := a.Stats()
			b.ReportMetric(float64(s.FreeBlocks), "freeblocks")
			if err := a.check(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
