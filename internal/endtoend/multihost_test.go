//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// Roles of the multi-host test's processes (see TestMain).
const (
	roleMHHead   = "mh-head"   // a head serving on RAYGO_E2E_IP, with resource "h1"
	roleMHNode   = "mh-node"   // a node serving on RAYGO_E2E_IP, joining RAYGO_ADDRESS, with resource "h2"
	roleMHDriver = "mh-driver" // runs one task on each node against an object it put
	envIP        = "RAYGO_E2E_IP"
	envLabels    = "RAYGO_E2E_LABELS"   // mh-node: its labels, as `raygo start --labels`
	envWildcard  = "RAYGO_E2E_WILDCARD" // "1": listen on every interface, advertise RAYGO_E2E_IP
)

const mhObjectBytes = 9 << 20 // beyond the inline threshold: it lives in a store

var (
	// ReadOn reports its node and the SHA-256 of the object it was given.
	ReadOn = ray.Func1(func(ctx context.Context, b []byte) (string, error) {
		tc, _ := ray.CurrentTask(ctx)
		sum := sha256.Sum256(b)
		return tc.NodeID + " " + hex.EncodeToString(sum[:]), nil
	}, ray.RegisterName("e2e.ReadOn"))
)

// roleNodeConfig is the node daemon configuration of a role process: a
// fresh session (removed by done) and a store of storeBytes, listening on
// its host's address (RAYGO_E2E_IP).
func roleNodeConfig(storeBytes int64) (rc raylet.Config, done func(), err error) {
	sess, err := session.New()
	if err != nil {
		return rc, nil, err
	}
	rc = raylet.DefaultConfig()
	rc.SessionDir, rc.ObjectStoreBytes = string(sess), storeBytes
	rc.ListenAddress = net.JoinHostPort(os.Getenv(envIP), "0")
	return rc, func() { _ = sess.Remove() }, nil
}

func runMultiHost(role string) int {
	ip := os.Getenv(envIP)
	rc, done, err := roleNodeConfig(64 << 20)
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer done()
	listen, advertise := ip, ""
	if os.Getenv(envWildcard) == "1" {
		listen, advertise = "0.0.0.0", ip
	}
	rc.ListenAddress, rc.AdvertiseHost = net.JoinHostPort(listen, "0"), advertise
	switch role {
	case roleMHHead:
		rc.Resources = resources.Set{resources.CPU: 1, "h1": 1}
		head, err := node.StartHead(node.HeadConfig{GCSAddress: net.JoinHostPort(listen, "0"), AdvertiseHost: advertise,
			Raylet: rc, Token: os.Getenv(ray.EnvToken)})
		if err != nil {
			fmt.Println("head:", err)
			return 1
		}
		defer head.Stop()
		fmt.Println("up", head.GCSAddress())
	case roleMHNode:
		rc.Resources = resources.Set{resources.CPU: 1, "h2": 1}
		rc.GCSAddress, rc.Token = os.Getenv(ray.EnvAddress), os.Getenv(ray.EnvToken)
		if rc.Labels, err = scheduler.ParseLabels(os.Getenv(envLabels)); err != nil {
			fmt.Println("labels:", err)
			return 1
		}
		n, err := raylet.Start(rc)
		if err != nil {
			fmt.Println("node:", err)
			return 1
		}
		defer n.Stop()
		fmt.Println("up", n.Address())
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes stdin
	return 0
}

func runMultiHostDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	data := make([]byte, mhObjectBytes)
	for i := range data {
		data[i] = byte(i * 7)
	}
	obj, err := ray.Put(ctx, data)
	if err != nil {
		fmt.Println("put:", err)
		return 1
	}
	on1 := ReadOn.Options(ray.Resources(map[string]float64{"h1": 1})).RemoteArgs(ctx, obj)
	on2 := ReadOn.Options(ray.Resources(map[string]float64{"h2": 1})).RemoteArgs(ctx, obj)
	for _, r := range []ray.ObjectRef[string]{on1, on2} {
		v, err := r.Get(ctx)
		if err != nil {
			fmt.Println("task:", err)
			return 1
		}
		fmt.Println("ran", v)
	}
	sum := sha256.Sum256(data)
	fmt.Println("want", hex.EncodeToString(sum[:]))
	return 0
}

// startRole starts the test binary in role on host h and returns the
// value its "up" line printed; closing stdin (at cleanup) stops it.
func startRole(t *testing.T, h *testcluster.Host, role string, env ...string) string {
	t.Helper()
	v, _ := startRoleCmd(t, h, role, env...)
	return v
}

