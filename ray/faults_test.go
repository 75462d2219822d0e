//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// Record writes "<pid>" to dir/<key>.<attempt> and sleeps ms, so a test
// can find the worker running each attempt and kill it mid-task.
var Record = ray.Func3(func(ctx context.Context, dir string, key int, ms int) (int, error) {
	tc, _ := ray.CurrentTask(ctx)
	name := filepath.Join(dir, strconv.Itoa(key)+"."+strconv.Itoa(tc.Attempt))
	if err := os.WriteFile(name, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return 0, err
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return key * 10, nil
}, ray.RegisterName("test.Record"))

func readPid(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// TestKillWorkersMidTask SIGKILLs the workers running tasks and checks that
// each task is retried exactly once per kill and every result is right.
func TestKillWorkersMidTask(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	dir := t.TempDir()
	const n = 6
	refs := make([]ray.ObjectRef[int], n)
	for i := range refs {
		refs[i] = Record.Remote(ctx, dir, i, 400)
	}
	// Kill the first attempt of tasks 0 and 1 (they start first, one per
	// CPU, once both workers are up), and then the second attempt of task
	// 0.
	path := func(key, attempt int) string {
		return filepath.Join(dir, strconv.Itoa(key)+"."+strconv.Itoa(attempt))
	}
	started := func(key, attempt int) func() bool {
		return func() bool { return readPid(t, path(key, attempt)) > 0 }
	}
	kill := func(key, attempt int) {
		p := path(key, attempt)
		eventually(t, 20*time.Second, "task "+p+" to start", started(key, attempt))
		if err := syscall.Kill(readPid(t, p), syscall.SIGKILL); err != nil {
			t.Fatalf("kill: %v", err)
		}
	}
	eventually(t, 20*time.Second, "tasks 0 and 1 to start", func() bool { return started(0, 0)() && started(1, 0)() })
	kill(0, 0)
	kill(1, 0)
	kill(0, 1)
	vals, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != i*10 {
			t.Fatalf("task %d returned %d", i, v)
		}
	}
	wantAttempts := map[int]int{0: 3, 1: 2}
	for i := range n {
		matches, _ := filepath.Glob(filepath.Join(dir, strconv.Itoa(i)+".*"))
		want := wantAttempts[i]
		if want == 0 {
			want = 1
		}
		if len(matches) != want {
			t.Fatalf("task %d ran %d attempts, want %d", i, len(matches), want)
		}
	}
}

func TestRetriesExhausted(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(1))
	dir := t.TempDir()
	ref := Record.Options(ray.MaxRetries(1)).Remote(ctx, dir, 7, 5000)
	for attempt := range 2 {
		path := filepath.Join(dir, "7."+strconv.Itoa(attempt))
		eventually(t, 20*time.Second, "attempt to start", func() bool { return readPid(t, path) > 0 })
		_ = syscall.Kill(readPid(t, path), syscall.SIGKILL)
	}
	_, err := ref.Get(ctx)
	var wc *ray.WorkerCrashedError
	if !errors.As(err, &wc) || wc.Attempts != 2 || wc.Function != "test.Record" || !errors.Is(err, ray.ErrWorkerCrashed) {
		t.Fatalf("want WorkerCrashedError after 2 attempts, got %v", err)
	}
	// MaxRetries(0): the first crash is final.
	ref = Record.Options(ray.MaxRetries(0)).Remote(ctx, dir, 8, 5000)
	eventually(t, 20*time.Second, "task to start", func() bool { return readPid(t, filepath.Join(dir, "8.0")) > 0 })
	_ = syscall.Kill(readPid(t, filepath.Join(dir, "8.0")), syscall.SIGKILL)
	if _, err := ref.Get(ctx); !errors.As(err, &wc) || wc.Attempts != 1 {
		t.Fatalf("MaxRetries(0): %v", err)
	}
}

