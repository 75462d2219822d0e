package router

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// script is a Rand that returns fixed values in turn.
type script []int

func (s *script) IntN(n int) int {
	v := (*s)[0]
	*s = (*s)[1:]
	if v >= n {
		panic("script value out of range")
	}
	return v
}

func TestPickTwo(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		draws  script
		wi, wj int
	}{
		{"one replica", 1, nil, 0, -1},
		{"two, kept order", 2, script{0}, 0, 1},
		{"two, swapped", 2, script{1}, 1, 0},
		{"many, j below i", 5, script{3, 1}, 3, 1},
		{"many, j shifted past i", 5, script{1, 1}, 1, 2},
		{"many, last pair", 5, script{4, 3}, 4, 3},
		{"many, j at end", 5, script{0, 3}, 0, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.draws
			i, j := pickTwo(tc.n, &d)
			if i != tc.wi || j != tc.wj {
				t.Fatalf("pickTwo(%d) = %d,%d, want %d,%d", tc.n, i, j, tc.wi, tc.wj)
			}
			if len(d) != 0 {
				t.Fatalf("%d draws left unused", len(d))
			}
		})
	}
}

// TestPickTwoUniform checks that every ordered pair of distinct indexes is
// drawn about equally often, as random.sample(k=2) would.
func TestPickTwoUniform(t *testing.T) {
	const n, trials = 4, 120000
	rnd := rand.New(rand.NewPCG(1, 2))
	var counts [n][n]int
	for range trials {
		i, j := pickTwo(n, rnd)
		if i == j {
			t.Fatalf("pickTwo drew %d twice", i)
		}
		counts[i][j]++
	}
	want := trials / (n * (n - 1))
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			if c := counts[i][j]; c < want*9/10 || c > want*11/10 {
				t.Errorf("pair (%d,%d) drawn %d times, want about %d", i, j, c, want)
			}
		}
	}
}

