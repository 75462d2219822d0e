package tasksubmit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

func TestClassKey(t *testing.T) {
	def := Placement{}
	spread := Placement{Strategy: pb.SchedulingStrategy_SCHEDULING_STRATEGY_SPREAD}
	node := func(id byte, soft bool) Placement {
		return Placement{Strategy: pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY,
			Options: &pb.SchedulingOptions{NodeId: []byte{id}, Soft: soft}}
	}
	labels := func(ms ...*pb.LabelMatch) Placement { return Placement{Options: &pb.SchedulingOptions{Labels: ms}} }
	zone := func(v string) *pb.LabelMatch { return &pb.LabelMatch{Key: "zone", Values: []string{v}} }
	cases := []struct {
		name string
		a, b string
		same bool
	}{
		{"order of resources does not matter",
			ClassKey(resources.Set{"CPU": 1, "GPU": 0.5}, def, true), ClassKey(resources.Set{"GPU": 0.5, "CPU": 1}, def, true), true},
		{"zero amounts are dropped",
			ClassKey(resources.Set{"CPU": 1, "GPU": 0}, def, true), ClassKey(resources.Set{"CPU": 1}, def, true), true},
		{"amounts differ", ClassKey(resources.Set{"CPU": 1}, def, true), ClassKey(resources.Set{"CPU": 2}, def, true), false},
		{"strategies differ", ClassKey(resources.Set{"CPU": 1}, def, true), ClassKey(resources.Set{"CPU": 1}, spread, true), false},
		{"retriable differs", ClassKey(resources.Set{"CPU": 1}, def, true), ClassKey(resources.Set{"CPU": 1}, def, false), false},
		{"custom resources count", ClassKey(resources.Set{"CPU": 1, "disk": 1}, def, true), ClassKey(resources.Set{"CPU": 1}, def, true), false},
		{"affinity nodes differ", ClassKey(cpu1, node(1, false), true), ClassKey(cpu1, node(2, false), true), false},
		{"hard and soft affinity differ", ClassKey(cpu1, node(1, false), true), ClassKey(cpu1, node(1, true), true), false},
		{"same affinity", ClassKey(cpu1, node(1, true), true), ClassKey(cpu1, node(1, true), true), true},
		{"label selectors differ", ClassKey(cpu1, labels(zone("a")), true), ClassKey(cpu1, labels(zone("b")), true), false},
		{"a selector is not none", ClassKey(cpu1, labels(zone("a")), true), ClassKey(cpu1, def, true), false},
		{"empty options are none", ClassKey(cpu1, Placement{Options: &pb.SchedulingOptions{}}, true), ClassKey(cpu1, def, true), true},
		{"required and preferred differ", ClassKey(cpu1, labels(zone("a")), true),
			ClassKey(cpu1, Placement{Options: &pb.SchedulingOptions{PreferLabels: []*pb.LabelMatch{zone("a")}}}, true), false},
	}
	for _, c := range cases {
		if (c.a == c.b) != c.same {
			t.Errorf("%s: %q vs %q: same = %v, want %v", c.name, c.a, c.b, c.a == c.b, c.same)
		}
	}
}

// TestSubmitRunsTasksOnALease: tasks go to a worker leased from the local
// node daemon with the class's request; the lease goes back once idle,
// and a later task asks for a new one.
func TestSubmitRunsTasksOnALease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{})
		ts := tasks(3, "f", taskmgr.Policy{MaxRetries: 3})
		w.submit(t, ts...)
		w.waitDone(t, ts...)
		for i, x := range ts {
			r := w.r.get(x)
			if len(r.replies) != 1 || len(r.failures) != 0 || ids.MustFromBytes(r.replies[0].GetTaskId()) != x.ID {
				t.Fatalf("task %d: replies %v, failures %v", i, r.replies, r.failures)
			}
		}

		req := w.c.requestList()[0]
		if req.raylet != "raylet-1" || string(req.req.GetJobId()) != "job-1" || req.req.GetSchedulingKey() != w.key ||
			req.req.GetResources().GetAmounts()["CPU"] != 1 || !req.req.GetRetriable() || req.req.GetGrantOrReject() ||
			len(req.req.GetOwnerId()) != ids.Size {
			t.Fatalf("lease request to %s: %v", req.raylet, req.req)
		}
		ran := 0
		for _, wk := range w.c.workerList() {
			for _, b := range wk.batchList() {
				c := b.GetCommon()
				if string(c.GetJobId()) != "job-1" || c.GetOwnerAddress() != "owner:1" || len(c.GetOwnerId()) != ids.Size ||
					c.GetResources().GetAmounts()["CPU"] != 1 {
					t.Fatalf("batch common fields: %v", c)
				}
			}
			ran += len(wk.ranIDs())
		}
		if ran != 3 {
			t.Fatalf("workers ran %d tasks, want 3", ran)
		}

		// Idle, the lease goes back (not as a dying worker), and the
		// worker's stream ends normally.
		w.waitFor(t, "the idle lease to go back", func() bool { return w.c.held() == 0 && w.s.Stats().PendingLeases == 0 })
		for _, rc := range w.c.returnList() {
			if rc.exiting || rc.raylet != "raylet-1" {
				t.Fatalf("lease returned to %s with exiting=%v", rc.raylet, rc.exiting)
			}
		}
		synctest.Wait()
		for _, wk := range w.c.workerList() {
			if wk.in == nil {
				continue // granted, never dialed
			}
			wk.mu.Lock()
			closed := wk.inClosed
			wk.mu.Unlock()
			if !closed {
				t.Fatalf("%s: its stream was not closed for sending", wk.addr)
			}
		}
		if st := w.s.Stats(); st != (Stats{Classes: 1}) {
			t.Fatalf("Stats after the lease went back: %+v", st)
		}

		// The submitter was idle; more work wakes it.
		before := w.c.nRequests()
		more := task("f", taskmgr.Policy{MaxRetries: 3})
		w.submit(t, more)
		w.waitDone(t, more)
		if w.c.nRequests() <= before {
			t.Fatal("no new lease requested for work after the lease went back")
		}
	})
}

