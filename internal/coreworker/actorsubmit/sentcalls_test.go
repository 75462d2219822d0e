package actorsubmit

import (
	"math/rand/v2"
	"testing"

	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/ids"
)

// TestSentCalls takes calls back in order, out of order and at random,
// across the compaction, and checks every call comes back exactly once.
func TestSentCalls(t *testing.T) {
	var s sentCalls
	mk := func(n int) []*taskmgr.Task {
		ts := make([]*taskmgr.Task, n)
		for i := range ts {
			ts[i] = &taskmgr.Task{ID: ids.New()}
			s.add(ts[i])
		}
		return ts
	}
	in := mk(3)
	if s.take(ids.New()) != nil {
		t.Fatal("took a call never sent")
	}
	for _, want := range []*taskmgr.Task{in[1], in[0], in[2]} {
		if got := s.take(want.ID); got != want {
			t.Fatalf("take: got %v, want %v", got, want)
		}
	}
	if s.take(in[0].ID) != nil || s.n != 0 || len(s.q) != 0 {
		t.Fatalf("after taking all: %+v", s)
	}

	// Many in flight, taken nearly in order (as a concurrent actor's
	// replies come), with more sent meanwhile: the front is compacted.
	rng := rand.New(rand.NewPCG(1, 2))
	pending := mk(5000)
	for round := 0; len(pending) > 0; round++ {
		i := min(rng.IntN(4), len(pending)-1)
		if got := s.take(pending[i].ID); got != pending[i] {
			t.Fatalf("round %d: wrong call", round)
		}
		pending = append(pending[:i], pending[i+1:]...)
		if round%3 == 0 && round < 6000 {
			pending = append(pending, mk(1)...)
		}
		if s.n != len(pending) {
			t.Fatalf("round %d: %d in flight, want %d", round, s.n, len(pending))
		}
	}

	rest := mk(4)
	s.take(rest[2].ID)
	got := s.drain()
	if len(got) != 3 || got[0] != rest[0] || got[1] != rest[1] || got[2] != rest[3] {
		t.Fatalf("drain: %v", got)
	}
	if s.n != 0 || s.take(rest[0].ID) != nil {
		t.Fatal("drain left calls behind")
	}
}
