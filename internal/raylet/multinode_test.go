package raylet_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
)

// testCluster is a control store and node daemons, all in this process;
// their workers are this test binary acting as a fake worker.
type testCluster struct {
	t     testing.TB
	head  *node.Head
	gcs   pb.ControlStoreClient
	nodes []*raylet.Raylet
	pool  *rpc.Pool
	edit  func(*raylet.Config) // applied to every node's config (nil: none)
}

// nodeConfig is a node daemon with res that reports every 100 ms, has a
// small store and no memory monitor.
func nodeConfig(t testing.TB, res resources.Set) raylet.Config {
	rc := raylet.DefaultConfig()
	rc.Resources = res
	for i := range int(res[resources.GPU]) {
		rc.GPUIDs = append(rc.GPUIDs, fmt.Sprint(i))
	}
	rc.SessionDir = t.TempDir()
	rc.HeartbeatPeriod = 100 * time.Millisecond
	rc.ObjectStoreBytes = 4 << 20
	rc.MemoryUsageThreshold = -1
	return rc
}

// startCluster starts a head node with the first resource set and a node
// daemon for each of the others.
func startCluster(t testing.TB, res ...resources.Set) *testCluster {
	t.Helper()
	return startClusterWith(t, nil, res...)
}

// startClusterWith is startCluster with edit applied to every node's
// config.
func startClusterWith(t testing.TB, edit func(*raylet.Config), res ...resources.Set) *testCluster {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	hc := nodeConfig(t, res[0])
	if edit != nil {
		edit(&hc)
	}
	h, err := node.StartHead(node.HeadConfig{Raylet: hc, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{t: t, head: h, nodes: []*raylet.Raylet{h.Raylet()}, pool: rpc.NewPool(token), edit: edit}
	t.Cleanup(func() {
		for _, n := range c.nodes[1:] {
			n.Stop()
		}
		h.Stop()
		c.pool.Close()
	})
	c.gcs = pb.NewControlStoreClient(dial(t, h.GCSAddress()))
	for _, r := range res[1:] {
		c.addNode(r)
	}
	return c
}

// addNode starts one more node daemon in the cluster.
func (c *testCluster) addNode(res resources.Set) *raylet.Raylet {
	c.t.Helper()
	rc := nodeConfig(c.t, res)
	if c.edit != nil {
		c.edit(&rc)
	}
	rc.GCSAddress, rc.Token = c.head.GCSAddress(), token
	r, err := raylet.Start(rc)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes = append(c.nodes, r)
	return r
}

func (c *testCluster) daemon(addr string) pb.NodeDaemonClient {
	c.t.Helper()
	conn, err := c.pool.Get(addr)
	if err != nil {
		c.t.Fatal(err)
	}
	return pb.NewNodeDaemonClient(conn)
}

// registerJob registers a job whose workers are this test binary, with env
// added to their environment.
func (c *testCluster) registerJob(env ...string) []byte {
	c.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		c.t.Fatal(err)
	}
	r, err := c.gcs.RegisterJob(testCtx(c.t), &pb.RegisterJobRequest{Job: &pb.JobInfo{BinaryPath: exe, Env: env}})
	if err != nil {
		c.t.Fatal(err)
	}
	return r.GetJobId()
}

// lease asks the daemon at addr for req and follows spillbacks, as an owner
// does. It returns the final reply (a grant, or canceled) and the address
// of the daemon that gave it.
func (c *testCluster) lease(ctx context.Context, addr string, req *pb.LeaseRequest) (*pb.LeaseReply, string, error) {
	for hops := 0; ; hops++ {
		reply, err := c.daemon(addr).RequestLease(ctx, req)
		if err != nil || reply.GetSpillbackAddress() == "" {
			return reply, addr, err
		}
		if hops > 10 {
			return nil, "", fmt.Errorf("spilled back %d times", hops)
		}
		addr = reply.GetSpillbackAddress()
		req = cloneLease(req)
		req.GrantOrReject = true
	}
}

func cloneLease(r *pb.LeaseRequest) *pb.LeaseRequest {
	return &pb.LeaseRequest{JobId: r.JobId, Resources: r.Resources, PlacementResources: r.PlacementResources, Actor: r.Actor,
		SchedulingKey: r.SchedulingKey, GrantOrReject: r.GrantOrReject, Strategy: r.Strategy, OwnerId: r.OwnerId,
		FailIfInfeasible: r.FailIfInfeasible, QueueIfInfeasible: r.QueueIfInfeasible, RequestId: r.RequestId, Scheduling: r.Scheduling}
}

// available is a node's available resources, from the node itself.
func (c *testCluster) available(r *raylet.Raylet) resources.Set {
	c.t.Helper()
	st, err := c.daemon(r.Address()).NodeStats(testCtx(c.t), &pb.NodeStatsRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	return st.GetNode().GetAvailable().GetAmounts()
}

// controlStoreView returns the control store's record of each node, by
// address.
func (c *testCluster) controlStoreView() map[string]*pb.NodeInfo {
	c.t.Helper()
	r, err := c.gcs.GetNodes(testCtx(c.t), &pb.GetNodesRequest{})
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]*pb.NodeInfo{}
	for _, n := range r.GetNodes() {
		out[n.GetAddress()] = n
	}
	return out
}

// eventually polls cond every 10 ms until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func cpuLease(job []byte, cpus float64) *pb.LeaseRequest {
	return &pb.LeaseRequest{JobId: job, Resources: cpus1(cpus), SchedulingKey: "task", OwnerId: ids.New().Bytes()}
}

