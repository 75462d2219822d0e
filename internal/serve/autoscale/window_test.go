package autoscale

import (
	"errors"
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// at is t0 plus s seconds.
func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestWindowAggregate(t *testing.T) {
	type obs struct{ s, load float64 }
	tests := []struct {
		name     string
		obs      []obs
		now      float64
		lookBack time.Duration
		agg      Aggregation
		want     float64
		wantOK   bool
	}{
		{"nothing observed", nil, 10, 30 * time.Second, Mean, 0, false},
		{"one observation, asked at its time", []obs{{0, 4}}, 0, 30 * time.Second, Mean, 4, true},
		{"one observation holds", []obs{{0, 4}}, 5, 30 * time.Second, Mean, 4, true},
		{"time-weighted mean from the first observation", []obs{{0, 0}, {10, 10}}, 20, 30 * time.Second, Mean, 5, true},
		{"value in force when the window opens counts", []obs{{0, 10}, {20, 0}}, 25, 10 * time.Second, Mean, 5, true},
		{"older values fall out of the window", []obs{{0, 100}, {5, 1}}, 14, 8 * time.Second, Mean, 1, true},
		{"steps inside the window", []obs{{0, 2}, {1, 4}, {2, 6}, {3, 8}}, 4, 4 * time.Second, Mean, 5, true},
		{"stale value counts as zero after StaleAfter", []obs{{0, 6}}, 15, 30 * time.Second, Mean, 4, true},
		{"entirely stale window", []obs{{0, 6}}, 100, 30 * time.Second, Mean, 0, true},
		{"max over the window", []obs{{0, 1}, {5, 9}, {8, 2}}, 9, 30 * time.Second, Max, 9, true},
		{"min over the window", []obs{{0, 1}, {5, 9}, {8, 2}}, 9, 30 * time.Second, Min, 1, true},
		{"max ignores values before the window", []obs{{0, 50}, {10, 1}, {12, 2}}, 20, 9 * time.Second, Max, 2, true},
		{"min sees the stale zero", []obs{{0, 3}, {5, 4}}, 20, 30 * time.Second, Min, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w window
			for _, o := range tt.obs {
				if err := w.add(at(o.s), o.load, tt.lookBack); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := w.aggregate(at(tt.now), tt.lookBack, MinStaleAfter, tt.agg)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("aggregate(%v) = %v, %v; want %v, %v", tt.now, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestWindowClockSkew(t *testing.T) {
	// Asked before the newest observation, the window ends just after it.
	var w window
	for _, o := range []struct{ s, load float64 }{{10, 4}, {20, 8}} {
		if err := w.add(at(o.s), o.load, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := w.aggregate(at(15), 30*time.Second, MinStaleAfter, Mean)
	want := (4*10 + 8*0.001) / 10.001
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("aggregate before the newest observation = %v, want %v", got, want)
	}
}

func TestWindowAdd(t *testing.T) {
	var w window
	lb := 30 * time.Second
	if err := w.add(at(5), 3, lb); err != nil {
		t.Fatal(err)
	}
	if err := w.add(at(4), 1, lb); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("older observation: err = %v, want ErrOutOfOrder", err)
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1)} {
		if err := w.add(at(6), bad, lb); !errors.Is(err, ErrBadObservation) {
			t.Errorf("load %v: err = %v, want ErrBadObservation", bad, err)
		}
	}
	if err := w.add(at(5), 7, lb); err != nil {
		t.Fatal(err)
	}
	if len(w.samples) != 1 || w.samples[0].load != 7 {
		t.Errorf("same-time observation should replace: samples = %+v", w.samples)
	}
}

func TestWindowMemoryIsBounded(t *testing.T) {
	var w window
	// Every 0.1 s over 30 s: the window keeps about 300, plus the one in
	// force when it opens.
	for i := range 10_000 {
		if err := w.add(t0.Add(time.Duration(i)*100*time.Millisecond), 1, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.samples); n > 302 {
		t.Errorf("window holds %d samples, want at most 302", n)
	}
	// A look-back long enough to hold more than MaxWindowSamples.
	w = window{}
	for i := range MaxWindowSamples + 1000 {
		if err := w.add(t0.Add(time.Duration(i)*time.Millisecond), 1, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.samples); n != MaxWindowSamples {
		t.Errorf("window holds %d samples, want MaxWindowSamples (%d)", n, MaxWindowSamples)
	}
}
