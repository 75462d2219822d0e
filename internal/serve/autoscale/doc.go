// Package autoscale is raygo Serve's autoscaling policy: Ray Serve's
// default, request-based policy (replica_queue_length_autoscaling_policy
// with its scaling factors, delays and bounds) as pure code. Given the
// deployment's recent load and its replica counts, it says how many
// replicas the deployment should have.
//
// It does no I/O, starts no goroutine and reads no clock: observations and
// decisions carry their own times, so a test or simulator can replay hours
// of traffic in microseconds.
//
// # The rule
//
// The load is the deployment's total ongoing requests: requests running on
// its replicas plus requests queued at handles and proxies waiting for a
// replica. It is aggregated over the look-back window (time-weighted mean
// by default, each observation holding until the next) and then
//
//	desired = ceil(running + factor × (load/TargetOngoingRequests − running))
//
// where factor is UpscalingFactor or DownscalingFactor (1.0 by default, so
// desired = ceil(load / TargetOngoingRequests)). A proposal above the
// current target is taken once it has held for UpscaleDelay, one below once
// it has held for DownscaleDelay; the result is clamped to [MinReplicas,
// MaxReplicas]. With zero replicas and requests waiting it scales up at
// once; with MinReplicas 0 the last replica goes after
// DownscaleToZeroDelay (or DownscaleDelay) without traffic. [Policy.Evaluate]
// gives every rule.
//
// # Use by the controller
//
// The Serve controller keeps one Policy per autoscaling deployment, created
// by [NewPolicy] from the deployment's config, and:
//
//   - on deploy, sets the target to cfg.InitialTarget(currentTarget) and
//     on a config change calls [Policy.Reconfigure] and does the same;
//   - every MetricsInterval (or whenever reports arrive) sums the latest
//     report of every source, ongoing requests at each replica plus queued
//     requests at each handle and proxy, and calls [Policy.Observe] with
//     that total and the time;
//   - on every control-loop tick calls [Policy.Evaluate] with the running
//     and target replica counts and, when Desired differs from the target,
//     starts or stops replicas (Decision.Reason and Load are for logs and
//     metrics).
//
// For example, a deployment with one replica that suddenly sees 20 ongoing
// requests:
//
//	cfg := autoscale.AutoConfig() // 1..100 replicas, target 2 per replica
//	cfg.UpscaleDelay = 3 * time.Second
//	p, err := autoscale.NewPolicy(cfg)
//	if err != nil { ... }
//	p.Observe(t0, 20)
//	p.Decide(t0, 1)                     // 1: waiting for the upscale delay
//	p.Observe(t0.Add(3*time.Second), 20)
//	p.Decide(t0.Add(3*time.Second), 1)  // 10 = ceil(20 / 2)
//
// # Defaults and Ray
//
// Every default is Ray Serve's (python/ray/serve/config.py, AutoscalingConfig):
//
//	Field                  Default          Ray field
//	MinReplicas            1                min_replicas
//	MaxReplicas            1 (100 "auto")   max_replicas
//	InitialReplicas        unset            initial_replicas
//	TargetOngoingRequests  2                target_ongoing_requests
//	MetricsInterval        10 s             metrics_interval_s
//	LookBackPeriod         30 s             look_back_period_s
//	Aggregation            mean             aggregation_function
//	UpscaleDelay           30 s             upscale_delay_s
//	DownscaleDelay         600 s            downscale_delay_s
//	DownscaleToZeroDelay   unset            downscale_to_zero_delay_s
//	UpscalingFactor        1.0              upscaling_factor (upscale_smoothing_factor)
//	DownscalingFactor      1.0              downscaling_factor (downscale_smoothing_factor)
//
// Where this package differs from Ray:
//
//   - Ray merges per-source time series at the controller; here the
//     controller sums the sources and feeds one total. Each observation
//     holds until the next, like Ray's gauges.
//   - An observation older than [Config.StaleAfter] (max(2 ×
//     MetricsInterval, 10 s), Ray's stale-report timeout) counts as zero
//     load, as Ray drops stale handle reports.
//   - Rounding up subtracts 1e-9 first, so float noise cannot add a
//     replica; delays compare integral durations, with no epsilon.
//   - Target capacity (Ray's gradual rollout knob) and custom or
//     application-level policies are not part of this package.
//   - [MaxWindowSamples] bounds the memory of one Policy.
package autoscale
