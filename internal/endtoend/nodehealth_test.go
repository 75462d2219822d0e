//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/memmonitor"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// Roles of the node-health tests' processes (see TestMain).
const (
	// roleNHHead: a head serving on RAYGO_E2E_IP whose control store
	// declares nodes dead after RAYGO_E2E_NODE_TIMEOUT (a Go duration;
	// empty: the default). Prints "up <control store address> <node id>".
	roleNHHead = "nh-head"
	// roleNHNode: a node daemon serving on RAYGO_E2E_IP, joining
	// RAYGO_ADDRESS, offering the memory resources.Detect finds (as
	// `raygo start` does). Prints "up <node id>"; when the control store
	// declares it dead it prints "dead <error>" and exits with
	// exitDeclaredDead, as `raygo start` does.
	roleNHNode     = "nh-node"
	envNodeTimeout = "RAYGO_E2E_NODE_TIMEOUT"
	// envHeartbeat sets the heartbeat period of the head's and the
	// nodes' daemons (a Go duration; empty: the default, 500 ms).
	envHeartbeat = "RAYGO_E2E_HEARTBEAT"
	// exitDeclaredDead is roleNHNode's exit code when it was declared dead.
	exitDeclaredDead = 3
	// envStorage and envHeadPort: the head's --storage and fixed port
	// (empty: none, and a free port).
	envStorage  = "RAYGO_E2E_STORAGE"
	envHeadPort = "RAYGO_E2E_HEAD_PORT"
)

func runNodeHealth(role string) int {
	ip := os.Getenv(envIP)
	storeBytes := int64(32 << 20)
	if v := os.Getenv(envStoreBytes); v != "" {
		storeBytes, _ = strconv.ParseInt(v, 10, 64)
	}
	rc, done, err := roleNodeConfig(storeBytes)
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer done()
	if v := os.Getenv(envHeartbeat); v != "" {
		if rc.HeartbeatPeriod, err = time.ParseDuration(v); err != nil {
			fmt.Println("heartbeat:", err)
			return 1
		}
	}
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	switch role {
	case roleNHHead:
		var gc gcs.Config
		if v := os.Getenv(envNodeTimeout); v != "" {
			if gc.NodeTimeout, err = time.ParseDuration(v); err != nil {
				fmt.Println("node timeout:", err)
				return 1
			}
		}
		rc.Resources = resources.Set{resources.CPU: 1}
		port := os.Getenv(envHeadPort)
		if port == "" {
			port = "0"
		}
		head, err := node.StartHead(node.HeadConfig{GCSAddress: net.JoinHostPort(ip, port), GCS: gc, Raylet: rc, Token: os.Getenv(ray.EnvToken),
			Storage: os.Getenv(envStorage)})
		if err != nil {
			fmt.Println("head:", err)
			return 1
		}
		defer head.Stop()
		fmt.Println("up", head.GCSAddress(), head.Raylet().NodeID())
		<-stdinClosed
	case roleNHNode:
		rc.Resources = resources.Set{resources.CPU: 1}
		if err := extraResources(rc.Resources, os.Getenv(envExtraResources)); err != nil {
			fmt.Println("resources:", err)
			return 1
		}
		if m := resources.Detect().MemoryBytes; m > 0 {
			rc.Resources[resources.Memory] = float64(m)
		}
		rc.GCSAddress, rc.Token = os.Getenv(ray.EnvAddress), os.Getenv(ray.EnvToken)
		n, err := raylet.Start(rc)
		if err != nil {
			fmt.Println("node:", err)
			return 1
		}
		fmt.Println("up", n.NodeID())
		select {
		case <-stdinClosed:
			n.Stop()
		case <-n.Done():
			err := n.Err()
			n.Stop()
			fmt.Println("dead", err)
			return exitDeclaredDead
		}
	}
	return 0
}

