package controller

import (
	"log/slog"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raygo/raygo/internal/replicaset"
)

// Serve's metrics on the head: the controller's status (Status), read
// when the head's registry is gathered (GET /metrics), never polled.
// Register adds the collector to the head's registry (api.Cluster.Metrics)
// and takes it out when the feature stops. The request metrics are the
// proxies', on every node (internal/raylet/servemetrics.go).
//
// Every status and replica state is listed for each deployment, at 0
// when it does not hold, so that a dashboard shows 0 rather than no
// data; the series of an application go away with it.
const (
	// MetricDeploymentReplicas is a deployment's replicas by state
	// (replicaset's PENDING, STARTING, READY, BACKOFF, DRAINING), those
	// of a version being rolled away included (Ray:
	// ray_serve_deployment_replica_healthy, by state here).
	MetricDeploymentReplicas = "raygo_serve_deployment_replicas"
	// MetricDeploymentTarget is the replicas a deployment wants: its
	// num_replicas, or its autoscaler's decision.
	MetricDeploymentTarget = "raygo_serve_deployment_target_replicas"
	// MetricDeploymentStatus is 1 for a deployment's status and 0 for
	// the others (Ray: ray_serve_deployment_status).
	MetricDeploymentStatus = "raygo_serve_deployment_status"
	// MetricApplicationStatus is 1 for an application's status and 0
	// for the others (Ray: ray_serve_application_status).
	MetricApplicationStatus = "raygo_serve_application_status"
)

// Statuses are the statuses of applications and deployments, in the
// order the status metrics list them.
var Statuses = []string{StatusDeploying, StatusRunning, StatusUnhealthy, StatusDeleting}

// ReplicaStates are the states of replicas, in the order
// MetricDeploymentReplicas lists them.
var ReplicaStates = []string{replicaset.StatePending, replicaset.StateStarting, replicaset.StateReady,
	replicaset.StateBackoff, replicaset.StateDraining}

var (
	descDeploymentReplicas = prometheus.NewDesc(MetricDeploymentReplicas,
		"Replicas of a Serve deployment by state, those of a version being rolled away included.",
		[]string{"application", "deployment", "state"}, nil)
	descDeploymentTarget = prometheus.NewDesc(MetricDeploymentTarget,
		"Replicas a Serve deployment wants: its num_replicas, or its autoscaler's decision.",
		[]string{"application", "deployment"}, nil)
	descDeploymentStatus = prometheus.NewDesc(MetricDeploymentStatus,
		"1 for a Serve deployment's status (DEPLOYING, RUNNING, UNHEALTHY, DELETING), 0 for the others (Ray: ray_serve_deployment_status).",
		[]string{"application", "deployment", "status"}, nil)
	descApplicationStatus = prometheus.NewDesc(MetricApplicationStatus,
		"1 for a Serve application's status (DEPLOYING, RUNNING, UNHEALTHY, DELETING), 0 for the others (Ray: ray_serve_application_status).",
		[]string{"application", "status"}, nil)
)

var descByMetric = map[string]*prometheus.Desc{
	MetricDeploymentReplicas: descDeploymentReplicas, MetricDeploymentTarget: descDeploymentTarget,
	MetricDeploymentStatus: descDeploymentStatus, MetricApplicationStatus: descApplicationStatus,
}

// Sample is one series' value: a metric, its label values in the
// metric's order, and the value.
type Sample struct {
	Metric string
	Labels []string
	Value  float64
}

// StatusSamples turns the controller's status into the head's Serve
// gauges: pure, so that it is table-tested. A status or state not in
// Statuses or ReplicaStates (a newer one) gets a series of its own.
func StatusSamples(apps []AppStatus) []Sample {
	var out []Sample
	oneOf := func(known []string, current string, series func(s string, v float64)) {
		for _, s := range known {
			v := 0.0
			if s == current {
				v = 1
			}
			series(s, v)
		}
		if current != "" && !slices.Contains(known, current) {
			series(current, 1)
		}
	}
	for _, a := range apps {
		oneOf(Statuses, a.Status, func(s string, v float64) {
			out = append(out, Sample{MetricApplicationStatus, []string{a.Name, s}, v})
		})
		for _, d := range a.Deployments {
			oneOf(Statuses, d.Status, func(s string, v float64) {
				out = append(out, Sample{MetricDeploymentStatus, []string{a.Name, d.Name, s}, v})
			})
			out = append(out, Sample{MetricDeploymentTarget, []string{a.Name, d.Name}, float64(d.TargetReplicas)})
			n := map[string]int{}
			var extra []string
			for _, r := range d.Replicas {
				if n[r.State] == 0 && !slices.Contains(ReplicaStates, r.State) {
					extra = append(extra, r.State)
				}
				n[r.State]++
			}
			slices.Sort(extra)
			for _, s := range append(slices.Clone(ReplicaStates), extra...) {
				out = append(out, Sample{MetricDeploymentReplicas, []string{a.Name, d.Name, s}, float64(n[s])})
			}
		}
	}
	return out
}

// statusCollector reads a controller's status on each gather.
type statusCollector struct{ ctl *Controller }

// NewCollector is a Prometheus collector of ctl's status (StatusSamples),
// read on each gather. Register adds one to the head's registry.
func NewCollector(ctl *Controller) prometheus.Collector { return statusCollector{ctl} }

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descApplicationStatus, descDeploymentStatus, descDeploymentTarget, descDeploymentReplicas} {
		ch <- d
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range StatusSamples(c.ctl.Status()) {
		ch <- prometheus.MustNewConstMetric(descByMetric[s.Metric], prometheus.GaugeValue, s.Value, s.Labels...)
	}
}

// registerMetrics adds ctl's collector to reg (the head's registry; nil:
// no metrics) and returns what takes it out. A collector refused (only a
// programming error: another with the same metrics) is logged, never
// fatal to Serve.
func registerMetrics(reg prometheus.Registerer, ctl *Controller) (unregister func()) {
	if reg == nil {
		return func() {}
	}
	col := NewCollector(ctl)
	if err := reg.Register(col); err != nil {
		slog.Warn("serve: the controller's metrics are not served", "err", err)
		return func() {}
	}
	return func() { reg.Unregister(col) }
}