func cpus1(n float64) *pb.Resources { return &pb.Resources{Amounts: map[string]float64{"CPU": n}} }

// holdAt leases n one-CPU workers on r itself (grant_or_reject: no spilling).
func (c *testCluster) holdAt(r *raylet.Raylet, job []byte, n int) [][]byte {
	c.t.Helper()
	var leases [][]byte
	for range n {
		req := cpuLease(job, 1)
		req.GrantOrReject = true
		reply, at, err := c.lease(testCtx(c.t), r.Address(), req)
		if err != nil || at != r.Address() || len(reply.GetLeaseId()) == 0 {
			c.t.Fatalf("lease at %s: %v at %s, %v", r.Address(), reply, at, err)
		}
		leases = append(leases, reply.GetLeaseId())
	}
	return leases
}

func (c *testCluster) giveBack(r *raylet.Raylet, leases [][]byte) {
	c.t.Helper()
	for _, l := range leases {
		if _, err := c.daemon(r.Address()).ReturnLease(testCtx(c.t), &pb.ReturnLeaseRequest{LeaseId: l}); err != nil {
			c.t.Fatal(err)
		}
	}
}

// TestQueuedLeaseSpillsToNodeThatFrees: requests queued at a busy node move
// to another node as soon as it has room, instead of waiting for the busy
// node (before, a spilled-back request queued at a node that had filled up
// meanwhile waited there for as long as that node stayed full).
func TestQueuedLeaseSpillsToNodeThatFrees(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 2}, resources.Set{"CPU": 2})
	a, b := c.nodes[0], c.nodes[1]
	job := c.registerJob()
	c.holdAt(a, job, 2)
	atB := c.holdAt(b, job, 2)

	type result struct {
		reply *pb.LeaseReply
		at    string
		err   error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			req := cpuLease(job, 1)
			req.GrantOrReject = true // spilled here, as a stale view would
			reply, at, err := c.lease(testCtx(t), a.Address(), req)
			results <- result{reply, at, err}
		}()
	}
	eventually(t, "two requests queued at the first node", func() bool {
		return len(c.controlStoreView()[a.Address()].GetPendingDemands()) == 2
	})
	c.giveBack(b, atB)
	for range 2 {
		r := <-results
		if r.err != nil || len(r.reply.GetLeaseId()) == 0 || r.at != b.Address() {
			t.Fatalf("queued request: %v at %s, %v; want a lease on the node that freed (%s)", r.reply, r.at, r.err, b.Address())
		}
	}
}

