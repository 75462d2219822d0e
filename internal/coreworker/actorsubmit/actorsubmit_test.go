package actorsubmit

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

	"github.com/raygo/raygo/internal/coreworker/push"
	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

const (
	pending    = pb.ActorState_ACTOR_STATE_PENDING_CREATION
	restarting = pb.ActorState_ACTOR_STATE_RESTARTING
	dead       = pb.ActorState_ACTOR_STATE_DEAD
)

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// TestCallsRunInOrder: calls made before the actor is alive wait; once it
// is, they go to its process in call order with their sequence numbers
// and the caller's header.
func TestCallsRunInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		w.c.set(actor, pending, "", nil)
		cs := newCalls(5, "Counter.Add", 0)
		w.submit(t, actor, cs...)
		synctest.Wait()
		if st := w.s.Stats(); st.Queued != 5 || st.Connected != 0 || len(w.c.dialList()) != 0 {
			t.Fatalf("before the actor is alive: %+v, dials %v", st, w.c.dialList())
		}
		p := w.alive(actor, "proc-1")
		w.waitDone(t, cs...)
		if got := p.seqs(); !slices.Equal(got, seqRange(1, 5)) {
			t.Fatalf("the process ran %v, want 1..5 in order", got)
		}
		for i, x := range cs {
			r := w.r.get(x)
			want := fmt.Sprintf("seq %d attempt 0", i+1)
			if x.Spec.GetSeqNo() != uint64(i+1) || len(r.replies) != 1 || string(r.replies[0].GetReturns()[0].GetData()) != want {
				t.Fatalf("call %d: seq %d, replies %v", i, x.Spec.GetSeqNo(), r.replies)
			}
		}
		p.mu.Lock()
		for _, b := range p.batches {
			c := b.GetCommon()
			if string(c.GetJobId()) != "job-1" || c.GetOwnerAddress() != "caller:1" || ids.MustFromBytes(c.GetOwnerId()) != w.owner ||
				ids.MustFromBytes(c.GetCallerId()) != w.owner || ids.MustFromBytes(c.GetActorId()) != actor {
				t.Fatalf("batch header: %v", c)
			}
		}
		p.mu.Unlock()
		if st := w.s.Stats(); st != (Stats{Actors: 1, Connected: 1}) {
			t.Fatalf("Stats: %+v", st)
		}
	})
}

// TestManyCallsToALiveActor: calls made faster than the stream sends them
// (the caller yields to the sender once a batch's worth waits) all go out
// in order, in batches of at most push.MaxBatch.
func TestManyCallsToALiveActor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		w.c.set(actor, pending, "", nil)
		first := newCalls(1, "Counter.Add", 0)
		w.submit(t, actor, first...)
		p := w.alive(actor, "proc-1")
		w.waitDone(t, first...)
		n := 3*push.MaxBatch + 5
		cs := newCalls(n, "Counter.Add", 0)
		w.submit(t, actor, cs...)
		w.waitDone(t, cs...)
		if got := p.seqs(); !slices.Equal(got, seqRange(1, uint64(n+1))) {
			t.Fatalf("the process ran %d calls, want 1..%d in order", len(got), n+1)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, b := range p.batches {
			if len(b.GetTasks()) > push.MaxBatch {
				t.Fatalf("a batch of %d calls, over %d", len(b.GetTasks()), push.MaxBatch)
			}
		}
	})
}