// TestSpillback: a node daemon that sends the request elsewhere is
// followed, and the other node is asked to grant or reject.
func TestSpillback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 0, Config{})
		w.c.mu.Lock()
		w.c.nodes["raylet-1"].spillTo = "raylet-2"
		w.c.mu.Unlock()
		w.c.addNode("raylet-2", 1)
		x := task("f", taskmgr.Policy{})
		w.submit(t, x)
		w.waitDone(t, x)
		reqs := w.c.requestList()
		if len(reqs) < 2 || reqs[0].raylet != "raylet-1" || reqs[0].req.GetGrantOrReject() ||
			reqs[1].raylet != "raylet-2" || !reqs[1].req.GetGrantOrReject() {
			t.Fatalf("requests: %v", reqs)
		}
		a, b := reqs[0].req, reqs[1].req
		if b.GetSchedulingKey() != a.GetSchedulingKey() || string(b.GetJobId()) != string(a.GetJobId()) ||
			string(b.GetOwnerId()) != string(a.GetOwnerId()) || b.GetRetriable() != a.GetRetriable() ||
			b.GetResources().GetAmounts()["CPU"] != 1 || b.GetStrategy() != a.GetStrategy() {
			t.Fatalf("spilled request %v differs from %v", b, a)
		}
		w.waitFor(t, "the lease to go back", func() bool { return w.c.held() == 0 && w.s.Stats().PendingLeases == 0 })
		if rc := w.c.returnList(); len(rc) != 1 || rc[0].raylet != "raylet-2" {
			t.Fatalf("returns: %+v, want one to raylet-2", rc)
		}
	})
}

// unavailable is the error of a node daemon that cannot be reached.
func unavailable(what string) error { return fmt.Errorf("%w: %s", errs.ErrUnavailable, what) }

// TestLeaseRetriesWhileUnavailable: an unreachable daemon is asked again
// after a pause; after a spillback, the retry starts over at the local
// daemon. Past the retry limit the queued tasks fail.
func TestLeaseRetriesWhileUnavailable(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 0, Config{})
			w.c.mu.Lock()
			w.c.nodes["raylet-1"].spillTo = "raylet-2"
			failedOnce := false
			w.c.leaseHook = func(_ context.Context, _ int, raylet string, _ *pb.LeaseRequest) (*pb.LeaseReply, error, bool) {
				w.c.mu.Lock()
				defer w.c.mu.Unlock()
				if raylet == "raylet-2" && !failedOnce {
					failedOnce = true
					return nil, unavailable("raylet-2"), true
				}
				return nil, nil, false
			}
			w.c.mu.Unlock()
			w.c.addNode("raylet-2", 1)
			x := task("f", taskmgr.Policy{})
			w.submit(t, x)
			w.waitDone(t, x)
			var got []string
			for _, r := range w.c.requestList() {
				got = append(got, fmt.Sprintf("%s/%v", r.raylet, r.req.GetGrantOrReject()))
			}
			want := []string{"raylet-1/false", "raylet-2/true", "raylet-1/false", "raylet-2/true"}
			if !slices.Equal(got, want) {
				t.Fatalf("requests %v, want %v", got, want)
			}
			if r := w.r.get(x); len(r.failures) != 0 {
				t.Fatalf("failures: %v", r.failures)
			}
		})
	})
	t.Run("gives up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1, Config{})
			w.c.mu.Lock()
			w.c.leaseHook = func(context.Context, int, string, *pb.LeaseRequest) (*pb.LeaseReply, error, bool) {
				return nil, unavailable("raylet-1"), true
			}
			w.c.mu.Unlock()
			x := task("f", taskmgr.Policy{MaxRetries: 5})
			w.submit(t, x)
			w.waitDone(t, x)
			r := w.r.get(x)
			if len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseFatal || r.final.GetKind() != errs.KindUnavailable {
				t.Fatalf("failures %+v, final %v", r.failures, r.final)
			}
			if n := w.c.nRequests(); n != 51 {
				t.Fatalf("%d lease requests before giving up, want 51", n)
			}
		})
	})
}

// TestLeaseErrorFailsQueuedTasks: a lease request that can never succeed
// fails the class's queued tasks.
func TestLeaseErrorFailsQueuedTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{})
		w.c.mu.Lock()
		w.c.leaseHook = func(context.Context, int, string, *pb.LeaseRequest) (*pb.LeaseReply, error, bool) {
			return nil, errs.Invalidf("raylet: bad request"), true
		}
		w.c.mu.Unlock()
		ts := tasks(2, "f", taskmgr.Policy{MaxRetries: 3})
		w.submit(t, ts...)
		w.waitDone(t, ts...)
		for _, x := range ts {
			r := w.r.get(x)
			if len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseFatal || !errors.Is(errs.FromInfo(r.final), errs.ErrInvalidRequest) {
				t.Fatalf("failures %+v, final %v", r.failures, r.final)
			}
		}
		synctest.Wait()
		if st := w.s.Stats(); st.PendingLeases != 0 {
			t.Fatalf("lease requests left: %+v", st)
		}
	})
}

