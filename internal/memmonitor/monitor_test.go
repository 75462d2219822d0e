package memmonitor

import (
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"
)

// wait is how long tests wait for something that should happen at once:
// generous, since CI runs on a busy 2-core machine.
const wait = 30 * time.Second

// over is a reading over any threshold the tests use.
var over = Usage{Used: 99, Total: 100, Source: "test"}

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// receive returns the next value of ch, failing the test if none comes.
func receive[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// newMonitor returns a started monitor whose callback sends its reading
// on the returned channel; the test's cleanup stops it.
func newMonitor(t *testing.T, cfg Config) (*Monitor, <-chan Usage) {
	t.Helper()
	fired := make(chan Usage, 100)
	m, err := New(cfg, func(u Usage) { fired <- u })
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m, fired
}

// feeder is a Read func that returns the readings a test sends it, one per
// call. Once the test sends a reading, the monitor has finished with every
// earlier one, callback included: it reads on one goroutine.
type feeder struct {
	ch   chan Usage
	quit chan struct{}
}

// newFeeder returns a feeder. A test registers its release with
// t.Cleanup after starting the monitor, so that it runs before the
// monitor's Stop (cleanups run last in, first out).
func newFeeder() *feeder {
	return &feeder{ch: make(chan Usage), quit: make(chan struct{})}
}

func (f *feeder) read() (Usage, error) {
	select {
	case u := <-f.ch:
		return u, nil
	case <-f.quit:
		return Usage{}, errors.New("test over")
	}
}

// send hands u to the monitor's next Read.
func (f *feeder) send(t *testing.T, u Usage) {
	t.Helper()
	select {
	case f.ch <- u:
	case <-time.After(wait):
		t.Fatalf("monitor did not read %+v", u)
	}
}

// release lets a Read blocked on the feeder return, so Stop can finish.
func (f *feeder) release() { close(f.quit) }

func TestMonitorFiresAtThreshold(t *testing.T) {
	f := newFeeder()
	m, fired := newMonitor(t, Config{Threshold: 0.95, Interval: time.Millisecond, Cooldown: time.Millisecond, Read: f.read})
	t.Cleanup(f.release) // runs before the monitor's Stop

	for _, used := range []int64{0, 50, 94, 94, 0} {
		f.send(t, Usage{Used: used, Total: 100})
	}
	// 94.9% is still below.
	f.send(t, Usage{Used: 949, Total: 1000})
	f.send(t, Usage{Used: 0, Total: 100}) // the 94.9% poll is done
	if len(fired) != 0 {
		t.Fatalf("fired below threshold: %+v", <-fired)
	}

	at := Usage{Used: 95, Total: 100, Source: "at"}
	f.send(t, at)
	if got := receive(t, "the callback at threshold", fired); got != at {
		t.Errorf("callback got %+v, want %+v", got, at)
	}
	if got, err := m.Last(); err != nil || got != at {
		t.Errorf("Last = %+v, %v; want %+v", got, err, at)
	}
}

func TestMonitorCooldownHoldsFire(t *testing.T) {
	var reads atomic.Int64
	read := func() (Usage, error) {
		reads.Add(1)
		return over, nil
	}
	m, fired := newMonitor(t, Config{Interval: time.Millisecond, Cooldown: time.Hour, Read: read})

	receive(t, "the first callback", fired)
	after := reads.Load()
	// Many more readings, all over threshold, within the hour's cooldown.
	eventually(t, "20 more readings", func() bool { return reads.Load() >= after+20 })
	m.Stop()
	if len(fired) != 0 {
		t.Errorf("fired %d more times within the cooldown", len(fired))
	}
}

func TestMonitorFiresAgainAfterCooldown(t *testing.T) {
	const cooldown = 20 * time.Millisecond
	type span struct{ start, end time.Time }
	spans := make(chan span, 100)
	m, err := New(Config{Interval: time.Millisecond, Cooldown: cooldown, Read: func() (Usage, error) { return over, nil }},
		func(Usage) {
			start := time.Now()
			time.Sleep(time.Millisecond) // a kill takes time
			spans <- span{start, time.Now()}
		})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Stop()

	prev := receive(t, "callback 1", spans)
	for i := 2; i <= 4; i++ {
		s := receive(t, "the next callback", spans)
		if gap := s.start.Sub(prev.end); gap < cooldown {
			t.Errorf("callback %d began %v after the previous one ended, within the %v cooldown", i, gap, cooldown)
		}
		prev = s
	}
}

func TestMonitorStopWaitsForCallback(t *testing.T) {
	var reads atomic.Int64
	entered := make(chan struct{}, 1) // buffered: the callback's send never depends on timing
	unblock := make(chan struct{})
	m, err := New(Config{Interval: time.Millisecond, Cooldown: time.Millisecond, Read: func() (Usage, error) {
		reads.Add(1)
		return over, nil
	}}, func(Usage) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-unblock
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	receive(t, "the callback", entered)

	stopped := make(chan struct{})
	go func() {
		m.Stop()
		close(stopped)
	}()
	// Stop cannot return while the callback runs. (A slow machine can only
	// make this check pass vacuously, never fail wrongly.)
	select {
	case <-stopped:
		t.Fatal("Stop returned while the callback was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(unblock)
	receive(t, "Stop to return", stopped)

	n := reads.Load()
	time.Sleep(10 * time.Millisecond)
	if reads.Load() != n {
		t.Error("the monitor read memory after Stop returned")
	}
	m.Stop() // idempotent
	m.Start()
	if reads.Load() != n {
		t.Error("Start after Stop restarted the monitor")
	}
}

func TestMonitorStopWithoutStart(t *testing.T) {
	m, err := New(Config{Read: func() (Usage, error) { return over, nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Stop()
	m.Stop()
	m.Start() // after Stop: does nothing
	if _, err := m.Last(); !errors.Is(err, ErrNoReading) {
		t.Errorf("Last = %v, want ErrNoReading", err)
	}
}

func TestMonitorStartTwice(t *testing.T) {
	var reads atomic.Int64
	m, fired := newMonitor(t, Config{Interval: time.Millisecond, Cooldown: time.Hour, Read: func() (Usage, error) {
		reads.Add(1)
		return over, nil
	}})
	m.Start()
	m.Start()
	receive(t, "the callback", fired)
	eventually(t, "more readings", func() bool { return reads.Load() >= 10 })
	m.Stop()
	if len(fired) != 0 {
		t.Errorf("a second goroutine fired %d times", len(fired))
	}
}

func TestMonitorDisabled(t *testing.T) {
	m, err := New(Config{Interval: -1, Read: func() (Usage, error) {
		t.Error("a disabled monitor read memory")
		return over, nil
	}}, func(Usage) { t.Error("a disabled monitor fired") })
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	if _, err := m.Last(); !errors.Is(err, ErrNoReading) {
		t.Errorf("Last = %v, want ErrNoReading", err)
	}
	m.Stop()
}

func TestMonitorReadError(t *testing.T) {
	f := newFeeder()
	errRead := errors.New("read failed")
	var calls atomic.Int64
	read := func() (Usage, error) {
		if calls.Add(1) == 1 {
			return over, errRead
		}
		return f.read()
	}
	m, fired := newMonitor(t, Config{Interval: time.Millisecond, Read: read})
	t.Cleanup(f.release)

	f.send(t, Usage{Used: 1, Total: 100}) // the failed reading is done
	if len(fired) != 0 {
		t.Error("fired on a failed reading")
	}
	want := Usage{Used: 2, Total: 100}
	f.send(t, want)
	f.send(t, Usage{Used: 2, Total: 100})
	if got, err := m.Last(); err != nil || got != want {
		t.Errorf("Last = %+v, %v; want %+v", got, err, want)
	}
}

func TestMonitorReadsRoot(t *testing.T) {
	root := fakeRoot(t, hostOnly)
	m, fired := newMonitor(t, Config{Root: root, Threshold: 0.25, Interval: time.Millisecond})
	if got := receive(t, "the callback", fired); got != hostUsage {
		t.Errorf("callback got %+v, want %+v", got, hostUsage)
	}
	if got, err := m.Last(); err != nil || got != hostUsage {
		t.Errorf("Last = %+v, %v; want %+v", got, err, hostUsage)
	}
}

func TestNewConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Threshold: -0.1},
		{Threshold: 1.01},
		{Threshold: math.NaN()},
		{Threshold: math.Inf(1)},
		{Cooldown: -time.Second},
	} {
		if _, err := New(cfg, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}

	m, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Threshold() != DefaultThreshold || m.cfg.Interval != DefaultInterval || m.cfg.Cooldown != DefaultCooldown || m.cfg.Root != "/" {
		t.Errorf("defaults: %+v", m.cfg)
	}
	m, err = New(Config{Threshold: 1}, nil)
	if err != nil || m.Threshold() != 1 {
		t.Errorf("New with threshold 1: %v, %v", m, err)
	}
}

func TestGate(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g := gate{threshold: 0.9, cooldown: time.Second}
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	u := func(used int64) Usage { return Usage{Used: used, Total: 100} }

	steps := []struct {
		used int64
		ms   int
		open bool
	}{
		{89, 0, false},
		{90, 0, true},
		// fired at 100 ms: quiet until 1100 ms.
		{100, 200, false},
		{100, 1099, false},
		{89, 1100, false},
		{95, 1100, true},
	}
	for i, s := range steps {
		if got := g.open(u(s.used), at(s.ms)); got != s.open {
			t.Errorf("step %d: open(%d%%, %d ms) = %v, want %v", i, s.used, s.ms, got, s.open)
		}
		if i == 1 {
			g.fired(at(100))
		}
	}
}
