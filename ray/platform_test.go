//go:build !windows

package ray_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/ray"
)

// Tests of what differs between platforms, run on Linux through the
// switches that make it behave like darwin (socket files, a file-backed
// store region, workers held by the parent-death pipe alone) or like
// windows (no local sockets).

// envTestNode makes the test binary a node process: a head whose workers
// have no Pdeathsig, serving until it is killed (see startNodeProcess).
const envTestNode = "RAYGO_TEST_NODE"

func init() {
	if os.Getenv(envTestNode) == "" || ray.IsWorker() {
		return
	}
	os.Unsetenv(envTestNode) // not for the workers it starts
	os.Exit(runTestNode())
}

// runTestNode starts a head node and prints its control store's address.
func runTestNode() int {
	sess, err := session.New()
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer sess.Remove()
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir = resources.Set{resources.CPU: 2}, string(sess)
	rc.ObjectStoreBytes = 64 << 20
	rc.LifelineOnly = true
	head, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: "tok"})
	if err != nil {
		fmt.Println("start:", err)
		return 1
	}
	fmt.Println(head.GCSAddress())
	select {}
}

// startNodeProcess runs a head node in a process of its own, with this
// process's environment less the names in drop, and returns its address
// and process; the test's end kills it.
func startNodeProcess(t *testing.T, drop ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !containsString(drop, name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envTestNode+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	addr := strings.TrimSpace(line)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("node process said %q", line)
	}
	return addr, cmd
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// privateRoot points RAYGO_TMPDIR at a fresh short directory (socket paths
// are short) for the test.
func privateRoot(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rgr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	t.Setenv("RAYGO_TMPDIR", d)
	return d
}

// regionMappings returns the lines of /proc/self/maps that map an object
// store region, or skips the test where there is no /proc.
func regionMappings(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip("no /proc/self/maps")
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "raygo-object-store") {
			out = append(out, line)
		}
	}
	return out
}

// TestDarwinLocalIPC runs whole clusters the way darwin does on Linux:
// socket files instead of abstract sockets, an unlinked file instead of a
// memfd for the object store, workers ended by the parent-death pipe
// alone. Nothing may be left in the socket directory afterwards.
func TestDarwinLocalIPC(t *testing.T) {
	privateRoot(t)
	t.Setenv(localsock.EnvMode, string(localsock.Files))
	t.Setenv(objstore.EnvRegion, "file")
	if m, err := localsock.CurrentMode(); err != nil || m != localsock.Files {
		t.Skipf("no socket files here: %v", err)
	}
	dir := localsock.Dir()

	t.Run("in-use", func(t *testing.T) {
		ctx := initCluster(t, ray.NumCPUs(2))
		if _, err := Pid.Remote(ctx).Get(ctx); err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Type() == os.ModeSocket {
				kinds[strings.TrimPrefix(filepathExt(e.Name()), ".")]++
			}
		}
		// gRPC twins have no suffix: control store, daemon, driver, worker.
		if kinds["store"] != 1 || kinds["tasks"] < 1 || kinds[""] < 4 {
			t.Fatalf("socket files in %s: %v; want a store, a worker's push stream and four gRPC twins", dir, kinds)
		}
		maps := regionMappings(t)
		if len(maps) == 0 {
			t.Fatal("this process maps no object store region")
		}
		for _, m := range maps {
			if strings.Contains(m, "memfd:") || !strings.Contains(m, "(deleted)") {
				t.Fatalf("region mapping %q: want an unlinked file, not a memfd", m)
			}
		}
		big, err := ray.Put(ctx, make([]byte, 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := Len.RemoteArgs(ctx, big).Get(ctx); err != nil || n != 1<<20 {
			t.Fatalf("a worker reading a stored object: %v, %v", n, err)
		}
	})
	t.Run("tasks", TestTasks)
	t.Run("large-arguments", TestLargeArguments)
	t.Run("zero-copy", TestZeroCopyBuffers)
	t.Run("actors", TestActorBasics)
	t.Run("worker-killed", TestKillWorkersMidTask)
	t.Run("shutdown", TestShutdownLeavesNothing)
	// Listeners removed their files, and the daemon those of the workers
	// it reaped.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("left in the socket directory: %s", e.Name())
	}

	t.Run("daemon-killed", testWorkersDieWithDaemon)
	// A killed daemon leaves its files, and its workers'; once they are
	// old and nobody listens on them (every worker of the node has exited),
	// a node's sweep removes them.
	entries, _ = os.ReadDir(dir)
	if len(entries) == 0 {
		t.Fatal("a killed node left no socket files: the sweep below tests nothing")
	}
	eventually(t, 20*time.Second, "the sweep to empty the socket directory", func() bool {
		old := time.Now().Add(-2 * localsock.StaleAge)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			_ = os.Chtimes(filepath.Join(dir, e.Name()), old, old)
		}
		localsock.CleanStale()
		entries, _ = os.ReadDir(dir)
		return len(entries) == 0
	})
}