// TestInfeasibleWaits: a request no node can satisfy is answered so at
// once; the submitter warns once and asks again to wait
// (queue_if_infeasible), and the tasks run when a node that fits joins.
func TestInfeasibleWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var warnings []string
		w := newWorld(t, 1, Config{Warn: func(m string) { mu.Lock(); warnings = append(warnings, m); mu.Unlock() }})
		w.c.setInfeasible(true)
		ts := tasks(2, "f", taskmgr.Policy{})
		w.submit(t, ts...)
		w.waitFor(t, "the requests to be asked again to wait", func() bool {
			n := 0
			for _, r := range w.c.requestList() {
				if r.req.GetQueueIfInfeasible() {
					n++
				}
			}
			return n == 2
		})
		synctest.Wait()
		if w.r.done(ts[0]) || w.r.done(ts[1]) {
			t.Fatal("an infeasible task ended; it should wait")
		}
		if st := w.s.Stats(); st.Queued != 2 || st.PendingLeases != 2 {
			t.Fatalf("Stats while infeasible: %+v", st)
		}
		for _, r := range w.c.requestList() {
			if r.req.GetFailIfInfeasible() {
				t.Fatalf("request with fail_if_infeasible: %v", r.req)
			}
		}
		mu.Lock()
		if len(warnings) != 1 || !strings.Contains(warnings[0], "CPU=64") {
			t.Fatalf("warnings: %q, want one naming the request", warnings)
		}
		mu.Unlock()

		w.c.setInfeasible(false) // a node that fits joined
		w.waitDone(t, ts...)
		for _, x := range ts {
			if r := w.r.get(x); len(r.replies) != 1 || len(r.failures) != 0 {
				t.Fatalf("task after the node joined: %+v", r)
			}
		}
		if n := w.c.nRequests(); n != 4 {
			t.Fatalf("%d lease requests, want 4 (each asked twice)", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(warnings) != 1 {
			t.Fatalf("%d warnings, want 1", len(warnings))
		}
	})
}

// TestInfeasibleFailFast: with FailIfInfeasible the requests say so and
// the queued tasks fail at once with an InfeasibleError naming the
// function.
func TestInfeasibleFailFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{FailIfInfeasible: true})
		w.c.setInfeasible(true)
		x := task("big", taskmgr.Policy{MaxRetries: 3})
		w.submit(t, x)
		w.waitDone(t, x)
		r := w.r.get(x)
		var ie *errs.InfeasibleError
		if len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseFatal || !errors.As(errs.FromInfo(r.final), &ie) ||
			ie.Function != "big" || ie.Request != "CPU=64" {
			t.Fatalf("failures %+v, final %v", r.failures, r.final)
		}
		if req := w.c.requestList()[0].req; !req.GetFailIfInfeasible() || req.GetQueueIfInfeasible() {
			t.Fatalf("request: %v", req)
		}
	})
}

// TestCanceledReplyAsksAgain: a request the daemon answers as withdrawn
// while work still waits is asked again.
func TestCanceledReplyAsksAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{})
		w.c.mu.Lock()
		w.c.leaseHook = func(_ context.Context, n int, _ string, _ *pb.LeaseRequest) (*pb.LeaseReply, error, bool) {
			if n == 1 {
				return &pb.LeaseReply{Canceled: true}, nil, true
			}
			return nil, nil, false
		}
		w.c.mu.Unlock()
		x := task("f", taskmgr.Policy{})
		w.submit(t, x)
		w.waitDone(t, x)
		if n := w.c.nRequests(); n != 2 {
			t.Fatalf("%d requests, want 2", n)
		}
	})
}

// TestCancelQueuedStopsLeaseRequests: a queued task cancelled leaves the
// queue, and lease requests nothing waits for any more are withdrawn once
// the grace for work coming back has passed.
func TestCancelQueuedStopsLeaseRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 0, Config{}) // no free CPU: requests wait
		a, b := task("f", taskmgr.Policy{}), task("f", taskmgr.Policy{})
		w.submit(t, a, b)
		w.waitFor(t, "two lease requests", func() bool { return w.c.nRequests() == 2 })
		if where, err := w.s.Cancel(context.Background(), a, false, true); where != taskmgr.Queued || err != nil {
			t.Fatalf("Cancel(queued) = %v, %v", where, err)
		}
		if where, _ := w.s.Cancel(context.Background(), a, false, true); where != taskmgr.Unknown {
			t.Fatalf("Cancel of a task already cancelled = %v, want Unknown", where)
		}
		if st := w.s.Stats(); st.Queued != 1 {
			t.Fatalf("Stats: %+v", st)
		}
		if where, err := w.s.Cancel(context.Background(), b, false, true); where != taskmgr.Queued || err != nil {
			t.Fatalf("Cancel(queued) = %v, %v", where, err)
		}
		synctest.Wait()
		if st := w.s.Stats(); st.PendingLeases != 2 {
			t.Fatalf("lease requests withdrawn at once: %+v; want them kept for the grace period", st)
		}
		time.Sleep(pendingLeaseGrace + time.Second) // the idle loop ticks past the grace
		synctest.Wait()
		if st := w.s.Stats(); st.PendingLeases != 0 {
			t.Fatalf("lease requests left after the queue emptied: %+v", st)
		}
		w.c.mu.Lock()
		ended, withdrawn := w.c.ended, slices.Clone(w.c.withdrawn)
		w.c.mu.Unlock()
		if ended != 2 {
			t.Fatalf("%d lease requests ended by cancellation, want 2", ended)
		}
		// Each abandoned call is withdrawn by its request id, in case a
		// grant crossed the cancellation.
		var reqIDs [][]byte
		for _, r := range w.c.requestList() {
			reqIDs = append(reqIDs, r.req.GetRequestId())
		}
		if len(withdrawn) != 2 || !slices.ContainsFunc(reqIDs, func(b []byte) bool { return string(b) == string(withdrawn[0]) }) ||
			!slices.ContainsFunc(reqIDs, func(b []byte) bool { return string(b) == string(withdrawn[1]) }) {
			t.Fatalf("CancelLease for %x, want the two request ids %x", withdrawn, reqIDs)
		}
		if w.r.done(a) || w.r.done(b) {
			t.Fatal("the submitter reported a cancelled queued task; the caller does")
		}
		if left := w.s.Close(); len(left) != 0 {
			t.Fatalf("Close returned %d tasks, want none", len(left))
		}
	})
}

