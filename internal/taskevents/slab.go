package taskevents

// slab holds a Store's rows in fixed-size chunks: growing it never copies
// the rows already there, nor allocates (and clears, and has the
// collector scan at once) one huge array, which stalled the whole
// process while a Store filled up.
type slab struct {
	chunks [][]row
	n      int32
}

const (
	slabShift = 12
	slabChunk = 1 << slabShift // rows per chunk (about 1.4 MB)
)

// at returns row i.
func (s *slab) at(i int32) *row { return &s.chunks[i>>slabShift][i&(slabChunk-1)] }

// add appends an empty row and returns its number.
func (s *slab) add() int32 {
	if int(s.n)>>slabShift == len(s.chunks) {
		s.chunks = append(s.chunks, make([]row, slabChunk))
	}
	s.n++
	return s.n - 1
}

// chunked is an append-only list in chunks of chunkLen, whose chunks are
// recycled: a Buffer's records, which reach tens of thousands a second.
type chunked[T any] struct {
	full  [][]T
	cur   []T
	n     int
	spare [][]T
}

const chunkLen = 1024

func (c *chunked[T]) add(v T) {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		if k := len(c.spare); k > 0 {
			c.cur = c.spare[k-1][:0]
			c.spare = c.spare[:k-1]
		} else {
			c.cur = make([]T, 0, chunkLen)
		}
	}
	c.cur = append(c.cur, v)
	c.n++
}

// at returns element i.
func (c *chunked[T]) at(i int) *T {
	k := i / chunkLen
	if k < len(c.full) {
		return &c.full[k][i%chunkLen]
	}
	return &c.cur[i%chunkLen]
}

// take returns the elements as a list of its own and empties c.
func (c *chunked[T]) take() chunked[T] {
	out := chunked[T]{full: c.full, cur: c.cur, n: c.n}
	c.full, c.cur, c.n = nil, nil, 0
	return out
}

// recycle clears taken's chunks (dropping what they reference) and keeps
// them for reuse, at most keep chunks.
func (c *chunked[T]) recycle(taken chunked[T], keep int) {
	put := func(ch []T) {
		if ch != nil && len(c.spare) < keep {
			clear(ch)
			c.spare = append(c.spare, ch[:0])
		}
	}
	for _, ch := range taken.full {
		put(ch)
	}
	put(taken.cur)
}
