package resources

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

func TestNewNodeResources(t *testing.T) {
	n := NewNodeResources(Set{CPU: 4, GPU: 2}, nil)
	if want := []string{"0", "1"}; !reflect.DeepEqual(n.pools[GPU].ids, want) {
		t.Errorf("default GPU ids %v, want %v", n.pools[GPU].ids, want)
	}
	n = NewNodeResources(Set{CPU: 4, GPU: 8}, []string{"GPU-a", "GPU-b", "GPU-c"})
	if got := n.Total()[GPU]; got != 3 {
		t.Errorf("Total GPU = %v, want the 3 given ids", got)
	}
	n = NewNodeResources(Set{CPU: 4}, nil)
	if _, ok := n.Total()[GPU]; ok {
		t.Errorf("GPU-less node has a GPU entry: %v", n.Total())
	}
	total := Set{CPU: 1}
	n = NewNodeResources(total, nil)
	total[CPU] = 99
	n.Available()[CPU] = 99
	if n.Total()[CPU] != 1 || n.Available()[CPU] != 1 {
		t.Errorf("NodeResources shares maps with its caller: total %v avail %v", n.Total(), n.Available())
	}
}

func TestAllocate(t *testing.T) {
	type step struct {
		req     Set
		wantOK  bool
		wantIDs []string
	}
	tests := []struct {
		name   string
		total  Set
		steps  []step
		wantAv Set
	}{
		{
			name:   "CPU until full",
			total:  Set{CPU: 2},
			steps:  []step{{Set{CPU: 1.5}, true, nil}, {Set{CPU: 1}, false, nil}, {Set{CPU: 0.5}, true, nil}},
			wantAv: Set{CPU: 0},
		},
		{
			name:   "unknown resource",
			total:  Set{CPU: 2},
			steps:  []step{{Set{"TPU": 1}, false, nil}, {Set{"TPU": 0, CPU: 1}, true, nil}},
			wantAv: Set{CPU: 1},
		},
		{
			name:  "whole GPUs lowest first",
			total: Set{GPU: 4},
			steps: []step{
				{Set{GPU: 2}, true, []string{"0", "1"}},
				{Set{GPU: 1}, true, []string{"2"}},
				{Set{GPU: 2}, false, nil},
				{Set{GPU: 1}, true, []string{"3"}},
			},
			wantAv: Set{GPU: 0},
		},
		{
			name:  "fractions pack onto a partly used GPU",
			total: Set{GPU: 2},
			steps: []step{
				{Set{GPU: 0.5}, true, []string{"0"}},
				{Set{GPU: 0.25}, true, []string{"0"}},
				{Set{GPU: 0.5}, true, []string{"1"}},  // GPU 0 has 0.25 left
				{Set{GPU: 0.25}, true, []string{"0"}}, // best fit: 0.25 left on 0, 0.5 on 1
				{Set{GPU: 0.5}, true, []string{"1"}},
				{Set{GPU: 0.1}, false, nil},
			},
			wantAv: Set{GPU: 0},
		},
		{
			name:  "fragmented GPUs refuse a whole one",
			total: Set{GPU: 2},
			steps: []step{
				{Set{GPU: 0.5}, true, []string{"0"}},
				{Set{GPU: 0.75}, true, []string{"1"}},
				{Set{GPU: 0.5}, true, []string{"0"}},
				{Set{GPU: 1}, false, nil},
				{Set{GPU: 0.25}, true, []string{"1"}},
			},
			wantAv: Set{GPU: 0},
		},
		{
			name:  "whole GPU skips partly used ones",
			total: Set{GPU: 2},
			steps: []step{
				{Set{GPU: 0.3}, true, []string{"0"}},
				{Set{GPU: 1}, true, []string{"1"}},
				{Set{GPU: 1}, false, nil},
			},
			wantAv: Set{GPU: 0.7},
		},
		{
			name:   "ten tenths fill one GPU",
			total:  Set{GPU: 1},
			steps:  repeat(10, step{Set{GPU: 0.1}, true, []string{"0"}}),
			wantAv: Set{GPU: 0},
		},
		{
			name:   "fractional GPU above 1 refused",
			total:  Set{GPU: 4},
			steps:  []step{{Set{GPU: 1.5}, false, nil}},
			wantAv: Set{GPU: 4},
		},
		{
			name:   "all or nothing",
			total:  Set{CPU: 4, GPU: 1},
			steps:  []step{{Set{GPU: 0.6}, true, []string{"0"}}, {Set{CPU: 1, GPU: 0.6}, false, nil}},
			wantAv: Set{CPU: 4, GPU: 0.4},
		},
	}
	for _, tt := range tests {
		n := NewNodeResources(tt.total, nil)
		for i, s := range tt.steps {
			a, ok := n.Allocate(s.req)
			if ok != s.wantOK || !reflect.DeepEqual(a.GPUIDs, s.wantIDs) {
				t.Errorf("%s: step %d Allocate(%v) = %v %v, want %v %v", tt.name, i, s.req, a.GPUIDs, ok, s.wantIDs, s.wantOK)
			}
		}
		if got := n.Available(); !approxEqual(got, tt.wantAv) {
			t.Errorf("%s: Available() = %v, want %v", tt.name, got, tt.wantAv)
		}
	}
}

