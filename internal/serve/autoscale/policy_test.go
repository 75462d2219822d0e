package autoscale

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sim plays a controller against a Policy: it observes load(t) every
// observeEvery, evaluates every tick (Ray's control loop runs every 0.1 s)
// and applies each decision at once, as if replicas started and stopped
// instantly.
type sim struct {
	t            *testing.T
	p            *Policy
	load         func(s float64) float64
	observeEvery time.Duration
	tick         time.Duration
	now          time.Duration // since t0
	current      int
	changes      []change
}

type change struct {
	at       float64 // seconds since t0
	from, to int
	reason   Reason
}

func newSim(t *testing.T, cfg Config, current int, load func(s float64) float64) *sim {
	t.Helper()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, p: p, load: load, observeEvery: 500 * time.Millisecond, tick: 100 * time.Millisecond, current: current}
}

// run advances the simulation to until (since t0), inclusive.
func (s *sim) run(until time.Duration) {
	s.t.Helper()
	for ; s.now <= until; s.now += s.tick {
		now := t0.Add(s.now)
		sec := s.now.Seconds()
		if s.now%s.observeEvery == 0 {
			if err := s.p.Observe(now, s.load(sec)); err != nil {
				s.t.Fatal(err)
			}
		}
		d := s.p.Evaluate(now, Replicas{Running: s.current, Target: s.current})
		if d.Desired != s.current {
			s.changes = append(s.changes, change{sec, s.current, d.Desired, d.Reason})
			s.current = d.Desired
		}
	}
}

func constant(v float64) func(float64) float64 { return func(float64) float64 { return v } }

func TestSpikeShorterThanUpscaleDelayDoesNotScale(t *testing.T) {
	cfg := AutoConfig()
	cfg.UpscaleDelay = 10 * time.Second
	cfg.LookBackPeriod = 2 * time.Second
	cfg.MetricsInterval = 500 * time.Millisecond
	// 20 ongoing requests (asking for 10 replicas) for 5 s; the wish lasts
	// the spike plus the look-back, 7 s, less than the delay.
	s := newSim(t, cfg, 1, func(sec float64) float64 {
		if sec < 5 {
			return 20
		}
		return 0
	})
	s.run(4 * time.Second)
	if d := s.p.Evaluate(t0.Add(s.now), Replicas{1, 1}); d.Reason != UpscaleWaiting || d.Proposed != 10 || !d.WaitingSince.Equal(t0) {
		t.Errorf("during the spike: %+v, want UpscaleWaiting for 10 since t0", d)
	}
	s.run(60 * time.Second)
	if len(s.changes) != 0 {
		t.Errorf("a 5 s spike with a 10 s upscale delay scaled: %+v", s.changes)
	}
}

func TestSustainedLoadScalesAfterUpscaleDelay(t *testing.T) {
	cfg := AutoConfig()
	cfg.UpscaleDelay = 10 * time.Second
	cfg.LookBackPeriod = 2 * time.Second
	s := newSim(t, cfg, 1, constant(20))
	s.run(60 * time.Second)
	want := []change{{10, 1, 10, Upscale}}
	if len(s.changes) != 1 || s.changes[0] != want[0] {
		t.Errorf("changes = %+v, want %+v", s.changes, want)
	}
}