// TestPipelineDepthAdapts: short tasks deepen the pipeline up to
// MaxPipeline; a long one brings it back to one task at a time.
func TestPipelineDepthAdapts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{MaxPipeline: 8})
		short := tasks(100, "short", taskmgr.Policy{})
		w.submit(t, short...)
		w.waitDone(t, short...)

		gate := make(chan struct{})
		var first ids.ID
		w.c.setRun(func(wk *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
			if ids.MustFromBytes(spec.GetTaskId()) == first {
				if ok, _ := wk.block(gate, cancelled); !ok {
					return nil
				}
			}
			return &pb.TaskReply{TaskId: spec.GetTaskId(), ExecMicros: 5000}
		})
		long := tasks(20, "long", taskmgr.Policy{})
		first = long[0].ID
		w.submit(t, long...)
		synctest.Wait()
		if st := w.s.Stats(); st.InFlight != 8 || st.Queued != 12 {
			t.Fatalf("after short tasks: %+v, want 8 in flight (MaxPipeline) and 12 queued", st)
		}
		close(gate)
		w.waitDone(t, long...)
		wk := w.c.workerList()[0]
		wk.mu.Lock()
		defer wk.mu.Unlock()
		if wk.maxOut > 8 {
			t.Fatalf("%d tasks outstanding at the worker, above MaxPipeline 8", wk.maxOut)
		}
		for i, x := range long[8:] {
			if n := wk.received[x.ID]; n != 1 {
				t.Fatalf("long task %d arrived with %d outstanding; after a long task they go one at a time", i+8, n)
			}
		}
	})
}

// TestLongTasksRunAtOnceAfterTinyOnes: after many tiny tasks deepened the
// pipeline, four long tasks on a node of four CPUs all run at once, none
// behind another on a busy worker (idle leases steal; a stuck pipeline
// asks for more leases).
func TestLongTasksRunAtOnceAfterTinyOnes(t *testing.T) {
	for _, idle := range []bool{false, true} {
		t.Run(fmt.Sprintf("leases returned=%v", idle), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, 4, Config{})
				tiny := tasks(2000, "tiny", taskmgr.Policy{})
				w.submit(t, tiny...)
				w.waitDone(t, tiny...)
				deepest := 0
				for _, wk := range w.c.workerList() {
					wk.mu.Lock()
					deepest = max(deepest, wk.maxOut)
					wk.mu.Unlock()
				}
				if deepest < 2 {
					t.Fatalf("tiny tasks never pipelined (at most %d outstanding)", deepest)
				}
				if idle {
					w.waitFor(t, "the idle leases to go back", func() bool { return w.c.held() == 0 && w.s.Stats().PendingLeases == 0 })
				}

				gate := make(chan struct{})
				started := make(chan ids.ID, 4)
				w.c.setRun(gated("long", gate, started))
				long := tasks(4, "long", taskmgr.Policy{})
				w.submit(t, long...)
				timeout := time.After(time.Minute)
				for i := range 4 {
					select {
					case <-started:
					case <-timeout:
						t.Fatalf("only %d of 4 long tasks run at once on 4 CPUs; the rest wait behind busy workers (%+v)", i, w.s.Stats())
					}
				}
				busy := 0
				for _, wk := range w.c.workerList() {
					wk.mu.Lock()
					if wk.running != nil && wk.running.GetFunction() == "long" {
						busy++
					}
					wk.mu.Unlock()
				}
				if busy != 4 {
					t.Fatalf("%d workers run a long task, want 4", busy)
				}
				close(gate)
				w.waitDone(t, long...)
				for _, rc := range w.c.returnList() {
					if rc.exiting {
						t.Errorf("the lease of %s went back as exiting; no worker died", rc.worker.addr)
					}
				}
			})
		})
	}
}

// TestStuckPipelineAsksForLeases: tasks queued behind one that has run
// for StuckAfter count as waiting: a lease is asked for them and steals
// them.
func TestStuckPipelineAsksForLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{MaxPipeline: 8})
		short := tasks(50, "short", taskmgr.Policy{})
		w.submit(t, short...)
		w.waitDone(t, short...)
		w.waitFor(t, "the idle lease to go back", func() bool { return w.c.held() == 0 && w.s.Stats().PendingLeases == 0 })

		gate := make(chan struct{})
		started := make(chan ids.ID, 1)
		w.c.setRun(gated("head", gate, started))
		head := task("head", taskmgr.Policy{})
		behind := tasks(7, "short", taskmgr.Policy{})
		w.submit(t, head)
		<-started
		before := w.c.nRequests()
		w.submit(t, behind...)
		synctest.Wait()
		if st := w.s.Stats(); st.InFlight != 8 || st.Queued != 0 || w.c.nRequests() != before {
			t.Fatalf("with the pipeline full: %+v, %d new lease requests; want 8 in flight, none", st, w.c.nRequests()-before)
		}
		w.c.setSlots("raylet-1", 2)
		// Only once the head has run for StuckAfter is a lease asked for
		// the tasks behind it; the new lease steals them.
		w.waitDone(t, behind...)
		if w.r.done(head) {
			t.Fatal("the head task finished; its gate is closed")
		}
		// The head's worker got all eight in its pipeline; the ones
		// behind the head ran elsewhere.
		for _, wk := range w.c.workerList() {
			sent := false
			for _, b := range wk.batchList() {
				sent = sent || slices.ContainsFunc(b.GetTasks(), func(sp *pb.TaskSpec) bool { return string(sp.GetTaskId()) == string(head.ID[:]) })
			}
			if !sent {
				continue
			}
			for _, x := range behind {
				if slices.Contains(wk.ranIDs(), x.ID) {
					t.Fatal("a task behind the stuck head ran on the head's worker")
				}
			}
		}
		close(gate)
		w.waitDone(t, head)
	})
}