// TestLeaseSeesANodeThatJustJoined: a request that would wait at a full
// node looks at the cluster again first, so a node that joined since the
// node's last heartbeat takes it (before, it waited at the full node until
// the next refresh of the view; here, with heartbeats an hour apart, for
// ever).
func TestLeaseSeesANodeThatJustJoined(t *testing.T) {
	slow := func(rc *raylet.Config) { rc.HeartbeatPeriod = time.Hour }
	c := startClusterWith(t, slow, resources.Set{"CPU": 1})
	a := c.nodes[0]
	job := c.registerJob()
	c.holdAt(a, job, 1)
	// The first node's view is from its start, well over viewFreshness
	// (100 ms) ago by now: it has started a worker since.
	b := c.addNode(resources.Set{"CPU": 1})
	reply, at, err := c.lease(testCtx(t), a.Address(), cpuLease(job, 1))
	if err != nil || len(reply.GetLeaseId()) == 0 || at != b.Address() {
		t.Fatalf("lease: %v at %s, %v; want a lease on the node that joined (%s)", reply, at, err, b.Address())
	}
}

// waitActor polls the control store until the actor is in state.
func waitActor(t *testing.T, c pb.ControlStoreClient, id []byte, state pb.ActorState) *pb.ActorInfo {
	t.Helper()
	var info *pb.ActorInfo
	eventually(t, "actor "+state.String(), func() bool {
		r, err := c.GetActor(testCtx(t), &pb.GetActorRequest{ActorId: id})
		info = r.GetActor()
		return err == nil && info.GetState() == state
	})
	return info
}

func actorSpec(job []byte, res map[string]float64) *pb.ActorInfo {
	return &pb.ActorInfo{
		ActorId: ids.New().Bytes(), JobId: job, ClassName: "A", MaxRestarts: 1,
		Creation: &pb.TaskSpec{TaskId: ids.New().Bytes(), JobId: job, Function: "A", ActorCreation: true,
			Resources: &pb.Resources{Amounts: res}},
	}
}

