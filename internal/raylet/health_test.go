package raylet_test

import (
	"errors"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
)

// TestNodeDeclaredDeadStopsItsWorkers: a node the control store declares
// dead while it is silent learns so from its next heartbeat (a typed
// NodeDiedError), kills its leased worker, refuses new leases and reports
// Done, instead of carrying on under its old id; a node started after it
// joins under a new id.
func TestNodeDeclaredDeadStopsItsWorkers(t *testing.T) {
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	hc := nodeConfig(t, resources.Set{resources.CPU: 1})
	h, err := node.StartHead(node.HeadConfig{Raylet: hc, Token: token,
		GCS: gcs.Config{NodeTimeout: 400 * time.Millisecond, HealthCheckPeriod: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, head: h, nodes: []*raylet.Raylet{h.Raylet()}, pool: rpc.NewPool(token)}
	t.Cleanup(func() {
		for _, n := range c.nodes[1:] {
			n.Stop()
		}
		h.Stop()
		c.pool.Close()
	})
	c.gcs = pb.NewControlStoreClient(dial(t, h.GCSAddress()))
	// This node's heartbeats come every 3 s: the control store, which
	// waits 400 ms, declares it dead before its first one, and the lease
	// below has time to start its worker first.
	c.edit = func(rc *raylet.Config) { rc.HeartbeatPeriod = 3 * time.Second }
	n := c.addNode(resources.Set{resources.CPU: 1, "silent": 1})
	job := c.registerJob()
	req := cpuLease(job, 1)
	req.Resources.Amounts["silent"] = 1
	req.GrantOrReject = true
	reply, at, err := c.lease(testCtx(t), n.Address(), req)
	if err != nil || at != n.Address() || reply.GetWorkerPid() == 0 {
		t.Fatalf("lease on the node: %v at %s, %v", reply, at, err)
	}
	pid := int(reply.GetWorkerPid())
	select {
	case <-n.Done():
		t.Fatal("node done before the control store declared it dead")
	default:
	}

	select {
	case <-n.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a node declared dead carried on past its next heartbeat")
	}
	var died *errs.NodeDiedError
	if err := n.Err(); !errors.As(err, &died) || died.NodeID != n.NodeID().String() {
		t.Fatalf("Err() = %v, want a NodeDiedError naming node %s", err, n.NodeID())
	}
	t.Logf("node stopped with: %v", n.Err())
	if proc.Alive(pid) {
		t.Fatalf("worker pid %d of the dead node still runs", pid)
	}
	req.OwnerId = ids.New().Bytes()
	if r, err := c.daemon(n.Address()).RequestLease(testCtx(t), req); err == nil {
		t.Fatalf("a dead node granted a lease: %v", r)
	}
	view := map[ids.ID]pb.NodeState{}
	all, err := c.gcs.GetNodes(testCtx(t), &pb.GetNodesRequest{IncludeDead: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ni := range all.GetNodes() {
		view[ids.MustFromBytes(ni.GetNodeId())] = ni.GetState()
	}
	if view[n.NodeID()] != pb.NodeState_NODE_STATE_DEAD || view[h.Raylet().NodeID()] != pb.NodeState_NODE_STATE_ALIVE {
		t.Fatalf("control store view %v: want the silent node DEAD and the head ALIVE", view)
	}

	// Coming back means a new node daemon, under a new id.
	c.edit = nil
	again := c.addNode(resources.Set{resources.CPU: 1, "silent": 1})
	if again.NodeID() == n.NodeID() {
		t.Fatal("the new node daemon reused the dead node's id")
	}
	eventually(t, "the new node to be alive", func() bool {
		ni := c.controlStoreView()[again.Address()]
		return ni != nil && ni.GetState() == pb.NodeState_NODE_STATE_ALIVE
	})
}