// TestHeadOfLineWaitsForArguments: a call whose arguments are not ready
// holds up the calls behind it; a failed argument fails only its call.
func TestHeadOfLineWaitsForArguments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		p := w.alive(actor, "proc-1")
		c1, c2, c3, c4 := newCall("m", 0), newCall("m", 0), newCall("m", 0), newCall("m", 0)
		if err := w.s.Submit(c1, actor, "counter", false); err != nil {
			t.Fatal(err)
		}
		w.submit(t, actor, c2)
		if err := w.s.Submit(c3, actor, "counter", false); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := p.seqs(); len(got) != 0 {
			t.Fatalf("calls ran before the head's arguments were ready: %v", got)
		}
		w.s.Resolved(c1, nil)
		w.waitDone(t, c1, c2)
		synctest.Wait()
		if w.r.done(c3) || !slices.Equal(p.seqs(), []uint64{1, 2}) {
			t.Fatalf("ran %v", p.seqs())
		}
		argErr := errs.ToInfo(&errs.ObjectError{ObjectID: ids.New().String(), Kind: errs.KindObjectLost})
		w.s.Resolved(c3, argErr)
		w.submit(t, actor, c4)
		w.waitDone(t, c3, c4)
		r := w.r.get(c3)
		if len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseDependency || r.failures[0].Info != argErr {
			t.Fatalf("call with a failed argument: %+v", r.failures)
		}
		if got := p.seqs(); !slices.Equal(got, []uint64{1, 2, 4}) {
			t.Fatalf("ran %v, want 1 2 4", got)
		}
	})
}

// TestRestart: the actor's process dies on call 3 with calls 3–5 in
// flight. Calls that finished keep their results; calls in flight follow
// their MaxTaskRetries (3 and 4 are retried, 5 fails); calls made after
// the crash run on the restarted actor, after the retried ones.
func TestRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		p1 := w.alive(actor, "proc-1")
		finished := newCalls(2, "m", 0)
		w.submit(t, actor, finished...)
		w.waitDone(t, finished...)

		gate, started := make(chan struct{}), make(chan struct{})
		w.c.setRun(gateFirst(3, gate, started))
		c3, c4, c5 := newCall("m", 1), newCall("m", 1), newCall("m", 0)
		w.submit(t, actor, c3, c4, c5)
		<-started
		synctest.Wait()
		if st := w.s.Stats(); st.InFlight != 3 {
			t.Fatalf("%+v: want 3 calls in flight", st)
		}
		p1.kill()
		synctest.Wait() // the broken stream is noticed (the submitter's state: no event to wait for)
		if st := w.s.Stats(); st.Connected != 0 {
			t.Fatalf("after the break: %+v", st)
		}
		later := newCalls(2, "m", 0)
		w.submit(t, actor, later...)
		synctest.Wait()
		if w.r.done(c3) || w.r.done(c4) || w.r.done(c5) {
			t.Fatal("calls in flight were decided before the control store said what happened")
		}

		w.c.set(actor, restarting, "", nil)
		w.waitDone(t, c5)
		var ad *errs.ActorDiedError
		if r := w.r.get(c5); r.failures[0].Cause != taskmgr.CauseActorDied || !errors.As(errs.FromInfo(r.final), &ad) || ad.ActorID != actor.String() {
			t.Fatalf("call 5 (no retries): %+v, final %v", r.failures, r.final)
		}
		p2 := w.alive(actor, "proc-2")
		all := append([]*taskmgr.Task{c3, c4}, later...)
		w.waitDone(t, all...)
		if got := p2.seqs(); !slices.Equal(got, []uint64{3, 4, 6, 7}) {
			t.Fatalf("the restarted actor ran %v, want 3 4 (retried) then 6 7", got)
		}
		for i, x := range finished {
			if r := w.r.get(x); len(r.replies) != 1 || len(r.failures) != 0 {
				t.Fatalf("finished call %d was touched: %+v", i, r)
			}
		}
		for _, x := range []*taskmgr.Task{c3, c4} {
			r := w.r.get(x)
			if len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseActorDied || len(r.replies) != 1 ||
				string(r.replies[0].GetReturns()[0].GetData()) != fmt.Sprintf("seq %d attempt 1", x.Spec.GetSeqNo()) {
				t.Fatalf("retried call %d: %+v", x.Spec.GetSeqNo(), r)
			}
		}
		for _, x := range later {
			if r := w.r.get(x); len(r.failures) != 0 || len(r.replies) != 1 {
				t.Fatalf("call made after the crash: %+v", r)
			}
		}
	})
}

