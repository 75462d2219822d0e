//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// TestOptionTypes: each option is accepted exactly where it means
// something, which the compiler enforces through these interfaces (a
// misplaced option does not compile); arguments of RemoteArgs are typed
// the same way.
func TestOptionTypes(t *testing.T) {
	type places struct{ init, task, actor, call, getActor, list, cancel, kill, register bool }
	is := func(o any) places {
		_, i := o.(ray.InitOption)
		_, tk := o.(ray.TaskOption)
		_, a := o.(ray.ActorOption)
		_, c := o.(ray.CallOption)
		_, g := o.(ray.GetActorOption)
		_, l := o.(ray.ListOption)
		_, cn := o.(ray.CancelOption)
		_, k := o.(ray.KillOption)
		_, r := o.(ray.RegisterOption)
		return places{i, tk, a, c, g, l, cn, k, r}
	}
	for _, tc := range []struct {
		name string
		opt  any
		want places
	}{
		{"Address", ray.Address("x:1"), places{init: true}},
		{"Token", ray.Token("t"), places{init: true}},
		{"InlineThreshold", ray.InlineThreshold(1), places{init: true}},
		{"ObjectStoreMemory", ray.ObjectStoreMemory(1), places{init: true}},
		{"SpillDir", ray.SpillDir("/tmp"), places{init: true}},
		{"LogWorkers", ray.LogWorkers(true), places{init: true}},
		{"FailIfInfeasible", ray.FailIfInfeasible(), places{init: true}},
		{"DefaultActorLifetime", ray.DefaultActorLifetime(ray.Detached), places{init: true}},
		{"NumCPUs", ray.NumCPUs(1), places{init: true, task: true, actor: true}},
		{"NumGPUs", ray.NumGPUs(1), places{init: true, task: true, actor: true}},
		{"Memory", ray.Memory(1), places{init: true, task: true, actor: true}},
		{"Resources", ray.Resources(nil), places{init: true, task: true, actor: true}},
		{"Name", ray.Name("n"), places{task: true, actor: true, call: true}},
		{"Namespace", ray.Namespace("ns"), places{init: true, actor: true, getActor: true, list: true}},
		{"Spread", ray.Spread(), places{task: true, actor: true}},
		{"RetryExceptions", ray.RetryExceptions(), places{task: true, call: true}},
		{"MaxTaskRetries", ray.MaxTaskRetries(1), places{actor: true, call: true}},
		{"MaxRetries", ray.MaxRetries(1), places{task: true}},
		{"OOMRetries", ray.OOMRetries(1), places{task: true}},
		{"GetIfExists", ray.GetIfExists(), places{actor: true}},
		{"Lifetime", ray.Lifetime(ray.Detached), places{actor: true}},
		{"MaxRestarts", ray.MaxRestarts(1), places{actor: true}},
		{"MaxConcurrency", ray.MaxConcurrency(2), places{actor: true}},
		{"AllNamespaces", ray.AllNamespaces(), places{list: true}},
		{"Force", ray.Force(), places{cancel: true}},
		{"Recursive", ray.Recursive(false), places{cancel: true}},
		{"AllowRestart", ray.AllowRestart(), places{kill: true}},
		{"RegisterName", ray.RegisterName("x"), places{register: true}},
	} {
		if got := is(tc.opt); got != tc.want {
			t.Errorf("%s is accepted in %+v, want %+v", tc.name, got, tc.want)
		}
	}

	if _, ok := any(ray.ObjectRef[int]{}).(ray.Arg[int]); !ok {
		t.Error("ObjectRef[int] is not an Arg[int]")
	}
	if _, ok := any(ray.ObjectRef[string]{}).(ray.Arg[int]); ok {
		t.Error("ObjectRef[string] is an Arg[int]")
	}
	if _, ok := any(ray.Val(1)).(ray.Arg[int]); !ok {
		t.Error("Val(1) is not an Arg[int]")
	}
	if _, ok := any(ray.Val("x")).(ray.Arg[int]); ok {
		t.Error(`Val("x") is an Arg[int]`)
	}
}