// The target: the autoscaler reacts to a load step within 10 s
// (UpscaleDelay 3 s, metrics every 0.5 s).
func TestLoadStepReactsWithin10s(t *testing.T) {
	cfg := AutoConfig() // Ray's 30 s look-back
	cfg.UpscaleDelay = 3 * time.Second
	cfg.MetricsInterval = 500 * time.Millisecond

	t.Run("first traffic", func(t *testing.T) {
		s := newSim(t, cfg, 1, constant(20))
		s.run(20 * time.Second)
		if len(s.changes) == 0 || s.changes[0].at > 10 {
			t.Fatalf("changes = %+v, want a scale-up within 10 s", s.changes)
		}
		if c := s.changes[0]; c.at != 3 || c.to != 10 || c.reason != Upscale {
			t.Errorf("first change = %+v, want 1 -> 10 (upscale) at 3 s", c)
		}
	})

	t.Run("step after a minute idle", func(t *testing.T) {
		// Idle from -60 s, then 20 ongoing requests from 0 on: the mean over
		// 30 s climbs by 2/3 per second and crosses one replica's target
		// (2) after 3 s.
		s := newSim(t, cfg, 1, func(sec float64) float64 {
			if sec < 60 {
				return 0
			}
			return 20
		})
		s.run(60 * time.Second)
		if len(s.changes) != 0 {
			t.Fatalf("idle deployment changed: %+v", s.changes)
		}
		s.run(60*time.Second + 10*time.Second)
		if len(s.changes) == 0 {
			t.Fatalf("no reaction within 10 s of the load step")
		}
		first := s.changes[0]
		t.Logf("reacted %.1f s after the step: %d -> %d", first.at-60, first.from, first.to)
		if first.to <= 1 || first.reason != Upscale {
			t.Errorf("first change = %+v, want an upscale", first)
		}
		// Left running, it settles at ceil(20 / 2) = 10 replicas.
		s.run(180 * time.Second)
		if s.current != 10 {
			t.Errorf("settled at %d replicas, want 10 (changes %+v)", s.current, s.changes)
		}
	})
}

func TestDownscaleThenToZero(t *testing.T) {
	cfg := AutoConfig()
	cfg.MinReplicas = 0
	cfg.LookBackPeriod = 5 * time.Second
	cfg.DownscaleDelay = 60 * time.Second
	traffic := func(sec float64) float64 {
		if sec < 10 {
			return 8 // 4 replicas' worth
		}
		return 0
	}

	t.Run("DownscaleToZeroDelay", func(t *testing.T) {
		c := cfg
		c.DownscaleToZeroDelay = ptr(20 * time.Second)
		s := newSim(t, c, 4, traffic)
		s.run(200 * time.Second)
		if len(s.changes) != 2 {
			t.Fatalf("changes = %+v, want 4 -> 1 then 1 -> 0", s.changes)
		}
		down, zero := s.changes[0], s.changes[1]
		// The wish starts once the 5 s mean drops below 3 replicas' worth
		// (t = 11 s or so); it fires 60 s later, straight to one replica.
		if down.from != 4 || down.to != 1 || down.reason != Downscale || down.at < 70 || down.at > 76 {
			t.Errorf("first change = %+v, want 4 -> 1 (downscale) between 70 s and 76 s", down)
		}
		// The last replica goes DownscaleToZeroDelay after that (the wish
		// starts on the next tick).
		if zero.from != 1 || zero.to != 0 || zero.reason != Downscale {
			t.Errorf("second change = %+v, want 1 -> 0 (downscale)", zero)
		}
		if gap := zero.at - down.at; gap < 20 || gap > 20.15 {
			t.Errorf("1 -> 0 came %.2f s after 4 -> 1, want DownscaleToZeroDelay (20 s)", gap)
		}
	})

	t.Run("DownscaleDelay when no to-zero delay", func(t *testing.T) {
		s := newSim(t, cfg, 4, traffic)
		s.run(300 * time.Second)
		if len(s.changes) != 2 || s.changes[1].to != 0 {
			t.Fatalf("changes = %+v, want 4 -> 1 then 1 -> 0", s.changes)
		}
		if gap := s.changes[1].at - s.changes[0].at; gap < 60 || gap > 60.15 {
			t.Errorf("1 -> 0 came %.2f s after 4 -> 1, want DownscaleDelay (60 s)", gap)
		}
	})

	t.Run("MinReplicas 1 keeps one", func(t *testing.T) {
		c := cfg
		c.MinReplicas = 1
		c.DownscaleToZeroDelay = ptr(time.Duration(0))
		s := newSim(t, c, 4, traffic)
		s.run(300 * time.Second)
		if s.current != 1 || len(s.changes) != 1 {
			t.Errorf("changes = %+v, want only 4 -> 1", s.changes)
		}
	})
}

