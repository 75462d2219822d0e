//go:build !windows

package logs_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// The test binary as a driver program (TestMain): it joins the cluster in
// RAYGO_ADDRESS, makes its workers print, prints on stdout "actor ID
// WORKERS" (the talking actor's id, how many worker processes printed the
// repeated line), waits for stdin to close, and shuts down.
const (
	envRole    = "RAYGO_LOGS_TEST_ROLE"
	roleDriver = "driver"
)

// Echo prints what it is told. Echo actors ask for a CPU, so each has a
// worker process of its own.
type Echo struct{}

func NewEcho(context.Context) (*Echo, error) { return &Echo{}, nil }

func (*Echo) Print(_ context.Context, s string) (int, error) {
	fmt.Println(s)
	return os.Getpid(), nil
}

var (
	EchoActor = ray.Actor0(NewEcho, ray.RegisterName("logs_test.Echo"))
	EchoPrint = ray.Method1(EchoActor, (*Echo).Print)
)

func runDriver() int {
	ctx := context.Background()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "driver:", err); return 1 }
	if err := ray.Init(ctx); err != nil {
		return fail(err)
	}
	defer ray.Shutdown()
	if _, err := Say.Remote(ctx, "task says hi").Get(ctx); err != nil {
		return fail(err)
	}
	a := TalkerActor.Remote(ctx)
	if _, err := TalkerSay.Remote(ctx, a, "actor says hi").Get(ctx); err != nil {
		return fail(err)
	}
	refs := make([]ray.ObjectRef[int], 3)
	for i := range refs {
		refs[i] = EchoPrint.Remote(ctx, EchoActor.Options(ray.NumCPUs(1)).Remote(ctx), "the same line from every worker")
	}
	pids, err := ray.Get(ctx, refs...)
	if err != nil {
		return fail(err)
	}
	distinct := map[int]bool{}
	for _, p := range pids {
		distinct[p] = true
	}
	fmt.Printf("actor %s %d\n", a.ID(), len(distinct))
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test is done with the cluster
	if err := ray.Shutdown(); err != nil {
		return fail(err)
	}
	return 0
}

// buildRaygo builds the raygo binary into dir.
func buildRaygo(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "raygo")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/raygo/raygo/cmd/raygo").CombinedOutput()
	if err != nil {
		t.Fatalf("build raygo: %v\n%s", err, out)
	}
	return bin
}

// TestStandaloneClusterLogs runs a head as its own process (`raygo start
// --head`) and a driver program joined to it: the driver's stderr shows
// its workers' prints with their prefixes, a line printed by several
// workers once plus a repeat count, and `raygo logs --actor-id` prints
// the actor's output.
func TestStandaloneClusterLogs(t *testing.T) {
	dir := t.TempDir()
	bin := buildRaygo(t, dir)
	env := append(os.Environ(), "RAYGO_TMPDIR="+filepath.Join(dir, "sessions"), "RAYGO_OBJECT_STORE_MEMORY=67108864",
		"RAYGO_FAKE_GPUS=0", "RAYGO_ADDRESS=", "RAYGO_TOKEN=", "RAYGO_API_ADDRESS=", "RAYGO_DEDUP_LOGS=")
	raygo := func(args ...string) (string, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	if out, errOut, err := raygo("start", "--head", "--port", "0", "--num-cpus", "4", "--dashboard-port", "0"); err != nil {
		t.Fatalf("raygo start --head: %v\n%s%s", err, out, errOut)
	}
	t.Cleanup(func() { _, _, _ = raygo("stop", "--force") })

	driver := exec.Command(os.Args[0], "-test.run=^$")
	driver.Env = append(env, envRole+"="+roleDriver, "RAYGO_ADDRESS=auto")
	var stderr bytes.Buffer
	driver.Stderr = &stderr
	stdin, err := driver.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := driver.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := driver.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = driver.Process.Kill(); _ = driver.Wait() })
	lines := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- s
	}()
	var fields []string
	select {
	case s := <-lines:
		fields = strings.Fields(s)
	case <-time.After(120 * time.Second):
		t.Fatalf("the driver printed nothing in 120 s; stderr:\n%s", stderr.String())
	}
	if len(fields) != 3 || fields[0] != "actor" {
		t.Fatalf("driver said %q; stderr:\n%s", fields, stderr.String())
	}
	actorID := fields[1]
	workers, _ := strconv.Atoi(fields[2])

	out, errOut, err := raygo("logs", "--actor-id", actorID[len(actorID)-8:])
	if err != nil || out != "actor says hi\n" {
		t.Fatalf("raygo logs --actor-id: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	out, errOut, err = raygo("logs", "--actor-id", actorID, "--err")
	if err != nil || out != "actor says hi on stderr\n" {
		t.Fatalf("raygo logs --actor-id --err: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	out, errOut, err = raygo("logs")
	if err != nil || !strings.Contains(out, "worker_out:") || !strings.Contains(out, "worker_err:") {
		t.Fatalf("raygo logs: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if _, errOut, err = raygo("logs", "--actor-id", "abc"); err == nil || !strings.Contains(errOut, "at least 6") {
		t.Fatalf("raygo logs --actor-id abc: %v: %s", err, errOut)
	}

	stdin.Close()
	if err := driver.Wait(); err != nil {
		t.Fatalf("driver: %v; stderr:\n%s", err, stderr.String())
	}
	got := stderr.String()
	for _, re := range []string{
		`(?m)^\(logs_test\.say pid=\d+, node=[0-9a-f]{12}\) task says hi$`,
		`(?m)^\(github\.com/raygo/raygo/internal/logs_test\.Talker pid=\d+, node=[0-9a-f]{12}\) actor says hi$`,
		`(?m)^\(github\.com/raygo/raygo/internal/logs_test\.Talker pid=\d+, node=[0-9a-f]{12}\) actor says hi on stderr$`,
	} {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("driver stderr has no line matching %s:\n%s", re, got)
		}
	}
	if workers != 3 {
		t.Fatalf("the repeated line came from %d workers, want 3 (an actor with a CPU has a process of its own)", workers)
	}
	// Ray's rule: the first print is shown at once, the others (from
	// other workers, within 5 s) once with their count.
	plain := regexp.MustCompile(`(?m)^\(logs_test\.Echo pid=\d+, node=[0-9a-f]{12}\) the same line from every worker$`)
	repeated := regexp.MustCompile(`(?m)^\(logs_test\.Echo pid=\d+, node=[0-9a-f]{12}\) the same line from every worker \[repeated (\d+)x across cluster\]`)
	m := repeated.FindAllStringSubmatch(got, -1)
	if len(plain.FindAllString(got, -1)) != 1 || len(m) != 1 || m[0][1] != "2" {
		t.Fatalf("want the line once as it is and once with [repeated 2x across cluster]:\n%s", got)
	}
}
