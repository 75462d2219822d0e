package raylet_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

func bundle(i int32, cpu float64) *pb.BundleSpec {
	return &pb.BundleSpec{Index: i, Resources: cpus(cpu)}
}

// nodeResources returns the node's total and available resources.
func nodeResources(t *testing.T, c *cluster) (total, avail resources.Set) {
	t.Helper()
	st, err := c.raylet.NodeStats(testCtx(t), &pb.NodeStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetNode().GetTotal().GetAmounts(), st.GetNode().GetAvailable().GetAmounts()
}

// TestBundlesPrepareCommitCancel: a prepared bundle holds its resources;
// committed, it becomes resources of its own; a prepare without room
// fails naming only what it asked for; one cancel call removes a group
// and the others named with it (more_removed), giving everything back,
// and the node then refuses the removed groups.
func TestBundlesPrepareCommitCancel(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	a, b, d := ids.New(), ids.New(), ids.New()
	if _, err := c.raylet.PrepareBundles(ctx, &pb.PrepareBundlesRequest{GroupId: a.Bytes(), Bundles: []*pb.BundleSpec{bundle(0, 0.5)}}); err != nil {
		t.Fatal(err)
	}
	total, avail := nodeResources(t, c)
	if avail["CPU"] != 1.5 || total[resources.BundleResource("CPU", a.String(), 0)] != 0 {
		t.Fatalf("prepared: total %v, available %v", total, avail)
	}
	if _, err := c.raylet.CommitBundles(ctx, &pb.CommitBundlesRequest{GroupId: a.Bytes(), Indexes: []int32{0}}); err != nil {
		t.Fatal(err)
	}
	for _, g := range []ids.ID{b, d} {
		if _, err := c.raylet.PrepareBundles(ctx, &pb.PrepareBundlesRequest{GroupId: g.Bytes(), Bundles: []*pb.BundleSpec{bundle(0, 0.5)}, Commit: true}); err != nil {
			t.Fatal(err)
		}
	}
	total, avail = nodeResources(t, c)
	for _, g := range []ids.ID{a, b, d} {
		if total[resources.BundleResource("CPU", g.String(), 0)] != 0.5 {
			t.Fatalf("committed: total %v", total)
		}
	}
	if avail["CPU"] != 0.5 {
		t.Fatalf("three bundles of 0.5 CPU committed: available %v", avail)
	}

	_, err := c.raylet.PrepareBundles(ctx, &pb.PrepareBundlesRequest{GroupId: ids.New().Bytes(), Bundles: []*pb.BundleSpec{bundle(0, 1)}})
	if err == nil || !strings.Contains(err.Error(), "no room") || strings.Contains(err.Error(), "_group_") {
		t.Fatalf("a prepare without room: %v; want no room, naming only the CPU", err)
	}

	if _, err := c.raylet.CancelBundles(ctx, &pb.CancelBundlesRequest{GroupId: a.Bytes(), Removed: true, MoreRemoved: [][]byte{b.Bytes(), d.Bytes()}}); err != nil {
		t.Fatal(err)
	}
	total, avail = nodeResources(t, c)
	if avail["CPU"] != 2 {
		t.Errorf("after the removals: available %v, want all 2 CPUs", avail)
	}
	for k := range total {
		if strings.Contains(k, "_group_") {
			t.Errorf("after the removals the node still has %s", k)
		}
	}
	for _, g := range []ids.ID{a, b, d} {
		_, err := c.raylet.PrepareBundles(ctx, &pb.PrepareBundlesRequest{GroupId: g.Bytes(), Bundles: []*pb.BundleSpec{bundle(1, 0.1)}, Commit: true})
		if !errors.Is(err, errs.ErrPlacementGroupRemoved) {
			t.Errorf("prepare for removed group %s: %v, want ErrPlacementGroupRemoved", g.Short(), err)
		}
	}
}