// TestActorsPlacedOnAnyNodeWithRoom reproduces a report: on two nodes of 2
// CPUs each, four tasks running, then four 1-CPU actors: when the tasks
// ended, two actors stayed PENDING_CREATION while a node had 2 CPUs free
// (the control store had queued all four at one node, which never looked
// again). Then every actor's worker is killed: all four restart, on
// whichever node has room.
func TestActorsPlacedOnAnyNodeWithRoom(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 2}, resources.Set{"CPU": 2})
	job := c.registerJob()
	held := map[*raylet.Raylet][][]byte{}
	for _, n := range c.nodes {
		held[n] = c.holdAt(n, job, 2)
	}
	eventually(t, "the control store to see both nodes full", func() bool {
		for _, n := range c.controlStoreView() {
			if n.GetAvailable().GetAmounts()["CPU"] != 0 {
				return false
			}
		}
		return true
	})
	var actors [][]byte
	for range 4 {
		r, err := c.gcs.CreateActor(testCtx(t), &pb.CreateActorRequest{Actor: actorSpec(job, map[string]float64{"CPU": 1})})
		if err != nil {
			t.Fatal(err)
		}
		actors = append(actors, r.GetActor().GetActorId())
	}
	for n, l := range held { // the tasks end
		c.giveBack(n, l)
	}
	perNode := map[string]int{}
	var infos []*pb.ActorInfo
	for _, id := range actors {
		info := waitActor(t, c.gcs, id, gcs.StateAlive)
		perNode[string(info.GetNodeId())]++
		infos = append(infos, info)
	}
	if len(perNode) != 2 {
		t.Fatalf("actors per node = %v, want two on each", perNode)
	}

	// Worker kills: every actor restarts, wherever there is room.
	for _, info := range infos {
		for _, n := range c.nodes {
			if string(info.GetNodeId()) == string(n.NodeID().Bytes()) {
				if _, err := c.daemon(n.Address()).KillWorker(testCtx(t), &pb.KillWorkerRequest{WorkerId: info.GetWorkerId(), Reason: "test"}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, id := range actors {
		eventually(t, "the actor to restart", func() bool {
			r, err := c.gcs.GetActor(testCtx(t), &pb.GetActorRequest{ActorId: id})
			return err == nil && r.GetActor().GetState() == gcs.StateAlive && r.GetActor().GetNumRestarts() == 1
		})
	}
}

// TestInfeasibleLeaseRequests: a request no node can hold fails at once only
// when asked to (fail_if_infeasible); by default the reply says so without
// failing; with queue_if_infeasible it waits, reported as an infeasible
// demand, until a node that can hold it joins, and is then spilled there.
func TestInfeasibleLeaseRequests(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 2})
	head := c.nodes[0]
	job := c.registerJob()
	ctx := testCtx(t)
	big := func() *pb.LeaseRequest {
		r := cpuLease(job, 4)
		r.SchedulingKey = "f"
		r.RequestId = ids.New().Bytes()
		return r
	}

	reply, err := c.daemon(head.Address()).RequestLease(ctx, big())
	var ie *errs.InfeasibleError
	if err != nil || len(reply.GetLeaseId()) != 0 || !errors.As(errs.FromInfo(reply.GetInfeasible()), &ie) ||
		ie.Function != "f" || ie.Request != "{CPU: 4}" || !strings.Contains(ie.Cluster, "CPU: 2") {
		t.Fatalf("default: reply %v, %v; want no lease and an infeasible notice with the request and the cluster", reply, err)
	}

	req := big()
	req.FailIfInfeasible = true
	if _, err := c.daemon(head.Address()).RequestLease(ctx, req); !errors.As(err, &ie) {
		t.Fatalf("fail_if_infeasible: err = %v, want *InfeasibleError", err)
	}
	req.QueueIfInfeasible = true
	if _, err := c.daemon(head.Address()).RequestLease(ctx, req); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("both flags: err = %v, want ErrInvalidRequest", err)
	}

	// Queued, reported, and withdrawn with CancelLease.
	queued := big()
	queued.QueueIfInfeasible = true
	done := make(chan *pb.LeaseReply, 1)
	go func() {
		r, err := c.daemon(head.Address()).RequestLease(ctx, queued)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	eventually(t, "the infeasible demand to be reported", func() bool {
		n := c.controlStoreView()[head.Address()]
		d := n.GetInfeasibleDemands()
		return len(d) == 1 && d[0].GetAmounts()["CPU"] == 4 && len(n.GetPendingDemands()) == 0
	})
	cr, err := c.daemon(head.Address()).CancelLease(ctx, &pb.CancelLeaseRequest{RequestId: queued.GetRequestId()})
	if err != nil || !cr.GetFound() {
		t.Fatalf("CancelLease = %v, %v", cr, err)
	}
	if r := <-done; !r.GetCanceled() || len(r.GetLeaseId()) != 0 {
		t.Fatalf("cancelled request's reply = %v, want canceled", r)
	}
	if cr, _ := c.daemon(head.Address()).CancelLease(ctx, &pb.CancelLeaseRequest{RequestId: queued.GetRequestId()}); cr.GetFound() {
		t.Fatal("CancelLease found a request that was answered already")
	}

	// Queued again; a node that can hold it joins and gets it.
	queued = big()
	queued.QueueIfInfeasible = true
	type result struct {
		reply *pb.LeaseReply
		at    string
		err   error
	}
	res := make(chan result, 1)
	go func() {
		r, at, err := c.lease(ctx, head.Address(), queued)
		res <- result{r, at, err}
	}()
	eventually(t, "the request to be queued as infeasible", func() bool {
		return len(c.controlStoreView()[head.Address()].GetInfeasibleDemands()) == 1
	})
	bigNode := c.addNode(resources.Set{"CPU": 4})
	r := <-res
	if r.err != nil || len(r.reply.GetLeaseId()) == 0 || r.at != bigNode.Address() {
		t.Fatalf("infeasible request after a 4-CPU node joined: %v at %s, %v; want a lease at %s", r.reply, r.at, r.err, bigNode.Address())
	}
	eventually(t, "the infeasible demand to clear", func() bool {
		return len(c.controlStoreView()[head.Address()].GetInfeasibleDemands()) == 0
	})
}

// TestInfeasibleActorPlacedWhenNodeJoins: an actor too big for every node
// stays PENDING_CREATION (with ActorInfo.infeasible) and is placed on a node
// that can hold it as soon as one joins.
func TestInfeasibleActorPlacedWhenNodeJoins(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 1})
	job := c.registerJob()
	r, err := c.gcs.CreateActor(testCtx(t), &pb.CreateActorRequest{Actor: actorSpec(job, map[string]float64{"CPU": 2})})
	if err != nil {
		t.Fatal(err)
	}
	id := r.GetActor().GetActorId()
	eventually(t, "the actor to be marked infeasible", func() bool {
		r, err := c.gcs.GetActor(testCtx(t), &pb.GetActorRequest{ActorId: id})
		return err == nil && r.GetActor().GetInfeasible() != nil
	})
	big := c.addNode(resources.Set{"CPU": 2})
	info := waitActor(t, c.gcs, id, gcs.StateAlive)
	if string(info.GetNodeId()) != string(big.NodeID().Bytes()) || info.GetInfeasible() != nil {
		t.Fatalf("actor = %v, want ALIVE on the node that joined", info)
	}
}