// TestChoice runs many acquires (each released at once, so loads stay
// put) and checks which replicas the choice may and must pick.
func TestChoice(t *testing.T) {
	type rep struct {
		Replica
		load   int
		report int // queue length reported now; -1 none
	}
	r := func(id, node, zone string, max, load int, st ReplicaState) rep {
		return rep{Replica{ID: id, NodeID: node, Zone: zone, MaxOngoingRequests: max, State: st}, load, -1}
	}
	withReport := func(x rep, q int) rep { x.report = q; return x }
	tests := []struct {
		name    string
		opts    Options
		reps    []rep
		advance time.Duration // clock moves after the reports
		want    map[string]bool
	}{
		{
			name: "lighter of two wins",
			reps: []rep{r("a", "n1", "", 5, 3, Running), r("b", "n1", "", 5, 1, Running)},
			want: map[string]bool{"b": true},
		},
		{
			name: "tie goes to either",
			reps: []rep{r("a", "n1", "", 5, 2, Running), r("b", "n1", "", 5, 2, Running)},
			want: map[string]bool{"a": true, "b": true},
		},
		{
			name: "heaviest of three never wins",
			reps: []rep{r("a", "n1", "", 5, 0, Running), r("b", "n1", "", 5, 1, Running), r("c", "n1", "", 5, 2, Running)},
			want: map[string]bool{"a": true, "b": true},
		},
		{
			name: "skips full, draining and unhealthy",
			reps: []rep{
				r("full", "n1", "", 2, 2, Running),
				r("drain", "n1", "", 5, 0, Draining),
				r("sick", "n1", "", 5, 0, Unhealthy),
				r("busy", "n1", "", 5, 4, Running),
			},
			want: map[string]bool{"busy": true},
		},
		{
			name: "default limit is five",
			reps: []rep{r("five", "n1", "", 0, 5, Running), r("four", "n1", "", 0, 4, Running)},
			want: map[string]bool{"four": true},
		},
		{
			name: "local node first even when heavier",
			opts: Options{LocalNode: "n1"},
			reps: []rep{r("local", "n1", "", 5, 4, Running), r("far1", "n2", "", 5, 0, Running), r("far2", "n3", "", 5, 0, Running)},
			want: map[string]bool{"local": true},
		},
		{
			name: "pow-2 among local replicas",
			opts: Options{LocalNode: "n1"},
			reps: []rep{r("l1", "n1", "", 5, 3, Running), r("l2", "n1", "", 5, 1, Running), r("far", "n2", "", 5, 0, Running)},
			want: map[string]bool{"l2": true},
		},
		{
			name: "local full: same zone next",
			opts: Options{LocalNode: "n1", LocalZone: "z1"},
			reps: []rep{r("local", "n1", "z1", 2, 2, Running), r("zone", "n2", "z1", 5, 3, Running), r("far", "n3", "z2", 5, 0, Running)},
			want: map[string]bool{"zone": true},
		},
		{
			name: "local and zone full: anywhere",
			opts: Options{LocalNode: "n1", LocalZone: "z1"},
			reps: []rep{r("local", "n1", "z1", 2, 2, Running), r("zone", "n2", "z1", 1, 1, Running), r("far1", "n3", "z2", 5, 0, Running), r("far2", "n4", "z2", 5, 3, Running)},
			want: map[string]bool{"far1": true},
		},
		{
			name: "local draining: anywhere",
			opts: Options{LocalNode: "n1"},
			reps: []rep{r("local", "n1", "", 5, 0, Draining), r("far", "n2", "", 5, 3, Running)},
			want: map[string]bool{"far": true},
		},
		{
			name: "reported queue length counts",
			reps: []rep{withReport(r("a", "n1", "", 5, 0, Running), 3), r("b", "n1", "", 5, 1, Running)},
			want: map[string]bool{"b": true},
		},
		{
			name: "report at the limit makes a replica full",
			reps: []rep{withReport(r("a", "n1", "", 5, 0, Running), 5), r("b", "n1", "", 5, 4, Running)},
			want: map[string]bool{"b": true},
		},
		{
			name:    "stale report ignored",
			reps:    []rep{withReport(r("a", "n1", "", 5, 0, Running), 5), r("b", "n1", "", 5, 2, Running)},
			advance: DefaultQueueLenTTL + time.Millisecond,
			want:    map[string]bool{"a": true},
		},
		{
			name:    "report still fresh at the TTL",
			reps:    []rep{withReport(r("a", "n1", "", 5, 0, Running), 4), r("b", "n1", "", 5, 2, Running)},
			advance: DefaultQueueLenTTL,
			want:    map[string]bool{"b": true},
		},
		{
			name: "report below own count ignored",
			reps: []rep{withReport(r("a", "n1", "", 5, 3, Running), 0), r("b", "n1", "", 5, 2, Running)},
			want: map[string]bool{"b": true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newManualClock()
			opts := tc.opts
			opts.Clock = clk
			opts.Rand = rand.New(rand.NewPCG(7, 11))
			rt := mustNew(t, opts)
			var descs []Replica
			for _, x := range tc.reps {
				descs = append(descs, x.Replica)
			}
			mustSet(t, rt, descs...)
			for _, x := range tc.reps {
				setLoad(t, rt, x.ID, x.load)
				if x.report >= 0 {
					if err := rt.ReportQueueLen(x.ID, x.report, clk.Now()); err != nil {
						t.Fatal(err)
					}
				}
			}
			clk.Advance(tc.advance)
			seen := map[string]int{}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for range 300 {
				l, err := rt.Acquire(ctx)
				if err != nil {
					t.Fatal(err)
				}
				seen[l.Replica()]++
				l.Release()
				if err := checkInvariants(rt); err != nil {
					t.Fatal(err)
				}
			}
			for id := range seen {
				if !tc.want[id] {
					t.Errorf("picked %q (%d times); want only %v", id, seen[id], tc.want)
				}
			}
			for id := range tc.want {
				if seen[id] == 0 {
					t.Errorf("never picked %q; picks %v", id, seen)
				}
			}
		})
	}
}

// TestChoiceFrequency checks power of two choices' known shares: with
// loads 0 < 1 < 2, the lightest wins every pair it is in (2/3), the
// middle one only the pair without the lightest (1/3).
func TestChoiceFrequency(t *testing.T) {
	rt := mustNew(t, Options{Rand: rand.New(rand.NewPCG(3, 4))})
	mustSet(t, rt, Replica{ID: "a"}, Replica{ID: "b"}, Replica{ID: "c"})
	setLoad(t, rt, "b", 1)
	setLoad(t, rt, "c", 2)
	seen := map[string]int{}
	const trials = 30000
	for range trials {
		l, err := rt.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		seen[l.Replica()]++
		l.Release()
	}
	if a := seen["a"]; a < trials*62/100 || a > trials*71/100 {
		t.Errorf("lightest picked %d of %d times, want about 2/3", a, trials)
	}
	if seen["c"] != 0 {
		t.Errorf("heaviest picked %d times", seen["c"])
	}
}
