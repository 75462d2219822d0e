package autoscale

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Ray's defaults for the fields of Config, each named after Ray Serve's
// AutoscalingConfig field it mirrors (python/ray/serve/config.py).
const (
	// DefaultMinReplicas is Ray's min_replicas default.
	DefaultMinReplicas = 1
	// DefaultMaxReplicas is Ray's max_replicas field default. A deployment
	// declared with num_replicas "auto" gets AutoMaxReplicas instead.
	DefaultMaxReplicas = 1
	// AutoMaxReplicas is the max_replicas Ray uses for num_replicas "auto"
	// (AutoscalingConfig.default()).
	AutoMaxReplicas = 100
	// DefaultTargetOngoingRequests is Ray's target_ongoing_requests default
	// (DEFAULT_TARGET_ONGOING_REQUESTS).
	DefaultTargetOngoingRequests = 2.0
	// DefaultMetricsInterval is Ray's metrics_interval_s default: how often
	// replicas and handles report their load.
	DefaultMetricsInterval = 10 * time.Second
	// DefaultLookBackPeriod is Ray's look_back_period_s default: the window
	// the load is averaged over.
	DefaultLookBackPeriod = 30 * time.Second
	// DefaultUpscaleDelay is Ray's upscale_delay_s default.
	DefaultUpscaleDelay = 30 * time.Second
	// DefaultDownscaleDelay is Ray's downscale_delay_s default.
	DefaultDownscaleDelay = 600 * time.Second
	// DefaultScalingFactor is Ray's default for upscaling_factor and
	// downscaling_factor (through smoothing_factor, 1.0).
	DefaultScalingFactor = 1.0
	// MinStaleAfter is the least time an observation's value is trusted
	// without a newer one: Ray's RAY_SERVE_MIN_HANDLE_METRICS_TIMEOUT_S
	// default. See [Config.StaleAfter].
	MinStaleAfter = 10 * time.Second
)

// Aggregation is how the observations in the look-back window become one
// load figure (Ray's aggregation_function).
type Aggregation string

const (
	// Mean is the time-weighted mean of the load over the window, each
	// observation holding until the next one (Ray's default, "mean").
	Mean Aggregation = "mean"
	// Max is the highest load seen in the window.
	Max Aggregation = "max"
	// Min is the lowest load seen in the window.
	Min Aggregation = "min"
)

// Config is the autoscaling configuration of one deployment. Start from
// [DefaultConfig] or [AutoConfig] and change fields: the zero Config does
// not validate (its target, intervals and factors are zero). A Config is a
// plain value; copy it freely.
type Config struct {
	// MinReplicas is the fewest replicas the policy asks for; 0 lets the
	// deployment scale to zero when it has no traffic. Ray's default 1.
	MinReplicas int
	// MaxReplicas is the most replicas the policy asks for; at least 1 and
	// at least MinReplicas. Ray's field default 1 (AutoMaxReplicas, 100,
	// for num_replicas "auto").
	MaxReplicas int
	// InitialReplicas, when set, is the target a newly deployed or
	// reconfigured deployment starts from (see [Config.InitialTarget]); it
	// must lie in [MinReplicas, MaxReplicas]. Ray's default: unset.
	InitialReplicas *int

	// TargetOngoingRequests is the number of ongoing requests (running
	// plus queued) per replica the policy steers towards; > 0. Ray's
	// default 2.
	TargetOngoingRequests float64

	// MetricsInterval is how often the load is reported and fed to
	// [Policy.Observe]; > 0. The policy uses it only to decide when an
	// observation has gone stale ([Config.StaleAfter]). Ray's default 10 s.
	MetricsInterval time.Duration
	// LookBackPeriod is the window the load is aggregated over; > 0. Ray's
	// default 30 s.
	LookBackPeriod time.Duration
	// Aggregation turns the window into one load figure. Ray's default
	// Mean.
	Aggregation Aggregation

	// UpscaleDelay is how long the load must keep asking for more replicas
	// before the policy adds them; >= 0. Ray's default 30 s. Scaling up
	// from zero replicas never waits.
	UpscaleDelay time.Duration
	// DownscaleDelay is how long the load must keep asking for fewer
	// replicas before the policy removes them (to a count above zero);
	// >= 0. Ray's default 600 s.
	DownscaleDelay time.Duration
	// DownscaleToZeroDelay, when set, replaces DownscaleDelay for the last
	// step, from one replica to zero (only reachable with MinReplicas 0);
	// >= 0. Ray's default: unset, so DownscaleDelay applies.
	DownscaleToZeroDelay *time.Duration

	// UpscalingFactor multiplies each upscaling step (the distance from
	// the current count to the count the load asks for): below 1 it damps
	// upscaling, above 1 it amplifies it; > 0. Ray's upscaling_factor
	// (formerly upscale_smoothing_factor), default 1.0.
	UpscalingFactor float64
	// DownscalingFactor does the same for downscaling steps; > 0. Ray's
	// downscaling_factor (formerly downscale_smoothing_factor), default
	// 1.0. A damped downscale still removes at least one replica.
	DownscalingFactor float64
}