// Registered without names: the names come from the code.
type namedCounter struct{ N int }

func newNamedCounter(ctx context.Context) (*namedCounter, error) { return &namedCounter{}, nil }

func (c *namedCounter) Add(ctx context.Context, k int) (int, error) { c.N += k; return c.N, nil }
func (c namedCounter) Get(ctx context.Context) (int, error)         { return c.N, nil }

func wordLen(ctx context.Context, s string) (int, error) { return len(s), nil }

func sumInts[T int | int64](ctx context.Context, xs []T) (T, error) {
	var s T
	for _, x := range xs {
		s += x
	}
	return s, nil
}

var (
	WordLen         = ray.Func1(wordLen)
	NamedCounter    = ray.Actor0(newNamedCounter)
	NamedCounterAdd = ray.Method1(NamedCounter, (*namedCounter).Add)
	NamedCounterGet = ray.Method0(NamedCounter, (*namedCounter).Get)
	// A plain function as a method, registered under its full name.
	NamedCounterReset = ray.Method0(NamedCounter, resetNamedCounter)
	// A closure, named explicitly as it should be.
	Shout = ray.Func1(func(ctx context.Context, s string) (string, error) { return strings.ToUpper(s), nil },
		ray.RegisterName("test.Shout"))
	SumInts     = ray.Func1(sumInts[int], ray.RegisterName("test.SumInts[int]"))
	AnonClosure = ray.Func0(func(context.Context) (int, error) { return 0, nil })
)

func resetNamedCounter(c *namedCounter, ctx context.Context) (int, error) { c.N = 0; return 0, nil }

// panicOf runs f and returns what it panicked with ("" if it did not).
func panicOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

func TestRegistrationNames(t *testing.T) {
	const pkg = "github.com/raygo/raygo/ray_test"
	for got, want := range map[string]string{
		WordLen.Name():           pkg + ".wordLen",
		NamedCounter.Name():      pkg + ".namedCounter",
		NamedCounterAdd.Name():   "Add",
		NamedCounterGet.Name():   "Get",
		NamedCounterReset.Name(): pkg + ".resetNamedCounter",
		Shout.Name():             "test.Shout",
		SumInts.Name():           "test.SumInts[int]",
	} {
		if got != want {
			t.Errorf("registered as %q, want %q", got, want)
		}
	}
	// Registration mistakes panic at init with a message that says what to do.
	for what, tc := range map[string]struct {
		f    func()
		want []string
	}{
		"duplicate function": {func() { ray.Func1(wordLen) }, []string{`function "` + pkg + `.wordLen" is registered twice`, "api_test.go:", "ray.RegisterName"}},
		"duplicate explicit": {func() {
			ray.Func0(func(context.Context) (int, error) { return 0, nil }, ray.RegisterName("test.Shout"))
		}, []string{`"test.Shout" is registered twice`}},
		"duplicate class":  {func() { ray.Actor0(newNamedCounter) }, []string{`actor class "` + pkg + `.namedCounter" is registered twice`}},
		"duplicate method": {func() { ray.Method0(NamedCounter, (*namedCounter).Get) }, []string{`actor method "` + pkg + `.namedCounter.Get" is registered twice`}},
		"generic function": {func() { ray.Func1(sumInts[int64]) }, []string{"generic function", "ray.RegisterName"}},
		"unnamed type":     {func() { ray.Actor0(func(context.Context) (*struct{ N int }, error) { return nil, nil }) }, []string{"has no name", "ray.RegisterName"}},
		"nil function":     {func() { ray.Func0[int](nil) }, []string{"nil function"}},
		"empty name":       {func() { ray.Func0(func(context.Context) (int, error) { return 0, nil }, ray.RegisterName("")) }, []string{"empty registration name"}},
	} {
		msg := panicOf(tc.f)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: panic %q does not say %q", what, msg, w)
			}
		}
	}
	// An unnamed closure gets its runtime name, which changes when
	// closures are added above it: hence the advice to name closures.
	if n := AnonClosure.Name(); !strings.HasPrefix(n, pkg+".init.func") {
		t.Errorf("closure registered as %q", n)
	}
}

