//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/ray"
)

// NodeAndGPUs returns its node and the GPUs it sees.
var NodeAndGPUs = ray.Func0(func(ctx context.Context) (string, error) {
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID + " " + os.Getenv("CUDA_VISIBLE_DEVICES"), nil
}, ray.RegisterName("test.NodeAndGPUs"))

// ParentAndChild returns its node and that of a child task it submits
// with no options (captured into its placement group, if it captures).
var ParentAndChild = ray.Func0(func(ctx context.Context) ([]string, error) {
	child, err := NodeLeaf.Remote(ctx, 0).Get(ctx)
	if err != nil {
		return nil, err
	}
	tc, _ := ray.CurrentTask(ctx)
	return []string{tc.NodeID, child}, nil
}, ray.RegisterName("test.ParentAndChild"))

// addNode starts one more node daemon in the cluster at gcs.
func addNode(t *testing.T, gcs string, cpus float64, edit func(*raylet.Config)) *raylet.Raylet {
	t.Helper()
	rc := testNodeConfig(t, cpus, edit)
	rc.GCSAddress, rc.Token = gcs, "tok"
	n, err := raylet.Start(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func cpuBundles(n int, cpus float64) []ray.Bundle {
	out := make([]ray.Bundle, n)
	for i := range out {
		out[i] = ray.Bundle{"CPU": cpus}
	}
	return out
}

// A STRICT_SPREAD group of three bundles lands on three nodes; tasks and
// actors in bundle i run on bundle i's node; removal kills the actor,
// fails later tasks with a PlacementGroupRemovedError and gives every
// CPU back.
func TestPlacementGroupStrictSpread(t *testing.T) {
	ctx := startNodes(t, 3, 2, nil)
	pg, err := ray.PlacementGroup(ctx, cpuBundles(3, 1), ray.PlacementStrictSpread, ray.Name("trio"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := pg.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != ray.GroupCreated || len(info.BundleNodes) != 3 || slices.Contains(info.BundleNodes, "") {
		t.Fatalf("group info %+v", info)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(info.BundleNodes))); len(distinct) != 3 {
		t.Fatalf("STRICT_SPREAD bundles on %v, want three nodes", info.BundleNodes)
	}
	if same, err := ray.GetPlacementGroup(ctx, "trio"); err != nil || same.ID() != pg.ID() {
		t.Fatalf("GetPlacementGroup(trio) = %v, %v", same, err)
	}
	if _, err := ray.PlacementGroup(ctx, cpuBundles(1, 1), ray.PlacementPack, ray.Name("trio")); !errors.Is(err, ray.ErrAlreadyExists) {
		t.Fatalf("a second group named trio: %v, want ErrAlreadyExists", err)
	}
	for i, want := range info.BundleNodes {
		got, err := NodeLeaf.Options(ray.InPlacementGroup(pg, i)).Remote(ctx, 0).Get(ctx)
		if err != nil || got != want {
			t.Errorf("task in bundle %d ran on %s (%v), want %s", i, got, err, want)
		}
	}
	a := Counter.Options(ray.InPlacementGroup(pg, 1)).Remote(ctx)
	if got, err := ActorNode.Remote(ctx, a).Get(ctx); err != nil || got != info.BundleNodes[1] {
		t.Fatalf("actor in bundle 1 on %s (%v), want %s", got, err, info.BundleNodes[1])
	}
	avail, _ := ray.AvailableResources(ctx)
	if avail["CPU"] != 3 {
		t.Errorf("available CPU with the group reserved = %v, want 3 (of 6)", avail["CPU"])
	}

	if err := ray.RemovePlacementGroup(ctx, pg); err != nil {
		t.Fatal(err)
	}
	_, err = ActorNode.Remote(ctx, a).Get(ctx)
	var died *ray.ActorDiedError
	if !errors.As(err, &died) || !strings.Contains(err.Error(), "placement group") {
		t.Errorf("call on an actor of a removed group: %v, want an ActorDiedError naming the group", err)
	}
	_, err = NodeLeaf.Options(ray.InPlacementGroup(pg, 0)).Remote(ctx, 0).Get(ctx)
	var removed *ray.PlacementGroupRemovedError
	if !errors.As(err, &removed) || !errors.Is(err, ray.ErrPlacementGroupRemoved) {
		t.Errorf("task in a removed group: %v, want a PlacementGroupRemovedError", err)
	}
	if ok, err := pg.Wait(ctx, time.Second); ok || !errors.Is(err, ray.ErrPlacementGroupRemoved) {
		t.Errorf("Wait on a removed group = %v, %v", ok, err)
	}
	eventually(t, 10*time.Second, "every CPU available again", func() bool {
		avail, err := ray.AvailableResources(ctx)
		total, _ := ray.ClusterResources(ctx)
		return err == nil && avail["CPU"] == 6 && total["CPU"] == 6 && !hasGroupResources(total)
	})
	if _, err := ray.GetPlacementGroup(ctx, "trio"); !errors.Is(err, ray.ErrNotFound) {
		t.Errorf("GetPlacementGroup of a removed group's name: %v, want ErrNotFound", err)
	}
}

func hasGroupResources(res map[string]float64) bool {
	for k := range res {
		if strings.Contains(k, "_group_") {
			return true
		}
	}
	return false
}

// A group that needs a node the cluster does not have waits, infeasible,
// with the reason, and is created once that node joins.
func TestPlacementGroupWaitsForANode(t *testing.T) {
	head := startHead(t, 2, "tok", nil)
	addNode(t, head.GCSAddress(), 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	pg, err := ray.PlacementGroup(ctx, cpuBundles(3, 1), ray.PlacementStrictSpread)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := pg.Wait(ctx, 300*time.Millisecond); ok || err != nil {
		t.Fatalf("Wait = %v, %v; want false: only two nodes", ok, err)
	}
	info, _ := pg.Info(ctx)
	if info.State != ray.GroupPending || !info.Infeasible || !strings.Contains(info.Reason, "STRICT_SPREAD needs 3 nodes") {
		t.Fatalf("waiting group: %+v", info)
	}
	// Tasks for it wait too, and run once it is created.
	ran := NodeLeaf.Options(ray.InPlacementGroup(pg, 2)).Remote(ctx, 0)
	addNode(t, head.GCSAddress(), 2, nil)
	if err := pg.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	info, _ = pg.Info(ctx)
	if got, err := ran.Get(ctx); err != nil || got != info.BundleNodes[2] {
		t.Fatalf("task submitted before the group was created ran on %s (%v), want %s", got, err, info.BundleNodes[2])
	}
	groups, err := ray.PlacementGroups(ctx)
	if err != nil || len(groups) != 1 || groups[0].ID != pg.ID() || groups[0].State != ray.GroupCreated {
		t.Fatalf("PlacementGroups = %+v, %v", groups, err)
	}
}

// STRICT_PACK of more than a node holds is infeasible; PACK of the same
// bundles spreads them over the two nodes; a child task of a capturing
// parent runs in the parent's group.
func TestPlacementGroupPackAndCapture(t *testing.T) {
	ctx := startNodes(t, 2, 2, nil)
	strict, err := ray.PlacementGroup(ctx, cpuBundles(2, 2), ray.PlacementStrictPack)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := strict.Wait(ctx, 200*time.Millisecond); ok {
		t.Fatal("STRICT_PACK of 4 CPUs on 2-CPU nodes was created")
	}
	if info, _ := strict.Info(ctx); !info.Infeasible || !strings.Contains(info.Reason, "STRICT_PACK") {
		t.Errorf("STRICT_PACK group: %+v", info)
	}
	if err := ray.RemovePlacementGroup(ctx, strict); err != nil {
		t.Fatal(err)
	}
	pack, err := ray.PlacementGroup(ctx, cpuBundles(2, 2), ray.PlacementPack)
	if err != nil {
		t.Fatal(err)
	}
	if err := pack.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	info, _ := pack.Info(ctx)
	if info.BundleNodes[0] == info.BundleNodes[1] {
		t.Fatalf("PACK of 2×2 CPUs on 2-CPU nodes: %v", info.BundleNodes)
	}
	nodes, err := ParentAndChild.Options(ray.InPlacementGroup(pack, 1), ray.CaptureChildTasks()).Remote(ctx).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if nodes[0] != info.BundleNodes[1] || !slices.Contains(info.BundleNodes, nodes[1]) {
		t.Errorf("capturing parent on %s, child on %s; the group is on %v", nodes[0], nodes[1], info.BundleNodes)
	}
	if _, err := ParentAndChild.Options(ray.CaptureChildTasks()).Remote(ctx).Get(ctx); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Errorf("CaptureChildTasks without a group: %v", err)
	}
	if _, err := NodeLeaf.Options(ray.InPlacementGroup(pack, 2)).Remote(ctx, 0).Get(ctx); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Errorf("bundle 2 of a 2-bundle group: %v", err)
	}
}

// A bundle's GPU is the one its tasks see.
func TestPlacementGroupGPUs(t *testing.T) {
	ctx := startNodes(t, 1, 2, gpuNodes(2))
	pg, err := ray.PlacementGroup(ctx, []ray.Bundle{{"GPU": 1}, {"GPU": 1}}, ray.PlacementPack)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 2 {
		got, err := NodeAndGPUs.Options(ray.NumGPUs(1), ray.NumCPUs(0), ray.InPlacementGroup(pg, i)).Remote(ctx).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gpus := strings.Fields(got)
		if len(gpus) != 2 || strings.Contains(gpus[1], ",") {
			t.Fatalf("task in bundle %d saw %q, want one GPU", i, got)
		}
		seen[gpus[1]] = true
	}
	if len(seen) != 2 {
		t.Errorf("the two bundles' tasks saw GPUs %v, want two different ones", seen)
	}
}

// Removing a group while its tasks run and wait: every one fails with a
// PlacementGroupRemovedError (the running ones' workers are stopped; their
// retries find the group gone), and the CPUs come back.
func TestPlacementGroupRemovalUnderLoad(t *testing.T) {
	ctx := startNodes(t, 2, 2, nil)
	pg, err := ray.PlacementGroup(ctx, cpuBundles(2, 1), ray.PlacementSpread)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var refs []ray.ObjectRef[string]
	for range 8 {
		refs = append(refs, NodeLeaf.Options(ray.InPlacementGroup(pg, ray.AnyBundle)).Remote(ctx, 20000))
	}
	time.Sleep(500 * time.Millisecond) // two run, six wait
	if err := ray.RemovePlacementGroup(ctx, pg); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for i, r := range refs {
		if _, err := r.Get(wait); !errors.Is(err, ray.ErrPlacementGroupRemoved) {
			t.Errorf("task %d: %v, want ErrPlacementGroupRemoved", i, err)
		}
	}
	eventually(t, 10*time.Second, "every CPU available again", func() bool {
		avail, err := ray.AvailableResources(ctx)
		return err == nil && avail["CPU"] == 4
	})
}

// A node holding a bundle dies: the group is RESCHEDULING, then created
// again with that bundle on another node, STRICT_SPREAD still holding.
func TestPlacementGroupNodeDies(t *testing.T) {
	head := startHead(t, 2, "tok", nil)
	nodes := map[string]*raylet.Raylet{head.Raylet().NodeID().String(): head.Raylet()}
	for i := range 2 {
		// Machines of their own: the driver's node is the head's, which
		// stays (a driver whose node dies goes with it).
		n := addNode(t, head.GCSAddress(), 2, func(rc *raylet.Config) { rc.HostID, rc.HostMemory = fmt.Sprint("other-machine-", i), 1<<30 })
		nodes[n.NodeID().String()] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	eventually(t, 30*time.Second, "three nodes", func() bool {
		res, err := ray.ClusterResources(ctx)
		return err == nil && res["CPU"] == 6
	})
	pg, err := ray.PlacementGroup(ctx, cpuBundles(2, 1), ray.PlacementStrictSpread)
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := pg.Info(ctx)
	victim := before.BundleNodes[0]
	if victim == head.Raylet().NodeID().String() {
		victim = before.BundleNodes[1]
	}
	nodes[victim].Stop()
	eventually(t, 20*time.Second, "the group placed again", func() bool {
		info, err := pg.Info(ctx)
		return err == nil && info.State == ray.GroupCreated && !slices.Contains(info.BundleNodes, victim)
	})
	after, _ := pg.Info(ctx)
	if after.BundleNodes[0] == after.BundleNodes[1] || slices.Contains(after.BundleNodes, "") {
		t.Fatalf("after the node died: bundles on %v", after.BundleNodes)
	}
	for i, want := range after.BundleNodes {
		if got, err := NodeLeaf.Options(ray.InPlacementGroup(pg, i)).Remote(ctx, 0).Get(ctx); err != nil || got != want {
			t.Errorf("task in bundle %d ran on %s (%v), want %s", i, got, err, want)
		}
	}
}