func repeat[T any](n int, v T) []T {
	s := make([]T, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func approxEqual(a, b Set) bool {
	for k := range a {
		if math.Abs(a[k]-b[k]) > 1e-9 {
			return false
		}
	}
	for k := range b {
		if math.Abs(a[k]-b[k]) > 1e-9 {
			return false
		}
	}
	return true
}

func TestRelease(t *testing.T) {
	n := NewNodeResources(Set{CPU: 2, GPU: 1}, []string{"GPU-x"})
	a, _ := n.Allocate(Set{CPU: 1, GPU: 1})
	b, _ := n.Allocate(Set{CPU: 1})
	copyOfA := a
	if err := n.Release(a); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := n.Release(copyOfA); !errors.Is(err, ErrNotAllocated) {
		t.Errorf("second Release = %v, want ErrNotAllocated", err)
	}
	if err := n.Release(Allocation{}); !errors.Is(err, ErrNotAllocated) {
		t.Errorf("Release(zero) = %v, want ErrNotAllocated", err)
	}
	other := NewNodeResources(Set{CPU: 2}, nil)
	if err := other.Release(b); !errors.Is(err, ErrNotAllocated) {
		t.Errorf("Release on another node = %v, want ErrNotAllocated", err)
	}
	if got, want := n.Available(), (Set{CPU: 1, GPU: 1}); !reflect.DeepEqual(got, want) {
		t.Errorf("Available() = %v, want %v", got, want)
	}
	if c, ok := n.Allocate(Set{GPU: 1}); !ok || c.GPUIDs[0] != "GPU-x" {
		t.Errorf("released GPU not handed out again: %v %v", c.GPUIDs, ok)
	}
}

func TestAddSub(t *testing.T) {
	n := NewNodeResources(Set{CPU: 2, GPU: 1}, nil)
	a, _ := n.Allocate(Set{CPU: 2, GPU: 1})
	// The worker blocks in Get and lends its CPUs back.
	n.Add(Set{CPU: 2, GPU: 1})
	if got, want := n.Available(), (Set{CPU: 2, GPU: 0}); !reflect.DeepEqual(got, want) {
		t.Fatalf("after Add: %v, want %v (GPU not lent)", got, want)
	}
	b, ok := n.Allocate(Set{CPU: 1})
	if !ok {
		t.Fatal("lent CPU not allocatable")
	}
	// It resumes: the node is oversubscribed until b finishes.
	n.Sub(Set{CPU: 2, GPU: 1})
	if got := n.Available()[CPU]; got != -1 {
		t.Errorf("oversubscribed CPU = %v, want -1", got)
	}
	if _, ok := n.Allocate(Set{CPU: 0.1}); ok {
		t.Error("Allocate succeeded while oversubscribed")
	}
	_ = n.Release(b)
	_ = n.Release(a)
	if got := n.Available(); !reflect.DeepEqual(got, n.Total()) {
		t.Errorf("after all releases Available() = %v, want total %v", got, n.Total())
	}
	n.Add(Set{CPU: 5, "TPU": 1})
	if got := n.Available(); !reflect.DeepEqual(got, n.Total()) {
		t.Errorf("Add rose above total: %v", got)
	}
}

// TestFractionsAreExact: amounts are kept in fixed point, so 1 - 0.1 - 0.2
// is 0.7, not 0.7000000000000001, and ten tenths leave exactly nothing.
func TestFractionsAreExact(t *testing.T) {
	n := NewNodeResources(Set{CPU: 1, "widget": 3}, nil)
	a, _ := n.Allocate(Set{CPU: 0.1, "widget": 0.7})
	b, _ := n.Allocate(Set{CPU: 0.2, "widget": 0.1})
	if got := n.Available(); got[CPU] != 0.7 || got["widget"] != 2.2 {
		t.Fatalf("Available() = %v, want CPU exactly 0.7 and widget exactly 2.2", got)
	}
	_ = n.Release(a)
	_ = n.Release(b)
	var held []Allocation
	for range 10 {
		a, ok := n.Allocate(Set{CPU: 0.1})
		if !ok {
			t.Fatalf("tenth %d of a CPU refused: %v available", len(held)+1, n.Available())
		}
		held = append(held, a)
	}
	if got := n.Available()[CPU]; got != 0 {
		t.Fatalf("after ten tenths, CPU available = %v, want exactly 0", got)
	}
	for _, a := range held {
		_ = n.Release(a)
	}
	if !reflect.DeepEqual(n.Available(), n.Total()) {
		t.Fatalf("Available() = %v, want exactly the total %v", n.Available(), n.Total())
	}
}

// amountGen draws a resource amount as a user might write it: nothing, a
// fraction (on the 1/10,000 grid or finer, which rounds), or a few wholes.
func amountGen(maxWhole int) *rapid.Generator[float64] {
	return rapid.OneOf(
		rapid.Just(0.0),
		rapid.Map(rapid.IntRange(1, UnitsPerWhole), func(k int) float64 { return float64(k) / UnitsPerWhole }),
		rapid.Float64Range(0.0001, 1),
		rapid.SampledFrom([]float64{0.1, 0.2, 0.25, 0.3, 1.0 / 3, 0.7}),
		rapid.Map(rapid.IntRange(1, max(maxWhole, 1)), func(k int) float64 { return float64(k) }),
	)
}

// TestLedgerProperty runs random sequences of Allocate, Release, lending
// (Add, as a worker blocked in Get does) and resuming (Sub) on nodes with
// fractional totals, and checks after every step that the ledger equals its
// totals minus what is held plus what is lent, exactly; that nothing held
// goes negative; and that GPU instances add up. At the end everything is
// released and resumed, and the ledger must be back at its totals exactly.
func TestLedgerProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		total := Set{
			CPU:      float64(rapid.IntRange(0, 64).Draw(rt, "cpu10")) / 10, // cgroup quotas: 2.5 CPUs
			GPU:      float64(rapid.IntRange(0, 4).Draw(rt, "gpus")),
			Memory:   float64(rapid.Int64Range(0, 1<<40).Draw(rt, "memory")),
			"widget": float64(rapid.IntRange(0, 3).Draw(rt, "widgets")),
		}
		n := NewNodeResources(total, nil)
		type lease struct {
			a    Allocation
			lent bool
		}
		var held []*lease
		// Lending may oversubscribe the node (a resumed worker takes back
		// CPUs lent to others meanwhile), so only runs without it must
		// stay at or above zero.
		lends := rapid.Bool().Draw(rt, "lends")
		ops := 8
		if lends {
			ops = 10
		}
		for step := range rapid.IntRange(1, 200).Draw(rt, "steps") {
			switch op := rapid.IntRange(0, ops-1).Draw(rt, "op"); {
			case op < 5 || len(held) == 0: // allocate
				req := Set{
					CPU:      amountGen(4).Draw(rt, "cpu"),
					GPU:      amountGen(2).Draw(rt, "gpu"),
					"widget": amountGen(2).Draw(rt, "widget"),
				}
				if rapid.Bool().Draw(rt, "asks memory") {
					req[Memory] = float64(rapid.Int64Range(0, 1<<38).Draw(rt, "mem"))
				}
				if Validate(req) != nil {
					continue // rejected at submission; never reaches a ledger
				}
				before := n.Available()
				a, ok := n.Allocate(req)
				if !ok {
					if !reflect.DeepEqual(before, n.Available()) {
						rt.Fatalf("step %d: a refused Allocate(%v) changed Available", step, req)
					}
					continue
				}
				held = append(held, &lease{a: a})
			case op < 8: // release
				i := rapid.IntRange(0, len(held)-1).Draw(rt, "release")
				l := held[i]
				if l.lent { // a lease returned while blocked: resume first, as the raylet does
					n.Sub(Set{CPU: l.a.Resources[CPU]})
				}
				if err := n.Release(l.a); err != nil {
					rt.Fatalf("step %d: Release: %v", step, err)
				}
				if err := n.Release(l.a); !errors.Is(err, ErrNotAllocated) {
					rt.Fatalf("step %d: double Release = %v", step, err)
				}
				held = append(held[:i], held[i+1:]...)
			default: // block (lend the CPU back) or resume
				l := held[rapid.IntRange(0, len(held)-1).Draw(rt, "lend")]
				if l.lent {
					n.Sub(Set{CPU: l.a.Resources[CPU]})
				} else {
					n.Add(Set{CPU: l.a.Resources[CPU]})
				}
				l.lent = !l.lent
			}
			want := n.total.clone()
			for _, l := range held {
				for k, v := range l.a.units {
					want[k] -= v
				}
				if l.lent {
					want[CPU] += l.a.units[CPU]
				}
			}
			for k := range n.total {
				if n.avail[k] != want[k] {
					rt.Fatalf("step %d: available %s = %d units, want total - held + lent = %d", step, k, n.avail[k], want[k])
				}
				if n.avail[k] > n.total[k] || (!lends && n.avail[k] < 0) {
					rt.Fatalf("step %d: available %s = %d units outside [0, %d]", step, k, n.avail[k], n.total[k])
				}
			}
			var ls []Allocation
			for _, l := range held {
				ls = append(ls, l.a)
			}
			checkGPUs(rt, n, ls, step)
		}
		for _, l := range held {
			if l.lent {
				n.Sub(Set{CPU: l.a.Resources[CPU]})
			}
			_ = n.Release(l.a)
		}
		if !reflect.DeepEqual(n.Available(), n.Total()) || !reflect.DeepEqual(n.avail, n.total) {
			rt.Fatalf("after releasing everything, Available %v != Total %v", n.Available(), n.Total())
		}
	})
}

