package taskevents

import (
	"math/rand/v2"
	"testing"

	"github.com/raygo/raygo/internal/ids"
)

// TestIndex drives the index through random inserts and deletes, with
// many colliding probe runs, and checks it against a map.
func TestIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x index
	var rows slab
	for range 5000 {
		rows.add()
	}
	in := map[int32]bool{}
	var free []int32
	for i := range rows.n {
		free = append(free, i)
	}
	for step := range 200_000 {
		if len(free) > 0 && (len(in) == 0 || rng.IntN(3) > 0) {
			i := free[len(free)-1]
			free = free[:len(free)-1]
			*rows.at(i) = row{id: ids.New(), attempt: int32(rng.IntN(3))}
			x.put(&rows, i)
			in[i] = true
		} else {
			var i int32
			for i = range in {
				break
			}
			x.del(&rows, i)
			delete(in, i)
			free = append(free, i)
		}
		if step%997 == 0 {
			if x.n != len(in) {
				t.Fatalf("step %d: index holds %d, want %d", step, x.n, len(in))
			}
			for i := range rows.n {
				got, ok := x.get(&rows, rows.at(i).id, rows.at(i).attempt)
				if ok != in[i] || (ok && got != i) {
					t.Fatalf("step %d: get(row %d) = %d, %v; want present=%v", step, i, got, ok, in[i])
				}
			}
		}
	}
}

func TestChunked(t *testing.T) {
	var c chunked[int]
	for round := range 3 {
		n := 3*chunkLen + 7 + round
		for i := range n {
			c.add(i)
		}
		if c.n != n || *c.at(0) != 0 || *c.at(n - 1) != n-1 || *c.at(chunkLen) != chunkLen {
			t.Fatalf("round %d: n=%d, at(0)=%d at(n-1)=%d", round, c.n, *c.at(0), *c.at(n - 1))
		}
		taken := c.take()
		if c.n != 0 || taken.n != n {
			t.Fatalf("take left %d, took %d", c.n, taken.n)
		}
		c.recycle(taken, 2)
		if len(c.spare) != 2 {
			t.Fatalf("%d spare chunks, want 2 (the bound)", len(c.spare))
		}
	}
}
