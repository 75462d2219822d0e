package resources

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"testing"
)

func TestNewNodeResources(t *testing.T) {
	n := NewNodeResources(Set{CPU: 4, GPU: 2}, nil)
	if want := []string{"0", "1"}; !reflect.DeepEqual(n.gpuIDs, want) {
		t.Errorf("default GPU ids %v, want %v", n.gpuIDs, want)
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

// TestAllocateReleaseProperty runs random Allocate/Release sequences and checks
// the ledger's invariants after every step.
func TestAllocateReleaseProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	gpuAmounts := []float64{0, 0, 0.1, 0.25, 0.3, 0.5, 0.7, 1, 1, 2, 3}
	for run := 0; run < 200; run++ {
		total := Set{CPU: float64(1 + rng.Intn(16)), GPU: float64(rng.Intn(5)), Memory: 1 << 30, "TPU": 2}
		n := NewNodeResources(total, nil)
		var held []Allocation
		for step := 0; step < 300; step++ {
			if len(held) > 0 && rng.Intn(3) == 0 {
				i := rng.Intn(len(held))
				if err := n.Release(held[i]); err != nil {
					t.Fatalf("run %d step %d: Release: %v", run, step, err)
				}
				if err := n.Release(held[i]); !errors.Is(err, ErrNotAllocated) {
					t.Fatalf("run %d step %d: double Release = %v", run, step, err)
				}
				held = append(held[:i], held[i+1:]...)
			} else {
				req := Set{
					CPU:    float64(rng.Intn(9)) / 4,
					GPU:    gpuAmounts[rng.Intn(len(gpuAmounts))],
					Memory: float64(rng.Intn(1 << 28)),
				}
				if rng.Intn(4) == 0 {
					req["TPU"] = 0.5
				}
				before := n.Available()
				a, ok := n.Allocate(req)
				if ok {
					held = append(held, a)
				} else if !reflect.DeepEqual(before, n.Available()) {
					t.Fatalf("run %d step %d: failed Allocate changed Available", run, step)
				}
			}
			checkInvariants(t, n, held, fmt.Sprintf("run %d step %d", run, step))
		}
		for _, a := range held {
			_ = n.Release(a)
		}
		if !approxEqual(n.Available(), n.Total()) {
			t.Fatalf("run %d: after releasing all, Available %v != Total %v", run, n.Available(), n.Total())
		}
	}
}

func checkInvariants(t *testing.T, n *NodeResources, held []Allocation, where string) {
	t.Helper()
	for k, v := range n.avail {
		if v < 0 || v > n.total[k] {
			t.Fatalf("%s: available %s = %v outside [0, %v]", where, k, v, n.total[k])
		}
	}
	used := map[string]float64{}
	wholeOwner := map[string]int{}
	for i, a := range held {
		for _, s := range a.gpuShares {
			id := n.gpuIDs[s.gpu]
			used[id] += s.amount
			if s.amount == 1 {
				if j, dup := wholeOwner[id]; dup {
					t.Fatalf("%s: whole GPU %s held by allocations %d and %d", where, id, j, i)
				}
				wholeOwner[id] = i
			}
		}
	}
	sumFree := 0.0
	for i, id := range n.gpuIDs {
		if used[id] > 1+Epsilon {
			t.Fatalf("%s: GPU %s over-shared: %v", where, id, used[id])
		}
		if math.Abs(n.gpuFree[i]-(1-used[id])) > 1e-6 {
			t.Fatalf("%s: GPU %s free %v, but %v is handed out", where, id, n.gpuFree[i], used[id])
		}
		sumFree += n.gpuFree[i]
	}
	if math.Abs(sumFree-n.avail[GPU]) > 1e-6 {
		t.Fatalf("%s: GPU instances free %v, available GPU %v", where, sumFree, n.avail[GPU])
	}
}