// checkGPUs checks the GPU instances against the allocations holding them.
func checkGPUs(t interface{ Fatalf(string, ...any) }, n *NodeResources, held []Allocation, step int) {
	used := map[string]Units{}
	wholeOwner := map[string]int{}
	for i, a := range held {
		for _, s := range a.gpuShares {
			id := s.pool.ids[s.idx]
			used[id] += s.amount
			if s.amount == UnitsPerWhole {
				if j, dup := wholeOwner[id]; dup {
					t.Fatalf("step %d: whole GPU %s held by allocations %d and %d", step, id, j, i)
				}
				wholeOwner[id] = i
			}
		}
	}
	var sumFree Units
	for i, id := range n.pools[GPU].ids {
		if used[id] > UnitsPerWhole {
			t.Fatalf("step %d: GPU %s over-shared: %d units", step, id, used[id])
		}
		if n.pools[GPU].free[i] != UnitsPerWhole-used[id] {
			t.Fatalf("step %d: GPU %s has %d units free, but %d are handed out", step, id, n.pools[GPU].free[i], used[id])
		}
		sumFree += n.pools[GPU].free[i]
	}
	if sumFree != n.avail[GPU] {
		t.Fatalf("step %d: GPU instances free %d units, available GPU %d", step, sumFree, n.avail[GPU])
	}
}
