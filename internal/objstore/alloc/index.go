package alloc

// sizeIndex is the set of free blocks ordered by (size, offset): a treap
// whose nodes are the blocks themselves, so indexing a block allocates
// nothing. A treap is a binary search tree by key that is also a max-heap by
// a random priority, which keeps its expected depth O(log n) whatever the
// order of insertions and removals.
type sizeIndex struct {
	root *block
	n    int    // number of blocks in the index
	rng  uint64 // xorshift state for priorities; fixed seed, so runs repeat
}

// less orders blocks by size, then by offset. Offsets are unique, so this is
// a strict total order on the blocks of one allocator.
func less(x, y *block) bool {
	return x.size < y.size || x.size == y.size && x.off < y.off
}

// bestFit returns the smallest block with size >= n, the lowest offset among
// equal sizes, or nil if every block is smaller than n.
func (t *sizeIndex) bestFit(n int64) *block {
	var best *block
	for x := t.root; x != nil; {
		if x.size >= n {
			best, x = x, x.left
		} else {
			x = x.right
		}
	}
	return best
}

// max returns the largest block, or nil if the index is empty.
func (t *sizeIndex) max() *block {
	x := t.root
	for x != nil && x.right != nil {
		x = x.right
	}
	return x
}

// insert adds b, which must not be in the index. b's size and offset must not
// change until it is removed.
func (t *sizeIndex) insert(b *block) {
	b.left, b.right = nil, nil
	b.prio = t.nextPrio()
	t.root = insertNode(t.root, b)
	t.n++
}

// remove deletes b, which must be in the index.
func (t *sizeIndex) remove(b *block) {
	t.root = removeNode(t.root, b)
	b.left, b.right = nil, nil
	t.n--
}

func (t *sizeIndex) nextPrio() uint32 {
	t.rng ^= t.rng << 13
	t.rng ^= t.rng >> 7
	t.rng ^= t.rng << 17
	return uint32(t.rng >> 32)
}

// insertNode adds b to the subtree rooted at x and returns its new root.
func insertNode(x, b *block) *block {
	if x == nil {
		return b
	}
	if b.prio > x.prio {
		// b belongs above x: the subtree splits around b's key.
		b.left, b.right = split(x, b)
		return b
	}
	if less(b, x) {
		x.left = insertNode(x.left, b)
	} else {
		x.right = insertNode(x.right, b)
	}
	return x
}

// removeNode deletes b from the subtree rooted at x and returns its new root.
func removeNode(x, b *block) *block {
	if x == b {
		return merge(x.left, x.right)
	}
	if less(b, x) {
		x.left = removeNode(x.left, b)
	} else {
		x.right = removeNode(x.right, b)
	}
	return x
}

// split divides the subtree rooted at x into the blocks ordered before k and
// the rest.
func split(x, k *block) (lo, hi *block) {
	if x == nil {
		return nil, nil
	}
	if less(x, k) {
		x.right, hi = split(x.right, k)
		return x, hi
	}
	lo, x.left = split(x.left, k)
	return lo, x
}

// merge joins two treaps where every block in lo orders before every block in
// hi, and returns the root of the result.
func merge(lo, hi *block) *block {
	switch {
	case lo == nil:
		return hi
	case hi == nil:
		return lo
	case lo.prio > hi.prio:
		lo.right = merge(lo.right, hi)
		return lo
	default:
		hi.left = merge(lo, hi.left)
		return hi
	}
}
