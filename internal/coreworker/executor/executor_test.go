package executor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/coreworker/registry"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/workerlog"
)

func echoRegistry() *registry.Registry {
	reg := registry.New()
	reg.AddFunc("echo", func(_ context.Context, args [][]byte) ([]registry.Encoded, error) { return one(args[0]), nil })
	return reg
}

// TestRunsTasksInOrder: a stream's tasks run one after another in order,
// completed from the batch header, with their arguments released and
// borrows flushed before each reply; Serve ends when the owner closes.
func TestRunsTasksInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, env := newExec(t, echoRegistry(), Config{NodeID: ids.New(), WorkerID: ids.New()})
		srv := newSrv()
		done := serve(e, srv)
		specs := []*pb.TaskSpec{task("echo", "a"), task("echo", "b"), task("echo", "c")}
		srv.in <- batch(specs...)
		byID, order := srv.replies(t, 3)
		for i, s := range specs {
			if order[i] != idOf(s) {
				t.Fatalf("reply %d is for another task: replies out of order", i)
			}
			if got := data(byID[idOf(s)]); got != string("abc"[i]) {
				t.Fatalf("task %d: %s", i, got)
			}
		}
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		env.mu.Lock()
		defer env.mu.Unlock()
		if env.released != 3 || env.flushes != 3 {
			t.Fatalf("released %d, flushes %d; want 3 each", env.released, env.flushes)
		}
		for _, s := range env.resolved {
			if !bytes.Equal(s.GetJobId(), testJob.Bytes()) || s.GetOwnerAddress() != "owner:1" || len(s.GetReturnIds()) != 1 ||
				ids.MustFromBytes(s.GetReturnIds()[0]) != ids.ForReturn(idOf(s), 0) {
				t.Fatalf("spec not completed from the header: %v", s)
			}
		}
	})
}

// TestBlockedTaskHandsOff: a task that blocks (its block hook) lets the
// tasks queued behind it run — one of them is what it waits for.
func TestBlockedTaskHandsOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New()
		ready := make(chan struct{})
		reg.AddFunc("waiter", func(ctx context.Context, _ [][]byte) ([]registry.Encoded, error) {
			hook := BlockHook(ctx)
			hook()
			hook() // a second block starts no second runner
			<-ready
			return one([]byte("waited")), nil
		})
		reg.AddFunc("producer", func(context.Context, [][]byte) ([]registry.Encoded, error) {
			close(ready)
			return one([]byte("produced")), nil
		})
		reg.AddFunc("echo", func(_ context.Context, args [][]byte) ([]registry.Encoded, error) { return one(args[0]), nil })
		e, _ := newExec(t, reg, Config{})
		srv := newSrv()
		done := serve(e, srv)
		w, p, after := task("waiter"), task("producer"), task("echo", "after")
		srv.in <- batch(w, p, after)
		byID, _ := srv.replies(t, 3)
		if data(byID[idOf(w)]) != "waited" || data(byID[idOf(p)]) != "produced" || data(byID[idOf(after)]) != "after" {
			t.Fatalf("replies: %v", byID)
		}
		if BlockHook(context.Background()) != nil {
			t.Fatal("BlockHook outside a task is not nil")
		}
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// counter is an actor whose Add records how many calls run at once and
// waits for release.
type counter struct {
	mu      sync.Mutex
	active  int
	most    int
	n       int
	release chan struct{}
}

func actorRegistry(release chan struct{}) *registry.Registry {
	reg := registry.New()
	reg.AddClass("Counter", func(_ context.Context, args [][]byte) (any, error) {
		switch string(firstArg(args)) {
		case "fail":
			return nil, errBoom
		case "panic":
			panic("constructor panicked")
		}
		return &counter{release: release}, nil
	})
	reg.AddMethod("Counter.Add", func(_ context.Context, self any, _ [][]byte) ([]registry.Encoded, error) {
		c := self.(*counter)
		c.mu.Lock()
		c.active++
		c.most = max(c.most, c.active)
		c.mu.Unlock()
		if c.release != nil {
			<-c.release
		}
		c.mu.Lock()
		c.active--
		c.n++
		n := c.n
		c.mu.Unlock()
		return one([]byte{byte('0' + n)}), nil
	})
	reg.AddMethod("Counter.Wait", func(ctx context.Context, _ any, _ [][]byte) ([]registry.Encoded, error) {
		<-ctx.Done()
		return one([]byte("woke")), nil
	})
	reg.AddMethod("Counter.Exit", func(ctx context.Context, _ any, _ [][]byte) ([]registry.Encoded, error) {
		return one([]byte("bye")), ExitActor(ctx)
	})
	return reg
}

