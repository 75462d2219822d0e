package alloc

import "fmt"

// Allocator hands out aligned blocks of a region [0, Capacity). It tracks
// offsets only and never touches the region's memory. The zero value is not
// usable; call New. An Allocator is not safe for concurrent use.
type Allocator struct {
	capacity int64
	align    int64

	// blocks holds every block, live or free, by start offset. The blocks
	// tile the region and are also linked in address order.
	blocks map[int64]*block
	// free indexes the free blocks by (size, offset) for best fit.
	free sizeIndex

	used int64 // bytes in live blocks
	live int   // number of live blocks
}

// block is one run [off, off+size) of the region, live or free.
type block struct {
	off, size  int64
	prev, next *block // neighbours by address; nil at the ends of the region
	free       bool

	// Links and priority in the free index, meaningful only while free.
	left, right *block
	prio        uint32
}

// Stats is a snapshot of an Allocator's use. Sizes are in bytes, after
// rounding to the alignment.
type Stats struct {
	Capacity    int64 // bytes managed: the region size rounded down to the alignment
	Used        int64 // bytes in live blocks
	Free        int64 // Capacity - Used
	Blocks      int   // live blocks
	FreeBlocks  int   // free blocks; free neighbours are always merged, so these are maximal runs
	LargestFree int64 // size of the largest free block: the largest Alloc that can succeed
}

// New returns an Allocator that manages [0, size) and hands out blocks
// aligned to align. align must be a power of two of at least 8 (ErrBadAlign
// otherwise) and size must not be negative (ErrBadSize). size is rounded down
// to a multiple of align; a region smaller than align has capacity 0, and
// every Alloc on it fails.
func New(size, align int64) (*Allocator, error) {
	if align < 8 || align&(align-1) != 0 {
		return nil, fmt.Errorf("%w: got %d", ErrBadAlign, align)
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: got %d", ErrBadSize, size)
	}
	a := &Allocator{
		capacity: size &^ (align - 1),
		align:    align,
		blocks:   make(map[int64]*block),
		free:     sizeIndex{rng: 0x9e3779b97f4a7c15},
	}
	if a.capacity > 0 {
		b := &block{off: 0, size: a.capacity, free: true}
		a.blocks[0] = b
		a.free.insert(b)
	}
	return a, nil
}

// Alloc reserves a block of at least n bytes and returns its offset, a
// multiple of the alignment. n is rounded up to the alignment; the block's
// reserved size is what BlockSize reports. Alloc takes the best fit: the
// smallest free block that is large enough and, among blocks of that size,
// the one at the lowest offset; the unused tail goes back to the free set.
// ok is false, and nothing changes, when n <= 0 or no free block has room for
// n bytes.
func (a *Allocator) Alloc(n int64) (off int64, ok bool) {
	// Checking against capacity first also keeps the rounding from
	// overflowing: capacity is at most MaxInt64 rounded down to align.
	if n <= 0 || n > a.capacity {
		return 0, false
	}
	n = (n + a.align - 1) &^ (a.align - 1)
	b := a.free.bestFit(n)
	if b == nil {
		return 0, false
	}
	a.free.remove(b)
	if b.size > n {
		// Split: the tail becomes a free block. Its right neighbour was
		// next to the free block b, so it is live and no merge is needed.
		rest := &block{off: b.off + n, size: b.size - n, prev: b, next: b.next, free: true}
		if b.next != nil {
			b.next.prev = rest
		}
		b.next = rest
		b.size = n
		a.blocks[rest.off] = rest
		a.free.insert(rest)
	}
	b.free = false
	a.used += b.size
	a.live++
	return b.off, true
}

// Free releases the live block that starts at off, merging it with free
// neighbours on both sides. If off is not the start of a live block, Free
// returns an *Error (wrapping ErrDoubleFree for a block that is already
// free, ErrNotAllocated otherwise) and changes nothing.
func (a *Allocator) Free(off int64) error {
	b, err := a.liveBlock(off)
	if err != nil {
		return err
	}
	a.used -= b.size
	a.live--
	b.free = true

	// Keys in the free index are (size, offset), so a neighbour leaves the
	// index before its size or offset changes.
	if n := b.next; n != nil && n.free {
		a.free.remove(n)
		delete(a.blocks, n.off)
		b.size += n.size
		a.unlink(n)
	}
	if p := b.prev; p != nil && p.free {
		a.free.remove(p)
		delete(a.blocks, b.off)
		p.size += b.size
		a.unlink(b)
		b = p
	}
	a.free.insert(b)
	return nil
}

// unlink removes b from the address list; the caller has already moved its
// bytes into a neighbour.
func (a *Allocator) unlink(b *block) {
	if b.prev != nil {
		b.prev.next = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	}
	b.prev, b.next = nil, nil
}

// liveBlock returns the live block that starts at off, or an *Error saying
// why there is none.
func (a *Allocator) liveBlock(off int64) (*block, error) {
	fail := func(err error, detail string, args ...any) (*block, error) {
		return nil, &Error{Op: "free", Offset: off, Err: err, Detail: fmt.Sprintf(detail, args...)}
	}
	switch b := a.blocks[off]; {
	case off < 0 || off >= a.capacity:
		return fail(ErrNotAllocated, "outside the region [0, %d)", a.capacity)
	case off&(a.align-1) != 0:
		return fail(ErrNotAllocated, "not a multiple of the alignment %d", a.align)
	case b == nil:
		return fail(ErrNotAllocated, "inside a block, not at its start")
	case b.free:
		return fail(ErrDoubleFree, "block [%d, %d) is already free", b.off, b.off+b.size)
	default:
		return b, nil
	}
}

// BlockSize returns the reserved size of the live block that starts at off:
// the size passed to Alloc rounded up to the alignment. ok is false if off is
// not the start of a live block.
func (a *Allocator) BlockSize(off int64) (size int64, ok bool) {
	b := a.blocks[off]
	if b == nil || b.free {
		return 0, false
	}
	return b.size, true
}

// LargestFree returns the size of the largest free block, which is the
// largest n for which Alloc(n) succeeds. It takes O(log n) expected time.
func (a *Allocator) LargestFree() int64 {
	if b := a.free.max(); b != nil {
		return b.size
	}
	return 0
}

// Stats reports the allocator's current use.
func (a *Allocator) Stats() Stats {
	return Stats{
		Capacity:    a.capacity,
		Used:        a.used,
		Free:        a.capacity - a.used,
		Blocks:      a.live,
		FreeBlocks:  a.free.n,
		LargestFree: a.LargestFree(),
	}
}