// TestDefaultActorNeedsACPUToPlace: an actor that asks for nothing is placed
// only where 1 CPU is available, and holds none while it runs (Ray's rule):
// a 0-CPU cluster cannot place it; a node with one free CPU can, and keeps
// the CPU free.
func TestDefaultActorNeedsACPUToPlace(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 0})
	job := c.registerJob()
	r, err := c.gcs.CreateActor(testCtx(t), &pb.CreateActorRequest{Actor: actorSpec(job, nil)})
	if err != nil {
		t.Fatal(err)
	}
	id := r.GetActor().GetActorId()
	eventually(t, "the default actor to wait on a 0-CPU cluster", func() bool {
		r, err := c.gcs.GetActor(testCtx(t), &pb.GetActorRequest{ActorId: id})
		return err == nil && r.GetActor().GetInfeasible() != nil && r.GetActor().GetState() == gcs.StatePending
	})
	one := c.addNode(resources.Set{"CPU": 1})
	info := waitActor(t, c.gcs, id, gcs.StateAlive)
	if string(info.GetNodeId()) != string(one.NodeID().Bytes()) {
		t.Fatalf("default actor placed on %x, want the 1-CPU node", info.GetNodeId())
	}
	if got := c.available(one)["CPU"]; got != 1 {
		t.Fatalf("the 1-CPU node has %v CPU available with a default actor on it, want 1 (it holds none)", got)
	}

	// With that CPU leased, another default actor waits for it.
	held := c.holdAt(one, job, 1)
	r, err = c.gcs.CreateActor(testCtx(t), &pb.CreateActorRequest{Actor: actorSpec(job, nil)})
	if err != nil {
		t.Fatal(err)
	}
	second := r.GetActor().GetActorId()
	eventually(t, "the second actor's placement to queue", func() bool {
		return len(c.controlStoreView()[one.Address()].GetPendingDemands()) == 1
	})
	if g, _ := c.gcs.GetActor(testCtx(t), &pb.GetActorRequest{ActorId: second}); g.GetActor().GetState() != gcs.StatePending {
		t.Fatalf("default actor placed with no CPU available: %v", g.GetActor())
	}
	c.giveBack(one, held)
	waitActor(t, c.gcs, second, gcs.StateAlive)
}