var (
	// KillOnce kills its actor's process on its first attempt and returns
	// the attempt on later ones. Its method default is one retry.
	KillOnce = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) {
		if tc, _ := ray.CurrentTask(ctx); tc.Attempt == 0 {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		tc, _ := ray.CurrentTask(ctx)
		return tc.Attempt, nil
	}, ray.RegisterName("KillOnce")).Options(ray.MaxTaskRetries(1))
	// FlakyMethod fails with ErrFlaky on its first attempt.
	FlakyMethod = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) {
		if tc, _ := ray.CurrentTask(ctx); tc.Attempt == 0 {
			return 0, ErrFlaky
		}
		return 1, nil
	}, ray.RegisterName("Flaky"))
)

// TestPerCallRetries (behaviour 12): MaxTaskRetries and RetryExceptions
// per method and per call, over the actor's default.
func TestPerCallRetries(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	c := Counter.Options(ray.MaxRestarts(-1)).Remote(ctx) // calls at most once by default
	// The method's default (one retry) reruns the call on the restarted actor.
	if n, err := KillOnce.Remote(ctx, c).Get(ctx); err != nil || n != 1 {
		t.Fatalf("KillOnce with its method default: %v, %v", n, err)
	}
	// A call's own option overrides the method's.
	if _, err := KillOnce.Options(ray.MaxTaskRetries(0)).Remote(ctx, c).Get(ctx); !errors.Is(err, ray.ErrActorDied) {
		t.Fatalf("KillOnce with MaxTaskRetries(0) for the call: %v, want ActorDied", err)
	}
	// The actor restarts and serves later calls.
	if n, err := KillOnce.Options(ray.MaxTaskRetries(-1)).Remote(ctx, c).Get(ctx); err != nil || n != 1 {
		t.Fatalf("KillOnce with MaxTaskRetries(-1) for the call: %v, %v", n, err)
	}
	// Application errors: retried only with RetryExceptions.
	if _, err := FlakyMethod.Remote(ctx, c).Get(ctx); !errors.Is(err, ErrFlaky) {
		t.Fatalf("Flaky without RetryExceptions: %v", err)
	}
	if n, err := FlakyMethod.Options(ray.RetryExceptions(), ray.MaxTaskRetries(1)).Remote(ctx, c).Get(ctx); err != nil || n != 1 {
		t.Fatalf("Flaky with RetryExceptions: %v, %v", n, err)
	}
	// The actor's MaxTaskRetries is the default of methods without their own.
	d := Counter.Options(ray.MaxRestarts(-1), ray.MaxTaskRetries(2)).Remote(ctx)
	if n, err := FlakyMethod.Options(ray.RetryExceptions()).Remote(ctx, d).Get(ctx); err != nil || n != 1 {
		t.Fatalf("Flaky with the actor's MaxTaskRetries: %v, %v", n, err)
	}
	// Bad values fail the call, naming the option.
	if err := KillOnce.Options(ray.MaxTaskRetries(-2)).Remote(ctx, c).Err(); !errors.Is(err, ray.ErrInvalidRequest) || !strings.Contains(err.Error(), "MaxTaskRetries(-2)") {
		t.Fatalf("MaxTaskRetries(-2): %v", err)
	}
}

var (
	// ExitAfter ends its actor once it returns.
	ExitAfter = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) {
		if err := ray.ExitActor(ctx); err != nil {
			return 0, err
		}
		return c.n, nil
	}, ray.RegisterName("ExitAfter"))
	// ExitOutside calls ExitActor from a task.
	ExitOutside = ray.Func0(func(ctx context.Context) (bool, error) {
		return errors.Is(ray.ExitActor(ctx), ray.ErrInvalidRequest), nil
	}, ray.RegisterName("test.ExitOutside"))
	// MakeNamed creates a named actor from inside a task and reports
	// whether it is detached.
	MakeNamed = ray.Func1(func(ctx context.Context, name string) (bool, error) {
		h := Counter.Options(ray.Name(name)).Remote(ctx)
		if err := h.Err(); err != nil {
			return false, err
		}
		list, err := ray.ListNamedActors(ctx)
		if err != nil {
			return false, err
		}
		for _, a := range list {
			if a.Name == name {
				return a.Detached, nil
			}
		}
		return false, fmt.Errorf("%s not listed", name)
	}, ray.RegisterName("test.MakeNamed"))
)

