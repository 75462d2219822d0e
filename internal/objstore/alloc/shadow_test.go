package alloc

import (
	"fmt"
	"slices"
)

// shadow is a brute-force model of an allocator's live blocks, used to check
// the real one: a slice of live spans sorted by offset.
type shadow struct {
	capacity int64
	live     []span
	used     int64
}

type span struct{ off, size int64 }

func (s *shadow) find(off int64) (int, bool) {
	return slices.BinarySearchFunc(s.live, off, func(x span, off int64) int {
		switch {
		case x.off < off:
			return -1
		case x.off > off:
			return 1
		}
		return 0
	})
}

// add records a new live span, failing if it leaves the region or overlaps
// a live span.
func (s *shadow) add(off, size int64) error {
	if off < 0 || size <= 0 || off+size > s.capacity {
		return fmt.Errorf("block [%d, %d) is outside the region [0, %d)", off, off+size, s.capacity)
	}
	i, _ := s.find(off)
	if i > 0 && s.live[i-1].off+s.live[i-1].size > off {
		p := s.live[i-1]
		return fmt.Errorf("block [%d, %d) overlaps live block [%d, %d)", off, off+size, p.off, p.off+p.size)
	}
	if i < len(s.live) && s.live[i].off < off+size {
		n := s.live[i]
		return fmt.Errorf("block [%d, %d) overlaps live block [%d, %d)", off, off+size, n.off, n.off+n.size)
	}
	s.live = slices.Insert(s.live, i, span{off, size})
	s.used += size
	return nil
}

// remove forgets the live span at off and reports whether there was one.
func (s *shadow) remove(off int64) bool {
	i, ok := s.find(off)
	if ok {
		s.used -= s.live[i].size
		s.live = slices.Delete(s.live, i, i+1)
	}
	return ok
}

// gaps returns the free runs between live spans, by offset.
func (s *shadow) gaps() []span {
	var gaps []span
	pos := int64(0)
	for _, x := range s.live {
		if x.off > pos {
			gaps = append(gaps, span{pos, x.off - pos})
		}
		pos = x.off + x.size
	}
	if pos < s.capacity {
		gaps = append(gaps, span{pos, s.capacity - pos})
	}
	return gaps
}

// bestFit returns where a best-fit allocator puts n (already rounded) bytes:
// the start of the smallest gap that holds n, the lowest among equal sizes.
func bestFit(gaps []span, n int64) (int64, bool) {
	best := span{size: -1}
	for _, g := range gaps {
		if g.size >= n && (best.size < 0 || g.size < best.size) {
			best = g
		}
	}
	return best.off, best.size >= 0
}

func largest(gaps []span) int64 {
	var m int64
	for _, g := range gaps {
		m = max(m, g.size)
	}
	return m
}

// compare checks the allocator's invariants and that its Stats agree with
// the model.
func (s *shadow) compare(a *Allocator) error {
	if err := a.check(); err != nil {
		return err
	}
	gaps := s.gaps()
	want := Stats{
		Capacity:    s.capacity,
		Used:        s.used,
		Free:        s.capacity - s.used,
		Blocks:      len(s.live),
		FreeBlocks:  len(gaps),
		LargestFree: largest(gaps),
	}
	if got := a.Stats(); got != want {
		return fmt.Errorf("Stats() = %+v, model says %+v", got, want)
	}
	for _, x := range s.live {
		if n, ok := a.BlockSize(x.off); !ok || n != x.size {
			return fmt.Errorf("BlockSize(%d) = %d, %v; model says %d", x.off, n, ok, x.size)
		}
	}
	return nil
}
