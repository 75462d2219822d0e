package raylet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// replicaStream is the head's side of one RunReplica stream.
type replicaStream = pb.NodeDaemon_RunReplicaClient

// startReplica opens a RunReplica stream with start and reads the
// first answer: the started process, or the error that refused it.
func startReplica(t *testing.T, ctx context.Context, n *epNode, start *pb.ReplicaStart) (replicaStream, *pb.ReplicaOutput, error) {
	t.Helper()
	s, err := n.node.RunReplica(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&pb.ReplicaInput{Start: start}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	first, err := s.Recv()
	return s, first, err
}

// mustStartReplica is startReplica that fails the test on an error.
func mustStartReplica(t *testing.T, ctx context.Context, n *epNode, start *pb.ReplicaStart) (replicaStream, *pb.ReplicaOutput) {
	t.Helper()
	s, first, err := startReplica(t, ctx, n, start)
	if err != nil {
		t.Fatalf("start %s: %v", start.GetReplicaId(), err)
	}
	if first.GetPid() <= 0 || first.GetLogFile() != raylet.ReplicaLogName(start.GetKind(), start.GetServer(), start.GetReplicaId()) {
		t.Fatalf("start %s: first message %v", start.GetReplicaId(), first)
	}
	return s, first
}

// readStdout reads stdout messages until want bytes came, checking each
// chunk's bound; it returns the bytes and how many messages carried them.
func readStdout(t *testing.T, s replicaStream, want int) ([]byte, int) {
	t.Helper()
	var got []byte
	msgs := 0
	for len(got) < want {
		m, err := s.Recv()
		if err != nil {
			t.Fatalf("after %d of %d stdout bytes: %v", len(got), want, err)
		}
		if len(m.GetStdout()) > raylet.ReplicaChunkBytes {
			t.Fatalf("a stdout message of %d bytes, over ReplicaChunkBytes", len(m.GetStdout()))
		}
		got = append(got, m.GetStdout()...)
		msgs++
	}
	return got, msgs
}

// streamEnd reads until the stream ends and returns its error.
func streamEnd(t *testing.T, s replicaStream) error {
	t.Helper()
	for {
		if _, err := s.Recv(); err != nil {
			return err
		}
	}
}

// waitCPU waits until the node's available CPU is want.
func waitCPU(t *testing.T, n *epNode, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.available(t)[resources.CPU] != want {
		if time.Now().After(deadline) {
			t.Fatalf("available CPU %v, want %v", n.available(t)[resources.CPU], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMCPReplicaEchoesStdin(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "marker.txt"), []byte("in the working dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := n.upload(t, wd)
	// The environment and directory first, on one line, then cat.
	// The cluster's token is not handed to a replica (set in the daemon's
	// environment here, it must not pass through).
	t.Setenv("RAYGO_TOKEN", "must-not-leak")
	script := `printf '%s|%s|%s|%s|%s|%s|' "$RAYGO_MCP_SERVER" "$RAYGO_MCP_REPLICA" "$RAYGO_ADDRESS" "$GREETING" "$(cat marker.txt)" "$RAYGO_TOKEN"; exec cat`
	s, first := mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "memory", ReplicaId: "memory-1a2b",
		Argv: []string{"sh", "-c", script}, Resources: map[string]float64{"CPU": 1}, ClusterAddress: "10.1.2.3:6380",
		RuntimeEnv: &pb.RuntimeEnv{EnvVars: map[string]string{"GREETING": "hi"}, WorkingDir: pkg}})
	if first.GetLogFile() != "mcp-memory-memory-1a2b.log" {
		t.Fatalf("log file %q", first.GetLogFile())
	}
	waitCPU(t, n, 1)
	wantEnv := "memory|memory-1a2b|10.1.2.3:6380|hi|in the working dir||"
	if got, _ := readStdout(t, s, len(wantEnv)); string(got) != wantEnv {
		t.Fatalf("environment line %q, want %q", got, wantEnv)
	}

	line := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")
	if err := s.Send(&pb.ReplicaInput{Stdin: line}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readStdout(t, s, len(line)); !bytes.Equal(got, line) {
		t.Fatalf("echo %q, want %q", got, line)
	}
	// One stdin message over the chunk size comes back split and whole.
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
	big[len(big)-1] = '\n'
	if err := s.Send(&pb.ReplicaInput{Stdin: big}); err != nil {
		t.Fatal(err)
	}
	got, msgs := readStdout(t, s, len(big))
	if !bytes.Equal(got, big) {
		t.Fatalf("the %d-byte message came back as %d different bytes", len(big), len(got))
	}
	if msgs < 2 {
		t.Fatalf("%d bytes came back in %d message(s), want them split at %d", len(big), msgs, raylet.ReplicaChunkBytes)
	}
	// Closing stdin ends cat, which ends the stream, saying so.
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	err := streamEnd(t, s)
	if !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), "memory-1a2b") || !strings.Contains(err.Error(), "exit status 0") {
		t.Fatalf("end: %v, want an unavailable error saying exit status 0", err)
	}
	waitCPU(t, n, 2)
}

func TestMCPReplicaExitReportsStatusAndStderr(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	script := `i=1; while [ $i -le 30 ]; do echo "stderr line $i." >&2; i=$((i+1)); done; echo "boom: bad config" >&2; exit 3`
	s, _ := mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "memory", ReplicaId: "memory-3",
		Argv: []string{"/bin/sh", "-c", script}, Resources: map[string]float64{"CPU": 1}})
	err := streamEnd(t, s)
	if !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("end: %v, want an unavailable-kind error", err)
	}
	msg := err.Error()
	for _, want := range []string{"mcp replica memory-3", "on node " + n.r.NodeID().Short(), "exit status 3", "boom: bad config", "stderr line 30."} {
		if !strings.Contains(msg, want) {
			t.Errorf("end error lacks %q: %s", want, msg)
		}
	}
	// Only the last lines: 21 to 30 and boom are 11, so 21 is cut.
	if strings.Contains(msg, "stderr line 21.") || strings.Contains(msg, "stderr line 1.") {
		t.Errorf("end error quotes more than the last %d stderr lines: %s", raylet.ReplicaTailLines, msg)
	}
	log, rerr := os.ReadFile(filepath.Join(n.session, "logs", raylet.ReplicaLogName(raylet.KindMCP, "memory", "memory-3")))
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, want := range []string{"stderr line 1.\n", "stderr line 30.\n", "boom: bad config\n"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	waitCPU(t, n, 2)
}

