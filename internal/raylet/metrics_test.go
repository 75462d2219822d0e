package raylet_test

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/raygo/raygo/internal/pb"
)

// parseMetrics parses a text exposition, failing the test on a malformed one.
func parseMetrics(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("metrics text does not parse: %v\n%s", err, text)
	}
	return mfs
}

// value finds the sample of family name whose labels include want, or
// reports false.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestNodeMetrics leases a worker from a node with 2 CPUs and 1 GPU and
// reads the node's metrics over NodeDaemon.Metrics: the resources in use,
// the leased worker, a placement-time observation, and the node's labels
// on every series.
func TestNodeMetrics(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	node := c.head.Raylet().NodeID().String()
	addr := c.head.Raylet().Address()

	before, err := c.raylet.Metrics(ctx, &pb.MetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.gcs.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{BinaryPath: exe}})
	if err != nil {
		t.Fatal(err)
	}
	lease, err := c.raylet.RequestLease(ctx, &pb.LeaseRequest{JobId: reg.GetJobId(), Resources: cpus(1), SchedulingKey: "f"})
	if err != nil || len(lease.GetLeaseId()) == 0 {
		t.Fatalf("lease: %v, %v", lease, err)
	}
	after, err := c.raylet.Metrics(ctx, &pb.MetricsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	mb, ma := parseMetrics(t, before.GetText()), parseMetrics(t, after.GetText())

	tests := []struct {
		name           string
		metric         string
		labels         map[string]string
		before, after  float64
		anyValueBefore bool
	}{
		{"CPU used", "raygo_resources", map[string]string{"Name": "CPU", "State": "USED"}, 0, 1, false},
		{"CPU available", "raygo_resources", map[string]string{"Name": "CPU", "State": "AVAILABLE"}, 2, 1, false},
		{"GPU available", "raygo_resources", map[string]string{"Name": "GPU", "State": "AVAILABLE"}, 1, 1, false},
		{"leased workers", "raygo_workers", map[string]string{"State": "LEASED"}, 0, 1, false},
		{"idle workers", "raygo_workers", map[string]string{"State": "IDLE"}, 0, 0, false},
		{"placements", "raygo_scheduler_placement_time_s", nil, 0, 1, false},
		{"queued leases", "raygo_scheduler_queued_leases", map[string]string{"State": "FEASIBLE"}, 0, 0, false},
		{"GPUs", "raygo_node_gpus_available", nil, 1, 1, false},
		{"object store in shared memory", "raygo_object_store_memory", map[string]string{"Location": "MMAP_SHM"}, 0, 0, false},
		{"spilled", "raygo_spill_manager_objects_bytes", map[string]string{"Type": "Spilled"}, 0, 0, false},
		{"memory monitor kills", "raygo_memory_manager_worker_eviction_total", nil, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range []struct {
				mfs  map[string]*dto.MetricFamily
				want float64
				when string
			}{{mb, tt.before, "before the lease"}, {ma, tt.after, "after the lease"}} {
				got, ok := value(s.mfs, tt.metric, tt.labels)
				if !ok || got != s.want {
					t.Fatalf("%s%v %s = %v (found %v), want %v", tt.metric, tt.labels, s.when, got, ok, s.want)
				}
			}
		})
	}
	for _, name := range []string{"raygo_node_cpu_count", "raygo_node_mem_total", "raygo_node_mem_used", "raygo_object_store_available_memory"} {
		if v, ok := value(ma, name, nil); !ok || v <= 0 {
			t.Errorf("%s = %v (found %v), want > 0", name, v, ok)
		}
	}
	if _, ok := value(ma, "raygo_node_cpu_utilization", nil); !ok && strings.Contains("linux darwin", goos()) {
		t.Errorf("raygo_node_cpu_utilization missing")
	}
	// Every series names its node.
	for name, mf := range ma {
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			if have["node_id"] != node || have["NodeAddress"] != addr {
				t.Fatalf("%s%v lacks node_id=%s NodeAddress=%s", name, have, node, addr)
			}
		}
	}
	if _, err := c.raylet.ReturnLease(ctx, &pb.ReturnLeaseRequest{LeaseId: lease.GetLeaseId(), WorkerExiting: true}); err != nil {
		t.Fatal(err)
	}
}

func goos() string { return runtime.GOOS }