func firstArg(args [][]byte) []byte {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

func creation(actor ids.ID, maxConc int32, args ...string) *pb.TaskSpec {
	s := task("Counter", args...)
	s.ActorId, s.ActorCreation, s.MaxConcurrency, s.NumReturns = actor.Bytes(), true, maxConc, 0
	return s
}

func method(actor ids.ID, m string) *pb.TaskSpec {
	s := task(m)
	s.ActorId = actor.Bytes()
	return s
}

// TestActorConcurrency: an actor's calls run one at a time across its
// callers' streams, or up to MaxConcurrency at once.
func TestActorConcurrency(t *testing.T) {
	for _, maxConc := range []int32{1, 3} {
		t.Run(string(rune('0'+maxConc)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				e, _ := newExec(t, actorRegistry(release), Config{})
				actor := ids.New()
				if info := e.HostActor(context.Background(), creation(actor, maxConc)); info != nil {
					t.Fatalf("HostActor: %v", info)
				}
				if !e.Hosts(actor) || e.Actors() != 1 {
					t.Fatal("actor not hosted")
				}
				a, b := newSrv(), newSrv()
				da, db := serve(e, a), serve(e, b)
				for _, s := range []*fakeSrv{a, b} {
					s.in <- &pb.TaskBatch{Tasks: []*pb.TaskSpec{task("Counter.Add"), task("Counter.Add"), task("Counter.Add")},
						Common: &pb.TaskSpec{ActorId: actor.Bytes()}}
				}
				synctest.Wait()
				if n := e.Running(); n != int(maxConc) {
					t.Fatalf("%d calls running, want %d", n, maxConc)
				}
				close(release)
				a.replies(t, 3)
				b.replies(t, 3)
				close(a.in)
				close(b.in)
				<-da
				<-db
				inst := e.actors[actor].instance.(*counter)
				inst.mu.Lock()
				defer inst.mu.Unlock()
				if inst.most != int(maxConc) || inst.n != 6 {
					t.Fatalf("at most %d calls at once (want %d), %d ran", inst.most, maxConc, inst.n)
				}
			})
		})
	}
}

// TestActorConcurrencyCallsOneByOne: calls to a concurrent actor that
// arrive one batch at a time, from one caller or several, run at once up
// to MaxConcurrency; the runners that served a burst are reused for the
// next, and none is left when the actor is dropped or the executor closes.
func TestActorConcurrencyCallsOneByOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		e, _ := newExec(t, actorRegistry(release), Config{})
		actor, other := ids.New(), ids.New()
		for _, id := range []ids.ID{actor, other} {
			if info := e.HostActor(context.Background(), creation(id, 3)); info != nil {
				t.Fatalf("HostActor: %v", info)
			}
		}
		a, b := newSrv(), newSrv()
		da, db := serve(e, a), serve(e, b)
		call := &pb.TaskBatch{Tasks: []*pb.TaskSpec{task("Counter.Add")}, Common: &pb.TaskSpec{ActorId: actor.Bytes()}}
		for i, s := range []*fakeSrv{a, b, a, b} {
			s.in <- proto.Clone(call).(*pb.TaskBatch)
			synctest.Wait()
			if n, want := e.Running(), min(i+1, 3); n != want {
				t.Fatalf("after call %d: %d calls running, want %d", i+1, n, want)
			}
		}
		close(release)
		a.replies(t, 2)
		b.replies(t, 2)
		ha := e.actors[actor]
		for round := range 3 { // one call at a time: one runner serves them all
			a.in <- proto.Clone(call).(*pb.TaskBatch)
			a.replies(t, 1)
			synctest.Wait()
			ha.mu.Lock()
			runners, parked := ha.runners, ha.parked
			ha.mu.Unlock()
			if runners != 1 || parked != 1 {
				t.Fatalf("round %d: %d runners, %d parked; want one runner, parked", round, runners, parked)
			}
		}
		e.DropActor(actor)
		synctest.Wait()
		ha.mu.Lock()
		runners := ha.runners
		ha.mu.Unlock()
		if runners != 0 {
			t.Fatalf("%d runners left after the actor was dropped", runners)
		}
		b.in <- &pb.TaskBatch{Tasks: []*pb.TaskSpec{task("Counter.Add")}, Common: &pb.TaskSpec{ActorId: other.Bytes()}}
		b.replies(t, 1) // other's runner is parked now; Close below must end it
		close(a.in)
		close(b.in)
		<-da
		<-db
	})
}

// blocker registers "block", which runs until its context is cancelled
// (then returns normally) or release is closed, signalling started.
func blocker(reg *registry.Registry, started chan<- ids.ID, release <-chan struct{}) {
	reg.AddFunc("block", func(ctx context.Context, _ [][]byte) ([]registry.Encoded, error) {
		ti, _ := InfoFrom(ctx)
		started <- ti.TaskID
		select {
		case <-ctx.Done():
		case <-release:
		}
		return one([]byte("finished")), nil
	})
}