// TestGrantAfterCancelledRequestIsUsed: a lease granted just as its
// request was cancelled (the queue emptied meanwhile) is dialed and kept
// like any other — not returned as a dead worker.
func TestGrantAfterCancelledRequestIsUsed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 2, Config{})
		second := make(chan struct{})
		w.c.mu.Lock()
		w.c.leaseHook = func(ctx context.Context, n int, raylet string, req *pb.LeaseRequest) (*pb.LeaseReply, error, bool) {
			switch n {
			case 1:
				<-second // both requests are out before either is granted
			case 2:
				close(second)
				<-ctx.Done() // the grant crosses the cancellation
			}
			r, err := w.c.grant(context.Background(), raylet, req)
			return r, err, true
		}
		w.c.mu.Unlock()
		ts := tasks(2, "f", taskmgr.Policy{})
		w.submit(t, ts...)
		w.waitDone(t, ts...)
		w.waitFor(t, "both leases to go back", func() bool { return len(w.c.workerList()) == 2 && w.c.held() == 0 && w.s.Stats().PendingLeases == 0 })
		for _, rc := range w.c.returnList() {
			if rc.exiting {
				t.Fatalf("the lease of %s went back as a dead worker; it was granted and healthy", rc.worker.addr)
			}
		}
	})
}

// TestDialFailureReturnsLease: a worker that cannot be reached goes back
// as exiting, and another lease is asked for.
func TestDialFailureReturnsLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{})
		w.c.mu.Lock()
		w.c.dialHook = func(_ context.Context, n int, addr string) error {
			if n == 1 {
				return unavailable(addr)
			}
			return nil
		}
		w.c.mu.Unlock()
		x := task("f", taskmgr.Policy{})
		w.submit(t, x)
		w.waitDone(t, x)
		rc := w.c.returnList()
		if len(rc) == 0 || rc[0].worker.addr != "worker-1" || !rc[0].exiting {
			t.Fatalf("returns %+v, want worker-1's lease back as exiting", rc)
		}
		if ran := w.c.workerList()[1].ranIDs(); len(ran) != 1 || ran[0] != x.ID {
			t.Fatalf("worker-2 ran %v", ran)
		}
	})
}

// TestRetryAfterReply: a reply the task manager decides to retry (an
// application error with RetryExceptions) sends the task again.
func TestRetryAfterReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{})
		w.c.setRun(func(_ *fakeWorker, spec *pb.TaskSpec, _ <-chan struct{}) *pb.TaskReply {
			r := &pb.TaskReply{TaskId: spec.GetTaskId(), ExecMicros: 10}
			if spec.GetAttempt() == 0 {
				r.Error = errs.FromAppError(spec.GetFunction(), errors.New("flaky"), "", false, "", "", 0)
			}
			return r
		})
		x := task("f", taskmgr.Policy{MaxRetries: 1, RetryExceptions: true})
		w.submit(t, x)
		w.waitDone(t, x)
		r := w.r.get(x)
		if len(r.replies) != 2 || r.replies[1].GetError() != nil || r.final != nil {
			t.Fatalf("replies %v, final %v; want an error then a result", r.replies, r.final)
		}
	})
}