// ownerDied is the death cause the control store records for an actor
// whose owner died.
func ownerDied(actor ids.ID) *pb.ErrorInfo {
	return errs.ToInfo(&errs.ActorDiedError{ActorID: actor.String(), Name: "counter", Reason: "its owner died"})
}

// TestDeathCauseReported: an actor that died for good fails its calls in
// flight and queued, and every later call, with the death cause the
// control store recorded — whether the control store recorded it before
// the process was killed (as for an owner's death) or only after the
// stream broke and a long poll had come back with no news.
func TestDeathCauseReported(t *testing.T) {
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprintf("recorded late=%v", late), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, Config{})
				actor := ids.New()
				p := w.alive(actor, "proc-1")
				gate, started := make(chan struct{}), make(chan struct{})
				w.c.setRun(gateFirst(1, gate, started))
				c1, c2 := newCall("m", 0), newCall("m", 3)
				w.submit(t, actor, c1, c2)
				<-started
				cause := ownerDied(actor)
				if late {
					p.kill()
					// The control store learns of the death only after
					// its long poll's deadline has passed once.
					time.AfterFunc(w.c.deadline+5*time.Second, func() { w.c.set(actor, dead, "", cause) })
				} else {
					w.c.set(actor, dead, "", cause)
					p.kill()
				}
				w.waitDone(t, c1, c2)
				for i, x := range []*taskmgr.Task{c1, c2} {
					r := w.r.get(x)
					if len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseFatal || r.final != cause {
						t.Fatalf("call %d: failures %+v, final %v; want the recorded cause %v", i+1, r.failures, r.final, cause)
					}
				}
				c3 := newCall("m", 3)
				w.submit(t, actor, c3)
				w.waitDone(t, c3)
				var ad *errs.ActorDiedError
				if r := w.r.get(c3); !errors.As(errs.FromInfo(r.final), &ad) || ad.Reason != "its owner died" {
					t.Fatalf("call after the death: %v", r.final)
				}
			})
		})
	}
}

// TestDeadWithoutCause: a dead actor whose cause was not recorded fails
// its calls with an ActorDiedError naming it.
func TestDeadWithoutCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		w.c.set(actor, dead, "", nil)
		c := newCall("m", 0)
		w.submit(t, actor, c)
		w.waitDone(t, c)
		var ad *errs.ActorDiedError
		if r := w.r.get(c); !errors.As(errs.FromInfo(r.final), &ad) || ad.ActorID != actor.String() || ad.Name != "counter" {
			t.Fatalf("final %v", r.final)
		}
	})
}

// TestActorNotHere: calls answered by a process that no longer hosts the
// actor (it moved) go back to the queue at no cost and run where the
// actor lives now — every one of them, however the answers are batched.
func TestActorNotHere(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		p1 := w.alive(actor, "proc-1")
		gate, started := make(chan struct{}), make(chan struct{})
		w.c.setRun(gateFirst(1, gate, started))
		a := newCall("m", 0)
		moved := newCalls(3, "m", 0)
		w.submit(t, actor, a)
		<-started
		w.submit(t, actor, moved...)
		synctest.Wait()
		// The actor is killed on proc-1 (a shared process, which lives
		// on) and restarted on proc-2; the call running finishes.
		p1.drop(actor)
		p2 := w.alive(actor, "proc-2")
		close(gate)
		w.waitDone(t, append([]*taskmgr.Task{a}, moved...)...)
		if got := p2.seqs(); !slices.Equal(got, []uint64{2, 3, 4}) {
			t.Fatalf("proc-2 ran %v, want 2 3 4", got)
		}
		for _, x := range moved {
			if r := w.r.get(x); len(r.failures) != 0 || len(r.replies) != 1 || x.Spec.GetAttempt() != 0 {
				t.Fatalf("call %d answered not-here: %+v, attempt %d; want no failure, no retry spent", x.Spec.GetSeqNo(), r, x.Spec.GetAttempt())
			}
		}
		if p1.isDead() {
			t.Fatal("proc-1 died")
		}
	})
}

