package autoscale

import (
	"strconv"
	"sync"
	"time"
)

// Reason says why a [Decision] came out as it did.
type Reason int

const (
	// Steady: the load asks for the current target; any pending wish is
	// dropped.
	Steady Reason = iota
	// ColdStart: nothing is running and requests are waiting, so the
	// policy scales up at once, skipping the upscale delay.
	ColdStart
	// Starting: nothing is running yet and nothing is waiting; the target
	// is kept while replicas start.
	Starting
	// UpscaleWaiting: the load asks for more replicas, but not yet for
	// UpscaleDelay.
	UpscaleWaiting
	// Upscale: the load has asked for more replicas for UpscaleDelay.
	Upscale
	// DownscaleWaiting: the load asks for fewer replicas, but not yet for
	// DownscaleDelay (DownscaleToZeroDelay for the step to zero).
	DownscaleWaiting
	// Downscale: the load has asked for fewer replicas for the delay.
	Downscale
)

func (r Reason) String() string {
	switch r {
	case Steady:
		return "steady"
	case ColdStart:
		return "cold-start"
	case Starting:
		return "starting"
	case UpscaleWaiting:
		return "upscale-waiting"
	case Upscale:
		return "upscale"
	case DownscaleWaiting:
		return "downscale-waiting"
	case Downscale:
		return "downscale"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Decision is the outcome of one [Policy.Evaluate].
type Decision struct {
	// Desired is the replica count to steer to now, always within
	// [MinReplicas, MaxReplicas]. A target outside the bounds (after a
	// config change) is brought inside at once, without delay, as in Ray.
	Desired int
	// Proposed is what the load asks for, within the bounds, before the
	// delays ([DesiredReplicas]).
	Proposed int
	// Load is the aggregated total ongoing requests the decision used.
	Load float64
	// HasLoad is false when nothing has been observed yet; Load is then 0,
	// as Ray counts a deployment with no reports.
	HasLoad bool
	// Reason says which rule decided.
	Reason Reason
	// WaitingSince is when the load started asking for a change in the
	// direction it still asks for; zero unless Reason is UpscaleWaiting
	// or DownscaleWaiting.
	WaitingSince time.Time
}

// Policy is Ray Serve's default autoscaling policy for one deployment:
// fed timestamped observations of the deployment's total ongoing requests
// by [Policy.Observe], it answers [Policy.Decide] with the replica count to
// steer to. It reads no clock: every time is passed in.
//
// A Policy is safe for concurrent use: reports may be observed from many
// goroutines while a control loop decides.
type Policy struct {
	mu  sync.Mutex
	cfg Config // guarded by mu
	win window // guarded by mu
	// wish is +1 while the load asks for more than the target, -1 for
	// fewer, 0 otherwise; wishSince is when that began. Guarded by mu.
	wish      int
	wishSince time.Time
}

// NewPolicy returns a Policy for cfg, or cfg's validation error.
func NewPolicy(cfg Config) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Policy{cfg: cfg}, nil
}

// Config returns the policy's current configuration.
func (p *Policy) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Reconfigure replaces the configuration, keeping the observed load and
// dropping any pending wish (Ray resets the policy state when a
// deployment's config changes). An invalid cfg is rejected with its
// validation error and the policy is unchanged. The caller sets the new
// target from [Config.InitialTarget].
func (p *Policy) Reconfigure(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg = cfg
	p.wish, p.wishSince = 0, time.Time{}
	if n := len(p.win.samples); n > 0 {
		p.win.prune(p.win.samples[n-1].at, cfg.LookBackPeriod)
	}
	return nil
}

// Observe records that at time at the deployment had load ongoing
// requests in total: running on replicas plus queued at handles and
// proxies (Ray's autoscaling metric). The value holds until the next
// observation, or until it goes stale ([Config.StaleAfter]). An
// observation at the same time as the newest replaces it; an older one is
// dropped with [ErrOutOfOrder]; a negative, NaN or infinite load is
// dropped with [ErrBadObservation].
func (p *Policy) Observe(at time.Time, load float64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.win.add(at, load, p.cfg.LookBackPeriod)
}

// Load returns the load aggregated over the look-back window ending at
// now, and false when nothing has been observed.
func (p *Policy) Load(now time.Time) (float64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.win.aggregate(now, p.cfg.LookBackPeriod, p.cfg.StaleAfter(), p.cfg.Aggregation)
}

// Decide returns the replica count a deployment with current replicas
// (running, and targeted) should steer to at now. It is
// Evaluate(now, Replicas{current, current}).Desired.
func (p *Policy) Decide(now time.Time, current int) int {
	return p.Evaluate(now, Replicas{Running: current, Target: current}).Desired
}

// Evaluate decides at now for a deployment with replica counts r, and
// records the wish it starts or continues; call it once per control-loop
// tick (Ray's loop runs every 0.1 s). The rules, Ray's:
//
//   - The load is aggregated over the look-back window and turned into a
//     proposal by [DesiredReplicas].
//   - With nothing running, a proposal above zero is taken at once: the
//     cold start when requests wait, or the target of replicas starting.
//   - A proposal above r.Target is taken once proposals have stayed above
//     the target for UpscaleDelay; the count taken is the current proposal.
//   - A proposal below r.Target is taken once proposals have stayed below
//     for DownscaleDelay; it goes no lower than one replica, except from
//     exactly one replica, where the delay is DownscaleToZeroDelay when
//     set. A change of direction, or a proposal equal to the target,
//     restarts the wait.
//   - Whatever was decided is clamped to [MinReplicas, MaxReplicas].
//
// Times are compared exactly (time.Duration is integral), so a delay of d
// is met at the first decision at least d after the wish began.
func (p *Policy) Evaluate(now time.Time, r Replicas) Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg := p.cfg

	load, has := p.win.aggregate(now, cfg.LookBackPeriod, cfg.StaleAfter(), cfg.Aggregation)
	proposed, cold := propose(cfg, load, r)
	d := Decision{Proposed: cfg.Clamp(proposed), Load: load, HasLoad: has}

	if r.Running <= 0 && proposed > 0 {
		// Nothing to wait for: Ray bypasses the delays here and leaves the
		// pending wish as it was.
		d.Reason = Starting
		if cold {
			d.Reason = ColdStart
		}
		d.Desired = cfg.Clamp(proposed)
		return d
	}

	d.Desired, d.Reason = p.applyDelayLocked(now, proposed, r.Target)
	if d.Reason == UpscaleWaiting || d.Reason == DownscaleWaiting {
		d.WaitingSince = p.wishSince
	}
	d.Desired = cfg.Clamp(d.Desired)
	return d
}

// applyDelayLocked is Ray's _apply_delay_logic on wall-clock time: it
// returns the unclamped count to steer to and why. p.mu must be held.
func (p *Policy) applyDelayLocked(now time.Time, proposed, target int) (int, Reason) {
	dir := 0
	switch {
	case proposed > target:
		dir = 1
	case proposed < target:
		dir = -1
	}
	if dir == 0 {
		p.wish, p.wishSince = 0, time.Time{}
		return target, Steady
	}
	if p.wish != dir {
		p.wish, p.wishSince = dir, now
	}

	delay, fire, wait := p.cfg.UpscaleDelay, Upscale, UpscaleWaiting
	if dir < 0 {
		delay, fire, wait = p.cfg.downscaleDelayFrom(target), Downscale, DownscaleWaiting
		if target != 1 {
			// Only the step from one replica may reach zero.
			proposed = max(1, proposed)
		}
	}
	if now.Sub(p.wishSince) < delay {
		return target, wait
	}
	p.wish, p.wishSince = 0, time.Time{}
	return proposed, fire
}
