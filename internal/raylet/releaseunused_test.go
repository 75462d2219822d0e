package raylet_test

import (
	"errors"
	"os"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// TestReleaseUnused: a control store restarted from storage (epoch 2)
// tells the node what of epoch 1 it still uses; the node gives back the
// rest (an actor lease and bundles, prepared and committed), keeps what
// is named, and does not touch what epoch 2 asked for.
func TestReleaseUnused(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.gcs.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{BinaryPath: exe}})
	if err != nil {
		t.Fatal(err)
	}
	actorLease := func(epoch uint64) *pb.LeaseReply {
		t.Helper()
		r, err := c.raylet.RequestLease(ctx, &pb.LeaseRequest{JobId: reg.GetJobId(), Resources: cpus(0.5), Actor: true, SchedulingKey: "actor:A",
			ControlStoreEpoch: epoch})
		if err != nil || len(r.GetLeaseId()) == 0 {
			t.Fatalf("actor lease: %v, %v", r, err)
		}
		return r
	}
	kept := actorLease(1)
	actorLease(1) // not named: given back
	actorLease(2) // the new incarnation's
	group := func(epoch uint64, commit bool) ids.ID {
		t.Helper()
		g := ids.New()
		if _, err := c.raylet.PrepareBundles(ctx, &pb.PrepareBundlesRequest{GroupId: g.Bytes(), Bundles: []*pb.BundleSpec{bundle(0, 0.1)},
			Commit: commit, ControlStoreEpoch: epoch}); err != nil {
			t.Fatal(err)
		}
		return g
	}
	keptGroup, droppedGroup, droppedPrepared, newerGroup := group(1, true), group(1, true), group(1, false), group(2, true)

	if _, err := c.raylet.ReleaseUnused(ctx, &pb.ReleaseUnusedRequest{}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("ReleaseUnused without an epoch: %v, want an invalid request", err)
	}
	r, err := c.raylet.ReleaseUnused(ctx, &pb.ReleaseUnusedRequest{Epoch: 2, KeepLeases: [][]byte{kept.GetLeaseId()},
		KeepBundles: []*pb.BundleRef{{GroupId: keptGroup.Bytes(), Index: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetLeasesReleased() != 1 || r.GetBundlesReleased() != 2 {
		t.Fatalf("released %d leases and %d bundles, want 1 and 2", r.GetLeasesReleased(), r.GetBundlesReleased())
	}
	total, avail := nodeResources(t, c)
	// 2 CPUs: the kept and the newer actor hold 0.5 each, the two kept
	// bundles 0.1 each.
	if avail["CPU"] < 0.79 || avail["CPU"] > 0.81 {
		t.Errorf("available CPU %v, want 0.8", avail["CPU"])
	}
	for g, want := range map[ids.ID]bool{keptGroup: true, newerGroup: true, droppedGroup: false, droppedPrepared: false} {
		if has := total[resources.BundleResource("CPU", g.String(), 0)] > 0; has != want {
			t.Errorf("group %s: bundle held %v, want %v (total %v)", g.Short(), has, want, total)
		}
	}
	eventually(t, "the dropped actor's worker to stop", func() bool {
		st, err := c.raylet.NodeStats(ctx, &pb.NodeStatsRequest{})
		return err == nil && st.GetNode().GetNumWorkers() == 2
	})
}