func TestCancel(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(1))
	dir := t.TempDir()

	// Cooperative: the running task's context is cancelled.
	running := Record.Remote(ctx, dir, 1, 30000)
	queued := Record.Remote(ctx, dir, 2, 0) // waits behind it on the only CPU
	eventually(t, 20*time.Second, "task to start", func() bool { return readPid(t, filepath.Join(dir, "1.0")) > 0 })
	if err := ray.Cancel(ctx, queued); err != nil {
		t.Fatal(err)
	}
	if err := ray.Cancel(ctx, running); err != nil {
		t.Fatal(err)
	}
	for _, r := range []ray.ObjectRef[int]{running, queued} {
		_, err := r.Get(ctx)
		var ce *ray.CancelledError
		if !errors.As(err, &ce) || !errors.Is(err, ray.ErrTaskCancelled) {
			t.Fatalf("cancelled task: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "2.0")); err == nil {
		t.Fatal("a task cancelled while queued ran")
	}

	// Force: the worker is killed, and the task is not retried.
	forced := Record.Remote(ctx, dir, 3, 30000)
	eventually(t, 20*time.Second, "task to start", func() bool { return readPid(t, filepath.Join(dir, "3.0")) > 0 })
	pid := readPid(t, filepath.Join(dir, "3.0"))
	if err := ray.Cancel(ctx, forced, ray.Force()); err != nil {
		t.Fatal(err)
	}
	if _, err := forced.Get(ctx); !errors.Is(err, ray.ErrTaskCancelled) {
		t.Fatalf("force-cancelled task: %v", err)
	}
	eventually(t, 30*time.Second, "the worker to die", func() bool { return !pidAlive(pid) })
	if _, err := os.Stat(filepath.Join(dir, "3.1")); err == nil {
		t.Fatal("a cancelled task was retried")
	}
	// Cancelling a finished task does nothing.
	done := Square.Remote(ctx, 3)
	if v, err := done.Get(ctx); err != nil || v != 9 {
		t.Fatal(err)
	}
	if err := ray.Cancel(ctx, done); err != nil {
		t.Fatal(err)
	}
	if v, err := done.Get(ctx); err != nil || v != 9 {
		t.Fatalf("finished task after Cancel: %v, %v", v, err)
	}
}

// Parent submits a long child task, writes the child's eventual pid file
// path's directory, and waits for it.
var Parent = ray.Func1(func(ctx context.Context, dir string) (int, error) {
	if err := os.WriteFile(filepath.Join(dir, "parent"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return 0, err
	}
	return Record.Remote(ctx, dir, 99, 60000).Get(ctx)
}, ray.RegisterName("test.Parent"))

// TestOrphanedLeasesAreReclaimed: when a worker that leased other workers
// (for tasks it submitted) dies, the node daemon stops those workers so
// their resources come back.
func TestOrphanedLeasesAreReclaimed(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	dir := t.TempDir()
	ref := Parent.Options(ray.MaxRetries(0)).Remote(ctx, dir)
	child := filepath.Join(dir, "99.0")
	eventually(t, 30*time.Second, "the child task to start", func() bool { return readPid(t, child) > 0 })
	parentPid, childPid := readPid(t, filepath.Join(dir, "parent")), readPid(t, child)
	if err := syscall.Kill(parentPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := ref.Get(ctx); !errors.Is(err, ray.ErrWorkerCrashed) {
		t.Fatalf("parent after its worker was killed: %v", err)
	}
	eventually(t, 30*time.Second, "the orphaned child's worker to be stopped", func() bool { return !pidAlive(childPid) })
	// Both CPUs are usable again.
	refs := []ray.ObjectRef[int]{Sleep.Remote(ctx, 200), Sleep.Remote(ctx, 200)}
	start := time.Now()
	if _, err := ray.Get(ctx, refs...); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("resources did not come back")
	}
}

// Workers on other machines get their tasks over gRPC instead of a framed
// unix socket; the same tests pass on that path.
func TestGRPCPushTransport(t *testing.T) {
	t.Setenv(ray.EnvPushTransport, "grpc")
	t.Run("tasks", TestTasks)
	t.Run("blocked-task", TestBlockedTaskDoesNotStallPipeline)
	t.Run("worker-killed", TestKillWorkersMidTask)
	t.Run("retries", TestRetriesExhausted)
	t.Run("cancel", TestCancel)
	t.Run("actors", TestActorBasics)
	t.Run("actor-restart", TestActorRestart)
	t.Run("actor-task-retries", TestActorTaskRetries)
}

// TestPushSpinOff runs the push paths with busy-polling turned off
// (RAYGO_PUSH_SPIN=0; the default polls), and checks a bad value is
// refused by name.
func TestPushSpinOff(t *testing.T) {
	t.Setenv(ray.EnvPushSpin, "0")
	t.Run("tasks", TestTasks)
	t.Run("worker-killed", TestKillWorkersMidTask)
	t.Run("actors", TestActorBasics)
	t.Setenv(ray.EnvPushSpin, "lots")
	err := ray.Init(context.Background())
	if err == nil {
		ray.Shutdown()
		t.Fatal("Init accepted RAYGO_PUSH_SPIN=lots")
	}
	if !errors.Is(err, ray.ErrInvalidRequest) || !strings.Contains(err.Error(), "RAYGO_PUSH_SPIN") {
		t.Fatalf("Init: %v; want an ErrInvalidRequest naming RAYGO_PUSH_SPIN", err)
	}
}

// GCPercent reports the worker's GOGC (setting it back at once).
var GCPercent = ray.Func0(func(ctx context.Context) (int, error) {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p, nil
}, ray.RegisterName("test.GCPercent"))

// TestWorkerGCHeadroom: workers raise GOGC while their live heap is small
// (package gctune), unless the user set GOGC, which then stands.
// gcPercent reads this process's GC percent.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestDriverGCHeadroom(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set in this environment: the driver's collector is left as it is")
	}
	base := gcPercent()
	t.Run("on", func(t *testing.T) {
		// A headroom far above any live heap: the percent goes to its cap.
		initCluster(t, ray.GCHeadroom(1<<40))
		if p := gcPercent(); p <= base {
			t.Fatalf("driver GC percent %d after Init, want it raised above %d", p, base)
		}
		if err := ray.Shutdown(); err != nil {
			t.Fatal(err)
		}
		if p := gcPercent(); p != base {
			t.Fatalf("driver GC percent %d after Shutdown, want %d back", p, base)
		}
	})
	t.Run("off", func(t *testing.T) {
		initCluster(t, ray.GCHeadroom(0))
		if p := gcPercent(); p != base {
			t.Fatalf("driver GC percent %d with GCHeadroom(0), want %d", p, base)
		}
	})
	t.Run("GOGC set", func(t *testing.T) {
		t.Setenv("GOGC", strconv.Itoa(base))
		initCluster(t, ray.GCHeadroom(1<<40))
		if p := gcPercent(); p != base {
			t.Fatalf("driver GC percent %d with GOGC set, want %d", p, base)
		}
	})
}

func TestWorkerGCHeadroom(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		if os.Getenv("GOGC") != "" {
			t.Skip("GOGC is set in this environment; the user-set case covers it")
		}
		ctx := initCluster(t)
		p, err := GCPercent.Remote(ctx).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p <= 100 {
			t.Fatalf("worker GOGC %d, want it raised above 100 for a small heap", p)
		}
	})
	t.Run("user-set", func(t *testing.T) {
		t.Setenv("GOGC", "150")
		ctx := initCluster(t)
		p, err := GCPercent.Remote(ctx).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p != 150 {
			t.Fatalf("worker GOGC %d, want the user's 150", p)
		}
	})
}
