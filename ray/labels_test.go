//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/ray"
)

// labelledNodes starts a head without labels and nodes with zone=x and
// zone=y, and returns the nodes' ids by zone ("" for the head).
func labelledNodes(t *testing.T) (context.Context, map[string]string) {
	t.Helper()
	return labelledNodesOf(t, 2)
}

// labelledNodesOf is labelledNodes with cpus CPUs per node.
func labelledNodesOf(t *testing.T, cpus float64) (context.Context, map[string]string) {
	t.Helper()
	zones := []string{"", "x", "y"}
	i := 0
	ctx := startNodes(t, 3, cpus, func(c *raylet.Config) {
		if z := zones[i%3]; z != "" {
			c.Labels = map[string]string{"zone": z}
		}
		i++
	})
	nodes, err := ray.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byZone := map[string]string{}
	for _, n := range nodes {
		if n.Labels[ray.NodeIDLabel] != n.ID {
			t.Errorf("node %s has %s=%q, want its id", n.ID, ray.NodeIDLabel, n.Labels[ray.NodeIDLabel])
		}
		if n.Alive {
			byZone[n.Labels["zone"]] = n.ID
		}
	}
	if len(byZone) != 3 {
		t.Fatalf("nodes by zone: %v", byZone)
	}
	return ctx, byZone
}

// Tasks and actors with label selectors and node affinity run where they
// ask to; a hard affinity to a node that does not exist fails with an
// InfeasibleError, a soft one runs anyway; bad options are refused.
func TestLabelsAndNodeAffinity(t *testing.T) {
	ctx, zone := labelledNodes(t)
	for _, tt := range []struct {
		name string
		opt  ray.StrategyOption
		want string
	}{
		{"label in", ray.NodeLabels(ray.LabelIn("zone", "x")), zone["x"]},
		{"label not in", ray.NodeLabels(ray.LabelNotIn("zone", "x"), ray.LabelExists("zone")), zone["y"]},
		{"label does not exist", ray.NodeLabels(ray.LabelDoesNotExist("zone")), zone[""]},
		{"hard affinity", ray.NodeAffinity(zone["y"], false), zone["y"]},
		{"soft affinity", ray.NodeAffinity(zone["x"], true), zone["x"]},
	} {
		for range 2 { // the second may reuse the first's worker: still there
			got, err := NodeLeaf.Options(tt.opt).Remote(ctx, 0).Get(ctx)
			if err != nil || got != tt.want {
				t.Errorf("%s: task ran on %s (%v), want %s", tt.name, got, err, tt.want)
			}
		}
		a := Counter.Options(tt.opt).Remote(ctx)
		if got, err := ActorNode.Remote(ctx, a).Get(ctx); err != nil || got != tt.want {
			t.Errorf("%s: actor on %s (%v), want %s", tt.name, got, err, tt.want)
		}
	}

	gone := ids.New().String()
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := NodeLeaf.Options(ray.NodeAffinity(gone, false)).Remote(short, 0).Get(short)
	var ie *ray.InfeasibleError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), gone) {
		t.Errorf("hard affinity to an unknown node: %v, want an InfeasibleError naming it", err)
	}
	a := Counter.Options(ray.NodeAffinity(gone, false)).Remote(short)
	if _, err := ActorNode.Remote(short, a).Get(short); !errors.Is(err, ray.ErrInfeasible) {
		t.Errorf("actor with hard affinity to an unknown node: %v, want ErrInfeasible", err)
	}
	if _, err := NodeLeaf.Options(ray.NodeAffinity(gone, true)).Remote(short, 0).Get(short); err != nil {
		t.Errorf("soft affinity to an unknown node: %v, want it run elsewhere", err)
	}

	for name, opt := range map[string]ray.StrategyOption{
		"node id":         ray.NodeAffinity("not-a-node", false),
		"no values":       ray.NodeLabels(ray.LabelIn("zone")),
		"bad label key":   ray.NodeLabels(ray.LabelExists("-zone")),
		"bad label value": ray.PreferNodeLabels(ray.LabelIn("zone", "a b")),
	} {
		if _, err := NodeLeaf.Options(opt).Remote(ctx, 0).Get(ctx); !errors.Is(err, ray.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
		}
	}
}

// BigOn returns n bytes (kept in its node's object store).
var BigOn = ray.Func1(func(ctx context.Context, n int) ([]byte, error) {
	return make([]byte, n), nil
}, ray.RegisterName("test.BigOn"))

// NodeOfBytes returns the node it runs on.
var NodeOfBytes = ray.Func1(func(ctx context.Context, b []byte) (string, error) {
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID, nil
}, ray.RegisterName("test.NodeOfBytes"))

// A task whose argument lives in another node's store runs there
// (argument locality), though the driver's own node is idle: without it,
// the default policy keeps it on the driver's node. (The node asked keeps
// the task while it is under half used, as the default policy does for
// the local node.)
func TestArgumentLocality(t *testing.T) {
	ctx, zone := labelledNodesOf(t, 4)
	// A class's lease is asked for once and then reused, wherever it is:
	// each round uses a class of its own (CPUs 0.5, then 0.25).
	for i, z := range []string{"x", "y"} {
		big := BigOn.Options(ray.NodeAffinity(zone[z], false)).Remote(ctx, 4<<20)
		if _, err := big.Get(ctx); err != nil { // made, and its location known
			t.Fatal(err)
		}
		got, err := NodeOfBytes.Options(ray.NumCPUs(0.5/float64(i+1))).RemoteArgs(ctx, big).Get(ctx)
		if err != nil || got != zone[z] {
			t.Errorf("task with a 4 MiB argument on node %s ran on %s (%v)", z, got, err)
		}
	}
}