// TestStealAnswersQueuedTasks: a steal request gives back tasks queued
// and not started, the last ones first; an empty answer still comes.
func TestStealAnswersQueuedTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := echoRegistry()
		started, release := make(chan ids.ID, 1), make(chan struct{})
		blocker(reg, started, release)
		e, _ := newExec(t, reg, Config{})
		srv := newSrv()
		done := serve(e, srv)
		head := task("block")
		rest := []*pb.TaskSpec{task("echo", "1"), task("echo", "2"), task("echo", "3"), task("echo", "4")}
		srv.in <- batch(append([]*pb.TaskSpec{head}, rest...)...)
		<-started
		srv.in <- &pb.TaskBatch{Steal: 2}
		got := <-srv.out
		if len(got.GetReplies()) != 0 || len(got.GetStolen()) != 2 || ids.MustFromBytes(got.GetStolen()[0]) != idOf(rest[2]) ||
			ids.MustFromBytes(got.GetStolen()[1]) != idOf(rest[3]) {
			t.Fatalf("steal answer: %v", got)
		}
		srv.in <- &pb.TaskBatch{Steal: 10}
		got = <-srv.out
		if len(got.GetStolen()) != 2 {
			t.Fatalf("steal of more than is queued: %v", got)
		}
		srv.in <- &pb.TaskBatch{Steal: 1}
		got = <-srv.out
		if len(got.GetStolen()) != 0 || len(got.GetReplies()) != 0 {
			t.Fatalf("steal with nothing queued: %v", got)
		}
		close(release)
		byID, _ := srv.replies(t, 1)
		if data(byID[idOf(head)]) != "finished" {
			t.Fatalf("head: %v", byID)
		}
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(srv.out) != 0 {
			t.Fatal("stolen tasks ran")
		}
	})
}

// TestCancel: a task queued behind a long one is answered Cancelled at
// once; a running one has its context cancelled and is answered
// Cancelled whatever it returns.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := echoRegistry()
		started := make(chan ids.ID, 1)
		blocker(reg, started, nil)
		e, _ := newExec(t, reg, Config{})
		srv := newSrv()
		done := serve(e, srv)
		long, queued := task("block"), task("echo", "x")
		srv.in <- batch(long, queued)
		<-started
		if e.Running() != 1 {
			t.Fatalf("Running = %d", e.Running())
		}
		if !e.Cancel(idOf(queued)) {
			t.Fatal("queued task not found")
		}
		byID, _ := srv.replies(t, 1) // while the long task still runs
		if r := byID[idOf(queued)]; r == nil || !errors.Is(errs.FromInfo(r.GetError()), errs.ErrTaskCancelled) {
			t.Fatalf("queued task's reply: %v", byID)
		}
		if e.Running() != 1 {
			t.Fatal("the long task ended")
		}
		if !e.Cancel(idOf(long)) {
			t.Fatal("running task not found")
		}
		byID, _ = srv.replies(t, 1)
		if r := byID[idOf(long)]; r == nil || !errors.Is(errs.FromInfo(r.GetError()), errs.ErrTaskCancelled) || len(r.GetReturns()) != 0 {
			t.Fatalf("running task's reply: %v", byID)
		}
		if e.Cancel(ids.New()) {
			t.Fatal("Cancel found a task never sent")
		}
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if e.Running() != 0 {
			t.Fatalf("Running = %d after the stream ended", e.Running())
		}
	})
}