// TestConnectionBrokeProcessLives: a stream that breaks while the process
// and the control store's record are unchanged: the calls in flight wait
// for word on the process up to DeathInfoTimeout, then are retried or
// failed, and calls flow again on a new stream.
func TestConnectionBrokeProcessLives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{DeathInfoTimeout: 25 * time.Second})
		actor := ids.New()
		p := w.alive(actor, "proc-1")
		gate, started := make(chan struct{}), make(chan struct{})
		w.c.setRun(gateFirst(1, gate, started))
		retried, failed := newCall("m", 1), newCall("m", 0)
		w.submit(t, actor, retried, failed)
		<-started
		broke := time.Now()
		p.mu.Lock()
		conn := p.conns[0]
		p.mu.Unlock()
		conn.Close()    // the connection breaks; the process lives
		synctest.Wait() // the broken stream is noticed (the submitter's state: no event to wait for)
		if st := w.s.Stats(); st.Connected != 0 {
			t.Fatalf("after the break: %+v", st)
		}
		if where, err := w.s.Cancel(context.Background(), failed, false, false); where != taskmgr.Unknown || err != nil {
			t.Fatalf("Cancel of a call lost with the stream = %v, %v; want Unknown (the caller ends it)", where, err)
		}
		later := newCall("m", 0)
		w.submit(t, actor, later)
		w.waitDone(t, retried, failed, later)
		if r := w.r.get(failed); len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseActorDied || !errors.Is(errs.FromInfo(r.final), errs.ErrActorDied) {
			t.Fatalf("call without retries: %+v", r)
		}
		if r := w.r.get(retried); len(r.replies) != 1 || len(r.failures) != 1 {
			t.Fatalf("call with a retry: %+v", r)
		}
		if waited := time.Since(broke); waited < 25*time.Second {
			t.Fatalf("calls in flight were settled %v after the break, before DeathInfoTimeout", waited)
		}
		if got := p.seqs(); !slices.Equal(got, []uint64{1, 1, 3}) {
			t.Fatalf("proc-1 ran %v, want 1, 1 again (retried), 3", got)
		}
	})
}

// TestWatchErrors: an unreachable control store is asked again; one that
// cannot say where the actor is (any other error) fails its calls.
func TestWatchErrors(t *testing.T) {
	t.Run("unavailable", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, Config{})
			actor := ids.New()
			w.c.mu.Lock()
			w.c.waitHook = func(_ context.Context, n int, _ ids.ID, _ uint64) (*pb.ActorInfo, error, bool) {
				if n <= 3 {
					return nil, fmt.Errorf("%w: gcs", errs.ErrUnavailable), true
				}
				return nil, nil, false
			}
			w.c.mu.Unlock()
			w.alive(actor, "proc-1")
			c := newCall("m", 0)
			w.submit(t, actor, c)
			w.waitDone(t, c)
			if r := w.r.get(c); len(r.replies) != 1 {
				t.Fatalf("%+v", r)
			}
		})
	})
	t.Run("not found", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			w := newWorld(t, Config{})
			actor := ids.New() // never registered
			c := newCall("m", 0)
			w.submit(t, actor, c)
			w.waitDone(t, c)
			var ad *errs.ActorDiedError
			if r := w.r.get(c); r.failures[0].Cause != taskmgr.CauseFatal || !errors.As(errs.FromInfo(r.final), &ad) || ad.ActorID != actor.String() {
				t.Fatalf("%+v", r)
			}
		})
	})
}

// TestAliveButUnreachable: an address that cannot be dialed keeps the
// submitter following the actor until it is reachable.
func TestAliveButUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		w.c.set(actor, pb.ActorState_ACTOR_STATE_ALIVE, "nowhere", nil)
		c := newCall("m", 0)
		w.submit(t, actor, c)
		w.waitFor(t, "a dial", func() bool { return len(w.c.dialList()) == 1 })
		w.alive(actor, "proc-1")
		w.waitDone(t, c)
		if d := w.c.dialList(); !slices.Equal(d, []string{"nowhere", "proc-1"}) {
			t.Fatalf("dials %v", d)
		}
	})
}

