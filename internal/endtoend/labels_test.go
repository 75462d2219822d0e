//go:build !windows

package endtoend

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// roleLabelDriver runs tasks with label selectors and node affinity and
// prints, per case, the address of the node each ran on.
const roleLabelDriver = "mh-label-driver"

// NodeOf returns the id of the node it runs on.
var NodeOf = ray.Func0(func(ctx context.Context) (string, error) {
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID, nil
}, ray.RegisterName("e2e.NodeOf"))

func runLabelDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	nodes, err := ray.Nodes(ctx)
	if err != nil {
		fmt.Println("nodes:", err)
		return 1
	}
	addr, accel := map[string]string{}, ""
	for _, n := range nodes {
		addr[n.ID] = n.Address
		if _, ok := n.Labels["accel"]; ok {
			accel = n.ID
		}
	}
	for _, c := range []struct {
		name string
		opt  ray.StrategyOption
	}{
		{"accel", ray.NodeLabels(ray.LabelExists("accel"))},
		{"zone-a", ray.NodeLabels(ray.LabelIn("zone", "a"))},
		{"no-zone", ray.NodeLabels(ray.LabelDoesNotExist("zone"))},
		{"affinity-accel", ray.NodeAffinity(accel, false)},
	} {
		id, err := NodeOf.Options(c.opt).Remote(ctx).Get(ctx)
		if err != nil {
			fmt.Println("task:", c.name, err)
			return 1
		}
		fmt.Println("ran", c.name, addr[id])
	}
	return 0
}

// TestLabelOnlyOneHostHas: a head and two labelled nodes, each on its own
// host, and a driver on a fourth host with no node: a task that needs a
// label only one node has runs there, and so does one with a hard
// affinity for that node; a task that needs no zone runs on the head.
func TestLabelOnlyOneHostHas(t *testing.T) {
	bed := namespaceBed(t)
	var hosts []*testcluster.Host
	for _, name := range []string{"head", "za", "zb", "driver"} {
		h, err := bed.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	tok := ray.EnvToken + "=e2e-labels"
	gcs := startRole(t, hosts[0], roleMHHead, tok)
	za := startRole(t, hosts[1], roleMHNode, tok, ray.EnvAddress+"="+gcs, envLabels+"=zone=a")
	zb := startRole(t, hosts[2], roleMHNode, tok, ray.EnvAddress+"="+gcs, envLabels+"=zone=b,accel=h100")

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := hosts[3].Command(exe)
	cmd.Env = append(cmd.Env, envRole+"="+roleLabelDriver, tok, ray.EnvAddress+"="+gcs)
	cmd.Stderr = os.Stderr
	out, err := runWithin(cmd, 90*time.Second)
	if err != nil {
		t.Fatalf("driver: %v\n%s", err, out)
	}
	ran := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "ran" {
			ran[f[1]] = f[2]
		}
	}
	for name, want := range map[string]string{"accel": zb, "zone-a": za, "affinity-accel": zb} {
		if ran[name] != want {
			t.Errorf("%s ran on %q, want %s (za=%s zb=%s):\n%s", name, ran[name], want, za, zb, out)
		}
	}
	if headNode := ran["no-zone"]; headNode == "" || headNode == za || headNode == zb || !strings.HasPrefix(headNode, hosts[0].IP+":") {
		t.Errorf("no-zone ran on %q, want the head's node on %s", headNode, hosts[0].IP)
	}
	t.Logf("ran on %v (bed: %s)", ran, bed.Mode())
}
