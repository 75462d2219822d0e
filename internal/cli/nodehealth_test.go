//go:build !windows

package cli

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeDeclaredDeadExits: a `raygo start --address --block` node
// stopped (SIGSTOP) past the head's --node-timeout is declared dead;
// continued, it learns so from its next heartbeat, stops its workers and
// exits non-zero saying why and how to rejoin, instead of carrying on
// under its old id.
func TestNodeDeclaredDeadExits(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	r := e.raygo("start", "--head", "--port", "0", "--num-cpus", "1", "--node-timeout", "1s")
	if r.code != 0 {
		t.Fatalf("start --head: %v", r)
	}
	addr, err := e.latest().ReadFile(addressFile)
	if err != nil {
		t.Fatal(err)
	}
	node := exec.Command(raygoBin, "start", "--address", addr, "--num-cpus", "1", "--block")
	node.Env = append(os.Environ(), "RAYGO_TMPDIR="+e.root)
	var stdout, stderr bytes.Buffer
	node.Stdout, node.Stderr = &stdout, &stderr
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- node.Wait() }()
	t.Cleanup(func() {
		_ = node.Process.Signal(syscall.SIGCONT)
		_ = node.Process.Kill()
		<-exited
	})
	nodesAlive := func(n string) func() bool {
		return func() bool { return strings.Contains(e.raygo("status").stdout, "Nodes: "+n+" alive") }
	}
	eventually(t, 20*time.Second, nodesAlive("2"), "the node to join")

	if err := node.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, nodesAlive("1"), "the stopped node to be declared dead")
	if err := node.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("node exited with %v, want code 1; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("a node declared dead still runs 20s after it was continued; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	for _, want := range []string{"declared dead by the control store", "no heartbeat for 1s", "stopped its workers", "--address " + addr} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("node's error lacks %q:\n%s", want, stderr.String())
		}
	}
	if !nodesAlive("1")() {
		t.Errorf("after the dead node exited: %s", e.raygo("status").stdout)
	}
}
