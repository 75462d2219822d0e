package objmgr

import (
	"errors"
	"slices"
	"testing"
)

func TestAdmit(t *testing.T) {
	tests := []struct {
		name           string
		queue          []int64
		active, budget int64
		want           int
	}{
		{"empty queue", nil, 0, 100, 0},
		{"all fit", []int64{10, 20, 30}, 0, 100, 3},
		{"exactly the budget", []int64{50, 50}, 0, 100, 2},
		{"stops at the first that does not fit", []int64{60, 60, 10}, 0, 100, 1},
		{"running pulls count", []int64{30, 10}, 80, 100, 0},
		{"room left by running pulls", []int64{20, 20}, 70, 100, 1},
		{"larger than the budget runs alone", []int64{500, 10}, 0, 100, 1},
		{"larger than the budget waits for running ones", []int64{500}, 1, 100, 0},
		{"an empty object fits anywhere", []int64{0}, 100, 100, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := admit(tt.queue, tt.active, tt.budget); got != tt.want {
				t.Fatalf("admit(%v, %d, %d) = %d, want %d", tt.queue, tt.active, tt.budget, got, tt.want)
			}
		})
	}
}

func TestChunks(t *testing.T) {
	tests := []struct {
		size, per int64
		want      []chunk
	}{
		{0, 4, []chunk{}},
		{3, 4, []chunk{{0, 3}}},
		{4, 4, []chunk{{0, 4}}},
		{9, 4, []chunk{{0, 4}, {4, 4}, {8, 1}}},
	}
	for _, tt := range tests {
		if got := chunks(tt.size, tt.per); !slices.Equal(got, tt.want) {
			t.Errorf("chunks(%d, %d) = %v, want %v", tt.size, tt.per, got, tt.want)
		}
	}
}

func TestPickHolder(t *testing.T) {
	failed := errors.New("down")
	tests := []struct {
		name  string
		hs    []holder
		start int
		want  int
	}{
		{"none", nil, 0, -1},
		{"all failed", []holder{{err: failed}, {err: failed}}, 0, -1},
		{"fewest in flight", []holder{{inFlight: 2}, {inFlight: 1}, {inFlight: 3}}, 0, 1},
		{"ties: fewest served", []holder{{inFlight: 1, served: 5}, {inFlight: 1, served: 2}}, 0, 1},
		{"ties: rotation from start", []holder{{}, {}, {}}, 2, 2},
		{"rotation wraps", []holder{{}, {}, {}}, 4, 1},
		{"failed holders are skipped", []holder{{err: failed}, {inFlight: 9}}, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickHolder(tt.hs, tt.start); got != tt.want {
				t.Fatalf("pickHolder = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestPickHolderSpreads simulates a pull's picks with reads that finish
// in the order they started: every holder gets an equal share.
func TestPickHolderSpreads(t *testing.T) {
	hs := []holder{{addr: "a"}, {addr: "b"}, {addr: "c"}}
	var inFlight []int
	for range 300 {
		if len(inFlight) == 4 { // four reads in flight; the oldest ends
			hs[inFlight[0]].inFlight--
			hs[inFlight[0]].served++
			inFlight = inFlight[1:]
		}
		i := pickHolder(hs, 7)
		hs[i].inFlight++
		inFlight = append(inFlight, i)
	}
	for _, h := range hs {
		if n := h.served + h.inFlight; n < 99 || n > 101 {
			t.Fatalf("holder %s got %d of 300 reads: %+v", h.addr, n, hs)
		}
	}
}

func TestMergeHolders(t *testing.T) {
	hs, n := mergeHolders(nil, []string{"a", "self", "b", "a", ""}, "self")
	if n != 2 || len(hs) != 2 || hs[0].addr != "a" || hs[1].addr != "b" {
		t.Fatalf("merge = %+v, %d", hs, n)
	}
	hs[0].err = errors.New("down")
	hs, n = mergeHolders(hs, []string{"b", "c"}, "self")
	if n != 1 || len(hs) != 3 || hs[2].addr != "c" || hs[0].err == nil {
		t.Fatalf("second merge = %+v, %d", hs, n)
	}
}