// nhProc is a head or node process of the node-health tests.
type nhProc struct {
	name   string
	cmd    *exec.Cmd
	fields []string    // of its "up" line, after "up"
	lines  chan string // its later stdout lines; closed at end of output
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// startNH starts the test binary in role on host h; closing its stdin (at
// cleanup) stops it.
func startNH(t *testing.T, h *testcluster.Host, role string, env ...string) *nhProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &nhProc{name: role + " on " + h.Name, cmd: h.Command(exe), lines: make(chan string, 64), exited: make(chan struct{})}
	p.cmd.Env = append(p.cmd.Env, append([]string{envRole + "=" + role, envIP + "=" + h.IP}, env...)...)
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(out)
	go func() {
		// Lines after "up"; then the process is reaped.
		first := true
		for {
			line, err := rd.ReadString('\n')
			if line != "" && !first {
				p.lines <- strings.TrimSpace(line)
			}
			if first {
				p.fields = strings.Fields(line)
				first = false
				p.lines <- "" // the up line is in fields
			}
			if err != nil {
				break
			}
		}
		close(p.lines)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT) // in case a test left it stopped
		stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			t.Errorf("%s did not stop when told", p.name)
		}
	})
	select {
	case <-p.lines:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no output within a minute", p.name)
	}
	if len(p.fields) < 2 || p.fields[0] != "up" {
		t.Fatalf("%s: %q", p.name, strings.Join(p.fields, " "))
	}
	p.fields = p.fields[1:]
	return p
}

// nodeStates is the control store's view: every node's state, by id.
func nodeStates(t *testing.T, c pb.ControlStoreClient) map[string]*pb.NodeInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.GetNodes(ctx, &pb.GetNodesRequest{IncludeDead: true})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*pb.NodeInfo{}
	for _, n := range r.GetNodes() {
		out[ids.MustFromBytes(n.GetNodeId()).String()] = n
	}
	return out
}