// TestWorkerDeath: a worker dying with tasks in flight: its lease goes
// back as exiting, the node daemon is asked why, and the tasks fail with
// that cause (out of memory, node died, worker crashed) or are retried as
// the task manager decides — after a pause for out-of-memory kills.
func TestWorkerDeath(t *testing.T) {
	oomInfo := errs.ToInfo(&errs.OutOfMemoryError{Message: "memory monitor killed the worker"})
	cases := []struct {
		name    string
		policy  taskmgr.Policy
		why     func(w *fakeWorker) (*pb.ErrorInfo, error)
		cause   taskmgr.Cause
		retried bool
		check   func(t *testing.T, info *pb.ErrorInfo, w *fakeWorker)
	}{
		{name: "out of memory, retried after a pause", policy: taskmgr.Policy{OOMRetries: 1},
			why:   func(*fakeWorker) (*pb.ErrorInfo, error) { return oomInfo, nil },
			cause: taskmgr.CauseOOM, retried: true,
			check: func(t *testing.T, info *pb.ErrorInfo, _ *fakeWorker) {
				if info != oomInfo {
					t.Fatalf("failure info %v, want the daemon's report", info)
				}
			}},
		{name: "node died", policy: taskmgr.Policy{},
			why:   func(*fakeWorker) (*pb.ErrorInfo, error) { return nil, unavailable("raylet-1") },
			cause: taskmgr.CauseWorkerDied,
			check: func(t *testing.T, info *pb.ErrorInfo, wk *fakeWorker) {
				var nd *errs.NodeDiedError
				if !errors.As(errs.FromInfo(info), &nd) || nd.NodeAddress != "raylet-1" || nd.NodeID != wk.node.id.String() ||
					nd.Function != "f" || nd.Attempts != 1 {
					t.Fatalf("failure %v, want a NodeDiedError naming raylet-1", errs.FromInfo(info))
				}
			}},
		{name: "worker crashed", policy: taskmgr.Policy{},
			why:   func(*fakeWorker) (*pb.ErrorInfo, error) { return nil, nil },
			cause: taskmgr.CauseWorkerDied,
			check: func(t *testing.T, info *pb.ErrorInfo, wk *fakeWorker) {
				var wc *errs.WorkerCrashedError
				if !errors.As(errs.FromInfo(info), &wc) || wc.WorkerID != wk.id.String() || wc.NodeID != wk.node.id.String() {
					t.Fatalf("failure %v, want a WorkerCrashedError naming the worker", errs.FromInfo(info))
				}
			}},
		{name: "daemon cannot say", policy: taskmgr.Policy{},
			why:   func(*fakeWorker) (*pb.ErrorInfo, error) { return nil, errs.Systemf("raylet: busy") },
			cause: taskmgr.CauseWorkerDied,
			check: func(t *testing.T, info *pb.ErrorInfo, _ *fakeWorker) {
				if !errors.Is(errs.FromInfo(info), errs.ErrWorkerCrashed) {
					t.Fatalf("failure %v, want worker crashed", errs.FromInfo(info))
				}
			}},
		{name: "worker crashed, retried", policy: taskmgr.Policy{MaxRetries: 1},
			why:   func(*fakeWorker) (*pb.ErrorInfo, error) { return nil, nil },
			cause: taskmgr.CauseWorkerDied, retried: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, 1, Config{})
				started := make(chan *fakeWorker, 2)
				w.c.setRun(func(wk *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
					if spec.GetAttempt() == 0 {
						started <- wk
						if ok, _ := wk.block(nil, cancelled); !ok {
							return nil
						}
					}
					return &pb.TaskReply{TaskId: spec.GetTaskId(), ExecMicros: 10}
				})
				w.c.mu.Lock()
				w.c.deathHook = func(_ context.Context, wk *fakeWorker) (*pb.ErrorInfo, error) { return tc.why(wk) }
				w.c.mu.Unlock()
				x := task("f", tc.policy)
				w.submit(t, x)
				first := <-started
				killed := time.Now()
				first.kill()
				if tc.retried {
					w.waitDone(t, x)
				} else {
					w.waitFor(t, "the task to fail", func() bool { return w.r.done(x) })
				}
				r := w.r.get(x)
				if len(r.failures) != 1 || r.failures[0].Cause != tc.cause {
					t.Fatalf("failures %+v, want one with cause %v", r.failures, tc.cause)
				}
				if tc.check != nil {
					tc.check(t, r.failures[0].Info, first)
				}
				w.waitFor(t, "the dead worker's lease to go back", func() bool {
					for _, rc := range w.c.returnList() {
						if rc.worker == first {
							return true
						}
					}
					return false
				})
				for _, rc := range w.c.returnList() {
					if rc.worker == first && !rc.exiting {
						t.Fatal("the dead worker's lease went back without exiting")
					}
				}
				if !tc.retried {
					if len(r.replies) != 0 {
						t.Fatalf("replies %v after a failure", r.replies)
					}
					return
				}
				if len(r.replies) != 1 || x.Spec.GetAttempt() != 1 {
					t.Fatalf("retry: replies %v, attempt %d", r.replies, x.Spec.GetAttempt())
				}
				if ran := first.ranIDs(); len(ran) != 1 {
					t.Fatalf("the dead worker ran %d tasks", len(ran))
				}
				if tc.cause == taskmgr.CauseOOM && r.at[1].Sub(killed) < taskmgr.DefaultConfig().OOMBackoff {
					t.Fatalf("retried %v after the kill, before the out-of-memory pause", r.at[1].Sub(killed))
				}
				w.waitFor(t, "the retry's lease to go back once idle", func() bool { return w.c.held() == 0 && w.s.Stats().PendingLeases == 0 })
			})
		})
	}
}

// TestCancelInFlight: a task pipelined behind a long one on the same
// worker is cancelled at once; a running one has its worker told; force
// kills the worker.
func TestCancelInFlight(t *testing.T) {
	t.Run("queued behind a long task", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1, Config{})
			tiny := tasks(20, "tiny", taskmgr.Policy{})
			w.submit(t, tiny...)
			w.waitDone(t, tiny...)
			gate := make(chan struct{})
			started := make(chan ids.ID, 1)
			w.c.setRun(gated("long", gate, started))
			long, after := task("long", taskmgr.Policy{}), task("after", taskmgr.Policy{})
			w.submit(t, long, after)
			<-started
			synctest.Wait()
			if st := w.s.Stats(); st.InFlight != 2 || st.Leases != 1 {
				t.Fatalf("%+v: want both tasks on the one worker", st)
			}
			where, err := w.s.Cancel(context.Background(), after, false, true)
			if where != taskmgr.InFlight || err != nil {
				t.Fatalf("Cancel = %v, %v", where, err)
			}
			w.waitDone(t, after) // while the long task still runs
			if w.r.done(long) {
				t.Fatal("the long task ended; its gate is closed")
			}
			if r := w.r.get(after); !errors.Is(errs.FromInfo(r.final), errs.ErrTaskCancelled) {
				t.Fatalf("cancelled task ended with %v", r.final)
			}
			w.c.mu.Lock()
			cc := w.c.cancels[0]
			w.c.mu.Unlock()
			if cc.worker != "worker-1" || ids.MustFromBytes(cc.req.GetTaskId()) != after.ID || !cc.req.GetRecursive() {
				t.Fatalf("CancelTask to %s: %v", cc.worker, cc.req)
			}
			close(gate)
			w.waitDone(t, long)
		})
	})
	t.Run("running", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1, Config{})
			started := make(chan ids.ID, 1)
			w.c.setRun(gated("long", nil, started))
			x := task("long", taskmgr.Policy{MaxRetries: 3})
			w.submit(t, x)
			<-started
			if where, err := w.s.Cancel(context.Background(), x, false, false); where != taskmgr.InFlight || err != nil {
				t.Fatalf("Cancel = %v, %v", where, err)
			}
			w.waitDone(t, x)
			if r := w.r.get(x); !errors.Is(errs.FromInfo(r.final), errs.ErrTaskCancelled) {
				t.Fatalf("ended with %v", r.final)
			}
			if where, _ := w.s.Cancel(context.Background(), x, false, false); where != taskmgr.Unknown {
				t.Fatalf("Cancel of a finished task = %v, want Unknown", where)
			}
		})
	})
	t.Run("worker unreachable or refusing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1, Config{})
			started := make(chan ids.ID, 1)
			w.c.setRun(gated("long", nil, started))
			refusal := errs.Invalidf("worker: no")
			var answer error
			w.c.mu.Lock()
			w.c.cancelHook = func(*fakeWorker, *pb.CancelTaskRequest) error {
				w.c.mu.Lock()
				defer w.c.mu.Unlock()
				return answer
			}
			w.c.mu.Unlock()
			x := task("long", taskmgr.Policy{})
			w.submit(t, x)
			<-started
			w.c.mu.Lock()
			answer = unavailable("worker-1")
			w.c.mu.Unlock()
			if where, err := w.s.Cancel(context.Background(), x, false, false); where != taskmgr.InFlight || err != nil {
				t.Fatalf("Cancel with the worker gone = %v, %v; want no error (its death reports the task)", where, err)
			}
			w.c.mu.Lock()
			answer = refusal
			w.c.mu.Unlock()
			if _, err := w.s.Cancel(context.Background(), x, false, false); !errors.Is(err, refusal) {
				t.Fatalf("Cancel refused by the worker: %v", err)
			}
		})
	})
	t.Run("force", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1, Config{})
			started := make(chan ids.ID, 1)
			w.c.setRun(gated("long", nil, started))
			x := task("long", taskmgr.Policy{})
			w.submit(t, x)
			<-started
			if where, err := w.s.Cancel(context.Background(), x, true, false); where != taskmgr.InFlight || err != nil {
				t.Fatalf("Cancel(force) = %v, %v", where, err)
			}
			w.waitDone(t, x)
			w.c.mu.Lock()
			kills := slices.Clone(w.c.kills)
			w.c.mu.Unlock()
			if len(kills) != 1 || kills[0].raylet != "raylet-1" || kills[0].worker != "worker-1" || !strings.Contains(kills[0].reason, x.ID.Short()) {
				t.Fatalf("kills: %+v", kills)
			}
		})
	})
	t.Run("never submitted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, 1, Config{})
			if where, err := w.s.Cancel(context.Background(), task("f", taskmgr.Policy{}), false, false); where != taskmgr.Unknown || err != nil {
				t.Fatalf("Cancel = %v, %v", where, err)
			}
		})
	})
}

