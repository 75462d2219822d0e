//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

type counter struct {
	n       int
	created int64
	active  atomic.Int32
	peak    atomic.Int32
}

var (
	Counter = ray.Actor0(func(ctx context.Context) (*counter, error) {
		return &counter{created: time.Now().UnixNano()}, nil
	}, ray.RegisterName("test.Counter"))
	CounterFrom = ray.Actor1(func(ctx context.Context, start int) (*counter, error) {
		if start < 0 {
			return nil, errors.New("negative start")
		}
		return &counter{n: start}, nil
	}, ray.RegisterName("test.CounterFrom"))
	Inc  = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) { c.n++; return c.n, nil }, ray.RegisterName("Inc"))
	AddN = ray.Method1(Counter, func(c *counter, ctx context.Context, k int) (int, error) {
		c.n += k
		return c.n, nil
	}, ray.RegisterName("AddN"))
	Value    = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) { return c.n, nil }, ray.RegisterName("Value"))
	ActorPid = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) { return os.Getpid(), nil }, ray.RegisterName("Pid"))
	IncFrom  = ray.Method0(CounterFrom, func(c *counter, ctx context.Context) (int, error) { c.n++; return c.n, nil }, ray.RegisterName("Inc"))
	SlowPeak = ray.Method1(Counter, func(c *counter, ctx context.Context, ms int) (int32, error) {
		cur := c.active.Add(1)
		for {
			p := c.peak.Load()
			if cur <= p || c.peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		c.active.Add(-1)
		return c.peak.Load(), nil
	}, ray.RegisterName("SlowPeak"))
	// Exit kills the actor's process mid-call.
	Exit = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}, ray.RegisterName("Exit"))
	// CallCounter calls an actor whose handle it was given.
	CallCounter = ray.Func1(func(ctx context.Context, h ray.ActorHandle[counter]) (int, error) {
		return AddN.Remote(ctx, h, 100).Get(ctx)
	}, ray.RegisterName("test.CallCounter"))
)

func TestActorBasics(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	c := Counter.Remote(ctx)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	// Calls from one caller run in order.
	refs := make([]ray.ObjectRef[int], 100)
	for i := range refs {
		refs[i] = Inc.Remote(ctx, c)
	}
	vals, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != i+1 {
			t.Fatalf("call %d returned %d: calls ran out of order", i, v)
		}
	}
	// Handles can be passed to tasks.
	if v, err := CallCounter.Remote(ctx, c).Get(ctx); err != nil || v != 200 {
		t.Fatalf("call through a task: %v, %v", v, err)
	}
	// Constructor arguments; constructor failures kill the actor with the cause.
	c2 := CounterFrom.Remote(ctx, 41)
	if err := c2.Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := IncFrom.Remote(ctx, c2).Get(ctx); err != nil || v != 42 {
		t.Fatalf("IncFrom = %v, %v", v, err)
	}
	bad := CounterFrom.Remote(ctx, -1)
	if err := bad.Err(); err != nil {
		t.Fatal(err)
	}
	_, err = IncFrom.Remote(ctx, bad).Get(ctx)
	var ad *ray.ActorDiedError
	if !errors.As(err, &ad) || !errors.Is(err, ray.ErrActorDied) || !contains(ad.Reason, "negative start") {
		t.Fatalf("constructor failure: %v", err)
	}
}

