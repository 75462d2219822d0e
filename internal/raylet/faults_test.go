package raylet_test

import (
	"errors"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/faults"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
)

// TestHeartbeatsDroppedLoseTheHead: with the control store's heartbeat
// requests dropped at its fault point (as a cut link would lose them),
// node daemons hear nothing from it and, after their head timeout, stop
// with a HeadLostError; a grant fault point fails a lease request.
func TestHeartbeatsDroppedLoseTheHead(t *testing.T) {
	t.Cleanup(func() { faults.Disable() })
	c := startClusterWith(t, func(rc *raylet.Config) { rc.HeadTimeout = time.Second }, resources.Set{"CPU": 1})
	job := c.registerJob()
	if err := faults.Enable("raylet/grant=drop@1"); err != nil {
		t.Fatal(err)
	}
	req := cpuLease(job, 1)
	req.GrantOrReject = true
	if _, err := c.daemon(c.nodes[0].Address()).RequestLease(testCtx(t), req); err == nil || !errors.Is(err, errs.ErrSystem) {
		t.Fatalf("a lease with its grant dropped: %v", err)
	}

	n := c.addNode(resources.Set{"CPU": 1})
	if err := faults.Enable("rpc" + pb.ControlStore_NodeHeartbeat_FullMethodName + "/request=drop"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the node still runs 10 s after its heartbeats began to be dropped")
	}
	if !errors.Is(n.Err(), errs.ErrHeadLost) {
		t.Fatalf("the node stopped with %v, want a HeadLostError", n.Err())
	}
	if faults.Hits("rpc"+pb.ControlStore_NodeHeartbeat_FullMethodName+"/request") < 2 {
		t.Fatal("the fault point was not reached")
	}
}
