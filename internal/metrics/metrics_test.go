package metrics_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/metrics"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
)

func TestClusterSamples(t *testing.T) {
	node := func(state pb.NodeState, total, avail map[string]float64) *pb.NodeInfo {
		return &pb.NodeInfo{State: state, Total: &pb.Resources{Amounts: total}, Available: &pb.Resources{Amounts: avail}}
	}
	alive, dead := pb.NodeState_NODE_STATE_ALIVE, pb.NodeState_NODE_STATE_DEAD
	tests := []struct {
		name string
		st   metrics.ClusterState
		want map[string]float64 // "metric{label,values}" -> value
	}{
		{"empty cluster: every state at zero", metrics.ClusterState{}, map[string]float64{
			"raygo_cluster_active_nodes{}": 0, "raygo_cluster_dead_nodes{}": 0,
			"raygo_actors{ALIVE}": 0, "raygo_actors{DEAD}": 0, "raygo_actors{PENDING_CREATION}": 0, "raygo_actors{RESTARTING}": 0,
			"raygo_jobs{RUNNING}": 0, "raygo_jobs{FINISHED}": 0,
			"raygo_placement_groups{PENDING}": 0, "raygo_placement_groups{CREATED}": 0, "raygo_placement_groups{REMOVED}": 0,
			"raygo_placement_groups{RESCHEDULING}": 0,
		}},
		{"two alive nodes, one dead: resources of the alive ones summed", metrics.ClusterState{Nodes: []*pb.NodeInfo{
			node(alive, map[string]float64{"CPU": 4, "GPU": 1}, map[string]float64{"CPU": 1, "GPU": 1}),
			node(alive, map[string]float64{"CPU": 2}, map[string]float64{"CPU": 2}),
			node(dead, map[string]float64{"CPU": 64}, map[string]float64{"CPU": 64}),
		}}, map[string]float64{
			"raygo_cluster_active_nodes{}": 2, "raygo_cluster_dead_nodes{}": 1,
			"raygo_cluster_resources{CPU,USED}": 3, "raygo_cluster_resources{CPU,AVAILABLE}": 3,
			"raygo_cluster_resources{GPU,USED}": 0, "raygo_cluster_resources{GPU,AVAILABLE}": 1,
		}},
		{"actors, jobs and groups counted by state", metrics.ClusterState{
			Actors: []*pb.ActorInfo{{State: pb.ActorState_ACTOR_STATE_ALIVE}, {State: pb.ActorState_ACTOR_STATE_ALIVE}, {State: pb.ActorState_ACTOR_STATE_DEAD}},
			Jobs:   []*pb.JobInfo{{State: pb.JobState_JOB_STATE_RUNNING}, {State: pb.JobState_JOB_STATE_FINISHED}, {State: pb.JobState_JOB_STATE_FINISHED}},
			Groups: []*pb.PlacementGroupInfo{{State: pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED}},
		}, map[string]float64{
			"raygo_actors{ALIVE}": 2, "raygo_actors{DEAD}": 1, "raygo_actors{RESTARTING}": 0,
			"raygo_jobs{RUNNING}": 1, "raygo_jobs{FINISHED}": 2,
			"raygo_placement_groups{CREATED}": 1, "raygo_placement_groups{PENDING}": 0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]float64{}
			for _, s := range metrics.ClusterSamples(tt.st) {
				k := s.Metric + "{" + strings.Join(s.Labels, ",") + "}"
				if _, dup := got[k]; dup {
					t.Fatalf("series %s twice", k)
				}
				got[k] = s.Value
			}
			for k, v := range tt.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
				}
			}
		})
	}
}

func TestTaskSamples(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]int
		want []string // "STATE=value", in order
	}{
		{"nothing stored", nil, []string{"PENDING_ARGS_AVAIL=0", "PENDING_NODE_ASSIGNMENT=0", "SUBMITTED_TO_WORKER=0", "RUNNING=0", "FINISHED=0", "FAILED=0"}},
		{"counts, and a state unknown here kept after", map[string]int{"RUNNING": 3, "FINISHED": 10, "ZOMBIE": 1},
			[]string{"PENDING_ARGS_AVAIL=0", "PENDING_NODE_ASSIGNMENT=0", "SUBMITTED_TO_WORKER=0", "RUNNING=3", "FINISHED=10", "FAILED=0", "ZOMBIE=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range metrics.TaskSamples(tt.in) {
				if s.Metric != metrics.MetricTasks {
					t.Fatalf("metric %s", s.Metric)
				}
				got = append(got, s.Labels[0]+"="+strings.TrimSuffix(strings.TrimSuffix(jsonNum(s.Value), ".0"), ".00"))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("TaskSamples = %v, want %v", got, tt.want)
			}
		})
	}
}