// TestWithdrawnLeaseHoldsNothing: a lease request withdrawn with
// CancelLease, or abandoned by its caller, leaves nothing held, whether it
// was queued, being granted (its worker starting), or granted already (its
// reply possibly lost in transit).
func TestWithdrawnLeaseHoldsNothing(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 2, "GPU": 1})
	head := c.nodes[0]
	d := c.daemon(head.Address())
	job := c.registerJob(envRegisterDelay + "=300ms")
	// A first lease (of a GPU worker, which a CPU lease cannot reuse)
	// caches the job's binary and warms the connection.
	gpu := &pb.LeaseRequest{JobId: job, Resources: &pb.Resources{Amounts: map[string]float64{"GPU": 1}}, OwnerId: ids.New().Bytes()}
	reply, err := d.RequestLease(testCtx(t), gpu)
	if err != nil {
		t.Fatal(err)
	}
	c.giveBack(head, [][]byte{reply.GetLeaseId()})
	cpuBack := func() bool { return c.available(head)["CPU"] == 2 }

	// Being granted: its worker takes about 300 ms to register.
	req := cpuLease(job, 1)
	req.RequestId = ids.New().Bytes()
	done := make(chan *pb.LeaseReply, 1)
	go func() {
		r, err := d.RequestLease(testCtx(t), req)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	eventually(t, "the grant to take a CPU", func() bool { return c.available(head)["CPU"] == 1 })
	if r, err := d.CancelLease(testCtx(t), &pb.CancelLeaseRequest{RequestId: req.GetRequestId()}); err != nil || !r.GetFound() {
		t.Fatalf("CancelLease while granting = %v, %v", r, err)
	}
	if r := <-done; !r.GetCanceled() || len(r.GetLeaseId()) != 0 {
		t.Fatalf("withdrawn request's reply = %v, want canceled", r)
	}
	eventually(t, "the withdrawn grant's CPU to come back", cpuBack)

	// Granted already: the caller gave up as the reply was on its way and
	// withdraws it; the daemon gives the lease back.
	req = cpuLease(job, 1)
	req.RequestId = ids.New().Bytes()
	if r, err := d.RequestLease(testCtx(t), req); err != nil || len(r.GetLeaseId()) == 0 {
		t.Fatalf("RequestLease = %v, %v", r, err)
	}
	if r, err := d.CancelLease(testCtx(t), &pb.CancelLeaseRequest{RequestId: req.GetRequestId()}); err != nil || !r.GetFound() {
		t.Fatalf("CancelLease of a granted request = %v, %v", r, err)
	}
	eventually(t, "the granted lease's CPU to come back", cpuBack)

	// Abandoned while its worker starts (a new one: the idle one is taken).
	hold := c.holdAt(head, job, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.RequestLease(ctx, cpuLease(job, 1)); !errors.Is(err, context.DeadlineExceeded) && status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("RequestLease = %v, want the caller's deadline to pass while the worker starts", err)
	}
	c.giveBack(head, hold)
	eventually(t, "the abandoned lease's CPU to come back", cpuBack)
}