// TestMarkDead: ray.Kill without restart fails every pending call with
// its cause at once, and later calls too.
func TestMarkDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		w.alive(actor, "proc-1")
		gate, started := make(chan struct{}), make(chan struct{})
		w.c.setRun(gateFirst(1, gate, started))
		c1, c2 := newCall("m", 3), newCall("m", 3)
		w.submit(t, actor, c1, c2)
		<-started
		killed := &errs.ActorDiedError{ActorID: actor.String(), Name: "counter", Reason: "killed by ray.Kill"}
		w.s.MarkDead(actor, "counter", killed)
		c3 := newCall("m", 3)
		w.submit(t, actor, c3)
		w.waitDone(t, c1, c2, c3)
		for i, x := range []*taskmgr.Task{c1, c2, c3} {
			var ad *errs.ActorDiedError
			if r := w.r.get(x); !errors.As(errs.FromInfo(r.final), &ad) || ad.Reason != killed.Reason {
				t.Fatalf("call %d: %v", i+1, r.final)
			}
		}
		if st := w.s.Stats(); st.Connected != 0 || st.InFlight != 0 || st.Queued != 0 {
			t.Fatalf("Stats: %+v", st)
		}
	})
}

// TestCancel: force is refused; a queued call leaves the queue (and no
// longer holds up the line); a call in flight is cancelled by its process.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		p := w.alive(actor, "proc-1")
		ctx := context.Background()

		if _, err := w.s.Cancel(ctx, newCall("m", 0), true, false); !errors.Is(err, errs.ErrInvalidRequest) {
			t.Fatalf("Cancel with force: %v", err)
		}
		if where, err := w.s.Cancel(ctx, newCall("m", 0), false, false); where != taskmgr.Unknown || err != nil {
			t.Fatalf("Cancel of a call never submitted: %v, %v", where, err)
		}

		head, behind := newCall("m", 0), newCall("m", 0)
		if err := w.s.Submit(head, actor, "counter", false); err != nil {
			t.Fatal(err)
		}
		w.submit(t, actor, behind)
		if where, err := w.s.Cancel(ctx, head, false, true); where != taskmgr.Queued || err != nil {
			t.Fatalf("Cancel(queued) = %v, %v", where, err)
		}
		w.waitDone(t, behind)
		if w.r.done(head) {
			t.Fatal("the submitter reported the cancelled queued call; the caller does")
		}

		gate, started := make(chan struct{}), make(chan struct{})
		w.c.setRun(gateFirst(3, gate, started))
		running := newCall("m", 0)
		w.submit(t, actor, running)
		<-started
		if where, err := w.s.Cancel(ctx, running, false, true); where != taskmgr.InFlight || err != nil {
			t.Fatalf("Cancel(in flight) = %v, %v", where, err)
		}
		w.waitDone(t, running)
		if r := w.r.get(running); !errors.Is(errs.FromInfo(r.final), errs.ErrTaskCancelled) {
			t.Fatalf("cancelled call ended with %v", r.final)
		}
		w.c.mu.Lock()
		cc := w.c.cancels[0]
		w.c.mu.Unlock()
		if cc.addr != "proc-1" || ids.MustFromBytes(cc.req.GetTaskId()) != running.ID || !cc.req.GetRecursive() {
			t.Fatalf("CancelTask to %s: %v", cc.addr, cc.req)
		}

		// The process cannot be reached: the stream's failure reports the
		// call. Another refusal is the caller's to see.
		refusal := errs.Invalidf("worker: no")
		var answer error
		w.c.mu.Lock()
		w.c.cancelHook = func(string, *pb.CancelTaskRequest) error {
			w.c.mu.Lock()
			defer w.c.mu.Unlock()
			return answer
		}
		w.c.mu.Unlock()
		gate2, started2 := make(chan struct{}), make(chan struct{})
		w.c.setRun(gateFirst(4, gate2, started2))
		slow := newCall("m", 0)
		w.submit(t, actor, slow)
		<-started2
		w.c.mu.Lock()
		answer = fmt.Errorf("%w: proc-1", errs.ErrUnavailable)
		w.c.mu.Unlock()
		if where, err := w.s.Cancel(ctx, slow, false, false); where != taskmgr.InFlight || err != nil {
			t.Fatalf("Cancel with the process unreachable = %v, %v", where, err)
		}
		w.c.mu.Lock()
		answer = refusal
		w.c.mu.Unlock()
		if _, err := w.s.Cancel(ctx, slow, false, false); !errors.Is(err, refusal) {
			t.Fatalf("refused Cancel: %v", err)
		}
		close(gate2)
		w.waitDone(t, slow)
		if got := p.seqs(); !slices.Equal(got, []uint64{2, 3, 4}) {
			t.Fatalf("ran %v", got)
		}
	})
}

