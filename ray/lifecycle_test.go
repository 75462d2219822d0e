//go:build !windows

package ray_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/ray"
)

// TestShutdownLeavesNothing checks that an embedded cluster leaves no
// worker processes, session files or goroutines behind.
func TestShutdownLeavesNothing(t *testing.T) {
	before := goleak.IgnoreCurrent()
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(2), ray.LogWorkers(false)); err != nil {
		t.Fatal(err)
	}
	sess := ray.SessionDirForTest()
	var pids []int
	for range 4 {
		pid, err := Pid.Remote(ctx).Get(ctx)
		if err != nil {
			ray.Shutdown()
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	c := Counter.Remote(ctx)
	if err := c.Err(); err != nil {
		ray.Shutdown()
		t.Fatal(err)
	}
	apid, _ := ActorPid.Remote(ctx, c).Get(ctx)
	pids = append(pids, apid)
	ray.Shutdown()
	for _, pid := range pids {
		if pidAlive(pid) {
			t.Fatalf("worker pid %d survived Shutdown", pid)
		}
	}
	if _, err := os.Stat(sess); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("session dir %s survived Shutdown: %v", sess, err)
	}
	goleak.VerifyNone(t, before)
	// Init works again after Shutdown.
	if err := ray.Init(ctx, ray.NumCPUs(1), ray.LogWorkers(false)); err != nil {
		t.Fatal(err)
	}
	ray.Shutdown()
}

// TestReferenceCounting checks that objects are freed when the last
// reference anywhere goes, and not before.
func TestReferenceCounting(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))
	base := ray.ObjectCountForTest()

	func() {
		refs := make([]ray.ObjectRef[int], 50)
		for i := range refs {
			refs[i] = Square.Remote(ctx, i)
		}
		if _, err := ray.Get(ctx, refs...); err != nil {
			t.Fatal(err)
		}
		if n := ray.ObjectCountForTest(); n < base+50 {
			t.Fatalf("%d objects tracked with 50 live refs", n)
		}
	}()
	eventually(t, 30*time.Second, "dropped task results to be freed", func() bool { return ray.ObjectCountForTest() <= base })

	// A large object lives in the node's store until its last ref goes.
	func() {
		big, err := ray.Put(ctx, make([]byte, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		if n := ray.StoreObjectsForTest(); n != 1 {
			t.Fatalf("store holds %d objects, want 1", n)
		}
		// A task borrows it inside a value; it must survive the driver's
		// own handle being the only one left.
		if n, err := Len.RemoteArgs(ctx, big).Get(ctx); err != nil || n != 1<<20 {
			t.Fatalf("Len = %v, %v", n, err)
		}
		runtime.KeepAlive(big)
	}()
	eventually(t, 30*time.Second, "the stored object to be freed", func() bool { return ray.StoreObjectsForTest() == 0 })

	// Refs borrowed by a worker keep objects alive until the worker drops
	// them; returned refs owned by a worker stay readable while held.
	inner, err := MakeRefs.Remote(ctx, 5).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	if vals, err := ray.Get(ctx, inner...); err != nil || vals[4] != 40 {
		t.Fatalf("borrowed refs after GC: %v, %v", vals, err)
	}
}

// TestDetachedActors checks that a detached actor outlives its driver and
// an owned one dies with it.
func TestDetachedActors(t *testing.T) {
	head := startHead(t, 2, "tok", nil)
	ctx := context.Background()
	opts := []ray.InitOption{ray.Address(head.GCSAddress()), ray.Token("tok"), ray.Namespace("app")}

	if err := ray.Init(ctx, opts...); err != nil {
		t.Fatal(err)
	}
	det := Counter.Options(ray.Name("keeper"), ray.Lifetime(ray.Detached)).Remote(ctx)
	if err := det.Err(); err != nil {
		t.Fatal(err)
	}
	owned := Counter.Options(ray.Name("temp")).Remote(ctx)
	if err := owned.Err(); err != nil {
		t.Fatal(err)
	}
	AddN.Remote(ctx, det, 7)
	opid, err := ActorPid.Remote(ctx, owned).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Value.Remote(ctx, det).Get(ctx); err != nil || v != 7 {
		t.Fatalf("detached actor value %v, %v", v, err)
	}
	ray.Shutdown()
	_ = opid // zero-CPU actors share processes: the owned one is dropped, its process may live on

	if err := ray.Init(ctx, opts...); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	again, err := ray.GetActor[counter](ctx, "keeper")
	if err != nil {
		t.Fatalf("detached actor after its driver left: %v", err)
	}
	if v, err := Value.Remote(ctx, again).Get(ctx); err != nil || v != 7 {
		t.Fatalf("detached actor kept state %v, %v", v, err)
	}
	if _, err := ray.GetActor[counter](ctx, "temp"); !errors.Is(err, ray.ErrNotFound) {
		t.Fatalf("owned actor after its driver left: %v", err)
	}
	if err := ray.Kill(ctx, again); err != nil {
		t.Fatal(err)
	}
	_ = filepath.Join
}

// envDriverOf makes the test binary a driver of the cluster at its value
// (see runDriverProcess).
const envDriverOf = "RAYGO_TEST_DRIVER_OF"

// runDriverProcess joins a cluster, creates an owned and a detached named
// actor, says "ready", and waits to be killed.
func runDriverProcess(addr string) int {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.Address(addr), ray.Namespace("crash")); err != nil {
		fmt.Println("init:", err)
		return 1
	}
	for _, o := range [][]ray.ActorOption{{ray.Name("owned")}, {ray.Name("detached"), ray.Lifetime(ray.Detached)}} {
		c := Counter.Options(o...).Remote(ctx)
		err := c.Err()
		if err == nil {
			_, err = Inc.Remote(ctx, c).Get(ctx)
		}
		if err != nil {
			fmt.Println("actor:", err)
			return 1
		}
	}
	fmt.Println("ready")
	select {}
}