// TestRandomFractionalLeasesReturnToTotals runs hundreds of lease requests
// with random fractional CPU, GPU and custom amounts, some abandoned while
// waiting or while their worker starts, and checks that the node's
// available resources come back to its totals exactly.
func TestRandomFractionalLeasesReturnToTotals(t *testing.T) {
	total := resources.Set{"CPU": 2, "GPU": 2, "widget": 3}
	c := startCluster(t, total)
	head := c.nodes[0]
	job := c.registerJob()
	rng := rand.New(rand.NewSource(7))
	fractions := []float64{0, 0.1, 0.2, 0.25, 1.0 / 3, 0.5, 0.7, 1}
	type plan struct {
		res     map[string]float64
		abandon time.Duration
	}
	plans := make(chan plan, 300)
	for range cap(plans) {
		p := plan{res: map[string]float64{
			"CPU":    fractions[1+rng.Intn(len(fractions)-1)],
			"GPU":    fractions[rng.Intn(len(fractions))],
			"widget": fractions[rng.Intn(len(fractions))] * float64(1+rng.Intn(2)) / 2,
		}}
		if rng.Intn(4) == 0 {
			p.abandon = time.Duration(rng.Intn(20)) * time.Millisecond
		}
		plans <- p
	}
	close(plans)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for p := range plans {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if p.abandon > 0 {
					ctx, cancel = context.WithTimeout(context.Background(), p.abandon)
				}
				req := &pb.LeaseRequest{JobId: job, Resources: &pb.Resources{Amounts: p.res}, SchedulingKey: "f",
					OwnerId: ids.New().Bytes(), RequestId: ids.New().Bytes()}
				reply, err := c.daemon(head.Address()).RequestLease(ctx, req)
				cancel()
				switch {
				case err == nil && len(reply.GetLeaseId()) > 0:
					_, _ = c.daemon(head.Address()).ReturnLease(testCtx(t), &pb.ReturnLeaseRequest{LeaseId: reply.GetLeaseId()})
				case p.abandon == 0:
					t.Errorf("lease %v: %v, %v", p.res, reply, err)
				default:
					// Abandoned with no reply seen: withdraw it, as the
					// contract asks (a grant may have been lost in transit).
					_, _ = c.daemon(head.Address()).CancelLease(testCtx(t), &pb.CancelLeaseRequest{RequestId: req.GetRequestId()})
				}
			}
		})
	}
	wg.Wait()
	want := resources.NewNodeResources(total, nil).Total()
	eventually(t, "available resources to return to the totals exactly", func() bool {
		return reflect.DeepEqual(resources.Set(c.available(head)), want)
	})
}

// TestSpreadAlternatesNodes: SPREAD lease requests at one node go to each
// node in turn, also when each request first refreshes a stale view (a
// request looked at twice once moved a shared round robin twice, and every
// such request landed on the same node).
func TestSpreadAlternatesNodes(t *testing.T) {
	slow := func(rc *raylet.Config) { rc.HeartbeatPeriod = time.Hour }
	c := startClusterWith(t, slow, resources.Set{"CPU": 4}, resources.Set{"CPU": 4})
	a := c.nodes[0]
	job := c.registerJob()
	seen := map[string]int{}
	for range 4 {
		// Older than viewFreshness: each request refreshes the view first.
		time.Sleep(150 * time.Millisecond)
		req := cpuLease(job, 1)
		req.Strategy = pb.SchedulingStrategy_SCHEDULING_STRATEGY_SPREAD
		reply, at, err := c.lease(testCtx(t), a.Address(), req)
		if err != nil || len(reply.GetLeaseId()) == 0 {
			t.Fatalf("spread lease: %v, %v", reply, err)
		}
		seen[at]++
	}
	if len(seen) != 2 || seen[a.Address()] != 2 {
		t.Fatalf("spread leases per node %v, want two on each", seen)
	}
}