// TestCancelBeforeArrival: a cancel that overtakes its task (the task
// still on its way to the worker) is remembered: the task is answered
// cancelled when it arrives and never runs, even behind a long task.
func TestCancelBeforeArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := echoRegistry()
		started := make(chan ids.ID, 1)
		blocker(reg, started, nil)
		e, _ := newExec(t, reg, Config{})
		srv := newSrv()
		done := serve(e, srv)
		long, late := task("block"), task("echo", "late")
		srv.in <- batch(long)
		<-started
		if e.Cancel(idOf(late)) {
			t.Fatal("Cancel found a task not sent yet")
		}
		srv.in <- batch(late)
		byID, _ := srv.replies(t, 1) // while the long task still runs
		if r := byID[idOf(late)]; r == nil || !errors.Is(errs.FromInfo(r.GetError()), errs.ErrTaskCancelled) {
			t.Fatalf("the task cancelled before it arrived: %v", byID)
		}
		if e.Running() != 1 {
			t.Fatal("the long task ended")
		}
		e.Cancel(idOf(long))
		srv.replies(t, 1)
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestHostActor: construction errors are reported as the error to give
// the creator; a hosted actor runs its methods; a dropped or unknown
// actor's calls are answered "not here".
func TestHostActor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, env := newExec(t, actorRegistry(nil), Config{NodeID: ids.New(), WorkerID: ids.New()})
		ctx := context.Background()

		bad := creation(ids.New(), 1)
		bad.Function = "Nope"
		if info := e.HostActor(ctx, bad); !errors.Is(errs.FromInfo(info), errs.ErrNotRegistered) {
			t.Fatalf("unregistered class: %v", info)
		}
		noArgs := creation(ids.New(), 1)
		env.mu.Lock()
		env.resolveErr["Counter"] = &errs.ArgumentError{Function: "Counter", Detail: "bad"}
		env.mu.Unlock()
		if info := e.HostActor(ctx, noArgs); !errors.Is(errs.FromInfo(info), errs.ErrBadArgument) {
			t.Fatalf("arguments failing: %v", info)
		}
		env.mu.Lock()
		delete(env.resolveErr, "Counter")
		env.mu.Unlock()
		var te *errs.TaskError
		if info := e.HostActor(ctx, creation(ids.New(), 1, "fail")); !errors.As(errs.FromInfo(info), &te) || te.Function != "Counter" || te.Panic {
			t.Fatalf("constructor error: %v", info)
		}
		if info := e.HostActor(ctx, creation(ids.New(), 1, "panic")); !errors.As(errs.FromInfo(info), &te) || !te.Panic || te.Stack == "" {
			t.Fatalf("constructor panic: %v", info)
		}
		if e.Actors() != 0 {
			t.Fatalf("%d actors hosted after failed constructions", e.Actors())
		}

		actor := ids.New()
		if info := e.HostActor(ctx, creation(actor, 0)); info != nil {
			t.Fatal(info)
		}
		srv := newSrv()
		done := serve(e, srv)
		add, missing := method(actor, "Counter.Add"), method(actor, "Counter.Missing")
		srv.in <- batch(add, missing)
		byID, _ := srv.replies(t, 2)
		if data(byID[idOf(add)]) != "1" || !errors.Is(errs.FromInfo(byID[idOf(missing)].GetError()), errs.ErrNotRegistered) {
			t.Fatalf("replies: %v", byID)
		}
		if !e.DropActor(actor) || e.DropActor(actor) || e.Hosts(actor) {
			t.Fatal("DropActor")
		}
		afterDrop, stranger := method(actor, "Counter.Add"), method(ids.New(), "Counter.Add")
		srv.in <- batch(afterDrop, stranger)
		byID, _ = srv.replies(t, 2)
		for _, s := range []*pb.TaskSpec{afterDrop, stranger} {
			if k := byID[idOf(s)].GetError().GetKind(); k != errs.KindActorNotHere {
				t.Fatalf("call of an actor not hosted: kind %v", k)
			}
		}
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestActorEnds: a graceful terminate ends the actor after the calls
// queued before it, and ExitActor ends it after the calling method;
// either way the process reports it and later calls are "not here".
func TestActorEnds(t *testing.T) {
	for _, how := range []string{TerminateMethod, "Counter.Exit"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, env := newExec(t, actorRegistry(nil), Config{})
				actor := ids.New()
				if info := e.HostActor(context.Background(), creation(actor, 1)); info != nil {
					t.Fatal(info)
				}
				srv := newSrv()
				done := serve(e, srv)
				before, end, after := method(actor, "Counter.Add"), method(actor, how), method(actor, "Counter.Add")
				srv.in <- batch(before, end, after)
				byID, _ := srv.replies(t, 3)
				if data(byID[idOf(before)]) != "1" || byID[idOf(end)].GetError() != nil ||
					byID[idOf(after)].GetError().GetKind() != errs.KindActorNotHere {
					t.Fatalf("replies: before %s, end %s, after %s", data(byID[idOf(before)]), data(byID[idOf(end)]), data(byID[idOf(after)]))
				}
				exited := env.waitExited(t, 1)
				if exited[0].actor != actor || exited[0].reason == "" || e.Hosts(actor) {
					t.Fatalf("exited: %+v", exited)
				}
				close(srv.in)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	if err := ExitActor(context.Background()); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("ExitActor outside a method: %v", err)
	}
}