// DefaultConfig returns Ray's AutoscalingConfig field defaults: 1 to 1
// replicas, 2 ongoing requests per replica, metrics every 10 s averaged
// over 30 s, upscale after 30 s, downscale after 600 s, factors 1.0.
func DefaultConfig() Config {
	return Config{
		MinReplicas:           DefaultMinReplicas,
		MaxReplicas:           DefaultMaxReplicas,
		TargetOngoingRequests: DefaultTargetOngoingRequests,
		MetricsInterval:       DefaultMetricsInterval,
		LookBackPeriod:        DefaultLookBackPeriod,
		Aggregation:           Mean,
		UpscaleDelay:          DefaultUpscaleDelay,
		DownscaleDelay:        DefaultDownscaleDelay,
		UpscalingFactor:       DefaultScalingFactor,
		DownscalingFactor:     DefaultScalingFactor,
	}
}

// AutoConfig returns what Ray uses for a deployment declared with
// num_replicas "auto": DefaultConfig with MaxReplicas AutoMaxReplicas (100).
func AutoConfig() Config {
	c := DefaultConfig()
	c.MaxReplicas = AutoMaxReplicas
	return c
}

// Validate reports every problem with c, each naming the field and its
// value, joined into one error; each wraps [ErrInvalidConfig]. It returns
// nil for a usable Config.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.MinReplicas < 0 {
		bad("MinReplicas is %d, must be >= 0", c.MinReplicas)
	}
	if c.MaxReplicas < 1 {
		bad("MaxReplicas is %d, must be >= 1", c.MaxReplicas)
	}
	if c.MinReplicas > c.MaxReplicas {
		bad("MinReplicas (%d) is greater than MaxReplicas (%d)", c.MinReplicas, c.MaxReplicas)
	}
	if c.InitialReplicas != nil {
		if n := *c.InitialReplicas; n < c.MinReplicas || n > c.MaxReplicas {
			bad("InitialReplicas is %d, must lie in [MinReplicas, MaxReplicas] = [%d, %d]", n, c.MinReplicas, c.MaxReplicas)
		}
	}
	if !(c.TargetOngoingRequests > 0) || math.IsInf(c.TargetOngoingRequests, 0) {
		bad("TargetOngoingRequests is %v, must be a finite number > 0 (Ray's default is %v)", c.TargetOngoingRequests, DefaultTargetOngoingRequests)
	}
	if c.MetricsInterval <= 0 {
		bad("MetricsInterval is %v, must be > 0 (Ray's default is %v)", c.MetricsInterval, DefaultMetricsInterval)
	}
	if c.LookBackPeriod <= 0 {
		bad("LookBackPeriod is %v, must be > 0 (Ray's default is %v)", c.LookBackPeriod, DefaultLookBackPeriod)
	}
	switch c.Aggregation {
	case Mean, Max, Min:
	default:
		bad("Aggregation is %q, must be %q, %q or %q", c.Aggregation, Mean, Max, Min)
	}
	if c.UpscaleDelay < 0 {
		bad("UpscaleDelay is %v, must be >= 0", c.UpscaleDelay)
	}
	if c.DownscaleDelay < 0 {
		bad("DownscaleDelay is %v, must be >= 0", c.DownscaleDelay)
	}
	if c.DownscaleToZeroDelay != nil && *c.DownscaleToZeroDelay < 0 {
		bad("DownscaleToZeroDelay is %v, must be >= 0", *c.DownscaleToZeroDelay)
	}
	if !(c.UpscalingFactor > 0) || math.IsInf(c.UpscalingFactor, 0) {
		bad("UpscalingFactor is %v, must be a finite number > 0 (Ray's default is %v)", c.UpscalingFactor, DefaultScalingFactor)
	}
	if !(c.DownscalingFactor > 0) || math.IsInf(c.DownscalingFactor, 0) {
		bad("DownscalingFactor is %v, must be a finite number > 0 (Ray's default is %v)", c.DownscalingFactor, DefaultScalingFactor)
	}
	return errors.Join(errs...)
}

// Clamp returns n limited to [MinReplicas, MaxReplicas] (Ray's
// apply_bounds, without target capacity).
func (c Config) Clamp(n int) int {
	return max(c.MinReplicas, min(c.MaxReplicas, n))
}

// InitialTarget returns the target replica count for a deployment being
// deployed, or redeployed with a changed config, whose target is now
// current (0 for a new deployment): InitialReplicas when set, else current,
// clamped to [MinReplicas, MaxReplicas]. This is Ray's
// DeploymentAutoscalingState.register.
func (c Config) InitialTarget(current int) int {
	if c.InitialReplicas != nil {
		return c.Clamp(*c.InitialReplicas)
	}
	return c.Clamp(current)
}

// StaleAfter is how long the newest observation's value holds without a
// newer one: max(2 × MetricsInterval, MinStaleAfter), Ray's timeout for
// dropping a handle's metrics. Past it the load counts as zero, as it does
// in Ray once every report has been dropped.
func (c Config) StaleAfter() time.Duration {
	return max(2*c.MetricsInterval, MinStaleAfter)
}

// downscaleDelayFrom is the delay before scaling down from target
// replicas: DownscaleToZeroDelay for the step from one to zero when it is
// set, else DownscaleDelay.
func (c Config) downscaleDelayFrom(target int) time.Duration {
	if target == 1 && c.DownscaleToZeroDelay != nil {
		return *c.DownscaleToZeroDelay
	}
	return c.DownscaleDelay
}
