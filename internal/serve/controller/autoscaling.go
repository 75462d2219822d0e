package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/raygo/raygo/internal/replicaset"
	"github.com/raygo/raygo/internal/serve/autoscale"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/serve/config"
)

// Autoscaling. Every node's Serve proxy POSTs its per-deployment load
// (routes.LoadReport: requests in flight on replicas plus queued at the
// proxy) to the head each report period; ReportLoad keeps the latest
// report per node and, for each autoscaling deployment, feeds the sum
// over nodes whose report is fresh (no older than the policy's
// StaleAfter) to the deployment's autoscale.Policy. A decision loop, every
// decideTick, asks each policy for the replica count and resizes the
// deployment's replica set to it, except while a rolling update runs
// (the roll owns the set then). With min_replicas 0 and requests queued
// at a proxy, the policy's cold start takes the target to one replica at
// the next tick, without the upscale delay.
const (
	// decideTick is how often the decision loop evaluates the policies
	// (Ray's control loop runs every 0.1 s).
	decideTick = 100 * time.Millisecond
)

// policyConfig is a deployment's autoscale.Config from its defaulted
// autoscaling_config.
func policyConfig(a *config.AutoscalingConfig) autoscale.Config {
	c := autoscale.DefaultConfig()
	c.MinReplicas = *a.MinReplicas
	c.MaxReplicas = *a.MaxReplicas
	c.InitialReplicas = a.InitialReplicas
	c.TargetOngoingRequests = *a.TargetOngoingRequests
	c.MetricsInterval = seconds(*a.MetricsIntervalS)
	c.LookBackPeriod = seconds(*a.LookBackPeriodS)
	c.UpscaleDelay = seconds(*a.UpscaleDelayS)
	c.DownscaleDelay = seconds(*a.DownscaleDelayS)
	if a.DownscaleToZeroDelayS != nil {
		d := seconds(*a.DownscaleToZeroDelayS)
		c.DownscaleToZeroDelay = &d
	}
	c.UpscalingFactor = *a.UpscalingFactor
	c.DownscalingFactor = *a.DownscalingFactor
	switch a.AggregationFunction {
	case config.AggregateMax:
		c.Aggregation = autoscale.Max
	case config.AggregateMin:
		c.Aggregation = autoscale.Min
	default: // mean, Ray's default; Check refuses any other value
		c.Aggregation = autoscale.Mean
	}
	return c
}

// nodeLoad is the latest load report of one node's proxy.
type nodeLoad struct {
	at   time.Time
	deps map[depKey]routes.DeploymentLoad
}

// setPolicyLocked gives d the policy its config asks for: none without
// autoscaling, a new one, or the old one reconfigured (keeping the load
// observed). It returns the target d runs at: num_replicas, or with
// autoscaling initial_replicas for a new deployment and the current
// target, clamped to the new bounds, for an updated one.
func (c *Controller) setPolicyLocked(d *deployment, dep *config.Deployment, isNew bool) int {
	if dep.AutoscalingConfig == nil {
		d.policy, d.decision = nil, ""
		return dep.NumReplicas.N
	}
	pc := policyConfig(dep.AutoscalingConfig)
	var err error
	if d.policy == nil {
		d.policy, err = autoscale.NewPolicy(pc)
		isNew = true
	} else if !sameConfig(d.policy.Config(), pc) {
		err = d.policy.Reconfigure(pc)
	}
	if err != nil {
		// Check validated the config; a refusal here is a bug, and the
		// deployment runs at initial_replicas without a policy.
		c.log.Error("serve: autoscaling policy refused", "app", d.key.app, "deployment", d.key.dep, "err", err)
		d.policy = nil
		d.decision = "autoscaling off: " + err.Error()
		return *dep.AutoscalingConfig.InitialReplicas
	}
	if isNew {
		return pc.InitialTarget(0)
	}
	return pc.Clamp(d.target)
}

// ReportLoad records one node's proxy's load report received at at and
// feeds each autoscaling deployment's policy the load summed over every
// node whose report is fresh.
func (c *Controller) ReportLoad(at time.Time, r routes.LoadReport) error {
	if r.Node == "" {
		return fmt.Errorf("%w: load report without a node", ErrInvalid)
	}
	nl := nodeLoad{at: at, deps: make(map[depKey]routes.DeploymentLoad, len(r.Deployments))}
	for i, l := range r.Deployments {
		if l.InFlight < 0 || l.Queued < 0 {
			return fmt.Errorf("%w: load report of node %s: deployments[%d] (%s/%s): in_flight %d and queued %d must be >= 0",
				ErrInvalid, r.Node, i, l.App, l.Deployment, l.InFlight, l.Queued)
		}
		nl.deps[depKey{l.App, l.Deployment}] = l
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.loads[r.Node] = nl
	// Forget nodes silent for longer than any policy trusts a report.
	for n, l := range c.loads {
		if at.Sub(l.at) > forgetLoadAfter {
			delete(c.loads, n)
		}
	}
	for k, d := range c.deps {
		if d.policy == nil {
			continue
		}
		stale := d.policy.Config().StaleAfter()
		total := 0
		for _, l := range c.loads {
			if at.Sub(l.at) > stale {
				continue
			}
			dl := l.deps[k]
			total += dl.InFlight + dl.Queued
		}
		if err := d.policy.Observe(at, float64(total)); err != nil {
			c.log.Debug("serve: load observation dropped", "app", k.app, "deployment", k.dep, "err", err)
		}
	}
	return nil
}

// forgetLoadAfter is how long a node's last load report is kept without
// a newer one: a node gone or without a proxy is forgotten then. It is
// longer than any policy's StaleAfter with metrics_interval_s up to 5 min.
const forgetLoadAfter = 10 * time.Minute

// decideLoop evaluates every autoscaling deployment's policy each
// decideTick until ctx ends.
func (c *Controller) decideLoop(ctx context.Context) {
	tick := time.NewTicker(decideTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			c.decide(now)
		}
	}
}

// decide runs one decision for every autoscaling deployment: the target
// becomes the policy's, and the replica set is resized to it, unless a
// rolling update runs.
func (c *Controller) decide(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	for _, d := range c.deps {
		if d.policy == nil || d.rolling != nil {
			continue
		}
		running := 0
		for _, st := range d.set.Statuses() {
			if st.State == replicaset.StateReady {
				running++
			}
		}
		dec := d.policy.Evaluate(now, autoscale.Replicas{Running: running, Target: d.target})
		d.decision = fmt.Sprintf("autoscaling: target %d (%s; load %.1f, proposed %d)", dec.Desired, dec.Reason, dec.Load, dec.Proposed)
		if dec.Desired != d.target {
			c.log.Info("serve: autoscaling", "app", d.key.app, "deployment", d.key.dep,
				"from", d.target, "to", dec.Desired, "reason", dec.Reason.String(), "load", dec.Load)
			d.target = dec.Desired
			c.resizeLocked(d, d.set, d.target)
		}
	}
}

// sameConfig reports whether two policy configs are equal, comparing
// what their pointer fields point to.
func sameConfig(a, b autoscale.Config) bool {
	ai, bi, az, bz := a.InitialReplicas, b.InitialReplicas, a.DownscaleToZeroDelay, b.DownscaleToZeroDelay
	a.InitialReplicas, b.InitialReplicas, a.DownscaleToZeroDelay, b.DownscaleToZeroDelay = nil, nil, nil, nil
	return a == b && (ai == nil) == (bi == nil) && (ai == nil || *ai == *bi) &&
		(az == nil) == (bz == nil) && (az == nil || *az == *bz)
}