// TestDriverCrash kills a driver process and checks that the actors it
// owned die with it while its detached actor lives on.
func TestDriverCrash(t *testing.T) {
	head := startHead(t, 2, "tok", nil)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envDriverOf+"="+head.GCSAddress(), ray.EnvToken+"=tok")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		t.Fatalf("driver process said %q", line)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	ctx := context.Background()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok"), ray.Namespace("crash")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	eventually(t, 15*time.Second, "the dead driver's owned actor to die", func() bool {
		_, err := ray.GetActor[counter](ctx, "owned")
		return errors.Is(err, ray.ErrNotFound)
	})
	d, err := ray.GetActor[counter](ctx, "detached")
	if err != nil {
		t.Fatalf("detached actor after its driver crashed: %v", err)
	}
	if v, err := Value.Remote(ctx, d).Get(ctx); err != nil || v != 1 {
		t.Fatalf("detached actor state: %v, %v", v, err)
	}
	_ = ray.Kill(ctx, d)
}

// syncBuffer is a bytes.Buffer safe for the node daemon's output pumps.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var Say = ray.Func1(func(ctx context.Context, s string) (int, error) {
	fmt.Println(s)
	fmt.Fprintln(os.Stderr, s+" on stderr")
	return os.Getpid(), nil
}, ray.RegisterName("test.Say"))

// TestWorkerOutputPrefix checks that worker output reaches the node's log
// echo with the task's name, pid and node.
func TestWorkerOutputPrefix(t *testing.T) {
	var out syncBuffer
	head := startHead(t, 1, "tok", func(rc *raylet.Config) { rc.EchoWorkerOutput, rc.EchoTo = true, &out })
	ctx := context.Background()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("tok")); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	pid, err := Say.Remote(ctx, "hello from a task").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("(test.Say pid=%d, node=", pid)
	eventually(t, 30*time.Second, "the task's output", func() bool {
		s := out.String()
		return strings.Contains(s, want) && strings.Contains(s, ") hello from a task\n") && strings.Contains(s, ") hello from a task on stderr\n")
	})
	pid, err = Say.Options(ray.Name("greeter")).Remote(ctx, "named task").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the named task's output", func() bool {
		return strings.Contains(out.String(), fmt.Sprintf("(greeter pid=%d, node=", pid))
	})
	if strings.Contains(out.String(), "raygo:name") {
		t.Fatalf("name markers leaked into the output:\n%s", out.String())
	}
}