// TestForget drops an actor with nothing pending, and keeps one with
// calls pending.
func TestForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		idle, busy := ids.New(), ids.New()
		w.alive(idle, "proc-1")
		w.c.set(busy, pending, "", nil)
		c1, c2 := newCall("m", 0), newCall("m", 0)
		w.submit(t, idle, c1)
		w.submit(t, busy, c2)
		w.waitDone(t, c1)
		w.s.Forget(idle)
		w.s.Forget(busy)
		w.s.Forget(ids.New())
		if st := w.s.Stats(); st.Actors != 1 || st.Connected != 0 || st.Queued != 1 {
			t.Fatalf("after Forget: %+v", st)
		}
		if left := w.s.Close(); len(left) != 1 || left[0] != c2 {
			t.Fatalf("Close returned %v", left)
		}
	})
}

// TestClose hands back every pending call (queued, in flight, lost with
// a broken stream), stops following actors and refuses new calls.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		a, b, c := ids.New(), ids.New(), ids.New()
		w.c.set(a, pending, "", nil)
		w.alive(b, "proc-b")
		pc := w.alive(c, "proc-c")
		gate, started := make(chan struct{}), make(chan struct{})
		w.c.setRun(gateFirst(1, gate, started))
		queued, inflight, lost := newCall("m", 0), newCall("m", 0), newCall("m", 0)
		w.submit(t, a, queued)
		w.submit(t, b, inflight)
		<-started
		started2 := make(chan struct{})
		w.c.setRun(func(cn *fakeConn, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
			if ids.MustFromBytes(spec.GetActorId()) == c {
				close(started2)
				cn.block(nil, cancelled)
				return nil
			}
			return gateFirst(1, gate, make(chan struct{}))(cn, spec, cancelled)
		})
		w.submit(t, c, lost)
		<-started2
		pc.kill()
		synctest.Wait()
		if st := w.s.Stats(); st.Connected != 1 {
			t.Fatalf("after proc-c died: %+v", st)
		}
		left := w.s.Close()
		if len(left) != 3 || !slices.Contains(left, queued) || !slices.Contains(left, inflight) || !slices.Contains(left, lost) {
			t.Fatalf("Close returned %v", left)
		}
		if err := w.s.Submit(newCall("m", 0), a, "a", true); err == nil {
			t.Fatal("Submit after Close succeeded")
		}
		if left := w.s.Close(); left != nil {
			t.Fatalf("second Close: %v", left)
		}
	})
}

