package raylet_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
)

// Serve command replicas (kind "serve"): a program listening on the port
// its environment names, reached over HTTP at the first message's
// host_port; its stdout and stderr in its log; nothing else on the stream.

// needPython skips a test when python3 is not installed.
func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
}

// httpGet polls url until it answers 200 and returns the body.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(body)
			}
			err = errors.Join(rerr, errors.New(resp.Status))
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until the node's log file name holds want.
func waitLog(t *testing.T, n *epNode, name, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(n.session, "logs", name))
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s lacks %q:\n%s", name, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServeReplicaServesHTTPAtItsHostPort(t *testing.T) {
	needPython(t)
	n := startEpNode(t)
	ctx := testCtx(t)
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "hello.txt"), []byte("hello from the working dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg := n.upload(t, wd)
	// The cluster's token is not handed to a replica either.
	t.Setenv("RAYGO_TOKEN", "must-not-leak")
	script := `echo "env: $RAYGO_SERVE_DEPLOYMENT|$RAYGO_SERVE_REPLICA|$RAYGO_SERVE_HOST|$RAYGO_ADDRESS|$RAYGO_TOKEN|$RAYGO_MCP_SERVER|$PORT"; ` +
		`exec python3 -u -m http.server --bind "$RAYGO_SERVE_HOST" "$PORT"`
	var hostPorts []string
	var streams []replicaStream
	var cancels []context.CancelFunc
	var pids []int
	for _, id := range []string{"shop-1", "shop-2"} {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s, first := mustStartReplica(t, rctx, n, &pb.ReplicaStart{Kind: raylet.KindServe, Server: "shop", ReplicaId: id,
			Argv: []string{"sh", "-c", script}, Resources: map[string]float64{"CPU": 1}, ClusterAddress: "10.1.2.3:6380",
			RuntimeEnv: &pb.RuntimeEnv{WorkingDir: pkg}})
		if first.GetLogFile() != "serve-shop-"+id+".log" || len(first.GetStdout()) != 0 {
			t.Fatalf("first message %v", first)
		}
		host, port, err := net.SplitHostPort(first.GetHostPort())
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("host_port %q (%v), want 127.0.0.1 (the node's address) and a port", first.GetHostPort(), err)
		}
		// Closing the client's side changes nothing for a serve replica.
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		hostPorts = append(hostPorts, first.GetHostPort())
		streams = append(streams, s)
		cancels = append(cancels, cancel)
		pids = append(pids, int(first.GetPid()))
	}
	if hostPorts[0] == hostPorts[1] {
		t.Fatalf("two replicas given the same host_port %s", hostPorts[0])
	}
	waitCPU(t, n, 0)
	for i, hp := range hostPorts {
		if got := httpGet(t, "http://"+hp+"/hello.txt"); got != "hello from the working dir" {
			t.Fatalf("GET /hello.txt at %s: %q", hp, got)
		}
		id := []string{"shop-1", "shop-2"}[i]
		_, port, _ := net.SplitHostPort(hp)
		log := waitLog(t, n, "serve-shop-"+id+".log", "GET /hello.txt")
		wantEnv := "env: shop|" + id + "|127.0.0.1|10.1.2.3:6380|||" + port + "\n"
		if !strings.Contains(log, wantEnv) {
			t.Fatalf("log lacks the environment line %q (stdout):\n%s", wantEnv, log)
		}
	}
	// Nothing arrives on the stream while it serves; cancelling it stops
	// the replica (python exits on SIGTERM) and frees its resources.
	for i, s := range streams {
		got := make(chan error, 1)
		go func() { _, err := s.Recv(); got <- err }() // ends with the stream, cancelled below
		select {
		case err := <-got:
			t.Fatalf("the stream of a serving replica ended: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		cancels[i]()
		if err := <-got; err == nil {
			t.Fatal("the stream goes on after its cancel")
		}
		waitGone(t, pids[i])
	}
	waitCPU(t, n, 2)
}

func TestServeReplicaExitEndsItsStreamSaysHow(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	script := `echo "listening on $HTTP_PORT"; i=1; while [ $i -le 20 ]; do echo "noise $i."; i=$((i+1)); done; echo "fatal: cannot bind" >&2; exit 4`
	s, first := mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindServe, Server: "api", ReplicaId: "api-7",
		PortEnv: "HTTP_PORT", Argv: []string{"sh", "-c", script}, Resources: map[string]float64{"CPU": 1}})
	_, port, _ := net.SplitHostPort(first.GetHostPort())
	err := streamEnd(t, s)
	if !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("end: %v, want an unavailable-kind error", err)
	}
	msg := err.Error()
	for _, want := range []string{"serve replica api-7 (deployment api)", "on node " + n.r.NodeID().Short(), "exit status 4", "last output:", "fatal: cannot bind", "noise 20."} {
		if !strings.Contains(msg, want) {
			t.Errorf("end error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "noise 11.") || strings.Contains(msg, "listening on") {
		t.Errorf("end error quotes more than the last %d lines: %s", raylet.ReplicaTailLines, msg)
	}
	log, rerr := os.ReadFile(filepath.Join(n.session, "logs", raylet.ReplicaLogName(raylet.KindServe, "api", "api-7")))
	if rerr != nil {
		t.Fatal(rerr)
	}
	for _, want := range []string{"listening on " + port + "\n", "noise 1.\n", "fatal: cannot bind\n"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	waitCPU(t, n, 2)

	// A second run of the same id appends to the log; its end quotes its
	// own output only.
	s, _ = mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindServe, Server: "api", ReplicaId: "api-7",
		Argv: []string{"sh", "-c", "exit 0"}})
	if err := streamEnd(t, s); !errors.Is(err, errs.ErrUnavailable) || !strings.Contains(err.Error(), "exit status 0") || strings.Contains(err.Error(), "last output") {
		t.Fatalf("second run's end: %v, want exit status 0 without output", err)
	}
}