func TestScaleFromZero(t *testing.T) {
	cfg := AutoConfig()
	cfg.MinReplicas = 0 // UpscaleDelay stays Ray's 30 s

	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Idle at zero: stays at zero, observed or not.
	if got := p.Decide(at(0), 0); got != 0 {
		t.Errorf("idle at zero with nothing observed: Decide = %d, want 0", got)
	}
	if err := p.Observe(at(1), 0); err != nil {
		t.Fatal(err)
	}
	if got := p.Decide(at(1), 0); got != 0 {
		t.Errorf("idle at zero: Decide = %d, want 0", got)
	}

	// Three requests queue at a proxy: one replica at once, no delay.
	if err := p.Observe(at(2), 3); err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(at(2), Replicas{})
	if d.Desired != 1 || d.Reason != ColdStart {
		t.Errorf("requests queued at zero replicas: %+v, want 1 (cold-start)", d)
	}
	// While it starts (target 1, none running) the target holds.
	if d := p.Evaluate(at(3), Replicas{Running: 0, Target: 1}); d.Desired != 1 {
		t.Errorf("replica starting: %+v, want 1", d)
	}
	// Once it runs, 3 ongoing requests (2 replicas' worth) wait for the
	// upscale delay like any other upscale.
	if err := p.Observe(at(4), 3); err != nil {
		t.Fatal(err)
	}
	if d := p.Evaluate(at(4), Replicas{1, 1}); d.Desired != 1 || d.Reason != UpscaleWaiting {
		t.Errorf("running with 3 ongoing: %+v, want 1 (upscale-waiting)", d)
	}
	if err := p.Observe(at(34), 3); err != nil {
		t.Fatal(err)
	}
	if d := p.Evaluate(at(34), Replicas{1, 1}); d.Desired != 2 || d.Reason != Upscale {
		t.Errorf("after the upscale delay: %+v, want 2 (upscale)", d)
	}
}

func TestWishRestartsOnChangeOfMind(t *testing.T) {
	cfg := AutoConfig()
	cfg.UpscaleDelay = 10 * time.Second
	cfg.DownscaleDelay = 10 * time.Second
	cfg.LookBackPeriod = time.Millisecond // the latest observation is the load

	tests := []struct {
		name string
		load func(s float64) float64
		want []change
	}{
		{"steady interrupts an upscale wish", func(s float64) float64 {
			if s >= 6 && s < 7 {
				return 4 // exactly the target for 2 replicas
			}
			return 20
		}, []change{{17, 2, 10, Upscale}}},
		{"downscale interrupts an upscale wish", func(s float64) float64 {
			if s >= 6 && s < 7 {
				return 0
			}
			return 20
		}, []change{{17, 2, 10, Upscale}}},
		{"the count taken is the latest proposal", func(s float64) float64 {
			if s < 5 {
				return 40
			}
			return 8
		}, []change{{10, 2, 4, Upscale}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, cfg, 2, tt.load)
			s.run(30 * time.Second)
			if len(s.changes) != len(tt.want) || s.changes[0] != tt.want[0] {
				t.Errorf("changes = %+v, want %+v", s.changes, tt.want)
			}
		})
	}
}

func TestBoundsApplyAtOnce(t *testing.T) {
	cfg := AutoConfig()
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Observe(at(0), 10); err != nil { // 5 replicas' worth
		t.Fatal(err)
	}
	if got := p.Decide(at(0), 5); got != 5 {
		t.Fatalf("Decide = %d, want 5", got)
	}
	lower := cfg
	lower.MaxReplicas = 3
	if err := p.Reconfigure(lower); err != nil {
		t.Fatal(err)
	}
	if got := p.Decide(at(1), 5); got != 3 {
		t.Errorf("after MaxReplicas 5 -> 3: Decide = %d, want 3 at once", got)
	}
	higher := cfg
	higher.MinReplicas = 8
	if err := p.Reconfigure(higher); err != nil {
		t.Fatal(err)
	}
	if got := p.Decide(at(2), 3); got != 8 {
		t.Errorf("after MinReplicas 1 -> 8: Decide = %d, want 8 at once", got)
	}
}