// TestRetryOnApplicationError: a call whose reply the task manager
// decides to retry (RetryExceptions) is sent again, and the calls behind
// it are not held up.
func TestRetryOnApplicationError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		p := w.alive(actor, "proc-1")
		w.c.setRun(func(cn *fakeConn, spec *pb.TaskSpec, _ <-chan struct{}) *pb.TaskReply {
			if spec.GetSeqNo() == 1 && spec.GetAttempt() == 0 {
				return &pb.TaskReply{TaskId: spec.GetTaskId(), Error: errs.FromAppError(spec.GetFunction(), errors.New("flaky"), "", false, "", "", 0)}
			}
			return resultReply(spec)
		})
		flaky := taskmgr.NewTask(ids.New(), taskmgr.ActorCall, nil, 1, taskmgr.Policy{MaxRetries: 1, RetryExceptions: true})
		flaky.Spec.Function = "m"
		next := newCall("m", 0)
		w.submit(t, actor, flaky, next)
		w.waitDone(t, flaky, next)
		r := w.r.get(flaky)
		if len(r.replies) != 2 || r.final != nil || string(r.replies[1].GetReturns()[0].GetData()) != "seq 1 attempt 1" {
			t.Fatalf("retried call: %+v", r)
		}
		if got := p.seqs(); len(got) != 3 || !slices.Contains(got, 2) {
			t.Fatalf("ran %v", got)
		}
	})
}

// TestInfeasibleActorWarnsOnce: an actor no node can hold is reported to
// the user once, and its calls run once it is placed.
func TestInfeasibleActorWarnsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var warnings []string
		w := newWorld(t, Config{Warn: func(m string) { mu.Lock(); warnings = append(warnings, m); mu.Unlock() }})
		actor := ids.New()
		w.c.setInfeasible(actor)
		c := newCall("m", 0)
		w.submit(t, actor, c)
		synctest.Wait()
		w.c.setInfeasible(actor) // still pending: a new version, the same news
		synctest.Wait()
		w.alive(actor, "proc-1")
		w.waitDone(t, c)
		mu.Lock()
		defer mu.Unlock()
		if len(warnings) != 1 || !strings.Contains(warnings[0], "GPU=8") || !strings.Contains(warnings[0], actor.Short()) {
			t.Fatalf("warnings %q, want one naming the actor and its request", warnings)
		}
	})
}

// TestInterruptedCall: an actor killed in a process it shares: its
// running call is answered "interrupted" and handled as a process death
// (retried on the restarted actor here), the calls queued behind it are
// answered "not here" and run there at no cost, in order.
func TestInterruptedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, Config{})
		actor := ids.New()
		p1 := w.alive(actor, "proc-1")
		interrupt, started := make(chan struct{}), make(chan struct{})
		w.c.setRun(func(cn *fakeConn, spec *pb.TaskSpec, cancelled <-chan struct{}) *pb.TaskReply {
			if spec.GetSeqNo() == 1 && spec.GetAttempt() == 0 {
				close(started)
				if ok, _ := cn.block(interrupt, cancelled); !ok {
					return nil
				}
				return &pb.TaskReply{TaskId: spec.GetTaskId(), Error: &pb.ErrorInfo{Kind: errs.KindActorInterrupted}}
			}
			return resultReply(spec)
		})
		first := newCall("m", 1)
		behind := newCalls(2, "m", 0)
		w.submit(t, actor, first)
		<-started
		w.submit(t, actor, behind...)
		synctest.Wait()
		p1.drop(actor)
		p2 := w.alive(actor, "proc-2")
		close(interrupt)
		all := append([]*taskmgr.Task{first}, behind...)
		w.waitDone(t, all...)
		if got := p2.seqs(); !slices.Equal(got, []uint64{1, 2, 3}) {
			t.Fatalf("proc-2 ran %v, want 1 2 3", got)
		}
		if r := w.r.get(first); len(r.failures) != 1 || r.failures[0].Cause != taskmgr.CauseActorDied || len(r.replies) != 1 {
			t.Fatalf("interrupted call: %+v", r)
		}
		for _, x := range behind {
			if r := w.r.get(x); len(r.failures) != 0 || x.Spec.GetAttempt() != 0 {
				t.Fatalf("call %d: %+v", x.Spec.GetSeqNo(), r)
			}
		}
	})
}