// startRoleCmd is startRole, also returning the process.
func startRoleCmd(t *testing.T, h *testcluster.Host, role string, env ...string) (string, *exec.Cmd) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(exe)
	cmd.Env = append(cmd.Env, append([]string{envRole + "=" + role, envIP + "=" + h.IP}, env...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("%s on %s did not stop when told", role, h.Name)
		}
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "up" {
		t.Fatalf("%s on %s: %q", role, h.Name, line)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return f[1], cmd
}

// TestTwoHosts: a head on one simulated host and a node on another (each
// its own network namespace), and a driver on the second host, then on a
// third host with no node: the driver's tasks run on both nodes, each
// reading an object the driver put, fetched across the hosts. The daemons
// listen on their host's address, then on every interface (0.0.0.0)
// advertising it, as `raygo start --host 0.0.0.0 --node-ip-address IP`.
func TestTwoHosts(t *testing.T) {
	for _, wildcard := range []bool{false, true} {
		name := "host address"
		if wildcard {
			name = "every interface"
		}
		t.Run(name, func(t *testing.T) { twoHosts(t, wildcard) })
	}
}

func twoHosts(t *testing.T, wildcard bool) {
	bed := namespaceBed(t)
	h1, err := bed.AddHost("h1")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := bed.AddHost("h2")
	if err != nil {
		t.Fatal(err)
	}
	h3, err := bed.AddHost("h3") // no node: a driver's own machine
	if err != nil {
		t.Fatal(err)
	}
	const token = "e2e-multihost"
	tok := ray.EnvToken + "=" + token
	wild := envWildcard + "=0"
	if wildcard {
		wild = envWildcard + "=1"
	}
	gcs := startRole(t, h1, roleMHHead, tok, wild)
	nodeAddr := startRole(t, h2, roleMHNode, tok, wild, ray.EnvAddress+"="+gcs)
	for _, a := range []string{gcs, nodeAddr} {
		if host, _, _ := net.SplitHostPort(a); host != h1.IP && host != h2.IP {
			t.Fatalf("a daemon advertises %s, not its host's address", a)
		}
	}

	for _, h := range []*testcluster.Host{h2, h3} {
		t.Run("driver on "+h.Name, func(t *testing.T) { checkDriver(t, h, tok, gcs) })
	}
}

// checkDriver runs the multi-host driver on h and checks that its tasks
// ran on both nodes and read its object whole.
func checkDriver(t *testing.T, h *testcluster.Host, tok, gcs string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(exe)
	cmd.Env = append(cmd.Env, envRole+"="+roleMHDriver, tok, ray.EnvAddress+"="+gcs)
	cmd.Stderr = os.Stderr
	out, err := runWithin(cmd, 90*time.Second)
	if err != nil {
		t.Fatalf("driver on %s: %v\n%s", h.Name, err, out)
	}
	var nodes []string
	want := ""
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "ran":
			nodes = append(nodes, f[1])
			if want != "" && f[2] != want {
				t.Fatalf("a task read the object with sum %s", f[2])
			}
			want = f[2]
		case len(f) == 2 && f[0] == "want":
			if f[1] != want {
				t.Fatalf("tasks read sum %s, the driver put %s", want, f[1])
			}
		}
	}
	if len(nodes) != 2 || nodes[0] == nodes[1] || want == "" {
		t.Fatalf("tasks ran on %v, want one on each host's node:\n%s", nodes, out)
	}
	t.Logf("tasks ran on nodes %v; both read the %d-byte object (sha256 %s…)", nodes, mhObjectBytes, want[:12])
}

// runWithin runs cmd, killing it after d.
func runWithin(cmd *exec.Cmd, d time.Duration) (string, error) {
	var b strings.Builder
	cmd.Stdout = &b
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return b.String(), err
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		return b.String(), fmt.Errorf("still running after %s", d)
	}
}

// namespaceBed is a test bed of network namespaces, deleted when the test
// ends; the test skips where namespaces are not available (not root, not
// Linux): the loopback bed would let same-machine shortcuts (shared
// abstract sockets and shared memory) hide the cross-host paths.
func namespaceBed(t *testing.T) *testcluster.Bed {
	t.Helper()
	if err := testcluster.Available(); err != nil {
		t.Skip(err)
	}
	privateRoot(t)
	bed, err := testcluster.New(testcluster.Namespaces)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bed.Close(); err != nil {
			t.Error(err)
		}
	})
	return bed
}

// addHosts adds hosts named names to bed, in order.
func addHosts(t *testing.T, bed *testcluster.Bed, names ...string) []*testcluster.Host {
	t.Helper()
	hosts := make([]*testcluster.Host, len(names))
	for i, n := range names {
		h, err := bed.AddHost(n)
		if err != nil {
			t.Fatal(err)
		}
		hosts[i] = h
	}
	return hosts
}

// driverProc is the test binary running a driver role on a host, talked
// to a line at a time: Send writes a line to its stdin, Next reads its
// next stdout line. It is killed when the test ends.
type driverProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // closed when its stdout ends
}

// startDriverRole starts the test binary in role on host h with env.
func startDriverRole(t *testing.T, h *testcluster.Host, role string, env ...string) *driverProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(exe)
	cmd.Env = append(cmd.Env, append([]string{envRole + "=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &driverProc{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				d.lines <- strings.TrimSpace(line)
			}
			if err != nil {
				close(d.lines)
				return
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return d
}

// Send writes line to the driver's stdin.
func (d *driverProc) Send(line string) { fmt.Fprintln(d.stdin, line) }

// Next returns the fields after prefix of the driver's next line, failing
// the test if that line has another prefix, the driver ends, or no line
// comes within 90 s.
func (d *driverProc) Next(prefix string) []string {
	d.t.Helper()
	return d.NextWithin(prefix, 90*time.Second)
}

// NextWithin is Next waiting up to limit.
func (d *driverProc) NextWithin(prefix string, limit time.Duration) []string {
	d.t.Helper()
	select {
	case line, ok := <-d.lines:
		if !ok {
			d.t.Fatalf("driver ended before %q", prefix)
		}
		if f := strings.Fields(line); len(f) > 0 && f[0] == prefix {
			return f[1:]
		}
		d.t.Fatalf("driver: %s (waiting for %q)", line, prefix)
	case <-time.After(limit):
		// Its goroutines to the test's log (the Go runtime's SIGQUIT
		// dump on its stderr), to see what it waits on.
		_ = d.cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(time.Second)
		d.t.Fatalf("no %q from the driver within %s (its goroutines are above)", prefix, limit)
	}
	return nil
}

// asDriver runs body as a driver role's process: it joins the cluster at
// RAYGO_ADDRESS with RAYGO_TOKEN, says "ready", runs body (which reads
// its commands from stdin) and leaves the cluster.
func asDriver(body func(ctx context.Context) int) int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	fmt.Println("ready")
	return body(ctx)
}
