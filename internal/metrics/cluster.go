package metrics

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/pb"
)

// Names of the head's metrics (the node daemons' are in
// internal/raylet/metrics.go).
const (
	MetricActiveNodes       = "raygo_cluster_active_nodes"
	MetricDeadNodes         = "raygo_cluster_dead_nodes"
	MetricActors            = "raygo_actors"
	MetricTasks             = "raygo_tasks"
	MetricJobs              = "raygo_jobs"
	MetricPlacementGroups   = "raygo_placement_groups"
	MetricClusterResources  = "raygo_cluster_resources"
	MetricTaskEventsStored  = "raygo_task_events_stored"
	MetricTaskEventsEvicted = "raygo_task_events_evicted_total"
	MetricTaskEventsDropped = "raygo_task_events_dropped_total"
	// MetricTaskAttemptsNotRecorded counts attempts submitted past their
	// process's task-event budget (taskevents.DefaultRate).
	MetricTaskAttemptsNotRecorded = "raygo_task_events_attempts_not_recorded_total"
	MetricSubmissionToStart       = "raygo_task_submission_to_start_seconds"
	MetricNodeScrapeErrors        = "raygo_metrics_node_scrape_errors_total"
)

var (
	descActiveNodes = prometheus.NewDesc(MetricActiveNodes, "Alive nodes in the cluster (Ray: ray_cluster_active_nodes).", nil, nil)
	descDeadNodes   = prometheus.NewDesc(MetricDeadNodes, "Nodes the control store declared dead or that left (Ray: ray_cluster_failed_nodes).", nil, nil)
	descActors      = prometheus.NewDesc(MetricActors, "Actors by state (Ray: ray_actors).", []string{"State"}, nil)
	descTasks       = prometheus.NewDesc(MetricTasks, "Task attempts held in the task-event store, by state (Ray: ray_tasks).", []string{"State"}, nil)
	descJobs        = prometheus.NewDesc(MetricJobs, "Jobs (drivers) by state.", []string{"State"}, nil)
	descGroups      = prometheus.NewDesc(MetricPlacementGroups, "Placement groups by state (Ray: ray_placement_groups).", []string{"State"}, nil)
	descClusterRes  = prometheus.NewDesc(MetricClusterResources,
		"Logical resources of all alive nodes by name, USED or AVAILABLE, as the nodes last reported them (Ray: sum of ray_resources).",
		[]string{"Name", "State"}, nil)
	descTEStored  = prometheus.NewDesc(MetricTaskEventsStored, "Task attempts held in the head's task-event store.", nil, nil)
	descTEEvicted = prometheus.NewDesc(MetricTaskEventsEvicted, "Task attempts evicted from the task-event store to bound it.", nil, nil)
	descTEDropped = prometheus.NewDesc(MetricTaskEventsDropped, "Task events dropped by workers' buffers before they reached the head.", nil, nil)
	descTEUnrec   = prometheus.NewDesc(MetricTaskAttemptsNotRecorded, "Task attempts submitted without task events: past their process's budget (RAYGO_TASK_EVENTS_RATE).", nil, nil)
)

// Every state of each kind, so that a series at zero exists (a dashboard
// then shows 0, not "no data").
var (
	actorStates = enumStates(pb.ActorState_name, "ACTOR_STATE_")
	jobStates   = enumStates(pb.JobState_name, "JOB_STATE_")
	groupStates = enumStates(pb.PlacementGroupState_name, "PLACEMENT_GROUP_STATE_")
)