// TestServeReplicaCancelUsesItsGrace: cancelling the stream sends SIGTERM
// and waits the start's stop grace before SIGKILL: a replica draining
// for longer than the default grace finishes within its own; one
// ignoring SIGTERM is killed after its shorter grace.
func TestServeReplicaCancelUsesItsGrace(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)

	drain := raylet.DefaultReplicaStopGrace + 500*time.Millisecond
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	script := `trap 'echo draining; sleep ` + strconv.FormatFloat(drain.Seconds(), 'f', 1, 64) + `; echo drained; exit 0' TERM; echo ready; while :; do sleep 0.1; done`
	s, first := mustStartReplica(t, rctx, n, &pb.ReplicaStart{Kind: raylet.KindServe, Server: "slow", ReplicaId: "slow-1",
		Argv: []string{"sh", "-c", script}, Resources: map[string]float64{"CPU": 2}, StopGraceMs: (drain + 3*time.Second).Milliseconds()})
	logName := raylet.ReplicaLogName(raylet.KindServe, "slow", "slow-1")
	waitLog(t, n, logName, "ready\n")
	waitCPU(t, n, 0)
	start := time.Now()
	cancel()
	if _, err := s.Recv(); err == nil {
		t.Fatal("the stream goes on after its cancel")
	}
	waitGone(t, int(first.GetPid()))
	waitLog(t, n, logName, "drained\n")
	if d := time.Since(start); d < drain {
		t.Errorf("a replica draining for %v was gone after %v", drain, d)
	}
	waitCPU(t, n, 2)

	grace := 300 * time.Millisecond
	rctx, cancel = context.WithCancel(ctx)
	defer cancel()
	s, first = mustStartReplica(t, rctx, n, &pb.ReplicaStart{Kind: raylet.KindServe, Server: "stubborn", ReplicaId: "stubborn-1",
		Argv: []string{"sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.1; done`}, StopGraceMs: grace.Milliseconds()})
	waitLog(t, n, raylet.ReplicaLogName(raylet.KindServe, "stubborn", "stubborn-1"), "ready\n")
	start = time.Now()
	cancel()
	if _, err := s.Recv(); err == nil {
		t.Fatal("the stream goes on after its cancel")
	}
	waitGone(t, int(first.GetPid()))
	if d := time.Since(start); d < grace || d >= raylet.DefaultReplicaStopGrace {
		t.Errorf("a replica ignoring SIGTERM with a %v grace was gone after %v", grace, d)
	}
}

// TestServeReplicaInputEndsIt: anything sent after a serve replica's
// start is a protocol error that ends the replica.
func TestServeReplicaInputEndsIt(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	s, first := mustStartReplica(t, ctx, n, &pb.ReplicaStart{Kind: raylet.KindServe, Server: "shop", ReplicaId: "shop-9",
		Argv: []string{"sleep", "100"}, Resources: map[string]float64{"CPU": 1}})
	if err := s.Send(&pb.ReplicaInput{Stdin: []byte("hi\n")}); err != nil {
		t.Fatal(err)
	}
	if err := streamEnd(t, s); !errors.Is(err, errs.ErrInvalidRequest) || !strings.Contains(err.Error(), "carries nothing after its start") {
		t.Fatalf("end: %v, want an invalid-request error saying the stream carries nothing more", err)
	}
	waitGone(t, int(first.GetPid()))
	waitCPU(t, n, 2)
}