func TestActorConcurrency(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	serial := Counter.Remote(ctx)
	conc := Counter.Options(ray.MaxConcurrency(4)).Remote(ctx)
	var sRefs, cRefs []ray.ObjectRef[int32]
	for range 8 {
		sRefs = append(sRefs, SlowPeak.Remote(ctx, serial, 20))
		cRefs = append(cRefs, SlowPeak.Remote(ctx, conc, 50))
	}
	s, err := ray.Get(ctx, sRefs...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ray.Get(ctx, cRefs...)
	if err != nil {
		t.Fatal(err)
	}
	if s[len(s)-1] != 1 {
		t.Fatalf("default actor ran %d calls at once", s[len(s)-1])
	}
	if c[len(c)-1] < 2 || c[len(c)-1] > 4 {
		t.Fatalf("MaxConcurrency(4) actor peaked at %d concurrent calls", c[len(c)-1])
	}
}

func TestNamedActors(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2), ray.Namespace("ns1"))
	a := Counter.Options(ray.Name("shared")).Remote(ctx)
	if err := a.Err(); err != nil {
		t.Fatal(err)
	}
	AddN.Remote(ctx, a, 5)
	// Same name, same namespace: an error, or the same actor with GetIfExists.
	if err := Counter.Options(ray.Name("shared")).Remote(ctx).Err(); !errors.Is(err, ray.ErrAlreadyExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	b := Counter.Options(ray.Name("shared"), ray.GetIfExists()).Remote(ctx)
	err := b.Err()
	if err != nil || b.ID() != a.ID() {
		t.Fatalf("GetIfExists gave %v, %v", b.ID(), err)
	}
	g, err := ray.GetActor[counter](ctx, "shared")
	if err != nil || g.ID() != a.ID() {
		t.Fatalf("GetActor: %v", err)
	}
	if v, err := Value.Remote(ctx, g).Get(ctx); err != nil || v != 5 {
		t.Fatalf("Value via GetActor = %v, %v", v, err)
	}
	// Namespaces separate names.
	if _, err := ray.GetActor[counter](ctx, "shared", ray.Namespace("other")); !errors.Is(err, ray.ErrNotFound) {
		t.Fatalf("GetActor in another namespace: %v", err)
	}
	o := Counter.Options(ray.Name("shared"), ray.Namespace("other")).Remote(ctx)
	if err := o.Err(); err != nil || o.ID() == a.ID() {
		t.Fatalf("same name in another namespace: %v", err)
	}
	if _, err := ray.GetActor[counter](ctx, "missing"); !errors.Is(err, ray.ErrNotFound) {
		t.Fatalf("GetActor(missing): %v", err)
	}
	// The wrong type is refused.
	type other struct{}
	if _, err := ray.GetActor[other](ctx, "shared"); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Fatalf("GetActor with the wrong type: %v", err)
	}
}

func TestKillActor(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	c := Counter.Options(ray.Name("victim"), ray.MaxRestarts(3)).Remote(ctx)
	pid, err := ActorPid.Remote(ctx, c).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := ray.Kill(ctx, c); err != nil {
		t.Fatal(err)
	}
	_, err = Inc.Remote(ctx, c).Get(ctx)
	var ad *ray.ActorDiedError
	if !errors.As(err, &ad) || !contains(ad.Reason, "ray.Kill") {
		t.Fatalf("call on a killed actor: %v", err)
	}
	eventually(t, 30*time.Second, "the killed actor's process to exit", func() bool { return !pidAlive(pid) })
	// A killed actor's name is free again.
	if _, err := ray.GetActor[counter](ctx, "victim"); !errors.Is(err, ray.ErrNotFound) {
		t.Fatalf("GetActor of a killed actor: %v", err)
	}
}

func TestActorRestart(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	// MaxRestarts(1): the first death restarts the actor (state reset by
	// its constructor), the second is final.
	c := Counter.Options(ray.MaxRestarts(1)).Remote(ctx)
	if v, _ := AddN.Remote(ctx, c, 10).Get(ctx); v != 10 {
		t.Fatalf("AddN = %d", v)
	}
	pid1, _ := ActorPid.Remote(ctx, c).Get(ctx)
	if err := syscall.Kill(pid1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the actor to restart", func() bool {
		v, err := Value.Remote(ctx, c).Get(ctx)
		return err == nil && v == 0
	})
	pid2, err := ActorPid.Remote(ctx, c).Get(ctx)
	if err != nil || pid2 == pid1 {
		t.Fatalf("restarted actor pid %d (was %d), %v", pid2, pid1, err)
	}
	// A call in flight when the process dies fails (at-most-once)...
	if _, err := Exit.Remote(ctx, c).Get(ctx); !errors.Is(err, ray.ErrActorDied) {
		t.Fatalf("call during death: %v", err)
	}
	// ...and with no restarts left the actor stays dead.
	_, err = Value.Remote(ctx, c).Get(ctx)
	var ad *ray.ActorDiedError
	if !errors.As(err, &ad) {
		t.Fatalf("call after final death: %v", err)
	}

	// Kill with AllowRestart restarts the actor.
	k := Counter.Options(ray.MaxRestarts(1)).Remote(ctx)
	if v, err := AddN.Remote(ctx, k, 3).Get(ctx); err != nil || v != 3 {
		t.Fatalf("AddN = %v, %v", v, err)
	}
	if err := ray.Kill(ctx, k, ray.AllowRestart()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the killed actor to restart", func() bool {
		v, err := Value.Remote(ctx, k).Get(ctx)
		return err == nil && v == 0
	})
}