// TestClose: Close hands back what is queued and in flight, returns the
// leases, closes the streams and refuses new tasks.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &notifier{}
		c := newCluster(n)
		c.addNode("raylet-1", 1)
		r := newResults(n)
		s := New(Config{Raylet: "raylet-1", OwnerID: ids.New().Bytes()}, c, r)
		started := make(chan ids.ID, 1)
		c.setRun(gated("long", nil, started))
		key := ClassKey(cpu1, Placement{}, false)
		running, queued := task("long", taskmgr.Policy{}), task("long", taskmgr.Policy{})
		for _, x := range []*taskmgr.Task{running, queued} {
			if err := s.Submit(x, key, cpu1, Placement{}); err != nil {
				t.Fatal(err)
			}
		}
		<-started
		left := s.Close()
		if len(left) != 2 || !slices.Contains(left, running) || !slices.Contains(left, queued) {
			t.Fatalf("Close returned %v", left)
		}
		// The lease goes back as sound; so does one granted while Close
		// ran (the queued task's request crossing the cancellation).
		wk := c.workerList()[0]
		rc := c.returnList()
		if !slices.ContainsFunc(rc, func(r returnCall) bool { return r.worker == wk }) {
			t.Fatalf("returns after Close: %+v; want worker-1's lease", rc)
		}
		for _, r := range rc {
			if r.exiting {
				t.Fatalf("the lease of %s went back as exiting at Close", r.worker.addr)
			}
		}
		select {
		case <-wk.gone:
		default:
			t.Fatal("the stream was not closed")
		}
		if err := s.Submit(task("f", taskmgr.Policy{}), key, cpu1, Placement{}); err == nil {
			t.Fatal("Submit after Close succeeded")
		}
		if left := s.Close(); left != nil {
			t.Fatalf("second Close returned %v", left)
		}
		synctest.Wait()
		if r.done(running) || r.done(queued) {
			t.Fatal("the submitter reported tasks Close handed back")
		}
	})
}

// TestTasksSentToADyingWorker: tasks pushed to a worker that has died but
// whose death is still being looked into fail (or are retried) with the
// others, in submission order; none is lost.
func TestTasksSentToADyingWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{})
		tiny := tasks(20, "tiny", taskmgr.Policy{})
		w.submit(t, tiny...)
		w.waitDone(t, tiny...)

		started := make(chan ids.ID, 1)
		w.c.setRun(func(wk *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
			if spec.GetFunction() == "long" && spec.GetAttempt() == 0 {
				started <- ids.MustFromBytes(spec.GetTaskId())
				if ok, _ := wk.block(nil, cancelled); !ok {
					return nil
				}
			}
			return &pb.TaskReply{TaskId: spec.GetTaskId(), ExecMicros: 10}
		})
		answer := make(chan struct{})
		w.c.mu.Lock()
		w.c.deathHook = func(ctx context.Context, _ *fakeWorker) (*pb.ErrorInfo, error) {
			<-answer
			return nil, nil
		}
		w.c.mu.Unlock()
		long := task("long", taskmgr.Policy{MaxRetries: 1})
		w.submit(t, long)
		<-started
		first := w.c.workerList()[0]
		first.kill()
		w.waitFor(t, "the daemon to be asked why the worker died", func() bool {
			w.c.mu.Lock()
			defer w.c.mu.Unlock()
			return len(w.c.asked) == 1
		})
		later := tasks(2, "later", taskmgr.Policy{MaxRetries: 1})
		w.submit(t, later...) // pushed to the dying lease: its sends fail
		synctest.Wait()
		if st := w.s.Stats(); st.InFlight != 3 {
			t.Fatalf("%+v: want the later tasks in flight on the dying lease", st)
		}
		close(answer)
		all := append([]*taskmgr.Task{long}, later...)
		w.waitDone(t, all...)
		for i, x := range all {
			r := w.r.get(x)
			if len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseWorkerDied || len(r.replies) != 1 {
				t.Fatalf("task %d: failures %+v, replies %v; want one crash, then a result", i, r.failures, r.replies)
			}
			if slices.Contains(first.ranIDs(), x.ID) && x != long {
				t.Fatalf("task %d ran on the dead worker", i)
			}
		}
		w.r.mu.Lock()
		order := slices.Clone(w.r.failOrder)
		w.r.mu.Unlock()
		if !slices.Equal(order, all) {
			t.Fatal("failures not reported in submission order")
		}
	})
}