// BenchmarkLeaseSpillback measures a lease asked of a full node and
// granted by the node it spills back to (an idle worker there, given back
// each time): the ask, the spillback answer, the ask there and the grant.
// It reports the p50 and p99 of one such round in µs. The other node has
// 64 CPUs: a spillback takes the room it used from the spiller's view of
// the target until the target reports again, and with room to spare the
// rounds follow each other at once, as in a busy cluster ("cold" pauses
// 250 ms before each round instead: every call wakes sleeping threads).
//
//	go test ./internal/raylet -run XXX -bench LeaseSpillback -benchtime 2000x
func BenchmarkLeaseSpillback(b *testing.B) {
	for _, cold := range []bool{false, true} {
		name := "busy"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			c := startCluster(b, resources.Set{"CPU": 1}, resources.Set{"CPU": 64})
			a, other := c.nodes[0], c.nodes[1]
			job := c.registerJob()
			held := c.holdAt(a, job, 1) // a is full: every request there spills to other
			defer c.giveBack(a, held)
			ctx := context.Background()
			lease := func() time.Duration {
				start := time.Now()
				reply, at, err := c.lease(ctx, a.Address(), cpuLease(job, 1))
				d := time.Since(start)
				if err != nil || at != other.Address() {
					b.Fatalf("lease: %v at %s, %v", reply, at, err)
				}
				c.giveBack(other, [][]byte{reply.GetLeaseId()})
				return d
			}
			eventually(b, "the full node's view of the other", func() bool {
				reply, at, err := c.lease(ctx, a.Address(), cpuLease(job, 1))
				if err == nil && at == other.Address() {
					c.giveBack(other, [][]byte{reply.GetLeaseId()})
					return true
				}
				return false
			})
			b.ResetTimer()
			times := make([]time.Duration, 0, b.N)
			for range b.N {
				if cold {
					b.StopTimer()
					time.Sleep(250 * time.Millisecond)
					b.StartTimer()
				}
				times = append(times, lease())
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// TestLeasesShareTheirOwnersFate: a node stops the workers leased by a
// process the control store says died (FreeOwned's dead owners), and
// those leased by processes of a node that died (the view's dead
// nodes), and drops such owners' queued requests; others' leases stay.
func TestLeasesShareTheirOwnersFate(t *testing.T) {
	c := startCluster(t, resources.Set{"CPU": 3})
	head := c.nodes[0]
	d := c.daemon(head.Address())
	job := c.registerJob()
	grant := func(owner, ownerNode ids.ID) {
		t.Helper()
		req := cpuLease(job, 1)
		req.OwnerId, req.OwnerNodeId = owner.Bytes(), ownerNode.Bytes()
		if r, err := d.RequestLease(testCtx(t), req); err != nil || len(r.GetLeaseId()) == 0 {
			t.Fatalf("RequestLease = %v, %v", r, err)
		}
	}
	other := c.addNode(resources.Set{"elsewhere": 1}) // where the third owner runs; it will stop
	deadOwner, liveOwner, goneNode := ids.New(), ids.New(), other.NodeID()
	grant(deadOwner, ids.New())
	grant(liveOwner, ids.New())
	grant(ids.New(), goneNode)
	if got := c.available(head)["CPU"]; got != 0 {
		t.Fatalf("three leases of 1 CPU on 3: %v CPU available", got)
	}
	queued := make(chan error, 1)
	go func() {
		req := cpuLease(job, 1)
		req.OwnerId = deadOwner.Bytes()
		_, err := d.RequestLease(testCtx(t), req)
		queued <- err
	}()
	eventually(t, "the dead owner's request to queue", func() bool {
		return len(c.controlStoreView()[head.Address()].GetPendingDemands()) == 1
	})

	if _, err := d.FreeOwned(testCtx(t), &pb.FreeOwnedRequest{DeadOwnerIds: [][]byte{deadOwner.Bytes()}}); err != nil {
		t.Fatal(err)
	}
	if err := <-queued; err == nil || !strings.Contains(err.Error(), "died") {
		t.Fatalf("the dead owner's queued request: %v, want it dropped", err)
	}
	eventually(t, "the dead owner's lease to go", func() bool { return c.available(head)["CPU"] == 1 })

	// A node the view reports dead: the lease its process holds goes.
	other.Stop() // unregisters: the control store marks it dead
	eventually(t, "the lease of the dead node's process to go", func() bool { return c.available(head)["CPU"] == 2 })
	time.Sleep(300 * time.Millisecond)
	if got := c.available(head)["CPU"]; got != 2 {
		t.Fatalf("%v CPU available; want the live owner's lease kept", got)
	}
}
