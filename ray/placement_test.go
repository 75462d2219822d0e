//go:build !windows

package ray_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/ray"
)

var ActorNode = ray.Method0(Counter, func(c *counter, ctx context.Context) (string, error) {
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID, nil
}, ray.RegisterName("test.ActorNode"))

// NodeLeaf returns its node after ms milliseconds.
var NodeLeaf = ray.Func1(func(ctx context.Context, ms int) (string, error) {
	time.Sleep(time.Duration(ms) * time.Millisecond)
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID, nil
}, ray.RegisterName("test.NodeLeaf"))

// NodeTogether marks its start in dir and waits until n tasks have (so
// that the n run at once, each on a lease of its own: none can reuse
// another's worker), then returns its node; with nested, it first waits
// for a child NodeLeaf(100) (it blocks on nested work).
var NodeTogether = ray.Func3(func(ctx context.Context, dir string, n int, nested bool) (string, error) {
	f, err := os.CreateTemp(dir, "started-")
	if err != nil {
		return "", err
	}
	f.Close()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if list, _ := os.ReadDir(dir); len(list) >= n {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("only some of %d tasks started together", n)
		}
	}
	if nested {
		if _, err := NodeLeaf.Remote(ctx, 100).Get(ctx); err != nil {
			return "", err
		}
	}
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID, nil
}, ray.RegisterName("test.NodeTogether"))

// startNodes starts a head and n-1 more nodes, each with edit applied,
// and joins the cluster as its driver.
func startNodes(t *testing.T, n int, cpus float64, edit func(*raylet.Config)) context.Context {
	t.Helper()
	head := startHead(t, cpus, "tok", edit)
	for range n - 1 {
		rc := testNodeConfig(t, cpus, edit)
		rc.GCSAddress, rc.Token = head.GCSAddress(), "tok"
		node, err := raylet.Start(rc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(node.Stop)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ray.Shutdown() })
	eventually(t, 30*time.Second, "every node", func() bool {
		res, err := ray.ClusterResources(ctx)
		return err == nil && res[resources.CPU] == cpus*float64(n)
	})
	return ctx
}

// startTwoSeenNodes starts two 2-CPU nodes (resources "first" and
// "second" tell them apart) and returns once the driver's node has seen
// the other: a task only the other can run was sent there through it (one
// of the two warm-up tasks is). What the tests check is placement, not
// how soon a node learns of one that just joined
// (TestLeaseSeesANodeThatJustJoined is that).
func startTwoSeenNodes(t *testing.T) context.Context {
	t.Helper()
	names := []string{"first", "second"}
	ctx := startNodes(t, 2, 2, func(c *raylet.Config) {
		c.Resources[names[0]] = 1
		names = names[1:]
	})
	for _, only := range []string{"first", "second"} {
		if _, err := NodeLeaf.Options(ray.Resources(map[string]float64{only: 1})).Remote(ctx, 0).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

// Two SPREAD tasks on two idle nodes run one on each.
func TestSpreadTasksUseEveryNode(t *testing.T) {
	ctx := startTwoSeenNodes(t)
	for round := range 3 {
		dir := t.TempDir()
		a := NodeTogether.Options(ray.Spread()).Remote(ctx, dir, 2, false)
		b := NodeTogether.Options(ray.Spread()).Remote(ctx, dir, 2, false)
		na, err := a.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		nb, err := b.Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if na == nb {
			t.Fatalf("round %d: both SPREAD tasks ran on node %s", round, na)
		}
	}
}

// Four tasks that block on nested work, on two 2-CPU nodes, run two on
// each (issue: all four went to one node).
func TestBlockedTasksSpreadOverNodes(t *testing.T) {
	ctx := startTwoSeenNodes(t)
	dir := t.TempDir()
	refs := make([]ray.ObjectRef[string], 4)
	for i := range refs {
		refs[i] = NodeTogether.Remote(ctx, dir, 4, true)
	}
	nodes, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, n := range nodes {
		per[n]++
	}
	if len(per) != 2 {
		t.Fatalf("tasks per node %v, want two on each node", per)
	}
}

// gpuNodes gives the nodes startNodes starts these GPU counts, in order.
func gpuNodes(counts ...int) func(*raylet.Config) {
	return func(c *raylet.Config) {
		n := counts[0]
		counts = counts[1:]
		c.Resources[resources.GPU] = float64(n)
		c.GPUIDs = nil
		for g := range n {
			c.GPUIDs = append(c.GPUIDs, strconv.Itoa(g))
		}
	}
}

// placeGPUActors creates n one-GPU actors at once and returns how many
// each node holds, failing if one is not placed within 20 s.
func placeGPUActors(t *testing.T, ctx context.Context, n int) map[string]int {
	t.Helper()
	actors := make([]ray.ActorHandle[counter], n)
	for i := range actors {
		actors[i] = Counter.Options(ray.NumGPUs(1)).Remote(ctx)
	}
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	perNode := map[string]int{}
	for i, a := range actors {
		node, err := ActorNode.Remote(wait, a).Get(wait)
		if err != nil {
			t.Fatalf("actor %d: %v (placed so far per node: %v)", i, err, perNode)
		}
		perNode[node]++
	}
	return perNode
}

// Twelve one-GPU actors created together on three 4-GPU nodes are all
// placed, four per node (issue: 4 placed and 8 pending while two nodes had
// every GPU free).
func TestActorsFillEveryNode(t *testing.T) {
	ctx := startNodes(t, 3, 1, gpuNodes(4, 4, 4))
	perNode := placeGPUActors(t, ctx, 12)
	if len(perNode) != 3 {
		t.Fatalf("actors per node %v, want four on each of three", perNode)
	}
	for n, k := range perNode {
		if k != 4 {
			t.Fatalf("node %s holds %d actors (%v), want 4 each", n, k, perNode)
		}
	}
}

// Twelve one-GPU actors on nodes of 0, 5 and 10 GPUs are all placed
// (issue: they all went to the 10-GPU node and the rest waited).
func TestActorsFillUnevenNodes(t *testing.T) {
	ctx := startNodes(t, 3, 1, gpuNodes(0, 5, 10))
	t.Logf("actors per node: %v", placeGPUActors(t, ctx, 12))
}