// TestTaskErrors: each way a task can fail reaches its reply as the
// right kind of error.
func TestTaskErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New()
		reg.AddFunc("fails", func(context.Context, [][]byte) ([]registry.Encoded, error) { return nil, errBoom })
		reg.AddFunc("panics", func(context.Context, [][]byte) ([]registry.Encoded, error) { panic("oops") })
		reg.AddFunc("badargs", func(context.Context, [][]byte) ([]registry.Encoded, error) {
			return nil, &errs.ArgumentError{Function: "badargs", Detail: "want an int"}
		})
		reg.AddFunc("two", func(context.Context, [][]byte) ([]registry.Encoded, error) { return []registry.Encoded{{}, {}}, nil })
		reg.AddFunc("stored", func(context.Context, [][]byte) ([]registry.Encoded, error) { return one(nil), nil })
		reg.AddFunc("unresolved", func(context.Context, [][]byte) ([]registry.Encoded, error) { return one(nil), nil })
		node, worker := ids.New(), ids.New()
		e, env := newExec(t, reg, Config{NodeID: node, WorkerID: worker})
		env.resolveErr["unresolved"] = &errs.ObjectError{ObjectID: ids.New().String(), Kind: errs.KindOwnerDied}
		env.storeErr = errs.Systemf("store: full")
		srv := newSrv()
		done := serve(e, srv)
		specs := map[string]*pb.TaskSpec{}
		var list []*pb.TaskSpec
		for _, fn := range []string{"missing", "fails", "panics", "badargs", "two", "stored", "unresolved"} {
			specs[fn] = task(fn)
			list = append(list, specs[fn])
		}
		specs["fails"].Attempt = 2
		srv.in <- batch(list...)
		byID, _ := srv.replies(t, len(list))
		get := func(fn string) error { return errs.FromInfo(byID[idOf(specs[fn])].GetError()) }

		if !errors.Is(get("missing"), errs.ErrNotRegistered) {
			t.Errorf("missing: %v", get("missing"))
		}
		var te *errs.TaskError
		if !errors.As(get("fails"), &te) || te.Function != "fails" || te.Panic || te.NodeID != node.String() ||
			te.WorkerID != worker.String() || te.Attempt != 2 {
			t.Errorf("fails: %#v", te)
		}
		if !errors.As(get("panics"), &te) || !te.Panic || !strings.Contains(te.Stack, "executor") {
			t.Errorf("panics: %v", get("panics"))
		}
		if !errors.Is(get("badargs"), errs.ErrBadArgument) {
			t.Errorf("badargs: %v", get("badargs"))
		}
		if !errors.Is(get("two"), errs.ErrSystem) {
			t.Errorf("two results for one return: %v", get("two"))
		}
		if !errors.Is(get("stored"), errs.ErrSystem) {
			t.Errorf("store failure: %v", get("stored"))
		}
		if !errors.Is(get("unresolved"), errs.ErrOwnerDied) {
			t.Errorf("argument failure: %v", get("unresolved"))
		}
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestServeEnds: Serve returns a broken stream's error, nothing when the
// caller went away, a failed send's error, and refuses to start once the
// executor is closed.
func TestServeEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newExec(t, echoRegistry(), Config{})
		broke := errors.New("connection reset")

		srv := newSrv()
		done := serve(e, srv)
		srv.broken <- broke
		if err := <-done; !errors.Is(err, broke) {
			t.Fatalf("broken stream: %v", err)
		}

		srv = newSrv()
		done = serve(e, srv)
		srv.cancel()
		srv.broken <- broke
		if err := <-done; err != nil {
			t.Fatalf("caller gone: %v", err)
		}

		srv = newSrv()
		srv.sendErr = broke
		done = serve(e, srv)
		srv.in <- batch(task("echo", "x"), task("echo", "y"))
		synctest.Wait()
		close(srv.in)
		if err := <-done; !errors.Is(err, broke) {
			t.Fatalf("failed send: %v", err)
		}

		e.Close()
		if err := e.Serve(newSrv()); !errors.Is(err, errs.ErrSystem) {
			t.Fatalf("Serve after Close: %v", err)
		}
	})
}

// TestRepliesBatched: replies that accumulate while the writer sends go
// out together, in order.
func TestRepliesBatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := echoRegistry()
		firstSent := make(chan struct{})
		reg.AddFunc("later", func(_ context.Context, args [][]byte) ([]registry.Encoded, error) {
			<-firstSent
			return one(args[0]), nil
		})
		e, _ := newExec(t, reg, Config{})
		srv := newSrv()
		srv.gate = make(chan struct{})
		done := serve(e, srv)
		specs := []*pb.TaskSpec{task("echo", "1"), task("later", "2"), task("echo", "3"), task("echo", "4"), task("echo", "5")}
		srv.in <- batch(specs...)
		<-srv.sending // the writer sends the first reply and waits
		close(firstSent)
		synctest.Wait() // the other tasks have run
		srv.gate <- struct{}{}
		<-srv.sending
		srv.gate <- struct{}{}
		first, second := <-srv.out, <-srv.out
		if len(first.GetReplies()) != 1 || len(second.GetReplies()) != 4 {
			t.Fatalf("batches of %d and %d replies; want 1, then the 4 that came while it was sent", len(first.GetReplies()), len(second.GetReplies()))
		}
		for i, r := range append(first.GetReplies(), second.GetReplies()...) {
			if ids.MustFromBytes(r.GetTaskId()) != idOf(specs[i]) {
				t.Fatal("replies out of order")
			}
		}
		close(srv.gate)
		close(srv.in)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestCloseWithin names the goroutines of tasks that ignore their
// context.
func TestCloseWithin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := registry.New()
		started, release := make(chan struct{}), make(chan struct{})
		reg.AddFunc("stubborn", func(context.Context, [][]byte) ([]registry.Encoded, error) {
			close(started)
			<-release
			return one(nil), nil
		})
		e, _ := newExec(t, reg, Config{})
		srv := newSrv()
		done := serve(e, srv)
		srv.in <- batch(task("stubborn"))
		<-started
		left := e.CloseWithin(time.Second)
		if !slices.Contains(left, "executor.run") {
			t.Fatalf("CloseWithin left %v, want the runner", left)
		}
		close(release)
		close(srv.in)
		<-done
		if left := e.CloseWithin(time.Second); left != nil {
			t.Fatalf("after the task returned: %v", left)
		}
	})
}

