package autoscale

import "math"

// Replicas is a deployment's replica counts as the controller sees them
// when it asks for a decision.
type Replicas struct {
	// Running is the number of replicas up and serving now (Ray's
	// current_num_replicas). The load is spread over these.
	Running int
	// Target is the count the controller is currently steering towards
	// (Ray's target_num_replicas); delays measure how long the load has
	// asked for something other than Target.
	Target int
}

// maxCount caps a computed replica count before it is converted to int
// and clamped, so an absurd load/target ratio cannot overflow.
const maxCount = math.MaxInt32

// ceilTolerance is subtracted before rounding a replica count up, so that
// float noise (6.000000000000001 for what is exactly 6) does not add a
// replica. Ray rounds with a bare math.ceil; this is the only place the
// formula departs from it.
const ceilTolerance = 1e-9

// ceilCount rounds x up to a replica count in [0, maxCount].
func ceilCount(x float64) int {
	x = math.Ceil(x - ceilTolerance)
	switch {
	case x <= 0:
		return 0
	case x >= maxCount:
		return maxCount
	}
	return int(x)
}

// DesiredReplicas returns the replica count that load (the total ongoing
// requests across the deployment, running plus queued) asks for, before
// any delay, clamped to [MinReplicas, MaxReplicas]. It is Ray's
// replica_queue_length_autoscaling_policy followed by the scaling factors
// and apply_bounds:
//
//   - With no running replica and load > 0 (requests waiting for a
//     replica): max(ceil(UpscalingFactor), r.Target), Ray's cold start.
//   - With no running replica and no load: r.Target (replicas still
//     starting keep their target).
//   - Otherwise the raw count is load / TargetOngoingRequests, which is
//     Running × (load per replica / target per replica); the step from
//     Running towards it is multiplied by UpscalingFactor or
//     DownscalingFactor and rounded up; a damped downscale that would not
//     move still removes one replica.
//
// cfg must be valid ([Config.Validate]) and load finite and >= 0.
func DesiredReplicas(cfg Config, load float64, r Replicas) int {
	n, _ := propose(cfg, load, r)
	return cfg.Clamp(n)
}

// propose is DesiredReplicas before the bounds; cold reports Ray's cold
// start (requests waiting and nothing running), which skips every delay.
func propose(cfg Config, load float64, r Replicas) (n int, cold bool) {
	if r.Running <= 0 {
		if load > 0 {
			return max(ceilCount(cfg.UpscalingFactor), r.Target), true
		}
		return max(r.Target, 0), false
	}
	return applyFactors(cfg, load/cfg.TargetOngoingRequests, r.Running), false
}

// applyFactors scales the step from current towards raw by the upscaling
// or downscaling factor (Ray's _apply_scaling_factors).
func applyFactors(cfg Config, raw float64, current int) int {
	delta := raw - float64(current)
	factor := cfg.DownscalingFactor
	if delta > 0 {
		factor = cfg.UpscalingFactor
	}
	scaled := ceilCount(float64(current) + factor*delta)
	if ceilCount(raw) < current && scaled == current {
		// A small downscaling factor would never get there; move by one.
		scaled--
	}
	return scaled
}