// waitState polls the control store every 20 ms until node id is in
// state, and returns how long that took; it fails the test after limit.
func waitState(t *testing.T, c pb.ControlStoreClient, id string, state pb.NodeState, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if n := nodeStates(t, c)[id]; n != nil && n.GetState() == state {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("node %s not %s after %s: %v", id, state, limit, nodeStates(t, c)[id])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantAlive fails the test unless every node of ids is alive.
func wantAlive(t *testing.T, c pb.ControlStoreClient, what string, nodeIDs ...string) {
	t.Helper()
	view := nodeStates(t, c)
	for _, id := range nodeIDs {
		if n := view[id]; n == nil || n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			t.Fatalf("%s: node %s is %v, want ALIVE", what, id, n.GetState())
		}
	}
}

// waitDeclaredDead waits for a node process to say it was declared dead
// and exit with exitDeclaredDead, and returns what it said; cutOff (a
// partitioned node) also takes its saying it lost its head.
func waitDeclaredDead(t *testing.T, p *nhProc, limit time.Duration, cutOff bool) string {
	t.Helper()
	var said []string
	deadline := time.After(limit)
	for {
		select {
		case line, ok := <-p.lines:
			if ok {
				said = append(said, line)
				continue
			}
			<-p.exited
			var ee *exec.ExitError
			if !errors.As(p.err, &ee) || ee.ExitCode() != exitDeclaredDead {
				t.Fatalf("%s exited with %v, want code %d; it said %q", p.name, p.err, exitDeclaredDead, said)
			}
			msg := strings.Join(said, "\n")
			// A node cut off from its head for the node timeout stops on its
			// own too (its head timeout is as long), whichever comes first.
			ownAccord := cutOff && strings.Contains(msg, "lost the cluster's head") && strings.Contains(msg, "cut off from it")
			if !strings.Contains(msg, "dead ") || !(strings.Contains(msg, "declared dead by the control store") || ownAccord) {
				t.Fatalf("%s said %q, want why it was declared dead", p.name, msg)
			}
			return msg
		case <-deadline:
			t.Fatalf("%s still runs %s after it was declared dead (said %q)", p.name, limit, said)
		}
	}
}

// healthBed is a head on host h1 and a node on each of h2, h3 and h4.
type healthBed struct {
	bed   *testcluster.Bed
	hosts []*testcluster.Host // h1..h4
	head  *nhProc
	gcs   pb.ControlStoreClient
	nodes []*nhProc // on h2, h3, h4
	env   []string  // for every process: the token, the heartbeat period
}

// newHealthBed starts a healthBed whose control store declares nodes dead
// after nodeTimeout and whose daemons beat every heartbeat (Go durations;
// "" for the defaults). before, when not nil, runs for node i's host
// before node i starts.
func newHealthBed(t *testing.T, nodeTimeout, heartbeat string, before func(i int, h *testcluster.Host)) *healthBed {
	t.Helper()
	bed := namespaceBed(t)
	b := &healthBed{bed: bed, env: []string{ray.EnvToken + "=e2e-nodehealth", envHeartbeat + "=" + heartbeat}}
	for i := 1; i <= 4; i++ {
		h, err := bed.AddHost(fmt.Sprintf("h%d", i))
		if err != nil {
			t.Fatal(err)
		}
		b.hosts = append(b.hosts, h)
	}
	b.head = startNH(t, b.hosts[0], roleNHHead, append(b.env, envNodeTimeout+"="+nodeTimeout)...)
	conn, err := rpc.Dial(b.head.fields[0], "e2e-nodehealth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	b.gcs = pb.NewControlStoreClient(conn)
	for i, h := range b.hosts[1:] {
		if before != nil {
			before(i, h)
		}
		b.nodes = append(b.nodes, b.startNode(t, h))
	}
	wantAlive(t, b.gcs, "at start", b.head.fields[1], b.id(0), b.id(1), b.id(2))
	return b
}

func (b *healthBed) startNode(t *testing.T, h *testcluster.Host) *nhProc {
	t.Helper()
	return startNH(t, h, roleNHNode, append(b.env, ray.EnvAddress+"="+b.head.fields[0])...)
}

// id is the node id of node i (0: on h2).
func (b *healthBed) id(i int) string { return b.nodes[i].fields[0] }

// TestNodeHealthDefaults: a head and three nodes, each on a host of its
// own, with the default node timeout (5 s). A node killed with SIGKILL is
// reported dead by GetNodes within the timeout (the time is logged); a
// node partitioned from the others until it is declared dead and then
// healed does not come back under its old id: its heartbeat is answered
// NodeDiedError, it stops its workers and exits saying why, and started
// again it joins under a new id. The third node stays alive throughout.
func TestNodeHealthDefaults(t *testing.T) {
	b := newHealthBed(t, "", "", nil)
	t.Logf("bed: %s; default node timeout %s", b.bed.Mode(), gcs.DefaultNodeTimeout)

	// SIGKILL: detection time.
	if err := b.nodes[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	took := waitState(t, b.gcs, b.id(0), pb.NodeState_NODE_STATE_DEAD, 3*gcs.DefaultNodeTimeout)
	t.Logf("a SIGKILLed node was reported dead by GetNodes after %s (node timeout %s)", took.Round(time.Millisecond), gcs.DefaultNodeTimeout)
	if took < gcs.DefaultNodeTimeout/2 {
		t.Errorf("node reported dead %s after its death, long before the %s timeout", took, gcs.DefaultNodeTimeout)
	}
	wantAlive(t, b.gcs, "after a kill", b.head.fields[1], b.id(1), b.id(2))

	// Partition past the timeout, then heal.
	parted, old := b.nodes[1], b.id(1)
	if err := b.hosts[2].Partition(); err != nil {
		t.Fatal(err)
	}
	healed := false
	defer func() {
		if !healed {
			_ = b.hosts[2].Heal()
		}
	}()
	took = waitState(t, b.gcs, old, pb.NodeState_NODE_STATE_DEAD, 3*gcs.DefaultNodeTimeout)
	t.Logf("a partitioned node was declared dead after %s", took.Round(time.Millisecond))
	if err := b.hosts[2].Heal(); err != nil {
		t.Fatal(err)
	}
	healed = true
	healedAt := time.Now()
	said := waitDeclaredDead(t, parted, 60*time.Second, true)
	t.Logf("healed, the node exited %s later, saying: %s", time.Since(healedAt).Round(time.Millisecond), said)
	if n := nodeStates(t, b.gcs)[old]; n.GetState() != pb.NodeState_NODE_STATE_DEAD {
		t.Fatalf("the partitioned node's old id is %v after it came back, want DEAD", n.GetState())
	}
	wantAlive(t, b.gcs, "after the partition", b.head.fields[1], b.id(2))

	// Started again, it joins under a new id.
	again := b.startNode(t, b.hosts[2])
	if again.fields[0] == old {
		t.Fatal("the restarted node reused its dead id")
	}
	wantAlive(t, b.gcs, "after the restart", again.fields[0], b.id(2))
}

// TestNodeHealthShortTimeout: the same cluster with a 1.5 s node timeout
// (gcs.Config.NodeTimeout; `raygo start --head --node-timeout 1.5s`) and
// heartbeats every 250 ms, so a loaded machine does not make a node miss
// the timeout by accident. A
// SIGKILLed node is dead well before the default timeout; a node stopped
// with SIGSTOP past the timeout and continued exits as declared dead; a
// head stopped past the timeout and continued declares no node dead (it
// could not hear them). Where memory cgroups can be made, the third node
// runs on a host limited to 256 MiB and offers that, not the machine's
// memory.
func TestNodeHealthShortTimeout(t *testing.T) {
	const limit = 256 << 20
	limited := testcluster.MemoryLimitAvailable()
	b := newHealthBed(t, "1500ms", "250ms", func(i int, h *testcluster.Host) {
		if i == 2 && limited == nil {
			if err := h.LimitMemory(limit); err != nil {
				t.Fatal(err)
			}
		}
	})

	// Per-node memory: each node's memory resource is its own.
	machine, err := memmonitor.NodeLimit()
	if err != nil {
		t.Fatal(err)
	}
	view := nodeStates(t, b.gcs)
	if limited != nil {
		t.Logf("no memory cgroup for the third node's host: %v", limited)
	} else {
		n := view[b.id(2)]
		if got := n.GetTotal().GetAmounts()[resources.Memory]; got != limit {
			t.Errorf("node on a host limited to %d bytes offers %v bytes of memory", limit, got)
		}
		if n.GetHostMemory() < machine.Machine/2 {
			t.Errorf("its host_memory is %d: want the machine's (%d)", n.GetHostMemory(), machine.Machine)
		}
	}
	if got := view[b.id(0)].GetTotal().GetAmounts()[resources.Memory]; got != float64(machine.Bytes) {
		t.Errorf("node without a limit of its own offers %v bytes of memory, want this machine's %d", got, machine.Bytes)
	}

	// SIGKILL.
	if err := b.nodes[0].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	took := waitState(t, b.gcs, b.id(0), pb.NodeState_NODE_STATE_DEAD, 3*gcs.DefaultNodeTimeout)
	t.Logf("with a 1.5s node timeout, a SIGKILLed node was reported dead after %s", took.Round(time.Millisecond))
	if took >= gcs.DefaultNodeTimeout {
		t.Errorf("node reported dead after %s: the 1.5s timeout was not used", took)
	}

	// SIGSTOP past the timeout, then SIGCONT.
	stopped := b.nodes[1]
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	took = waitState(t, b.gcs, b.id(1), pb.NodeState_NODE_STATE_DEAD, 3*gcs.DefaultNodeTimeout)
	t.Logf("a SIGSTOPped node was declared dead after %s", took.Round(time.Millisecond))
	if err := stopped.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	said := waitDeclaredDead(t, stopped, 30*time.Second, false)
	t.Logf("continued, the node exited saying: %s", said)
	wantAlive(t, b.gcs, "after the stopped node", b.head.fields[1], b.id(2))

	// The head stopped past the timeout: nodes keep their ids.
	if err := b.head.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // the stall under test: two node timeouts
	if err := b.head.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // more than a timeout after the head resumed
	wantAlive(t, b.gcs, "after the head was stopped for 3s", b.head.fields[1], b.id(2))
	select {
	case <-b.nodes[2].exited:
		t.Fatalf("the node exited after the head's stall: %v", b.nodes[2].err)
	default:
	}
}