func TestFillFromCommon(t *testing.T) {
	tid := ids.New()
	common := &pb.TaskSpec{JobId: []byte("job"), OwnerAddress: "owner", OwnerId: []byte("oid"), CallerId: []byte("cid"),
		ActorId: []byte("aid"), Resources: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}}

	spec := &pb.TaskSpec{TaskId: tid.Bytes(), NumReturns: 3}
	FillFromCommon(spec, common)
	if string(spec.JobId) != "job" || spec.OwnerAddress != "owner" || string(spec.OwnerId) != "oid" || string(spec.CallerId) != "cid" ||
		string(spec.ActorId) != "aid" || spec.Resources != common.Resources {
		t.Fatalf("not filled: %v", spec)
	}
	for i, r := range spec.ReturnIds {
		if ids.MustFromBytes(r) != ids.ForReturn(tid, i) {
			t.Fatalf("return id %d", i)
		}
	}
	if len(spec.ReturnIds) != 3 {
		t.Fatalf("%d return ids", len(spec.ReturnIds))
	}

	own := &pb.TaskSpec{TaskId: tid.Bytes(), JobId: []byte("mine"), OwnerAddress: "me", OwnerId: []byte("o"), CallerId: []byte("c"),
		ActorId: []byte("a"), Resources: &pb.Resources{}, ReturnIds: [][]byte{[]byte("given")}, NumReturns: 1}
	FillFromCommon(own, common)
	if string(own.JobId) != "mine" || own.OwnerAddress != "me" || string(own.OwnerId) != "o" || string(own.CallerId) != "c" ||
		string(own.ActorId) != "a" || own.Resources == common.Resources || string(own.ReturnIds[0]) != "given" {
		t.Fatalf("fields of its own overwritten: %v", own)
	}

	for name, s := range map[string]*pb.TaskSpec{
		"actor creation":   {TaskId: tid.Bytes(), NumReturns: 1, ActorCreation: true},
		"malformed id":     {TaskId: []byte("short"), NumReturns: 1},
		"too many returns": {TaskId: tid.Bytes(), NumReturns: ids.MaxReturns + 1},
		"no returns":       {TaskId: tid.Bytes()},
	} {
		FillFromCommon(s, nil)
		if len(s.ReturnIds) != 0 {
			t.Errorf("%s: %d return ids", name, len(s.ReturnIds))
		}
	}
}

// TestFitProcs sizes GOMAXPROCS to a normal task's CPUs, to one P per
// actor (up to the node's cores) for a process of actors that asked for
// none, and leaves it alone for actor calls or when disabled.
func TestFitProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(orig) })
	cpus := func(n float64) *pb.Resources { return &pb.Resources{Amounts: map[string]float64{"CPU": n}} }
	e := New(Config{FitProcs: true, AnnounceTo: []io.Writer{io.Discard}}, registry.New(), newEnv())
	defer e.Close()
	ncpu := runtime.NumCPU()
	cases := []struct {
		name string
		spec *pb.TaskSpec
		want int
	}{
		{"one CPU", &pb.TaskSpec{Resources: cpus(1)}, 1},
		{"no CPU", &pb.TaskSpec{}, 1},
		{"a fraction", &pb.TaskSpec{Resources: cpus(0.5)}, 1},
		{"more than the machine", &pb.TaskSpec{Resources: cpus(float64(ncpu + 8))}, ncpu},
		{"a lone actor without CPUs", &pb.TaskSpec{ActorId: ids.New().Bytes(), ActorCreation: true}, 1},
		{"actor with one CPU", &pb.TaskSpec{ActorId: ids.New().Bytes(), ActorCreation: true, Resources: cpus(1)}, 1},
	}
	for _, c := range cases {
		runtime.GOMAXPROCS(orig)
		e.procs.Store(int32(orig))
		e.fitProcs(c.spec)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("%s: GOMAXPROCS %d, want %d", c.name, got, c.want)
		}
	}
	// Sixteen actors without CPUs in one process use the node's cores.
	e.mu.Lock()
	for range 15 {
		id := ids.New()
		e.actors[id] = &hostedActor{id: id}
	}
	e.mu.Unlock()
	e.fitProcs(&pb.TaskSpec{ActorId: ids.New().Bytes(), ActorCreation: true})
	if got := runtime.GOMAXPROCS(0); got != min(16, ncpu) {
		t.Errorf("16th actor without CPUs: GOMAXPROCS %d, want %d", got, min(16, ncpu))
	}
	runtime.GOMAXPROCS(3)
	e.procs.Store(3)
	e.fitProcs(&pb.TaskSpec{ActorId: ids.New().Bytes(), Resources: cpus(1)})
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("an actor call changed GOMAXPROCS to %d", got)
	}
	off := New(Config{AnnounceTo: []io.Writer{io.Discard}}, registry.New(), newEnv())
	defer off.Close()
	off.fitProcs(&pb.TaskSpec{Resources: cpus(1)})
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("FitProcs off changed GOMAXPROCS to %d", got)
	}
}

