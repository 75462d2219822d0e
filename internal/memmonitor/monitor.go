package memmonitor

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultThreshold = 0.95
	DefaultInterval  = 250 * time.Millisecond
	DefaultCooldown  = time.Second
)

// Config configures a Monitor. Zero fields take the defaults.
type Config struct {
	// Root is where Read looks for proc/ and sys/. Empty reads the
	// machine the platform's way (System: Read("/") on Linux, sysctl on
	// darwin). Tests point it at a fake tree.
	Root string
	// Threshold is the fraction of memory (Usage.Fraction) at which the
	// monitor calls back. It must be in (0, 1]; 0 means DefaultThreshold.
	Threshold float64
	// Interval is how often the monitor reads memory; 0 means
	// DefaultInterval, and a negative Interval turns polling off (Start
	// then does nothing).
	Interval time.Duration
	// Cooldown is how long after a callback returns the monitor stays
	// quiet, however high memory is, so that the killed worker has time
	// to exit and its memory to come back. It must not be negative; 0
	// means DefaultCooldown.
	Cooldown time.Duration
	// Read, if set, replaces System or Read(Root), for tests.
	Read func() (Usage, error)
}

// Validate reports whether c is usable, with an error wrapping
// ErrInvalidConfig if not. Zero fields are valid: they take defaults.
func (c Config) Validate() error {
	if math.IsNaN(c.Threshold) || c.Threshold < 0 || c.Threshold > 1 {
		return fmt.Errorf("%w: threshold %v is not in (0, 1]", ErrInvalidConfig, c.Threshold)
	}
	if c.Cooldown < 0 {
		return fmt.Errorf("%w: negative cooldown %v", ErrInvalidConfig, c.Cooldown)
	}
	return nil
}

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {

	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Cooldown == 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.Read == nil {
		c.Read = System
		if root := c.Root; root != "" {
			c.Read = func() (Usage, error) { return Read(root) }
		}
	}
	if c.Root == "" {
		c.Root = "/"
	}
	return c
}

// Monitor polls the node's memory on one goroutine of its own and calls
// back when use reaches its threshold, at most once per cooldown.
//
// Its methods are safe to call from any goroutine.
type Monitor struct {
	cfg    Config // with defaults
	onOver func(Usage)

	stop chan struct{} // closed by the first Stop
	done chan struct{} // closed when the goroutine has returned

	mu      sync.Mutex
	started bool  // guarded by mu; Start has started the goroutine
	stopped bool  // guarded by mu; Stop has been called
	haveRun bool  // guarded by mu; last and lastErr hold a reading
	last    Usage // guarded by mu
	lastErr error // guarded by mu
}

// New returns a monitor that is not yet polling; Start starts it.
//
// Whenever a reading's Fraction is at or over the threshold and no
// cooldown is running, the monitor calls onOver with that reading on its
// goroutine, then begins a cooldown. onOver is expected to kill one
// worker (see PickVictim); it is never called twice at once, and it must
// not call Stop, which waits for it. A nil onOver only records readings
// for Last. The error wraps ErrInvalidConfig.
func New(cfg Config, onOver func(Usage)) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if onOver == nil {
		onOver = func(Usage) {}
	}
	return &Monitor{
		cfg:    cfg.withDefaults(),
		onOver: onOver,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}, nil
}

// Threshold is the fraction at which the monitor calls back, after
// defaults: the figure Report wants.
func (m *Monitor) Threshold() float64 { return m.cfg.Threshold }

// Start starts the monitor's goroutine, which reads memory at once and
// then every Interval until Stop. It does nothing when the monitor has
// started or stopped before, or when polling is turned off (negative
// Interval).
func (m *Monitor) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.stopped || m.cfg.Interval < 0 {
		return
	}
	m.started = true
	go m.run()
}

// Stop stops the monitor and waits for its goroutine to return,
// including a callback in progress; no callback starts after Stop
// returns. Calling it again, or before Start, is harmless.
func (m *Monitor) Stop() {
	m.mu.Lock()
	if !m.stopped {
		m.stopped = true
		close(m.stop)
	}
	started := m.started
	m.mu.Unlock()
	if started {
		<-m.done
	}
}

// Last returns the latest reading and its error, or ErrNoReading when
// there has been none.
func (m *Monitor) Last() (Usage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.haveRun {
		return Usage{}, ErrNoReading
	}
	return m.last, m.lastErr
}

// run is the monitor's goroutine.
func (m *Monitor) run() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	g := gate{threshold: m.cfg.Threshold, cooldown: m.cfg.Cooldown}
	for {
		m.poll(&g)
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// poll takes one reading and calls back if g lets it.
func (m *Monitor) poll(g *gate) {
	u, err := m.cfg.Read()
	m.mu.Lock()
	m.last, m.lastErr, m.haveRun = u, err, true
	m.mu.Unlock()
	if err != nil || !g.open(u, time.Now()) {
		return
	}
	select {
	case <-m.stop:
		// Stopping: a kill now would outlive Stop's promise.
		return
	default:
	}
	m.onOver(u)
	g.fired(time.Now())
}

// gate is the monitor's deciding core: it opens for a reading at or over
// threshold, except within cooldown of the end of the last callback. It
// takes the time as an argument, so tests drive it without a clock.
type gate struct {
	threshold  float64
	cooldown   time.Duration
	quietUntil time.Time
}

// open reports whether the monitor should call back for u at now.
func (g *gate) open(u Usage, now time.Time) bool {
	return u.Fraction() >= g.threshold && !now.Before(g.quietUntil)
}

// fired starts the cooldown after a callback that returned at now.
func (g *gate) fired(now time.Time) {
	g.quietUntil = now.Add(g.cooldown)
}
