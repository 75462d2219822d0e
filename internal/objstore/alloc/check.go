package alloc

import "fmt"

// check verifies the allocator's invariants and returns the first violation
// it finds. It takes O(n) time and exists for tests:
//
//   - the blocks, linked by address from offset 0, tile [0, capacity)
//     exactly, each aligned, non-empty and recorded in the map under its
//     offset, and the map holds nothing else;
//   - no two adjacent blocks are both free;
//   - the free index is a valid treap (strictly ordered by (size, offset),
//     heap-ordered by priority) holding every free block exactly once and
//     nothing else;
//   - the counters behind Stats agree with the blocks.
func (a *Allocator) check() error {
	if a.capacity < 0 || a.capacity&(a.align-1) != 0 {
		return fmt.Errorf("capacity %d is not a non-negative multiple of align %d", a.capacity, a.align)
	}

	// Walk the address list.
	var (
		pos, used   int64
		live, nfree int
		prev        *block
	)
	for b := a.blocks[0]; b != nil; prev, b = b, b.next {
		if live+nfree >= len(a.blocks) {
			return fmt.Errorf("address list is longer than the %d blocks in the map (cycle?)", len(a.blocks))
		}
		switch {
		case b.off != pos:
			return fmt.Errorf("block at %d follows a block ending at %d", b.off, pos)
		case b.size <= 0 || b.size&(a.align-1) != 0:
			return fmt.Errorf("block at %d has size %d, not a positive multiple of %d", b.off, b.size, a.align)
		case a.blocks[b.off] != b:
			return fmt.Errorf("block at %d is not the map's entry for its offset", b.off)
		case b.prev != prev:
			return fmt.Errorf("block at %d has a wrong prev link", b.off)
		case b.free && prev != nil && prev.free:
			return fmt.Errorf("free blocks at %d and %d are adjacent", prev.off, b.off)
		case !b.free && (b.left != nil || b.right != nil):
			return fmt.Errorf("live block at %d has free-index links", b.off)
		}
		if b.free {
			nfree++
		} else {
			live++
			used += b.size
		}
		pos += b.size
	}
	if pos != a.capacity {
		return fmt.Errorf("blocks cover [0, %d), want [0, %d)", pos, a.capacity)
	}
	if live+nfree != len(a.blocks) {
		return fmt.Errorf("address list has %d blocks, map has %d", live+nfree, len(a.blocks))
	}
	if used != a.used || live != a.live {
		return fmt.Errorf("counters say %d bytes in %d live blocks, blocks say %d in %d", a.used, a.live, used, live)
	}

	// Walk the free index in order. Strict ordering means no block appears
	// twice; every node being a free block of the map, and the count
	// matching, means every free block appears once.
	var (
		indexed int
		last    *block
		walk    func(x, parent *block) error
	)
	walk = func(x, parent *block) error {
		if x == nil {
			return nil
		}
		if indexed > nfree {
			return fmt.Errorf("free index holds more than the %d free blocks (cycle?)", nfree)
		}
		if parent != nil && x.prio > parent.prio {
			return fmt.Errorf("free index: block at %d outranks its parent at %d", x.off, parent.off)
		}
		if err := walk(x.left, x); err != nil {
			return err
		}
		switch {
		case !x.free:
			return fmt.Errorf("free index holds live block at %d", x.off)
		case a.blocks[x.off] != x:
			return fmt.Errorf("free index holds block at %d that is not in the map", x.off)
		case last != nil && !less(last, x):
			return fmt.Errorf("free index out of order: (%d, @%d) before (%d, @%d)", last.size, last.off, x.size, x.off)
		}
		last = x
		indexed++
		return walk(x.right, x)
	}
	if err := walk(a.free.root, nil); err != nil {
		return err
	}
	if indexed != nfree || a.free.n != nfree {
		return fmt.Errorf("free index holds %d blocks (counter %d), address list has %d free", indexed, a.free.n, nfree)
	}
	return nil
}