// enumStates lists a proto enum's names without prefix and without
// UNSPECIFIED, sorted.
func enumStates(names map[int32]string, prefix string) []string {
	var out []string
	for _, n := range names {
		if s := strings.TrimPrefix(n, prefix); s != "UNSPECIFIED" {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// stateName is an enum value's label: its name less prefix.
func stateName(s fmtStringer, prefix string) string { return strings.TrimPrefix(s.String(), prefix) }

type fmtStringer interface{ String() string }

// clusterCollector reads the control store in process on each scrape.
type clusterCollector struct{ c *api.Cluster }

func (cc *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActiveNodes, descDeadNodes, descActors, descTasks, descJobs, descGroups,
		descClusterRes, descTEStored, descTEEvicted, descTEDropped, descTEUnrec} {
		ch <- d
	}
}

// ClusterState is what the head's collector reads from the control store
// for one scrape.
type ClusterState struct {
	Nodes  []*pb.NodeInfo // alive and dead
	Actors []*pb.ActorInfo
	Jobs   []*pb.JobInfo
	Groups []*pb.PlacementGroupInfo
}

// Sample is one series' value: a metric, its label values in the
// metric's order, and the value.
type Sample struct {
	Metric string
	Labels []string
	Value  float64
}

// ClusterSamples turns a reading of the control store into the head's
// gauges: pure, so that it is table-tested.
func ClusterSamples(st ClusterState) []Sample {
	var out []Sample
	alive, dead := 0, 0
	used, avail := map[string]float64{}, map[string]float64{}
	for _, n := range st.Nodes {
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			dead++
			continue
		}
		alive++
		a := n.GetAvailable().GetAmounts()
		for k, v := range n.GetTotal().GetAmounts() {
			used[k] += v - a[k]
			avail[k] += a[k]
		}
	}
	out = append(out, Sample{MetricActiveNodes, nil, float64(alive)}, Sample{MetricDeadNodes, nil, float64(dead)})
	names := make([]string, 0, len(used))
	for k := range used {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, Sample{MetricClusterResources, []string{k, "USED"}, used[k]},
			Sample{MetricClusterResources, []string{k, "AVAILABLE"}, avail[k]})
	}
	count := func(metric string, states []string, of func(yield func(string))) {
		n := map[string]int{}
		of(func(s string) { n[s]++ })
		for _, s := range states {
			out = append(out, Sample{metric, []string{s}, float64(n[s])})
			delete(n, s)
		}
		extra := make([]string, 0, len(n)) // states newer than this list
		for s := range n {
			extra = append(extra, s)
		}
		sort.Strings(extra)
		for _, s := range extra {
			out = append(out, Sample{metric, []string{s}, float64(n[s])})
		}
	}
	count(MetricActors, actorStates, func(y func(string)) {
		for _, a := range st.Actors {
			y(stateName(a.GetState(), "ACTOR_STATE_"))
		}
	})
	count(MetricJobs, jobStates, func(y func(string)) {
		for _, j := range st.Jobs {
			y(stateName(j.GetState(), "JOB_STATE_"))
		}
	})
	count(MetricPlacementGroups, groupStates, func(y func(string)) {
		for _, g := range st.Groups {
			y(stateName(g.GetState(), "PLACEMENT_GROUP_STATE_"))
		}
	})
	return out
}

var descByName = map[string]*prometheus.Desc{
	MetricActiveNodes: descActiveNodes, MetricDeadNodes: descDeadNodes, MetricActors: descActors, MetricJobs: descJobs,
	MetricPlacementGroups: descGroups, MetricClusterResources: descClusterRes,
}

// readCluster reads the control store in process.
func readCluster(ctx context.Context, c *api.Cluster) ClusterState {
	var st ClusterState
	if r, err := c.GCS.GetNodes(ctx, &pb.GetNodesRequest{IncludeDead: true}); err == nil {
		st.Nodes = r.GetNodes()
	}
	if r, err := c.GCS.ListActors(ctx, &pb.ListActorsRequest{}); err == nil {
		st.Actors = r.GetActors()
	}
	if r, err := c.GCS.ListJobs(ctx, &pb.ListJobsRequest{}); err == nil {
		st.Jobs = r.GetJobs()
	}
	if r, err := c.GCS.ListPlacementGroups(ctx, &pb.ListPlacementGroupsRequest{}); err == nil {
		st.Groups = r.GetGroups()
	}
	return st
}

func (cc *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), headReadTimeout)
	defer cancel()
	for _, s := range ClusterSamples(readCluster(ctx, cc.c)) {
		ch <- prometheus.MustNewConstMetric(descByName[s.Metric], prometheus.GaugeValue, s.Value, s.Labels...)
	}
	te := cc.c.GCS.TaskEvents()
	if te == nil {
		return
	}
	for _, s := range TaskSamples(te.CountByState()) {
		ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, s.Value, s.Labels...)
	}
	stats := te.Stats()
	ch <- prometheus.MustNewConstMetric(descTEStored, prometheus.GaugeValue, float64(stats.Stored))
	ch <- prometheus.MustNewConstMetric(descTEEvicted, prometheus.CounterValue, float64(stats.Evicted))
	ch <- prometheus.MustNewConstMetric(descTEDropped, prometheus.CounterValue, float64(stats.DroppedAtSource))
	ch <- prometheus.MustNewConstMetric(descTEUnrec, prometheus.CounterValue, float64(stats.NotRecorded))
}

// TaskStates are Ray's task states, each exported (at zero when no task
// is in it).
var TaskStates = []string{"PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED", "FAILED"}

// TaskSamples turns the task-event store's counts into raygo_tasks
// samples: every state of TaskStates, then any other the store reports.
func TaskSamples(byState map[string]int) []Sample {
	out := make([]Sample, 0, len(TaskStates)+len(byState))
	for _, s := range TaskStates {
		out = append(out, Sample{MetricTasks, []string{s}, float64(byState[s])})
	}
	var extra []string
	for s := range byState {
		if !slices.Contains(TaskStates, s) {
			extra = append(extra, s)
		}
	}
	sort.Strings(extra)
	for _, s := range extra {
		out = append(out, Sample{MetricTasks, []string{s}, float64(byState[s])})
	}
	return out
}
