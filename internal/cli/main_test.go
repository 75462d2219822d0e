package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/session"
)

// raygoBin is the raygo binary built once by TestMain.
var raygoBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "raygo-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	raygoBin = filepath.Join(dir, "raygo")
	build := exec.Command("go", "build", "-o", raygoBin, "github.com/raygo/raygo/cmd/raygo")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build raygo: %v\n%s", err, out)
		return 1
	}
	// Each test passes its own RAYGO_TMPDIR to the binary; this one only
	// keeps anything else away from the machine's real sessions.
	os.Setenv("RAYGO_TMPDIR", filepath.Join(dir, "sessions"))
	// No nvidia-smi calls: faster, and the same on machines with GPUs.
	os.Setenv(resources.FakeGPUsEnv, "0")
	// Small stores: nodes pre-fault theirs, and tests start several.
	os.Setenv("RAYGO_OBJECT_STORE_MEMORY", "67108864")
	os.Unsetenv(envAddress)
	os.Unsetenv(envToken)
	return m.Run()
}

// cliEnv runs the raygo binary against a session root of its own.
type cliEnv struct {
	t    *testing.T
	root string // RAYGO_TMPDIR for the binary
}

// newCLIEnv returns an environment whose nodes are killed when the test
// ends, before its temporary directory is removed.
func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	e := &cliEnv{t: t, root: filepath.Join(t.TempDir(), "sessions")}
	t.Cleanup(e.killAll)
	return e
}

// result is one finished raygo invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs raygo with args and extra environment variables (NAME=value).
func (e *cliEnv) run(env []string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, raygoBin, args...)
	cmd.Env = append(append(os.Environ(), "RAYGO_TMPDIR="+e.root), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("raygo %q: %v", args, err)
	}
	return r
}

// raygo runs raygo with args.
func (e *cliEnv) raygo(args ...string) result {
	e.t.Helper()
	return e.run(nil, args...)
}

// latest returns the session session_latest points at, or "".
func (e *cliEnv) latest() session.Dir {
	p, err := os.Readlink(filepath.Join(e.root, "session_latest"))
	if err != nil {
		return ""
	}
	return session.Dir(p)
}

// killAll SIGKILLs every node process recorded under the root.
func (e *cliEnv) killAll() {
	dirs, _ := filepath.Glob(filepath.Join(e.root, "session_*"))
	for _, d := range dirs {
		pids, _ := readPIDs(session.Dir(d))
		for _, p := range pids {
			if processAlive(p) && isNodeProcess(p) {
				_ = proc.Signal(p, proc.Kill)
			}
		}
	}
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, format string, a ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: "+format, append([]any{timeout}, a...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
