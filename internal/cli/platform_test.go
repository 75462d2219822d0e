package cli

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/objstore"
)

// TestStartRefusedWithoutLocalSockets: where a node cannot run (windows;
// here, local sockets turned off) `raygo start` says why and touches
// nothing.
func TestStartRefusedWithoutLocalSockets(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	r := e.run([]string{localsock.EnvMode + "=off"}, "start", "--head", "--port", "0")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot run on "+runtime.GOOS) || !strings.Contains(r.stderr, localsock.EnvMode+"=off") {
		t.Errorf("start without local sockets: want exit 1 naming the platform and what is missing; %v", r)
	}
	if _, err := os.Stat(e.root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start touched the session root: %v", err)
	}
}

// TestStartStopWithSocketFiles runs a detached head as on darwin (socket
// files, a file-backed store region): status reaches it, stop stops it,
// and its socket files go with it.
func TestStartStopWithSocketFiles(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	env := []string{localsock.EnvMode + "=files", objstore.EnvRegion + "=file"}
	r := e.run(env, "start", "--head", "--port", "0", "--num-cpus", "1")
	if r.code != 0 {
		t.Fatalf("start --head: %v", r)
	}
	t.Cleanup(func() { e.run(env, "stop", "--force") })
	sockets := func() []string {
		dir := filepath.Join(e.root, "sock")
		if len(dir)+len("/h-")+20 > 103 {
			t.Skipf("the test's session root %s is too long to hold the socket directory", e.root)
		}
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, en := range entries {
			names = append(names, en.Name())
		}
		return names
	}
	got := sockets()
	if !containsSuffix(got, ".store") || len(got) < 3 {
		t.Errorf("socket files of a running head: %q; want the store, the control store and the daemon", got)
	}
	if r := e.run(env, "status"); r.code != 0 || !strings.Contains(r.stdout, "CPU") {
		t.Errorf("status: %v", r)
	}
	if r := e.run(env, "stop"); r.code != 0 || !strings.Contains(r.stdout, "with SIGTERM") {
		t.Fatalf("stop: %v", r)
	}
	if left := sockets(); len(left) > 0 {
		t.Errorf("socket files after stop: %q", left)
	}
}

func containsSuffix(list []string, suffix string) bool {
	for _, s := range list {
		if strings.HasSuffix(s, suffix) {
			return true
		}
	}
	return false
}