func TestMCPReplicaCancelKillsGroupAndFreesResources(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// A shell that ignores SIGTERM, so the SIGKILL after the grace ends
	// it; its child does not, and goes with the first signal.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, first := mustStartReplica(t, rctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "slow", ReplicaId: "slow-1",
		Argv: []string{"sh", "-c", `trap '' TERM; sleep 100 & echo $! > ` + pidFile + `; wait; wait`}, Resources: map[string]float64{"CPU": 2}})
	child := childPid(t, pidFile)
	waitCPU(t, n, 0)

	// Resources held: a replica needing any CPU is refused, unavailable.
	_, _, err := startReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "slow", ReplicaId: "slow-2", Argv: []string{"cat"},
		Resources: map[string]float64{"CPU": 1}})
	if !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), "no room") {
		t.Fatalf("second replica while the CPUs are held: %v, want an unavailable error saying there is no room", err)
	}
	// More than the node has at all: infeasible.
	_, _, err = startReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "slow", ReplicaId: "slow-3", Argv: []string{"cat"},
		Resources: map[string]float64{"CPU": 3}})
	var inf *errs.InfeasibleError
	if !errors.Is(err, errs.ErrInfeasible) || !errors.As(err, &inf) || !strings.Contains(err.Error(), "CPU: 2") {
		t.Fatalf("replica over the node's totals: %v, want an infeasible error naming them", err)
	}
	// The same replica id twice: refused.
	_, _, err = startReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "slow", ReplicaId: "slow-1", Argv: []string{"cat"}})
	if !errors.Is(err, errs.ErrAlreadyExists) {
		t.Fatalf("a replica id already running: %v, want already-exists", err)
	}

	start := time.Now()
	cancel()
	if _, err := s.Recv(); err == nil {
		t.Fatal("the stream goes on after its cancel")
	}
	waitGone(t, int(first.GetPid()))
	waitGone(t, child)
	if d := time.Since(start); d < raylet.DefaultReplicaStopGrace/2 {
		t.Errorf("a shell ignoring SIGTERM ended after %v, before the grace", d)
	}
	waitCPU(t, n, 2)
	// Now a replica needing all CPUs starts.
	s2, _ := mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "slow", ReplicaId: "slow-4", Argv: []string{"cat"},
		Resources: map[string]float64{"CPU": 2}})
	if err := s2.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := streamEnd(t, s2); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("end: %v", err)
	}
}