func jsonNum(v float64) string { b, _ := json.Marshal(v); return string(b) }

func TestWriteDiscovery(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, metrics.DiscoveryFile)
	labels := map[string]string{"job": "raygo", "SessionName": "session_x"}
	steps := []struct {
		addr  string
		wrote bool
	}{{"127.0.0.1:8265", true}, {"127.0.0.1:8265", false}, {"127.0.0.1:8266", true}}
	for _, s := range steps {
		wrote, err := metrics.WriteDiscovery(path, metrics.DiscoveryContent(s.addr, labels))
		if err != nil || wrote != s.wrote {
			t.Fatalf("WriteDiscovery(%s) = %v, %v; want %v", s.addr, wrote, err, s.wrote)
		}
		var groups []metrics.TargetGroup
		b, _ := os.ReadFile(path)
		if err := json.Unmarshal(b, &groups); err != nil || len(groups) != 1 || !slices.Equal(groups[0].Targets, []string{s.addr}) ||
			groups[0].Labels["SessionName"] != "session_x" {
			t.Fatalf("file = %s (%v)", b, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want the discovery file alone (no temporary files left)", len(entries))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", fi.Mode().Perm())
	}
	if _, err := metrics.WriteDiscovery(filepath.Join(dir, "missing", "x.json"), []byte("[]")); err == nil || !strings.Contains(err.Error(), "service discovery") {
		t.Fatalf("write into a missing directory: %v", err)
	}
}

// TestHeadWritesDiscoveryFile: the head names its API's address in the
// session directory's discovery file.
func TestHeadWritesDiscoveryFile(t *testing.T) {
	h := startHead(t, false)
	path := filepath.Join(h.sessionDir, metrics.DiscoveryFile)
	eventually(t, 10*time.Second, "the discovery file", func() (bool, string) {
		b, err := os.ReadFile(path)
		if err != nil {
			return false, err.Error()
		}
		var groups []metrics.TargetGroup
		if err := json.Unmarshal(b, &groups); err != nil {
			return false, err.Error()
		}
		ok := len(groups) == 1 && slices.Equal(groups[0].Targets, []string{h.API().Addr()}) && groups[0].Labels["job"] == "raygo" &&
			groups[0].Labels["SessionName"] == filepath.Base(h.sessionDir) && groups[0].Labels["cluster"] == h.GCSAddress()
		return ok, string(b)
	})
}

// TestScrapeAuth: /metrics needs a token of scope read, unless the head
// serves it open.
func TestScrapeAuth(t *testing.T) {
	closed := startHead(t, false)
	read := readToken(t, closed, "prometheus")
	tests := []struct {
		name  string
		open  bool
		token string
		want  int
	}{
		{"no token", false, "", http.StatusUnauthorized},
		{"wrong token", false, "not-a-token", http.StatusUnauthorized},
		{"read token", false, read, http.StatusOK},
		{"cluster token", false, clusterToken, http.StatusOK},
		{"open, no token", true, "", http.StatusOK},
	}
	open := startHead(t, true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := closed
			if tt.open {
				h = open
			}
			code, body := scrape(t, h, tt.token)
			if code != tt.want {
				t.Fatalf("GET /metrics = %d %s, want %d", code, body, tt.want)
			}
			if code == http.StatusOK && !strings.Contains(string(body), "raygo_cluster_active_nodes 1") {
				t.Fatalf("scrape lacks raygo_cluster_active_nodes 1:\n%s", body)
			}
		})
	}
	// Open metrics open nothing else.
	req, _ := http.NewRequest("GET", open.APIURL()+"/api/whoami", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/whoami without a token on an open-metrics head = %d, want 401", resp.StatusCode)
	}
}