// TestOOMPause: a task waiting out the pause after an out-of-memory kill
// can be cancelled (it does not run again), and Close hands it back.
func TestOOMPause(t *testing.T) {
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, 1, Config{})
				started := make(chan *fakeWorker, 2)
				w.c.setRun(func(wk *fakeWorker, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
					started <- wk
					if ok, _ := wk.block(nil, cancelled); !ok {
						return nil
					}
					return &pb.TaskReply{TaskId: spec.GetTaskId()}
				})
				w.c.mu.Lock()
				w.c.deathHook = func(context.Context, *fakeWorker) (*pb.ErrorInfo, error) {
					return errs.ToInfo(&errs.OutOfMemoryError{Message: "killed"}), nil
				}
				w.c.mu.Unlock()
				x := task("f", taskmgr.Policy{OOMRetries: -1})
				w.submit(t, x)
				(<-started).kill()
				w.waitFor(t, "the out-of-memory kill", func() bool { return len(w.r.get(x).failures) == 1 })
				synctest.Wait()
				switch how {
				case "cancel":
					if where, err := w.s.Cancel(context.Background(), x, false, false); where != taskmgr.Queued || err != nil {
						t.Fatalf("Cancel during the pause = %v, %v; want Queued", where, err)
					}
				case "close":
					if left := w.s.Close(); len(left) != 1 || left[0] != x {
						t.Fatalf("Close during the pause returned %v", left)
					}
				}
				// The bubble's clock moves well past the pause (no real
				// time passes): the task has not run again.
				<-time.After(time.Minute)
				select {
				case <-started:
					t.Fatal("the task ran again")
				default:
				}
			})
		})
	}
}

// TestLeaseGoesWhereTheArgumentsAre: with a locality policy, the first
// lease request of a class goes to the node daemon it names for the
// class's first waiting task, not to the local one.
func TestLeaseGoesWhereTheArgumentsAre(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var asked []*taskmgr.Task
		var mu sync.Mutex
		w := newWorld(t, 2, Config{Locality: func(t *taskmgr.Task) string {
			mu.Lock()
			asked = append(asked, t)
			mu.Unlock()
			if t.Spec.GetFunction() == "near-data" {
				return "raylet-2"
			}
			return ""
		}})
		w.c.addNode("raylet-2", 2)
		x := task("near-data", taskmgr.Policy{})
		w.submit(t, x)
		w.waitDone(t, x)
		if first := w.c.requestList()[0]; first.raylet != "raylet-2" {
			t.Fatalf("first lease request went to %s, want raylet-2 (where the arguments are)", first.raylet)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(asked) == 0 || asked[0] != x {
			t.Errorf("the policy was asked about %v, want the waiting task", asked)
		}
	})
}

// TestFallbackWhenTheFirstNodeIsGone: the node daemon asked first cannot
// be reached (a nodeless driver's node died): the fallback names another,
// which is asked from then on.
func TestFallbackWhenTheFirstNodeIsGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dead []string
		var mu sync.Mutex
		w := newWorld(t, 2, Config{Raylet: "gone-1", Fallback: func(d string) string {
			mu.Lock()
			defer mu.Unlock()
			dead = append(dead, d)
			return "raylet-1"
		}})
		first := task("f", taskmgr.Policy{})
		w.submit(t, first)
		w.waitDone(t, first)
		second := task("f", taskmgr.Policy{})
		w.submit(t, second)
		w.waitDone(t, second)
		for _, x := range []*taskmgr.Task{first, second} {
			if r := w.r.get(x); len(r.replies) != 1 || len(r.failures) != 0 {
				t.Fatalf("task: replies %v, failures %v", r.replies, r.failures)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(dead) != 1 || dead[0] != "gone-1" {
			t.Errorf("fallback asked about %v, want once about gone-1", dead)
		}
	})
}

// TestLeaseSliceGivesBusyLeasesBack: a lease that keeps getting work is
// not kept for ever: once held for LeaseSlice it goes back the moment it
// runs dry with nothing queued, though it never idled (the idle timeout
// here is an hour), so other owners' requests on its node are served.
// Within its slice a dry lease stays for the next task.
func TestLeaseSliceGivesBusyLeasesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, 1, Config{LeaseIdleTimeout: time.Hour, LeaseSlice: 100 * time.Millisecond})
		first := task("f", taskmgr.Policy{})
		w.submit(t, first)
		w.waitDone(t, first)
		synctest.Wait()
		if w.c.held() != 1 || w.c.nRequests() != 1 {
			t.Fatalf("within its slice: %d leases held, %d requested; want the one lease kept", w.c.held(), w.c.nRequests())
		}
		for range 3 { // busy past the slice, each task on the same lease
			time.Sleep(40 * time.Millisecond)
			x := task("f", taskmgr.Policy{})
			w.submit(t, x)
			w.waitDone(t, x)
		}
		w.waitFor(t, "the lease to go back after its slice", func() bool { return w.c.held() == 0 })
		if n := w.c.nRequests(); n != 1 {
			t.Fatalf("%d lease requests, want the first lease to have run all four tasks", n)
		}
		for _, rc := range w.c.returnList() {
			if rc.exiting {
				t.Fatal("a lease given back at the end of its slice went back as exiting")
			}
		}
	})
}