// TestReplicaDiesWithItsNode: a node daemon stopping kills its
// replicas' process groups, of either kind, and ends their streams.
func TestReplicaDiesWithItsNode(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	type running struct {
		s          replicaStream
		pid, child int
	}
	var all []running
	for _, kind := range []string{raylet.KindMCP, raylet.KindServe} {
		pidFile := filepath.Join(t.TempDir(), "child.pid")
		s, first := mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: kind, Server: "long", ReplicaId: "long-" + kind,
			Argv: []string{"sh", "-c", `sleep 100 & echo $! > ` + pidFile + `; wait`}})
		all = append(all, running{s, int(first.GetPid()), childPid(t, pidFile)})
	}
	n.stop()
	for _, rr := range all {
		waitGone(t, rr.pid)
		waitGone(t, rr.child)
		if err := streamEnd(t, rr.s); err == nil {
			t.Fatal("the stream ended without an error")
		}
	}
}

func TestReplicaRefusals(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	ok := func(mod func(*pb.ReplicaStart)) *pb.ReplicaInput {
		st := &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "memory", ReplicaId: "memory-1", Argv: []string{"cat"}}
		mod(st)
		return &pb.ReplicaInput{Start: st}
	}
	serve := func(mod func(*pb.ReplicaStart)) *pb.ReplicaInput {
		return ok(func(s *pb.ReplicaStart) {
			s.Kind, s.Server, s.ReplicaId, s.Argv = raylet.KindServe, "shop", "shop-1", []string{"sleep", "100"}
			mod(s)
		})
	}
	for _, tc := range []struct {
		name string
		in   *pb.ReplicaInput // nil: close the stream at once
		want string
	}{
		{"closed before start", nil, "closed before its start message"},
		{"no start", &pb.ReplicaInput{Stdin: []byte("hi\n")}, "first message must carry start"},
		{"no kind", ok(func(s *pb.ReplicaStart) { s.Kind = "" }), `kind "": want "mcp" or "serve"`},
		{"unknown kind", ok(func(s *pb.ReplicaStart) { s.Kind = "http" }), `kind "http"`},
		{"bad server", ok(func(s *pb.ReplicaStart) { s.Server = "../etc" }), `server name "../etc"`},
		{"empty server", ok(func(s *pb.ReplicaStart) { s.Server = "" }), `server name ""`},
		{"bad replica", ok(func(s *pb.ReplicaStart) { s.ReplicaId = "a/b" }), `replica id "a/b"`},
		{"port_env for mcp", ok(func(s *pb.ReplicaStart) { s.PortEnv = "PORT" }), "port_env \"PORT\" is for serve replicas only"},
		{"negative grace", ok(func(s *pb.ReplicaStart) { s.StopGraceMs = -1 }), "stop_grace_ms -1 is negative"},
		{"grace over the max", ok(func(s *pb.ReplicaStart) { s.StopGraceMs = raylet.MaxReplicaStopGrace.Milliseconds() + 1 }), "over the maximum"},
		{"empty argv", ok(func(s *pb.ReplicaStart) { s.Argv = nil }), "empty argv"},
		{"unknown command", ok(func(s *pb.ReplicaStart) { s.Argv = []string{"no-such-mcp-server-x"} }),
			`command "no-such-mcp-server-x" not found on node ` + n.r.NodeID().Short()},
		{"missing path", ok(func(s *pb.ReplicaStart) { s.Argv = []string{"./bin/absent"} }), `command "./bin/absent" not found`},
		{"bad resources", ok(func(s *pb.ReplicaStart) { s.Resources = map[string]float64{"CPU": -1} }), "CPU"},
		{"bad runtime env", ok(func(s *pb.ReplicaStart) { s.RuntimeEnv = &pb.RuntimeEnv{WorkingDir: "/tmp"} }), "uploaded package"},
		{"serve bad deployment", serve(func(s *pb.ReplicaStart) { s.Server = "a b" }), `deployment name "a b"`},
		{"serve port_env with a dash", serve(func(s *pb.ReplicaStart) { s.PortEnv = "MY-PORT" }), `serve replica shop-1 (deployment shop): port_env "MY-PORT"`},
		{"serve port_env raygo's", serve(func(s *pb.ReplicaStart) { s.PortEnv = "RAYGO_ADDRESS" }), "RAYGO_ variables are raygo's own"},
		{"serve port_env PATH", serve(func(s *pb.ReplicaStart) { s.PortEnv = "PATH" }), "PATH finds the command"},
		{"serve stdin", &pb.ReplicaInput{Start: serve(func(*pb.ReplicaStart) {}).GetStart(), Stdin: []byte("x")}, "stdin is /dev/null"},
		{"serve unknown command", serve(func(s *pb.ReplicaStart) { s.Argv = []string{"no-such-server-y"} }), `serve replica shop-1 (deployment shop): command "no-such-server-y" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := n.node.RunReplica(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.in != nil {
				if err := s.Send(tc.in); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			_, err = s.Recv()
			if !errors.Is(err, errs.ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want an invalid-request error naming %q", err, tc.want)
			}
		})
	}
	if got := n.available(t)[resources.CPU]; got != 2 {
		t.Fatalf("CPU after refusals: %v", got)
	}
}

// TestMCPReplicaRuntimeEnvPath: argv[0] is looked up on the runtime
// env's PATH when it sets one, and a relative path in the working dir.
func TestMCPReplicaRuntimeEnvPath(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	bin := t.TempDir()
	tool := "#!/bin/sh\necho from-tool\n"
	if err := os.WriteFile(filepath.Join(bin, "my-mcp-tool"), []byte(tool), 0o755); err != nil {
		t.Fatal(err)
	}
	wd := t.TempDir()
	if err := os.MkdirAll(filepath.Join(wd, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wd, "bin", "server"), []byte("#!/bin/sh\necho from-package\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	pkg := n.upload(t, wd)
	digest, _ := runtimeenv.ParseName(pkg)
	for _, tc := range []struct {
		argv []string
		env  *pb.RuntimeEnv
		want string
	}{
		{[]string{"my-mcp-tool"}, &pb.RuntimeEnv{EnvVars: map[string]string{"PATH": bin + ":/usr/bin:/bin"}}, "from-tool\n"},
		{[]string{"./bin/server"}, &pb.RuntimeEnv{WorkingDir: pkg}, "from-package\n"},
	} {
		s, _ := mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "tool", ReplicaId: "tool-1", Argv: tc.argv, RuntimeEnv: tc.env})
		if got, _ := readStdout(t, s, len(tc.want)); string(got) != tc.want {
			t.Fatalf("%v: stdout %q, want %q", tc.argv, got, tc.want)
		}
		if err := streamEnd(t, s); !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), "exit status 0") {
			t.Fatalf("%v: end %v", tc.argv, err)
		}
	}
	// The package's directory is the runtime env cache's.
	if _, err := os.Stat(filepath.Join(runtimeenv.CacheDir(n.session), digest, "bin", "server")); err != nil {
		t.Fatal(err)
	}
	// Without that PATH the tool is not found.
	if _, _, err := startReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "tool", ReplicaId: "tool-2", Argv: []string{"my-mcp-tool"}}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("without the runtime env's PATH: %v", err)
	}
}

// TestMCPReplicaSecondStartEndsIt: a start message after the first is a
// protocol error that ends the replica, process included.
func TestMCPReplicaSecondStartEndsIt(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	start := &pb.ReplicaStart{Kind: raylet.KindMCP, Server: "memory", ReplicaId: "memory-2", Argv: []string{"cat"}, Resources: map[string]float64{"CPU": 1}}
	s, first := mustStartReplica(t, ctx, n, start)
	if err := s.Send(&pb.ReplicaInput{Start: start}); err != nil {
		t.Fatal(err)
	}
	if err := streamEnd(t, s); !errors.Is(err, errs.ErrInvalidRequest) || !strings.Contains(err.Error(), "second start message") {
		t.Fatalf("end: %v, want an invalid-request error naming the second start", err)
	}
	waitGone(t, int(first.GetPid()))
	waitCPU(t, n, 2)
}