// TestAnnounce writes the name of the code whose output follows, when it
// changes: a task's display name, an actor's class.
func TestAnnounce(t *testing.T) {
	var buf bytes.Buffer
	e := New(Config{AnnounceTo: []io.Writer{&buf}}, registry.New(), newEnv())
	defer e.Close()
	actor := ids.New().Bytes()
	for _, s := range []*pb.TaskSpec{
		{Function: "f"},
		{Function: "f"},
		{Function: "g", Name: "shown"},
		{Function: "Counter.Add", ActorId: actor},
		{Function: "Counter.Get", ActorId: actor},
		{Function: "Counter", ActorId: actor, ActorCreation: true},
	} {
		e.announce(s)
	}
	var got []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		if name, ok := workerlog.ParseName(sc.Bytes()); ok {
			got = append(got, name)
		}
	}
	if want := []string{"f", "shown", "Counter"}; !slices.Equal(got, want) {
		t.Fatalf("announced %q, want %q", got, want)
	}
}

// TestCancelCallWaitingForTurn: an actor call taken from its stream but
// waiting for the actor's turn (another caller's call runs) is cancelled
// at once and never runs.
func TestCancelCallWaitingForTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		e, _ := newExec(t, actorRegistry(release), Config{})
		actor := ids.New()
		if info := e.HostActor(context.Background(), creation(actor, 1)); info != nil {
			t.Fatal(info)
		}
		a, b := newSrv(), newSrv()
		da, db := serve(e, a), serve(e, b)
		end := sync.OnceFunc(func() { close(release); close(a.in); close(b.in) })
		t.Cleanup(end)
		first, waiting := method(actor, "Counter.Add"), method(actor, "Counter.Add")
		a.in <- batch(first)
		synctest.Wait()
		b.in <- batch(waiting)
		synctest.Wait()
		if !e.Cancel(idOf(waiting)) {
			t.Fatal("Cancel did not find the call waiting for the actor's turn")
		}
		byID, _ := b.replies(t, 1) // while the first call still runs
		if r := byID[idOf(waiting)]; r == nil || !errors.Is(errs.FromInfo(r.GetError()), errs.ErrTaskCancelled) {
			t.Fatalf("reply: %v", byID)
		}
		release <- struct{}{}
		byID, _ = a.replies(t, 1)
		if data(byID[idOf(first)]) != "1" {
			t.Fatalf("first call: %v", byID)
		}
		end()
		<-da
		<-db
		inst := e.actors[actor].instance.(*counter)
		inst.mu.Lock()
		defer inst.mu.Unlock()
		if inst.n != 1 {
			t.Fatalf("%d calls ran; the cancelled one ran too", inst.n)
		}
	})
}

// TestDropActorInterruptsRunningCalls: an actor dropped from a process it
// shares has its running call's context cancelled and answered
// "interrupted" whatever it returns; a call waiting for its turn is
// answered "not here".
func TestDropActorInterruptsRunningCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newExec(t, actorRegistry(nil), Config{})
		actor := ids.New()
		if info := e.HostActor(context.Background(), creation(actor, 1)); info != nil {
			t.Fatal(info)
		}
		a, b := newSrv(), newSrv()
		da, db := serve(e, a), serve(e, b)
		running, waiting := method(actor, "Counter.Wait"), method(actor, "Counter.Add")
		a.in <- batch(running)
		synctest.Wait()
		b.in <- batch(waiting)
		synctest.Wait()
		if !e.DropActor(actor) {
			t.Fatal("DropActor: not hosted")
		}
		byID, _ := a.replies(t, 1)
		if k := byID[idOf(running)].GetError().GetKind(); k != errs.KindActorInterrupted {
			t.Fatalf("running call: %s", data(byID[idOf(running)]))
		}
		byID, _ = b.replies(t, 1)
		if k := byID[idOf(waiting)].GetError().GetKind(); k != errs.KindActorNotHere {
			t.Fatalf("waiting call: %s", data(byID[idOf(waiting)]))
		}
		close(a.in)
		close(b.in)
		<-da
		<-db
	})
}

// TestDropActorAnswersAtOnce: a method that ignores its context cannot
// be stopped in a shared process, but its caller need not wait for it.
// Dropping the actor answers its running call "interrupted" and its
// queued call "not here" while the method still runs; what the method
// returns later is not sent.
func TestDropActorAnswersAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		e, _ := newExec(t, actorRegistry(release), Config{})
		actor := ids.New()
		if info := e.HostActor(context.Background(), creation(actor, 1)); info != nil {
			t.Fatal(info)
		}
		a, b := newSrv(), newSrv()
		da, db := serve(e, a), serve(e, b)
		running, queued := method(actor, "Counter.Add"), method(actor, "Counter.Add")
		a.in <- batch(running)
		synctest.Wait()
		b.in <- batch(queued)
		synctest.Wait()
		if !e.DropActor(actor) {
			t.Fatal("DropActor: not hosted")
		}
		byID, _ := a.replies(t, 1) // the method is still blocked on release
		if k := byID[idOf(running)].GetError().GetKind(); k != errs.KindActorInterrupted {
			t.Fatalf("running call: %s", data(byID[idOf(running)]))
		}
		byID, _ = b.replies(t, 1)
		if k := byID[idOf(queued)].GetError().GetKind(); k != errs.KindActorNotHere {
			t.Fatalf("queued call: %s", data(byID[idOf(queued)]))
		}
		close(release)
		synctest.Wait()
		if n := len(a.out) + len(b.out); n != 0 {
			t.Fatalf("%d more reply batches after the dropped actor's method returned", n)
		}
		close(a.in)
		close(b.in)
		<-da
		<-db
	})
}