func filepathExt(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > strings.LastIndexByte(name, ':') {
		return name[i:]
	}
	return ""
}

// TestWorkersDieWithDaemon: a node daemon killed with SIGKILL takes its
// workers with it through the parent-death pipe, without Pdeathsig.
func TestWorkersDieWithDaemon(t *testing.T) {
	privateRoot(t)
	testWorkersDieWithDaemon(t)
}

func testWorkersDieWithDaemon(t *testing.T) {
	addr, nodeProc := startNodeProcess(t)
	ctx := t.Context()
	if err := ray.Init(ctx, ray.Address(addr), ray.Token("tok"), ray.LogWorkers(testing.Verbose())); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	refs := []ray.ObjectRef[int]{Pid.Remote(ctx), Pid.Remote(ctx)}
	pids, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	c := Counter.Remote(ctx)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	apid, err := ActorPid.Remote(ctx, c).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, apid)
	if err := nodeProc.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = nodeProc.Wait()
	killed := time.Now()
	for _, pid := range pids {
		eventually(t, 20*time.Second, fmt.Sprintf("worker pid %d to exit with its node daemon", pid), func() bool { return !proc.Alive(pid) })
	}
	t.Logf("the node's workers exited %v after it was killed", time.Since(killed).Round(time.Millisecond))
}

// TestDriverWithoutLocalSockets runs a driver as on windows: no local
// sockets, hence no shared-memory store, joining a cluster over TCP. Its
// objects go through the node daemon's gRPC endpoint; an embedded cluster
// is refused with the reason.
func TestDriverWithoutLocalSockets(t *testing.T) {
	privateRoot(t)
	addr, _ := startNodeProcess(t, localsock.EnvMode)
	t.Setenv(localsock.EnvMode, string(localsock.Off))

	err := ray.Init(t.Context())
	if err == nil {
		ray.Shutdown()
		t.Fatal("an embedded cluster started without local sockets")
	}
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), localsock.EnvMode+"=off") || !strings.Contains(err.Error(), "Address") {
		t.Fatalf("embedded Init without local sockets: %v; want ErrUnsupported saying why and what to do", err)
	}

	ctx := t.Context()
	if err := ray.Init(ctx, ray.Address(addr), ray.Token("tok"), ray.LogWorkers(testing.Verbose())); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	data := seeded(3<<20, 4)
	ref, err := ray.Put(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ref.Get(ctx); err != nil || string(got) != string(data) {
		t.Fatalf("Get of a put object: %v", err)
	}
	if n, err := Len.RemoteArgs(ctx, ref).Get(ctx); err != nil || n != len(data) {
		t.Fatalf("a task reading the driver's object: %v, %v", n, err)
	}
	if n, err := Len.Remote(ctx, data).Get(ctx); err != nil || n != len(data) {
		t.Fatalf("a large argument by value: %v, %v", n, err)
	}
	if b, err := MakeBytes.Remote(ctx, 2<<20, 5).Get(ctx); err != nil || string(b) != string(seeded(2<<20, 5)) {
		t.Fatalf("a large result: %v", err)
	}
	c := Counter.Remote(ctx)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := Inc.Remote(ctx, c).Get(ctx); err != nil || v != 1 {
		t.Fatalf("an actor call: %v, %v", v, err)
	}
	if maps := regionMappings(t); len(maps) > 0 {
		t.Fatalf("the driver mapped a store region without local sockets: %q", maps)
	}
}