// TestActorEnds (behaviour 12): ExitActor from inside a method, a
// graceful Terminate queued behind earlier calls, and what a failed
// creation does to the handle's calls.
func TestActorEnds(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	// ExitActor: the method's result arrives, the actor ends and is not
	// restarted, its name is freed.
	c := Counter.Options(ray.Name("leaver"), ray.MaxRestarts(-1)).Remote(ctx)
	AddN.Remote(ctx, c, 4)
	if n, err := ExitAfter.Remote(ctx, c).Get(ctx); err != nil || n != 4 {
		t.Fatalf("ExitAfter = %v, %v", n, err)
	}
	if _, err := Value.Remote(ctx, c).Get(ctx); !errors.Is(err, ray.ErrActorDied) {
		t.Fatalf("call after ExitActor: %v, want ActorDied", err)
	}
	eventually(t, 30*time.Second, "the exited actor's name to be freed", func() bool {
		_, err := ray.GetActor[counter](ctx, "leaver")
		return errors.Is(err, ray.ErrNotFound)
	})
	if invalid, err := ExitOutside.Remote(ctx).Get(ctx); err != nil || !invalid {
		t.Fatalf("ExitActor outside an actor: ErrInvalidRequest %v, %v", invalid, err)
	}

	// Terminate: queued behind the calls already made, which finish.
	d := Counter.Options(ray.MaxRestarts(-1)).Remote(ctx)
	var before []ray.ObjectRef[int32]
	for range 5 {
		before = append(before, SlowPeak.Remote(ctx, d, 20))
	}
	end := ray.Terminate(ctx, d)
	if _, err := end.Get(ctx); err != nil {
		t.Fatalf("Terminate: %v", err)
	}
	if _, err := ray.Get(ctx, before...); err != nil {
		t.Fatalf("calls made before Terminate: %v", err)
	}
	if _, err := Value.Remote(ctx, d).Get(ctx); !errors.Is(err, ray.ErrActorDied) {
		t.Fatalf("call after Terminate: %v, want ActorDied", err)
	}

	// A failed creation: the handle carries the error, and every use of
	// it fails with that error.
	bad := Counter.Options(ray.MaxRestarts(-5)).Remote(ctx)
	if err := bad.Err(); !errors.Is(err, ray.ErrInvalidRequest) || !strings.Contains(err.Error(), "MaxRestarts(-5)") {
		t.Fatalf("bad creation: %v", err)
	}
	if bad.ID() != "" {
		t.Fatalf("failed handle has id %q", bad.ID())
	}
	if _, err := Value.Remote(ctx, bad).Get(ctx); !errors.Is(err, bad.Err()) {
		t.Fatalf("call on a failed handle: %v, want %v", err, bad.Err())
	}
	if _, err := ray.Terminate(ctx, bad).Get(ctx); !errors.Is(err, bad.Err()) {
		t.Fatalf("Terminate of a failed handle: %v", err)
	}
	if err := ray.Kill(ctx, bad); !errors.Is(err, bad.Err()) {
		t.Fatalf("Kill of a failed handle: %v", err)
	}
	if _, err := CallCounter.Remote(ctx, bad).Get(ctx); !errors.Is(err, bad.Err()) {
		t.Fatalf("a failed handle passed to a task: %v", err)
	}
	var zero ray.ActorHandle[counter]
	if _, err := Value.Remote(ctx, zero).Get(ctx); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Fatalf("call on a zero handle: %v", err)
	}
	runtime.KeepAlive(c)
}

