//go:build !windows

package ray_test

// Tests of behaviours where raygo once differed from Ray (issue "Core
// worker rebuilt as Ray's components"); each names the numbered behaviour
// it covers. Timing is never asserted: where a behaviour is about time
// (work waiting behind a busy worker), the tests check what ran at once
// with what.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/ray"
)

// envScript makes the test binary run one of scripts as a separate
// driver process (its value names it), instead of the tests.
const envScript = "RAYGO_TEST_SCRIPT"

// scripts are driver programs the tests start as separate processes.
var scripts = map[string]func() int{
	"detached-put":      func() int { return scriptDetachedPut(false) },
	"detached-put-hang": func() int { return scriptDetachedPut(true) },
	"node":              scriptNode,
}

func runScript(name string) int {
	f, ok := scripts[name]
	if !ok {
		fmt.Println("no script", name)
		return 2
	}
	return f()
}

func scriptCmd(name, addr string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=XXX")
	cmd.Env = append(os.Environ(), envScript+"="+name, ray.EnvAddress+"="+addr, ray.EnvToken+"=tok")
	return cmd
}

// runScriptProcess runs the test binary as the driver script name
// against the cluster at addr and returns what it printed.
func runScriptProcess(t *testing.T, name, addr string) string {
	t.Helper()
	out, err := scriptCmd(name, addr).CombinedOutput()
	if err != nil {
		t.Fatalf("script %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// killScriptAfter runs the driver script name until it prints want, then
// kills it with SIGKILL.
func killScriptAfter(t *testing.T, name, addr, want string) {
	t.Helper()
	cmd := scriptCmd(name, addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if strings.TrimSpace(line) != want {
		t.Fatalf("script %s said %q, want %q", name, line, want)
	}
}

var (
	// CrashOn counts calls and kills its own process on call k, after
	// 200 ms of work that never blocks (a crash in the middle of a
	// computation). The replies of the calls before must have left by
	// then: a worker sends a reply as soon as its call ends when it has a
	// spare P, else when the running call blocks or is preempted (Go's
	// 10 ms slice). A call that finished just before the crash may fail
	// as ActorDied, as Ray documents for at-most-once actor calls. (30 ms
	// was too little on a loaded 2-core CI machine: call 79's reply had
	// not left.)
	CrashOn = ray.Method1(Counter, func(c *counter, ctx context.Context, k int) (int, error) {
		c.n++
		if c.n == k {
			for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
			}
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return c.n, nil
	}, ray.RegisterName("CrashOn"))
	// MarkSlow makes a new file in dir each time it starts; its first
	// start in dir then sleeps ms (a re-run returns at once). It returns
	// its pid.
	MarkSlow = ray.Method2(Counter, func(c *counter, ctx context.Context, dir string, ms int) (int, error) {
		earlier, _ := os.ReadDir(dir)
		f, err := os.CreateTemp(dir, "start-"+strconv.Itoa(os.Getpid())+"-*")
		if err != nil {
			return 0, err
		}
		f.Close()
		if len(earlier) == 0 { // only the first start is slow: a re-run returns at once
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		return os.Getpid(), nil
	}, ray.RegisterName("MarkSlow"))
)

// Behaviour 1: an actor with MaxRestarts(1) that crashes on call 100 of
// 200: the calls that finished keep their results, the calls in flight
// fail (MaxTaskRetries 0: at most once), and calls made after the crash
// run on the restarted actor.
func TestBehaviour01ActorCrashKeepsFinishedCalls(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	c := Counter.Options(ray.MaxRestarts(1)).Remote(ctx)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	refs := make([]ray.ObjectRef[int], 200)
	for i := range refs {
		refs[i] = CrashOn.Remote(ctx, c, 100)
	}
	for i := range 99 {
		if v, err := refs[i].Get(ctx); err != nil || v != i+1 {
			t.Fatalf("call %d, finished before the crash: %v, %v", i+1, v, err)
		}
	}
	for i := 99; i < 200; i++ {
		if _, err := refs[i].Get(ctx); !errors.Is(err, ray.ErrActorDied) {
			t.Fatalf("call %d, in flight at the crash: %v, want ActorDied", i+1, err)
		}
	}
	// Calls made after the crash run on the restarted actor (its state is
	// new: the constructor ran again).
	for i := range 5 {
		if v, err := Inc.Remote(ctx, c).Get(ctx); err != nil || v != i+1 {
			t.Fatalf("call %d after the restart: %v, %v", i+1, v, err)
		}
	}
	runtime.KeepAlive(c)
}

// Behaviour 2: Kill with AllowRestart restarts the actor and, with
// MaxTaskRetries(-1), re-runs the call that was running.
func TestBehaviour02KillWithRestartRerunsTheRunningCall(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	for name, opts := range map[string][]ray.ActorOption{
		"own process":    {ray.NumCPUs(1)},
		"shared process": nil, // actors that ask for no CPU share processes
	} {
		t.Run(name, func(t *testing.T) {
			// A neighbour keeps a shared process alive when the killed
			// actor leaves it.
			neighbour := Counter.Options(opts...).Remote(ctx)
			if err := neighbour.Err(); err != nil {
				t.Fatal(err)
			}
			defer runtime.KeepAlive(neighbour)
			if _, err := Inc.Remote(ctx, neighbour).Get(ctx); err != nil {
				t.Fatal(err)
			}
			c := Counter.Options(append(opts, ray.MaxRestarts(-1), ray.MaxTaskRetries(-1))...).Remote(ctx)
			if err := c.Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := Inc.Remote(ctx, c).Get(ctx); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			slow := MarkSlow.Remote(ctx, c, dir, 3000)
			eventually(t, 30*time.Second, "the slow call to start", func() bool {
				list, _ := os.ReadDir(dir)
				return len(list) > 0
			})
			if err := ray.Kill(ctx, c, ray.AllowRestart()); err != nil {
				t.Fatal(err)
			}
			if _, err := slow.Get(ctx); err != nil {
				t.Fatalf("the call running at the kill: %v, want it re-run on the restarted actor", err)
			}
			// It ran again from the start, on the restarted actor.
			eventually(t, 30*time.Second, "the call's second start", func() bool {
				list, _ := os.ReadDir(dir)
				return len(list) == 2
			})
			if v, err := Value.Remote(ctx, c).Get(ctx); err != nil || v != 0 {
				t.Fatalf("state after the restart: %v, %v (want the constructor's 0)", v, err)
			}
			runtime.KeepAlive(c)
		})
	}
}

var (
	// SleepCtx sleeps ms unless its context is cancelled; it writes
	// <dir>/<tag>-start, then <dir>/<tag>-cancelled or <dir>/<tag>-done.
	SleepCtx = ray.Func3(func(ctx context.Context, dir, tag string, ms int) (int, error) {
		_ = os.WriteFile(filepath.Join(dir, tag+"-start"), nil, 0o600)
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			_ = os.WriteFile(filepath.Join(dir, tag+"-done"), nil, 0o600)
			return ms, nil
		case <-ctx.Done():
			_ = os.WriteFile(filepath.Join(dir, tag+"-cancelled"), nil, 0o600)
			return 0, ctx.Err()
		}
	}, ray.RegisterName("test.SleepCtx"))
	// SpawnChildren starts n SleepCtx children and waits for them.
	SpawnChildren = ray.Func3(func(ctx context.Context, dir string, n, ms int) (int, error) {
		refs := make([]ray.ObjectRef[int], n)
		for i := range refs {
			refs[i] = SleepCtx.Options(ray.NumCPUs(0)).Remote(ctx, dir, "child"+strconv.Itoa(i), ms)
		}
		vals, err := ray.Get(ctx, refs...)
		if err != nil {
			return 0, err
		}
		return len(vals), nil
	}, ray.RegisterName("test.SpawnChildren"))
	// SpawnLong returns a ref to a long task it submits (and so owns).
	SpawnLong = ray.Func2(func(ctx context.Context, dir string, ms int) (ray.ObjectRef[int], error) {
		return SleepCtx.Options(ray.NumCPUs(0)).Remote(ctx, dir, "owned-by-worker", ms), nil
	}, ray.RegisterName("test.SpawnLong"))
)

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// Behaviour 3: cancelling a task cancels the tasks it submitted
// (Recursive(false) leaves them); cancelling a ref owned by another
// process is forwarded to its owner; cancelling a task queued behind a
// long one on the same worker ends it at once.
func TestBehaviour03Cancel(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	t.Run("recursive", func(t *testing.T) {
		dir := t.TempDir()
		parent := SpawnChildren.Remote(ctx, dir, 2, 60_000)
		eventually(t, 30*time.Second, "the children to start", func() bool {
			return exists(dir, "child0-start") && exists(dir, "child1-start")
		})
		if err := ray.Cancel(ctx, parent); err != nil {
			t.Fatal(err)
		}
		if _, err := parent.Get(ctx); !errors.Is(err, ray.ErrTaskCancelled) {
			t.Fatalf("cancelled parent: %v", err)
		}
		eventually(t, 30*time.Second, "the children to be cancelled", func() bool {
			return exists(dir, "child0-cancelled") && exists(dir, "child1-cancelled")
		})
	})

	t.Run("not recursive", func(t *testing.T) {
		dir := t.TempDir()
		parent := SpawnChildren.Remote(ctx, dir, 1, 500)
		eventually(t, 30*time.Second, "the child to start", func() bool { return exists(dir, "child0-start") })
		if err := ray.Cancel(ctx, parent, ray.Recursive(false)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the child to finish", func() bool { return exists(dir, "child0-done") })
		if exists(dir, "child0-cancelled") {
			t.Fatal("Recursive(false) cancelled the child")
		}
	})

	t.Run("a ref owned by another process", func(t *testing.T) {
		dir := t.TempDir()
		inner, err := SpawnLong.Remote(ctx, dir, 60_000).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the worker's task to start", func() bool { return exists(dir, "owned-by-worker-start") })
		if err := ray.Cancel(ctx, inner); err != nil {
			t.Fatalf("Cancel of a borrowed ref: %v", err)
		}
		if _, err := inner.Get(ctx); !errors.Is(err, ray.ErrTaskCancelled) {
			t.Fatalf("Get after Cancel: %v", err)
		}
	})

	t.Run("queued behind a long task", func(t *testing.T) {
		// One CPU, and tiny tasks first so that tasks are pipelined: the
		// second task waits in the worker's queue behind the first.
		dir := t.TempDir()
		warm := make([]ray.ObjectRef[int], 300)
		for i := range warm {
			warm[i] = Square.Options(ray.NumCPUs(2)).Remote(ctx, i)
		}
		if _, err := ray.Get(ctx, warm...); err != nil {
			t.Fatal(err)
		}
		long := SleepCtx.Options(ray.NumCPUs(2)).Remote(ctx, dir, "long", 60_000)
		queued := SleepCtx.Options(ray.NumCPUs(2)).Remote(ctx, dir, "queued", 10)
		eventually(t, 30*time.Second, "the long task to start", func() bool { return exists(dir, "long-start") })
		if err := ray.Cancel(ctx, queued); err != nil {
			t.Fatal(err)
		}
		// It must end now, while the long task still runs.
		if _, err := queued.Get(ctx); !errors.Is(err, ray.ErrTaskCancelled) {
			t.Fatalf("queued task: %v", err)
		}
		if exists(dir, "long-done") || exists(dir, "queued-start") {
			t.Fatal("the queued task ran, or waited for the long one")
		}
		_ = ray.Cancel(ctx, long)
	})
}

// Spans records when it ran: it returns its start and end (unix ns).
var Spans = ray.Func1(func(ctx context.Context, ms int) ([2]int64, error) {
	start := time.Now().UnixNano()
	time.Sleep(time.Duration(ms) * time.Millisecond)
	return [2]int64{start, time.Now().UnixNano()}, nil
}, ray.RegisterName("test.Spans"))

// Behaviour 4 (and 13's tasks): after many tiny tasks raised the
// pipelining depth, four long tasks on four CPUs all run at once: none
// waits behind another while a CPU is idle.
func TestBehaviour04LongTasksAfterTinyOnesRunAtOnce(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(4))
	for round := range 2 {
		tiny := make([]ray.ObjectRef[int], 2000)
		for i := range tiny {
			tiny[i] = Square.Remote(ctx, i)
		}
		if _, err := ray.Get(ctx, tiny...); err != nil {
			t.Fatal(err)
		}
		long := make([]ray.ObjectRef[[2]int64], 4)
		for i := range long {
			long[i] = Spans.Remote(ctx, 1000)
		}
		spans, err := ray.Get(ctx, long...)
		if err != nil {
			t.Fatal(err)
		}
		lastStart, firstEnd := int64(0), int64(1<<62)
		for _, s := range spans {
			lastStart, firstEnd = max(lastStart, s[0]), min(firstEnd, s[1])
		}
		if lastStart >= firstEnd {
			t.Fatalf("round %d: a long task started only after another ended (spans %v): it waited behind it while CPUs were free", round, spans)
		}
	}
}

// Fail fails at once.
var Fail = ray.Func1(func(ctx context.Context, msg string) (int, error) { return 0, errors.New(msg) }, ray.RegisterName("test.Fail"))

// Behaviour 5: Get fails fast on the first error in any position, not in
// argument order.
func TestBehaviour05GetFailsFast(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	dir := t.TempDir()
	slow := SleepCtx.Remote(ctx, dir, "slow", 60_000)
	failed := Fail.Remote(ctx, "boom")
	if _, err := failed.Get(ctx); err == nil {
		t.Fatal("Fail succeeded")
	}
	gctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := ray.Get(gctx, slow, failed)
	if !errors.Is(err, ray.ErrTaskFailed) {
		t.Fatalf("Get(slow, failed) = %v, want the failure at once", err)
	}
	_ = ray.Cancel(ctx, slow)
}

var (
	// Keeper keeps a ref to a value it Put itself (it owns it).
	Keeper   = ray.Actor0(func(ctx context.Context) (*keeper, error) { return &keeper{}, nil }, ray.RegisterName("test.Keeper"))
	KeepPut  = ray.Method1(Keeper, (*keeper).KeepPut)
	KeptRef  = ray.Method0(Keeper, (*keeper).KeptRef)
	KeptRead = ray.Method0(Keeper, (*keeper).KeptRead)
)

type keeper struct{ ref ray.ObjectRef[string] }

func (k *keeper) KeepPut(ctx context.Context, v string) (ray.ObjectRef[string], error) {
	ref, err := ray.Put(ctx, v)
	k.ref = ref
	return ref, err
}

func (k *keeper) KeptRef(ctx context.Context) (ray.ObjectRef[string], error) { return k.ref, nil }

func (k *keeper) KeptRead(ctx context.Context) (string, error) { return k.ref.Get(ctx) }

// scriptDetachedPut creates a detached actor that puts a value, reads the
// ref it gets back, and exits (or, with hang, waits to be killed).
func scriptDetachedPut(hang bool) int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	k := Keeper.Options(ray.Name("keeper"), ray.Namespace("b6"), ray.Lifetime(ray.Detached)).Remote(ctx)
	if err := k.Err(); err != nil {
		fmt.Println("create:", err)
		return 1
	}
	ref, err := KeepPut.Remote(ctx, k, "kept value").Get(ctx)
	if err == nil {
		_, err = ref.Get(ctx)
	}
	if err != nil {
		fmt.Println("put:", err)
		return 1
	}
	fmt.Println("ok")
	if hang {
		select {}
	}
	return 0
}

// Behaviour 6: a ref made by Put inside a detached actor's method and
// returned to a driver stays readable through the actor after that driver
// exits: its owner is the actor's worker, and it lives while the actor and
// a reference do.
func TestBehaviour06DetachedActorPutOutlivesTheDriver(t *testing.T) {
	for _, killed := range []bool{false, true} {
		t.Run(map[bool]string{false: "driver exits", true: "driver killed"}[killed], func(t *testing.T) {
			testDetachedPut(t, killed)
		})
	}
}

func testDetachedPut(t *testing.T, killed bool) {
	head := startHead(t, 2, "tok", nil)
	if killed {
		killScriptAfter(t, "detached-put-hang", head.GCSAddress(), "ok")
		eventually(t, 30*time.Second, "the control store to end the killed driver's job", func() bool {
			return runningJobs(t, head) == 0
		})
	} else if out := runScriptProcess(t, "detached-put", head.GCSAddress()); !strings.Contains(out, "ok") {
		t.Fatalf("first driver: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	k, err := ray.GetActor[keeper](ctx, "keeper", ray.Namespace("b6"))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := KeptRead.Remote(ctx, k).Get(ctx); err != nil || v != "kept value" {
		t.Fatalf("read inside the actor after the first driver left: %q, %v", v, err)
	}
	ref, err := KeptRef.Remote(ctx, k).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ref.Get(ctx); err != nil || v != "kept value" {
		t.Fatalf("Get of the actor's ref from a later driver: %q, %v", v, err)
	}
	_ = ray.Kill(ctx, k)
}

// runningJobs counts the jobs the head's control store has running.
func runningJobs(t *testing.T, head *node.Head) int {
	conn, err := rpc.Dial(head.GCSAddress(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reply, err := pb.NewControlStoreClient(conn).ListJobs(context.Background(), &pb.ListJobsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range reply.GetJobs() {
		if j.GetState() == pb.JobState_JOB_STATE_RUNNING {
			n++
		}
	}
	return n
}

var (
	// Holder keeps an actor handle it was given.
	Holder     = ray.Actor0(func(ctx context.Context) (*holder, error) { return &holder{}, nil }, ray.RegisterName("test.Holder"))
	HoldHandle = ray.Method1(Holder, func(h *holder, ctx context.Context, c ray.ActorHandle[counter]) (int, error) {
		h.c = c
		return 0, nil
	}, ray.RegisterName("Hold"))
	CallHeld = ray.Method0(Holder, func(h *holder, ctx context.Context) (int, error) { return Inc.Remote(ctx, h.c).Get(ctx) }, ray.RegisterName("CallHeld"))
	DropHeld = ray.Method0(Holder, func(h *holder, ctx context.Context) (int, error) {
		h.c = ray.ActorHandle[counter]{}
		runtime.GC()
		return 0, nil
	}, ray.RegisterName("DropHeld"))
)

type holder struct{ c ray.ActorHandle[counter] }

func pidGone(pid int) func() bool { return func() bool { return !pidAlive(pid) } }

// Behaviour 8: actors are counted like object refs: when every handle of
// a non-detached actor is gone (borrowed ones included), it ends, its
// resources come back and its name becomes free.
func TestBehaviour08ActorsEndWithTheirLastHandle(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	total, err := ray.ClusterResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid := func() int {
		c := Counter.Options(ray.NumCPUs(1), ray.Name("gc-me")).Remote(ctx)
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
		p, err := ActorPid.Remote(ctx, c).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}()
	eventually(t, 30*time.Second, "the unreferenced actor's process to end", pidGone(pid))
	eventually(t, 30*time.Second, "its CPU to come back", func() bool {
		avail, err := ray.AvailableResources(ctx)
		return err == nil && avail["CPU"] == total["CPU"]
	})
	eventually(t, 30*time.Second, "its name to become free", func() bool {
		_, err := ray.GetActor[counter](ctx, "gc-me")
		return errors.Is(err, ray.ErrNotFound)
	})
	if c := Counter.Options(ray.Name("gc-me")).Remote(ctx); c.Err() != nil {
		t.Fatalf("name reuse: %v", c.Err())
	} else {
		runtime.KeepAlive(c)
	}

	// A borrowed handle keeps the actor alive; dropping it ends it.
	h := Holder.Remote(ctx)
	if err := h.Err(); err != nil {
		t.Fatal(err)
	}
	var lentPid int
	func() {
		c := Counter.Options(ray.NumCPUs(1)).Remote(ctx)
		if err := c.Err(); err != nil {
			t.Fatal(err)
		}
		if lentPid, err = ActorPid.Remote(ctx, c).Get(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := HoldHandle.Remote(ctx, h, c).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	for range 3 {
		runtime.GC()
		if v, err := CallHeld.Remote(ctx, h).Get(ctx); err != nil || v < 1 {
			t.Fatalf("call through the borrowed handle: %v, %v", v, err)
		}
	}
	if !pidAlive(lentPid) {
		t.Fatal("the actor ended while another actor held a handle to it")
	}
	if _, err := DropHeld.Remote(ctx, h).Get(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the actor to end after its last (borrowed) handle went", pidGone(lentPid))
	runtime.KeepAlive(h)
}

// Behaviour 11: an argument's failure reaches Get wrapped in the
// dependent task's error, and both match.
func TestBehaviour11ArgumentErrorsAreWrapped(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	failed := Fail.Remote(ctx, "upstream broke")
	_, err := Square.RemoteArgs(ctx, failed).Get(ctx)
	var te *ray.TaskError
	if !errors.As(err, &te) || te.Function != "test.Square" {
		t.Fatalf("dependent task's error: %v, want a TaskError of test.Square", err)
	}
	var inner *ray.TaskError
	if !errors.As(errors.Unwrap(err), &inner) || inner.Function != "test.Fail" {
		t.Fatalf("its cause: %v, want test.Fail's TaskError", errors.Unwrap(err))
	}
	if !errors.Is(err, ray.ErrTaskFailed) {
		t.Fatal("errors.Is(ErrTaskFailed) fails")
	}
}

var (
	// Owner is an actor that creates (and so owns) another actor.
	Owner     = ray.Actor0(func(ctx context.Context) (*owner, error) { return &owner{}, nil }, ray.RegisterName("test.Owner"))
	OwnerMake = ray.Method0(Owner, (*owner).Make)
	OwnerPid  = ray.Method0(Owner, func(o *owner, ctx context.Context) (int, error) { return os.Getpid(), nil }, ray.RegisterName("Pid"))
)

type owner struct{ made ray.ActorHandle[counter] }

func (o *owner) Make(ctx context.Context) (ray.ActorHandle[counter], error) {
	c := Counter.Options(ray.NumCPUs(0)).Remote(ctx)
	err := c.Err()
	o.made = c
	return c, err
}

// Behaviour 11: an actor that dies because its owner died reports that
// cause (it matches ErrOwnerDied), even to a call that was running.
func TestBehaviour11OwnerDiedIsTheCause(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	o := Owner.Options(ray.NumCPUs(1)).Remote(ctx)
	if err := o.Err(); err != nil {
		t.Fatal(err)
	}
	opid, err := OwnerPid.Remote(ctx, o).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OwnerMake.Remote(ctx, o).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	slow := MarkSlow.Remote(ctx, c, dir, 30_000)
	eventually(t, 30*time.Second, "the call to start", func() bool {
		list, _ := os.ReadDir(dir)
		return len(list) > 0
	})
	if err := syscall.Kill(opid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err = slow.Get(ctx)
	var ad *ray.ActorDiedError
	if !errors.As(err, &ad) || !errors.Is(err, ray.ErrOwnerDied) {
		t.Fatalf("call running when the actor's owner died: %v, want an ActorDiedError matching ErrOwnerDied", err)
	}
	if _, err := Value.Remote(ctx, c).Get(ctx); !errors.Is(err, ray.ErrOwnerDied) {
		t.Fatalf("later call: %v", err)
	}
	runtime.KeepAlive(o)
}

// scriptNode runs a node daemon joining the cluster at $RAYGO_ADDRESS
// with one CPU and the custom resource "far", then waits to be killed.
func scriptNode() int {
	rc := raylet.DefaultConfig()
	rc.GCSAddress, rc.Token = os.Getenv(ray.EnvAddress), os.Getenv(ray.EnvToken)
	rc.Resources = resources.Set{resources.CPU: 1, "far": 1}
	dir, err := os.MkdirTemp("", "raygo-node-*")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	rc.SessionDir = dir
	r, err := raylet.Start(rc)
	if err != nil {
		fmt.Println("node:", err)
		return 1
	}
	defer r.Stop()
	fmt.Println("ready")
	select {}
}

// Behaviour 11: a node daemon killed while its worker runs a task gives a
// NodeDiedError naming the node (not a worker crash).
func TestBehaviour11NodeDied(t *testing.T) {
	head := startHead(t, 2, "tok", nil)
	cmd := scriptCmd("node", head.GCSAddress())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if line, _ := bufio.NewReader(out).ReadString('\n'); strings.TrimSpace(line) != "ready" {
		t.Fatalf("node process said %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	dir := t.TempDir()
	ref := SleepCtx.Options(ray.Resources(map[string]float64{"far": 1}), ray.MaxRetries(0)).Remote(ctx, dir, "far", 60_000)
	eventually(t, 30*time.Second, "the task to start on the far node", func() bool { return exists(dir, "far-start") })
	_ = cmd.Process.Kill()
	_, err = ref.Get(ctx)
	var nd *ray.NodeDiedError
	if !errors.As(err, &nd) || !errors.Is(err, ray.ErrNodeDied) || nd.NodeID == "" {
		t.Fatalf("task on a node that died: %v, want a NodeDiedError", err)
	}
}