// TestClusterMetrics: a head and a second node; a scrape holds both
// nodes' series (by node_id), the head's cluster view, and a placement
// group once created.
func TestClusterMetrics(t *testing.T) {
	h := startHead(t, false)
	rc := raylet.DefaultConfig()
	rc.GCSAddress, rc.Token = h.GCSAddress(), clusterToken
	rc.Resources = resources.Set{"CPU": 3, "custom": 5}
	rc.SessionDir = t.TempDir()
	second, err := raylet.Start(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Stop)
	head, other := h.Raylet().NodeID().String(), second.NodeID().String()

	conn, err := rpc.Dial(h.GCSAddress(), clusterToken)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gid := ids.New()
	if _, err := pb.NewControlStoreClient(conn).CreatePlacementGroup(ctx, &pb.CreatePlacementGroupRequest{Group: &pb.PlacementGroupInfo{
		GroupId: gid.Bytes(), Detached: true, Bundles: []*pb.Bundle{{Resources: &pb.Resources{Amounts: map[string]float64{"custom": 1}}}}}}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		metric string
		labels map[string]string
		want   float64
	}{
		{"raygo_cluster_active_nodes", nil, 2},
		{"raygo_cluster_dead_nodes", nil, 0},
		{"raygo_placement_groups", map[string]string{"State": "CREATED"}, 1},
		{"raygo_placement_groups", map[string]string{"State": "PENDING"}, 0},
		{"raygo_actors", map[string]string{"State": "ALIVE"}, 0},
		{"raygo_cluster_resources", map[string]string{"Name": "CPU", "State": "AVAILABLE"}, 5},
		{"raygo_resources", map[string]string{"node_id": head, "Name": "CPU", "State": "AVAILABLE"}, 2},
		{"raygo_resources", map[string]string{"node_id": other, "Name": "CPU", "State": "AVAILABLE"}, 3},
		{"raygo_resources", map[string]string{"node_id": other, "Name": "custom", "State": "USED"}, 1},
		{"raygo_workers", map[string]string{"node_id": other, "State": "LEASED"}, 0},
		{"raygo_metrics_node_scrape_errors_total", nil, 0},
		{"raygo_tasks", map[string]string{"State": "RUNNING"}, 0},
	}
	// The group is created asynchronously and the nodes report their
	// resources with heartbeats: wait for the whole picture.
	eventually(t, 15*time.Second, "the cluster's metrics", func() (bool, string) {
		mfs := families(t, h, clusterToken)
		var bad []string
		for _, tt := range tests {
			got := samples(mfs, tt.metric, tt.labels)
			if len(got) != 1 || got[0] != tt.want {
				bad = append(bad, tt.metric+jsonLabels(tt.labels)+"="+jsonNum(sum(got))+" (want "+jsonNum(tt.want)+")")
			}
		}
		return len(bad) == 0, strings.Join(bad, "; ")
	})
	mfs := families(t, h, clusterToken)
	for _, name := range []string{"raygo_node_cpu_count", "raygo_node_mem_total", "go_goroutines", "process_resident_memory_bytes",
		"raygo_task_submission_to_start_seconds"} {
		if len(samples(mfs, name, nil)) == 0 {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

func jsonLabels(l map[string]string) string { b, _ := json.Marshal(l); return string(b) }

// TestFailingNodeCounted: a node the control store lists as alive but
// that does not answer is left out of the scrape and counted; the scrape
// still succeeds with the other nodes' metrics.
func TestFailingNodeCounted(t *testing.T) {
	h := startHead(t, false)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := lis.Addr().String()
	lis.Close() // nothing listens there now
	conn, err := rpc.Dial(h.GCSAddress(), clusterToken)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ghost := ids.New()
	if _, err := pb.NewControlStoreClient(conn).RegisterNode(ctx, &pb.RegisterNodeRequest{Node: &pb.NodeInfo{
		NodeId: ghost.Bytes(), Address: deadAddr, State: pb.NodeState_NODE_STATE_ALIVE,
		Total: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}, Available: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}}}); err != nil {
		t.Fatal(err)
	}
	mfs := families(t, h, clusterToken)
	if got := samples(mfs, "raygo_cluster_active_nodes", nil); len(got) != 1 || got[0] != 2 {
		t.Skipf("the control store no longer lists the unreachable node as alive (active nodes %v): nothing to check", got)
	}
	if got := sum(samples(mfs, "raygo_metrics_node_scrape_errors_total", nil)); got < 1 {
		t.Fatalf("raygo_metrics_node_scrape_errors_total = %v, want >= 1", got)
	}
	if got := samples(mfs, "raygo_resources", map[string]string{"node_id": h.Raylet().NodeID().String(), "Name": "CPU", "State": "AVAILABLE"}); len(got) != 1 {
		t.Fatalf("the head node's series are missing: %v", got)
	}
	if got := samples(mfs, "raygo_resources", map[string]string{"node_id": ghost.String()}); len(got) != 0 {
		t.Fatalf("series of the unreachable node: %v", got)
	}
}

// TestTasksShowInMetrics runs tasks from a driver and sees them in the
// node's placement histogram and, when the cluster's workers report task
// events, in raygo_tasks.
func TestTasksShowInMetrics(t *testing.T) {
	h := startHead(t, false)
	runTasks(t, h, 20)
	eventually(t, 15*time.Second, "placements and finished tasks", func() (bool, string) {
		mfs := families(t, h, clusterToken)
		placed := sum(samples(mfs, "raygo_scheduler_placement_time_s", map[string]string{"node_id": h.Raylet().NodeID().String()}))
		finished := sum(samples(mfs, "raygo_tasks", map[string]string{"State": "FINISHED"}))
		return placed >= 1 && finished >= 20, "placements " + jsonNum(placed) + ", finished tasks " + jsonNum(finished)
	})
}