func TestActorTaskRetries(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	// With MaxTaskRetries, a call in flight when the process dies runs
	// again on the restarted actor.
	c := Counter.Options(ray.MaxRestarts(-1), ray.MaxTaskRetries(-1)).Remote(ctx)
	pid, _ := ActorPid.Remote(ctx, c).Get(ctx)
	slow := SlowPeak.Remote(ctx, c, 1000)
	time.Sleep(200 * time.Millisecond) // let the call start (a retry covers either case)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if _, err := slow.Get(ctx); err != nil {
		t.Fatalf("retried call: %v", err)
	}
	pid2, _ := ActorPid.Remote(ctx, c).Get(ctx)
	if pid2 == pid {
		t.Fatal("actor was not restarted")
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

var (
	// FindCounter looks up a named actor from inside a task: workers use
	// the job's namespace.
	FindCounter = ray.Func1(func(ctx context.Context, name string) (int, error) {
		h, err := ray.GetActor[counter](ctx, name)
		if err != nil {
			return 0, err
		}
		return Value.Remote(ctx, h).Get(ctx)
	}, ray.RegisterName("test.FindCounter"))
)

func TestActorsFromTasksAndMisuse(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2), ray.Namespace("jobns"))
	c := Counter.Options(ray.Name("findme")).Remote(ctx)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := AddN.Remote(ctx, c, 3).Get(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := FindCounter.Remote(ctx, "findme").Get(ctx); err != nil || v != 3 {
		t.Fatalf("GetActor inside a task: %v, %v", v, err)
	}
	// The actor lives while a handle does; handles found by name do not
	// count (as in Ray), so this test keeps its own.
	runtime.KeepAlive(c)
	// A method of one actor type on a handle of another type with the
	// same Go type is refused.
	other := CounterFrom.Remote(ctx, 1)
	if err := other.Err(); err != nil {
		t.Fatal(err)
	}
	var h ray.ActorHandle[counter] = other
	if err := Inc.Remote(ctx, h).Err(); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Fatalf("method on an actor of another class: %v", err)
	}
}

// TestActorsShareProcesses: actors that ask for no CPU and no GPU share
// worker processes; killing one leaves the others; an actor that asks for
// a CPU gets a process of its own.
func TestActorsShareProcesses(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	hs := make([]ray.ActorHandle[counter], 20)
	for i := range hs {
		h := Counter.Remote(ctx)
		if err := h.Err(); err != nil {
			t.Fatal(err)
		}
		hs[i] = h
		AddN.Remote(ctx, h, i)
	}
	pids := map[int]bool{}
	for i, h := range hs {
		pid, err := ActorPid.Remote(ctx, h).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pids[pid] = true
		if v, err := Value.Remote(ctx, h).Get(ctx); err != nil || v != i {
			t.Fatalf("actor %d value %v, %v: state leaked between actors", i, v, err)
		}
	}
	if len(pids) != 1 {
		t.Fatalf("20 zero-CPU actors ran in %d processes, want 1", len(pids))
	}
	var shared int
	for p := range pids {
		shared = p
	}
	// Killing one leaves the process and the other actors alone.
	if err := ray.Kill(ctx, hs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := Value.Remote(ctx, hs[0]).Get(ctx); !errors.Is(err, ray.ErrActorDied) {
		t.Fatalf("call on a killed shared actor: %v", err)
	}
	if v, err := Value.Remote(ctx, hs[1]).Get(ctx); err != nil || v != 1 || !pidAlive(shared) {
		t.Fatalf("neighbour after a kill: %v, %v (process alive %v)", v, err, pidAlive(shared))
	}
	// Kill with restart: the actor comes back (state reset), the others stay.
	r := Counter.Options(ray.MaxRestarts(2)).Remote(ctx)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := AddN.Remote(ctx, r, 5).Get(ctx); err != nil || v != 5 {
		t.Fatalf("AddN = %v, %v", v, err)
	}
	if err := ray.Kill(ctx, r, ray.AllowRestart()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the shared actor to restart", func() bool {
		v, err := Value.Remote(ctx, r).Get(ctx)
		return err == nil && v == 0
	})
	if v, err := Value.Remote(ctx, hs[2]).Get(ctx); err != nil || v != 2 {
		t.Fatalf("neighbour after a restart: %v, %v", v, err)
	}
	// A CPU request buys a process of its own.
	own := Counter.Options(ray.NumCPUs(1)).Remote(ctx)
	if err := own.Err(); err != nil {
		t.Fatal(err)
	}
	if pid, err := ActorPid.Remote(ctx, own).Get(ctx); err != nil || pids[pid] {
		t.Fatalf("a one-CPU actor shared a process (pid %d), %v", pid, err)
	}
	// When the shared process dies, each of its actors restarts or dies
	// on its own terms.
	if err := syscall.Kill(shared, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := Value.Remote(ctx, hs[3]).Get(ctx); !errors.Is(err, ray.ErrActorDied) {
		t.Fatalf("actor of a dead shared process: %v", err)
	}
	eventually(t, 30*time.Second, "the restartable actor to come back", func() bool {
		v, err := Value.Remote(ctx, r).Get(ctx)
		return err == nil && v == 0
	})
}