func TestReconfigure(t *testing.T) {
	cfg := AutoConfig()
	cfg.UpscaleDelay = 10 * time.Second
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Observe(at(0), 20); err != nil {
		t.Fatal(err)
	}
	if d := p.Evaluate(at(0), Replicas{1, 1}); d.Reason != UpscaleWaiting {
		t.Fatalf("%+v, want upscale-waiting", d)
	}

	bad := cfg
	bad.TargetOngoingRequests = 0
	if err := p.Reconfigure(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Reconfigure(invalid) = %v, want ErrInvalidConfig", err)
	}
	if p.Config() != cfg {
		t.Errorf("an invalid Reconfigure changed the config")
	}

	next := cfg
	next.TargetOngoingRequests = 4
	if err := p.Reconfigure(next); err != nil {
		t.Fatal(err)
	}
	// The load is kept; the wish restarts from the reconfiguration.
	d := p.Evaluate(at(8), Replicas{1, 1})
	if load, ok := p.Load(at(8)); !ok || load != 20 {
		t.Errorf("Load after Reconfigure = %v, %v; want 20, true", load, ok)
	}
	if d.Proposed != 5 || d.Reason != UpscaleWaiting || !d.WaitingSince.Equal(at(8)) {
		t.Errorf("after Reconfigure: %+v, want upscale-waiting for 5 since 8 s", d)
	}
	if got := p.Decide(at(17), 1); got != 1 {
		t.Errorf("9 s into the restarted wish: Decide = %d, want 1", got)
	}
	if got := p.Decide(at(18), 1); got != 5 {
		t.Errorf("10 s into the restarted wish: Decide = %d, want 5", got)
	}
}

func TestNoReportsCountAsZeroLoad(t *testing.T) {
	cfg := AutoConfig()
	cfg.DownscaleDelay = 0
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(at(0), Replicas{3, 3})
	if d.HasLoad || d.Load != 0 || d.Desired != 1 || d.Reason != Downscale {
		t.Errorf("nothing observed: %+v, want no load and a downscale to 1", d)
	}

	// A single report of 20 at 0 s; no report after it.
	if err := p.Observe(at(0), 20); err != nil {
		t.Fatal(err)
	}
	cfg.LookBackPeriod = 5 * time.Second
	if err := p.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if got := p.Decide(at(5), 10); got != 10 {
		t.Errorf("fresh report: Decide = %d, want 10", got)
	}
	// StaleAfter is max(2 × 10 s, 10 s) = 20 s: by 30 s the window [25 s,
	// 30 s] is all stale, so the load is zero.
	if d := p.Evaluate(at(30), Replicas{10, 10}); d.Load != 0 || !d.HasLoad || d.Desired != 1 {
		t.Errorf("stale report: %+v, want load 0 and 1 replica", d)
	}
}

func TestReasonString(t *testing.T) {
	for r, want := range map[Reason]string{
		Steady: "steady", ColdStart: "cold-start", Starting: "starting",
		UpscaleWaiting: "upscale-waiting", Upscale: "upscale",
		DownscaleWaiting: "downscale-waiting", Downscale: "downscale", Reason(99): "Reason(99)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String() = %q, want %q", int(r), got, want)
		}
	}
}

// Reports arrive from many goroutines while a control loop decides; run
// under -race.
func TestConcurrentUse(t *testing.T) {
	p, err := NewPolicy(AutoConfig())
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64 // milliseconds since t0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				now := t0.Add(time.Duration(clock.Add(1)) * time.Millisecond)
				if err := p.Observe(now, 10); err != nil && !errors.Is(err, ErrOutOfOrder) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 500 {
			now := t0.Add(time.Duration(clock.Load()) * time.Millisecond)
			if d := p.Evaluate(now, Replicas{5, 5}); d.Desired < 1 || d.Desired > 100 {
				t.Errorf("Desired %d out of bounds", d.Desired)
				return
			}
			_ = p.Config()
		}
	})
	wg.Wait()
	if load, ok := p.Load(t0.Add(time.Duration(clock.Load()) * time.Millisecond)); !ok || load != 10 {
		t.Errorf("Load = %v, %v; want 10, true", load, ok)
	}
}

// BenchmarkObserveEvaluate is the controller's hot path for one deployment:
// one report and one decision over a full window (30 s of reports every
// 0.5 s).
func BenchmarkObserveEvaluate(b *testing.B) {
	p, err := NewPolicy(AutoConfig())
	if err != nil {
		b.Fatal(err)
	}
	step := 500 * time.Millisecond
	for i := range 60 {
		if err := p.Observe(t0.Add(time.Duration(i)*step), float64(i%7)); err != nil {
			b.Fatal(err)
		}
	}
	now := t0.Add(60 * step)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(step)
		if err := p.Observe(now, float64(i%7)); err != nil {
			b.Fatal(err)
		}
		p.Evaluate(now, Replicas{3, 3})
	}
}
