package cli

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/spf13/pflag"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/session"
)

// parseStart parses args as `raygo start` would and returns the options
// and a function telling which flags were given.
func parseStart(t *testing.T, args ...string) (*startOptions, func(string) bool) {
	t.Helper()
	o := &startOptions{}
	fs := pflag.NewFlagSet("start", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return o, func(name string) bool { return changed(fs, name) }
}

func TestPlanNode(t *testing.T) {
	det := resources.Detected{CPUs: 6, MemoryBytes: 1 << 34, GPUs: []resources.GPUDevice{{Index: 0}, {Index: 2}}}
	for _, tc := range []struct {
		name       string
		args       []string
		wantTotal  resources.Set
		wantGPUs   []string
		wantDetect bool
	}{
		{"detected", nil,
			resources.Set{"CPU": 6, "GPU": 2, "memory": 1 << 34}, []string{"0", "2"}, true},
		{"overrides", []string{"--num-cpus", "1.5", "--num-gpus", "3", "--memory", "1000", "--resources", `{"widget": 2}`},
			resources.Set{"CPU": 1.5, "GPU": 3, "memory": 1000, "widget": 2}, []string{"0", "1", "2"}, false},
		{"zero gpus", []string{"--num-gpus", "0"},
			resources.Set{"CPU": 6, "GPU": 0, "memory": 1 << 34}, nil, true},
		{"ids from parent", []string{"--num-cpus", "2", "--memory", "0", "--num-gpus", "2", "--gpu-ids", "2,5"},
			resources.Set{"CPU": 2, "GPU": 2}, []string{"2", "5"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, isSet := parseStart(t, append([]string{"--head"}, tc.args...)...)
			detected := false
			p, err := planNode(o, isSet, func() resources.Detected { detected = true; return det })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.total, tc.wantTotal) || !slices.Equal(p.gpuIDs, tc.wantGPUs) {
				t.Errorf("plan = %v %q, want %v %q", p.total, p.gpuIDs, tc.wantTotal, tc.wantGPUs)
			}
			if detected != tc.wantDetect {
				t.Errorf("detect called = %v, want %v", detected, tc.wantDetect)
			}
		})
	}
}

func TestPlanNodeWarnings(t *testing.T) {
	o, isSet := parseStart(t, "--head")
	p, err := planNode(o, isSet, func() resources.Detected {
		return resources.Detected{CPUs: 1, Warnings: []error{errors.New("nvidia-smi broke")}}
	})
	if err != nil || !slices.Equal(p.warnings, []string{"nvidia-smi broke"}) {
		t.Errorf("planNode = %v, %v; want the detection warning", p.warnings, err)
	}
}

func TestPlanNodeRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--num-cpus", "-1"},
		{"--num-cpus", "NaN"},
		{"--num-cpus", "1e9"},
		{"--num-gpus", "-1"},
		{"--memory", "-5"},
		{"--object-store-memory", "0"},
		{"--object-store-memory", "4096"},
		{"--memory-usage-threshold", "0"},
		{"--memory-usage-threshold", "1.5"},
		{"--resources", `{"gpu": 1}`},
		{"--resources", `{"1bad": 1}`},
		{"--num-gpus", "2", "--gpu-ids", "0"},
	} {
		o, isSet := parseStart(t, append([]string{"--head"}, args...)...)
		_, err := planNode(o, isSet, func() resources.Detected { return resources.Detected{CPUs: 1} })
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("planNode(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestChildArgs checks that the detached child, parsing childArgs, plans
// exactly the node its parent planned, without detecting anything.
func TestChildArgs(t *testing.T) {
	det := resources.Detected{CPUs: 6, MemoryBytes: 1 << 34, GPUs: []resources.GPUDevice{{Index: 1}, {Index: 3}}}
	for _, args := range [][]string{
		{"--head", "--port", "0", "--resources", `{"widget": 2, "b.c/d": 0.5}`, "--node-timeout", "7s"},
		{"--address", "10.0.0.1:6380", "--host", "10.0.0.2", "--num-cpus", "0.5", "--object-store-memory", "1048576", "--labels", "zone=a,accel=h100"},
	} {
		o, isSet := parseStart(t, args...)
		parent, err := planNode(o, isSet, func() resources.Detected { return det })
		if err != nil {
			t.Fatal(err)
		}
		co, cIsSet := parseStart(t, childArgs(o, parent, "/tmp/s")[1:]...)
		if !co.block || co.sessionDir != "/tmp/s" || co.head != o.head || co.address != o.address || co.host != o.host || co.port != o.port ||
			co.nodeTimeout != o.nodeTimeout || co.labels != o.labels {
			t.Errorf("child options %+v do not match parent %+v", co, o)
		}
		child, err := planNode(co, cIsSet, func() resources.Detected { t.Error("child detected resources"); return det })
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(child.total, parent.total) || !slices.Equal(child.gpuIDs, parent.gpuIDs) || child.storeBytes != parent.storeBytes {
			t.Errorf("child plan %+v, parent plan %+v", child, parent)
		}
	}
}

func TestPIDFile(t *testing.T) {
	d := session.Dir(t.TempDir())
	if pids, err := readPIDs(d); err != nil || len(pids) != 0 {
		t.Fatalf("readPIDs on a fresh session = %v, %v", pids, err)
	}
	var wg sync.WaitGroup
	for p := 1; p <= 20; p++ {
		wg.Go(func() {
			if err := addPID(d, p); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := removePID(d, 7); err != nil {
		t.Fatal(err)
	}
	_ = addPID(d, 3) // already there
	pids, _ := readPIDs(d)
	slices.Sort(pids)
	want := []int{1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	if !slices.Equal(pids, want) {
		t.Errorf("pids = %v, want %v", pids, want)
	}
	if err := removePID(session.Dir(d.Path("gone")), 1); err != nil {
		t.Errorf("removePID in a removed session: %v", err)
	}
	if !processAlive(os.Getpid()) {
		t.Errorf("processAlive(self) = false")
	}
}

func TestSameAddress(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:6380", "127.0.0.1:6380", true},
		{"127.0.0.1:6380", "localhost:6380", true},
		{"[::]:6380", "127.0.0.1:6380", true},
		{"[::1]:6380", "0.0.0.0:6380", true},
		{"127.0.0.1:6380", "127.0.0.1:6381", false},
		{"10.0.0.1:6380", "127.0.0.1:6380", false},
		{"", "127.0.0.1:6380", false},
	} {
		if got := sameAddress(tc.a, tc.b); got != tc.want {
			t.Errorf("sameAddress(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestShareStore: a node joining a cluster with other nodes on its machine
// takes what they left of the machine's store budget (two nodes on one
// machine used to claim 30% of its memory each), but at least an eighth.
func TestShareStore(t *testing.T) {
	const gib = 1 << 30
	const alive, dead = pb.NodeState_NODE_STATE_ALIVE, pb.NodeState_NODE_STATE_DEAD
	node := func(host string, store int64, state pb.NodeState) *pb.NodeInfo {
		return &pb.NodeInfo{HostId: host, ObjectStoreCapacity: store, State: state}
	}
	for _, tt := range []struct {
		name  string
		peers []*pb.NodeInfo
		want  int64
		note  bool
	}{
		{"alone on this machine", []*pb.NodeInfo{node("other", 7*gib, alive)}, 8 * gib, false},
		{"a head took 3 GiB here", []*pb.NodeInfo{node("me", 3*gib, alive), node("other", 7*gib, alive)}, 5 * gib, true},
		{"a head took it all", []*pb.NodeInfo{node("me", 8*gib, alive)}, 1 * gib, true},
		{"dead nodes hold nothing", []*pb.NodeInfo{node("me", 8*gib, dead)}, 8 * gib, false},
	} {
		plan := nodePlan{storeBytes: 8 * gib}
		shareStore(&plan, "me", tt.peers)
		if plan.storeBytes != tt.want || (len(plan.warnings) > 0) != tt.note {
			t.Errorf("%s: store %d bytes, notes %q; want %d bytes, a note: %v", tt.name, plan.storeBytes, plan.warnings, tt.want, tt.note)
		}
	}
}

func TestResolveNodeIP(t *testing.T) {
	for _, tc := range []struct {
		args            []string
		host, advertise string
	}{
		{[]string{"--head"}, "127.0.0.1", ""},
		{[]string{"--head", "--node-ip-address", "10.1.2.3"}, "10.1.2.3", "10.1.2.3"},
		{[]string{"--head", "--host", "0.0.0.0", "--node-ip-address", "10.1.2.3"}, "0.0.0.0", "10.1.2.3"},
		{[]string{"--head", "--host", "10.0.0.9", "--node-ip-address", "10.1.2.3"}, "10.0.0.9", "10.1.2.3"},
		// Every interface, joining a head: the address of the route there.
		{[]string{"--address", "127.0.0.1:6380", "--host", "0.0.0.0"}, "0.0.0.0", "127.0.0.1"},
	} {
		o := &startOptions{}
		fs := pflag.NewFlagSet("start", pflag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if err := o.validate(fs); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if o.host != tc.host || o.nodeIP != tc.advertise {
			t.Errorf("%q: listen on %q advertising %q, want %q and %q", tc.args, o.host, o.nodeIP, tc.host, tc.advertise)
		}
	}
}