// TestNamedActorsAndLifetime (behaviour 12): ListNamedActors; a detached
// actor needs a name; the job's default lifetime, in the driver and in
// its tasks, and the per-actor override.
func TestNamedActorsAndLifetime(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2), ray.Namespace("jobns"), ray.DefaultActorLifetime(ray.Detached))

	// A detached actor, by the job's default or its own option, must be named.
	err := Counter.Remote(ctx).Err()
	if !errors.Is(err, ray.ErrInvalidRequest) || !strings.Contains(err.Error(), "DefaultActorLifetime(Detached)") || !strings.Contains(err.Error(), "no name") {
		t.Fatalf("unnamed actor under a detached default: %v", err)
	}
	err = Counter.Options(ray.Name(""), ray.Lifetime(ray.Detached)).Remote(ctx).Err()
	if !errors.Is(err, ray.ErrInvalidRequest) || !strings.Contains(err.Error(), "Lifetime(Detached)") {
		t.Fatalf("Name(\"\") with Lifetime(Detached): %v", err)
	}
	if err := Counter.Options(ray.Lifetime(ray.ActorLifetime(7))).Remote(ctx).Err(); !errors.Is(err, ray.ErrInvalidRequest) {
		t.Fatalf("Lifetime(7): %v", err)
	}
	anon := Counter.Options(ray.Lifetime(ray.NonDetached)).Remote(ctx)
	if err := anon.Err(); err != nil {
		t.Fatalf("unnamed NonDetached actor: %v", err)
	}

	b := Counter.Options(ray.Name("b")).Remote(ctx)
	a := Counter.Options(ray.Name("a"), ray.Lifetime(ray.NonDetached)).Remote(ctx)
	o := Counter.Options(ray.Name("a"), ray.Namespace("other")).Remote(ctx)
	for _, h := range []ray.ActorHandle[counter]{a, b, o} {
		if err := h.Err(); err != nil {
			t.Fatal(err)
		}
	}
	list, err := ray.ListNamedActors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []ray.NamedActor{
		{Name: "a", Namespace: "jobns", Class: Counter.Name(), ID: a.ID(), Detached: false},
		{Name: "b", Namespace: "jobns", Class: Counter.Name(), ID: b.ID(), Detached: true},
	}
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Fatalf("ListNamedActors = %+v, want %+v", list, want)
	}
	if list, err := ray.ListNamedActors(ctx, ray.Namespace("other")); err != nil || len(list) != 1 || list[0].ID != o.ID() {
		t.Fatalf("ListNamedActors(other) = %+v, %v", list, err)
	}
	all, err := ray.ListNamedActors(ctx, ray.AllNamespaces())
	if err != nil || len(all) != 3 || all[2].Namespace != "other" {
		t.Fatalf("ListNamedActors(all) = %+v, %v", all, err)
	}

	// The job's default reaches its workers: an actor a task creates is
	// detached too.
	if det, err := MakeNamed.Remote(ctx, "from-task").Get(ctx); err != nil || !det {
		t.Fatalf("actor created by a task: detached %v, %v", det, err)
	}

	// Dead actors leave the list.
	if err := ray.Kill(ctx, b); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the killed actor to leave the list", func() bool {
		list, err := ray.ListNamedActors(ctx)
		if err != nil {
			return false
		}
		for _, x := range list {
			if x.Name == "b" {
				return false
			}
		}
		return true
	})
	runtime.KeepAlive(anon)
	runtime.KeepAlive(a)
}

// TestShutdownReportsFailure: Shutdown says when the job's end could not
// be recorded (the cluster went away), and still disconnects.
func TestShutdownReportsFailure(t *testing.T) {
	head := startHead(t, 1, "tok", nil)
	ctx := context.Background()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	if v, err := Square.Remote(ctx, 3).Get(ctx); err != nil || v != 9 {
		t.Fatalf("Square(3) = %v, %v", v, err)
	}
	head.Stop()
	err := ray.Shutdown()
	if err == nil || !strings.Contains(err.Error(), "job ended") {
		t.Fatalf("Shutdown after the cluster stopped: %v, want an error", err)
	}
	if err := ray.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := ray.Init(ctx, ray.NumCPUs(1), ray.LogWorkers(false)); err != nil {
		t.Fatalf("Init after a failed Shutdown: %v", err)
	}
	if err := ray.Shutdown(); err != nil {
		t.Fatalf("clean Shutdown: %v", err)
	}
}
