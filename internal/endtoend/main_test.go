//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/ray"
)

// Roles of the test binary, chosen by envRole.
const (
	envRole = "RAYGO_E2E_ROLE"
	// roleDriver: join the cluster at RAYGO_ADDRESS, create a detached
	// actor that holds an object of its own (keptBytes), put objects
	// (envPuts of envObjectBytes each, the last through PutBuffer), print
	// "ready", the ids, then wait to be killed, or with envShutdown shut
	// down and exit.
	roleDriver     = "driver"
	envPuts        = "RAYGO_E2E_PUTS"
	envObjectBytes = "RAYGO_E2E_OBJECT_BYTES"
	envShutdown    = "RAYGO_E2E_SHUTDOWN"
	// roleHead: run a head (control store and node daemon) with token
	// RAYGO_TOKEN, print its addresses, and run until stdin closes.
	roleHead = "head"
	// roleAttack: see attack_test.go.
	roleAttack = "attack"
)

// keptBytes is the size of the detached actor's own object.
const keptBytes = 20 << 20

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	switch os.Getenv(envRole) {
	case roleDriver:
		os.Exit(runDriver())
	case roleHead:
		os.Exit(runHead())
	case roleAttack:
		os.Exit(runAttack())
	case roleMHHead, roleMHNode:
		os.Exit(runMultiHost(os.Getenv(envRole)))
	case roleMHDriver:
		os.Exit(runMultiHostDriver())
	case roleOMHead, roleOMNode:
		os.Exit(runOMNode(os.Getenv(envRole)))
	case roleOMDriver:
		os.Exit(runOMDriver())
	case roleRawServer:
		os.Exit(runRawServer())
	case roleRawClient:
		os.Exit(runRawClient())
	case roleTBDriver:
		os.Exit(runTBDriver())
	case roleNHHead, roleNHNode:
		os.Exit(runNodeHealth(os.Getenv(envRole)))
	case roleLabelDriver:
		os.Exit(runLabelDriver())
	case roleGroupDriver:
		os.Exit(runGroupDriver())
	case roleFailoverDriver:
		os.Exit(runFailoverDriver())
	case roleChaosDriver:
		os.Exit(runChaosDriver())
	case roleRBDriver:
		os.Exit(runRBDriver())
	case roleARDriver:
		os.Exit(runARDriver())
	case roleFSDriver:
		os.Exit(runFSDriver())
	case roleHLDriver:
		os.Exit(runHLDriver())
	case roleHRDriver:
		os.Exit(runHRDriver())
	case roleTDNode:
		os.Exit(runTDNode())
	case roleTDDriver:
		os.Exit(runTDDriver())
	case roleOpsHead:
		os.Exit(runOpsHead())
	case roleOpsDriver:
		os.Exit(runOpsDriver())
	case roleServeHost:
		os.Exit(runServeHost())
	case roleServeGoDriver:
		os.Exit(runServeGoDriver())
	}
	os.Exit(m.Run())
}

// keeper is a detached actor that holds an object it put itself.
type keeper struct{ held ray.ObjectRef[[]byte] }

var (
	Keeper = ray.Actor0(func(context.Context) (*keeper, error) { return &keeper{}, nil }, ray.RegisterName("e2e.Keeper"))
	Hold   = ray.Method0(Keeper, func(k *keeper, ctx context.Context) (string, error) {
		ref, err := ray.Put(ctx, make([]byte, keptBytes))
		k.held = ref
		return ref.ID(), err
	}, ray.RegisterName("Hold"))
	HeldSize = ray.Method0(Keeper, func(k *keeper, ctx context.Context) (int, error) {
		b, err := k.held.Get(ctx)
		return len(b), err
	}, ray.RegisterName("HeldSize"))
)

// runDriver is roleDriver.
func runDriver() int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		fmt.Println("init:", err)
		return 1
	}
	k := Keeper.Options(ray.Name("keeper"), ray.Lifetime(ray.Detached)).Remote(ctx)
	if err := k.Err(); err != nil {
		fmt.Println("keeper:", err)
		return 1
	}
	kept, err := Hold.Remote(ctx, k).Get(ctx)
	if err != nil {
		fmt.Println("hold:", err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv(envPuts))
	objectBytes, _ := strconv.Atoi(os.Getenv(envObjectBytes))
	var refs []ray.ObjectRef[[]byte]
	for i := range n {
		var ref ray.ObjectRef[[]byte]
		if i == n-1 {
			ref, err = ray.PutBuffer(ctx, objectBytes, func(b []byte) error { b[0] = 1; return nil })
		} else {
			ref, err = ray.Put(ctx, make([]byte, objectBytes))
		}
		if err != nil {
			fmt.Println("put:", err)
			return 1
		}
		refs = append(refs, ref)
	}
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID()
	}
	fmt.Println("ready", kept, strings.Join(ids, " "))
	if os.Getenv(envShutdown) == "1" {
		ray.Shutdown()
		fmt.Println("done")
		return 0
	}
	select {} // until killed; refs stay referenced
}

// runHead is roleHead.
func runHead() int {
	sess, err := session.New()
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer sess.Remove()
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir, rc.ObjectStoreBytes = resources.Set{resources.CPU: 2}, string(sess), 128<<20
	head, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: os.Getenv(ray.EnvToken)})
	if err != nil {
		fmt.Println("head:", err)
		return 1
	}
	defer head.Stop()
	fmt.Println("head", head.GCSAddress(), head.Raylet().Address())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// privateRoot points the session root at a fresh private directory.
func privateRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "sessions")
	t.Setenv("RAYGO_TMPDIR", root)
	return root
}

// startHead runs a head in this process with a 128 MiB object store
// (spilling into its session).
func startHead(t *testing.T, token string) *node.Head {
	t.Helper()
	sess, err := session.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Remove() })
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir, rc.ObjectStoreBytes = resources.Set{resources.CPU: 2}, string(sess), 128<<20
	head, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(head.Stop)
	return head
}

// child runs the test binary in a role and returns it with the first line
// it prints, split into words.
func child(t *testing.T, env ...string) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	in, err := cmd.StdinPipe() // open until the test ends: a head runs while it is
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case line := <-lines:
		return cmd, strings.Fields(line)
	case <-time.After(60 * time.Second):
		t.Fatalf("%v: no first line in 60 s", env)
	}
	return nil, nil
}

// eventually polls cond every 10 ms until it holds or timeout passes, and
// returns how long it took.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}