// TestActorQueueKeepsEachCallersOrder: calls from two callers' streams
// share the actor's queue; each caller's run in the order sent, a call
// cancelled while queued behind another caller's is answered at once and
// never runs, and a process hosting two actors runs their calls side by
// side (one actor's long call does not hold up the other's).
func TestActorQueueKeepsEachCallersOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		e, _ := newExec(t, actorRegistry(release), Config{})
		busy, free := ids.New(), ids.New()
		for _, id := range []ids.ID{busy, free} {
			if info := e.HostActor(context.Background(), creation(id, 1)); info != nil {
				t.Fatal(info)
			}
		}
		e.actors[free].instance.(*counter).release = nil
		a, b, c := newSrv(), newSrv(), newSrv()
		da, db, dc := serve(e, a), serve(e, b), serve(e, c)
		first := method(busy, "Counter.Add")
		a.in <- batch(first)
		synctest.Wait()
		b1, b2 := method(busy, "Counter.Add"), method(busy, "Counter.Add")
		b.in <- batch(b1, b2)
		b3 := method(busy, "Counter.Add")
		b.in <- batch(b3)
		synctest.Wait()
		// The other actor in the process answers while busy's call runs.
		other := method(free, "Counter.Add")
		c.in <- batch(other)
		if byID, _ := c.replies(t, 1); data(byID[idOf(other)]) != "1" {
			t.Fatalf("the other actor's call: %v", byID)
		}
		if !e.Cancel(idOf(b2)) {
			t.Fatal("Cancel did not find the queued call")
		}
		byID, _ := b.replies(t, 1)
		if r := byID[idOf(b2)]; r == nil || !errors.Is(errs.FromInfo(r.GetError()), errs.ErrTaskCancelled) {
			t.Fatalf("cancelled call: %v", byID)
		}
		for range 3 {
			release <- struct{}{}
		}
		byID, _ = a.replies(t, 1)
		if data(byID[idOf(first)]) != "1" {
			t.Fatalf("first call: %s", data(byID[idOf(first)]))
		}
		byID, order := b.replies(t, 2)
		if data(byID[idOf(b1)]) != "2" || data(byID[idOf(b3)]) != "3" || order[0] != idOf(b1) {
			t.Fatalf("b's calls ran out of order: b1 %s, b3 %s", data(byID[idOf(b1)]), data(byID[idOf(b3)]))
		}
		close(a.in)
		close(b.in)
		close(c.in)
		<-da
		<-db
		<-dc
	})
}

// TestActorCallsWhileStopping: calls that reach an actor after the
// executor began stopping are not run and not answered (the process is
// going away; callers learn their fate from the actor's), and the stream
// still ends.
func TestActorCallsWhileStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, _ := newExec(t, actorRegistry(nil), Config{})
		actor := ids.New()
		if info := e.HostActor(context.Background(), creation(actor, 2)); info != nil {
			t.Fatal(info)
		}
		a := newSrv()
		done := serve(e, a)
		synctest.Wait()
		closed := make(chan struct{})
		go func() { e.Close(); close(closed) }() // it waits for the stream to end
		synctest.Wait()
		a.in <- batch(method(actor, "Counter.Add"), method(actor, "Counter.Add"))
		synctest.Wait()
		close(a.in)
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		<-closed
		if len(a.out) != 0 {
			t.Fatalf("%d reply batches after Close, want none", len(a.out))
		}
		if n := e.actors[actor].instance.(*counter).n; n != 0 {
			t.Fatalf("%d calls ran after Close", n)
		}
	})
}

func TestRunList(t *testing.T) {
	ids := func(l *runList) (out []int) {
		for r := l.first; r != nil; r = r.next {
			out = append(out, int(r.spec.GetNumReturns()))
		}
		var back []int
		for r := l.last; r != nil; r = r.prev {
			back = append([]int{int(r.spec.GetNumReturns())}, back...)
		}
		if !slices.Equal(out, back) {
			t.Fatalf("forward %v, backward %v", out, back)
		}
		return out
	}
	for _, tc := range []struct {
		remove []int
		want   []int
	}{
		{nil, []int{0, 1, 2}},
		{[]int{0}, []int{1, 2}},
		{[]int{1}, []int{0, 2}},
		{[]int{2}, []int{0, 1}},
		{[]int{1, 1}, []int{0, 2}}, // twice: a no-op
		{[]int{0, 1, 2}, nil},
	} {
		var l runList
		rs := make([]*running, 3)
		for i := range rs {
			rs[i] = &running{spec: &pb.TaskSpec{NumReturns: int32(i)}}
			l.push(rs[i])
		}
		for _, i := range tc.remove {
			l.remove(rs[i])
		}
		if got := ids(&l); !slices.Equal(got, tc.want) {
			t.Errorf("remove %v: %v, want %v", tc.remove, got, tc.want)
		}
	}
}
