//go:build !windows

package mcphost

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// The gateway and the replica slots, tested with their neighbour faked:
// replicas are real processes (this test binary as a stdio MCP server,
// see TestMain) started by localLauncher instead of a node daemon, and
// real SDK clients reach the gateway over real HTTP.

const envTestServer = "RAYGO_MCPHOST_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(envTestServer) == "1" {
		serveTestServer()
		return
	}
	os.Exit(m.Run())
}

type echoIn struct {
	Text string `json:"text"`
}
type echoOut struct {
	Text string `json:"text"`
	Pid  int    `json:"pid"`
}
type slowIn struct {
	Millis int `json:"millis"`
}

// serveTestServer is a stdio MCP server with tools echo (its pid too),
// slow (sleeps, reporting progress) and crash (exits 3).
func serveTestServer() {
	s := mcp.NewServer(&mcp.Implementation{Name: "test-server", Version: "1.2.3"}, &mcp.ServerOptions{Instructions: "test instructions"})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
		return nil, echoOut{Text: in.Text, Pid: os.Getpid()}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "slow", Description: "slow"}, func(ctx context.Context, req *mcp.CallToolRequest, in slowIn) (*mcp.CallToolResult, echoOut, error) {
		steps := 4
		for i := range steps {
			if tok := req.Params.GetProgressToken(); tok != nil {
				_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i + 1), Total: float64(steps)})
			}
			select {
			case <-ctx.Done():
				return nil, echoOut{}, ctx.Err()
			case <-time.After(time.Duration(in.Millis/steps) * time.Millisecond):
			}
		}
		return nil, echoOut{Text: "slept", Pid: os.Getpid()}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "crash"}, func(ctx context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, echoOut, error) {
		os.Exit(3)
		return nil, echoOut{}, nil
	})
	if err := s.Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// localLauncher runs replicas as local processes, on one fake node.
type localLauncher struct {
	mu     sync.Mutex
	starts int
}

func (l *localLauncher) Nodes(context.Context) ([]scheduler.Node, error) {
	return []scheduler.Node{{ID: "6e6f6465", Address: "local", Alive: true, Total: resources.Set{resources.CPU: 4}, Available: resources.Set{resources.CPU: 4}}}, nil
}

func (l *localLauncher) Start(ctx context.Context, _ scheduler.Node, start *pb.ReplicaStart) (*Process, error) {
	l.mu.Lock()
	l.starts++
	l.mu.Unlock()
	cmd := exec.CommandContext(ctx, start.GetArgv()[0], start.GetArgv()[1:]...)
	cmd.Env = os.Environ()
	for k, v := range start.GetRuntimeEnv().GetEnvVars() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var werr error
	go func() {
		werr = cmd.Wait()
		close(done)
	}()
	return &Process{Pid: cmd.Process.Pid, Stdin: stdin, Stdout: stdout, Done: done, Err: func() error {
		select {
		case <-done:
			if werr == nil {
				return errors.New("exited")
			}
			return fmt.Errorf("exited: %w", werr)
		default:
			return nil
		}
	}}, nil
}

// startGateway hosts spec on a manager with a local launcher and serves
// its gateway over HTTP.
func startGateway(t *testing.T, spec Spec) (*Manager, string) {
	t.Helper()
	m := NewManager(Config{}, nil, &localLauncher{})
	if _, err := m.Create(context.Background(), spec, "test"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { m.lookup(spec.Name).serveHTTP(w, r) }))
	t.Cleanup(srv.Close)
	return m, srv.URL
}

func testSpec(replicas int) Spec {
	exe, _ := os.Executable()
	return Spec{Name: "test", Command: []string{exe}, Replicas: replicas, Env: map[string]string{envTestServer: "1"}}
}

// waitReady waits until n replicas are ready.
func waitReady(t *testing.T, m *Manager, name string, n int) Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ready >= n {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d replicas ready after 30 s: %+v", st.Ready, n, st.ReplicaStates)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connect(t *testing.T, ctx context.Context, url string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1"}, opts)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func echo(ctx context.Context, cs *mcp.ClientSession, text string) (echoOut, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	if err != nil {
		return echoOut{}, err
	}
	if res.IsError {
		return echoOut{}, fmt.Errorf("tool error: %v", res.Content)
	}
	m, _ := res.StructuredContent.(map[string]any)
	pid, _ := m["pid"].(float64)
	txt, _ := m["text"].(string)
	return echoOut{Text: txt, Pid: int(pid)}, nil
}

func TestGatewaySpreadsStickySessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, url := startGateway(t, testSpec(2))
	waitReady(t, m, "test", 2)

	pids := map[int]int{}
	for i := range 4 {
		cs := connect(t, ctx, url, nil)
		if got := cs.InitializeResult().ServerInfo.Name; got != "test-server" {
			t.Errorf("server name through the gateway: %q, want the replica's", got)
		}
		if got := cs.InitializeResult().Instructions; got != "test instructions" {
			t.Errorf("instructions: %q", got)
		}
		tools, err := cs.ListTools(ctx, nil)
		if err != nil || len(tools.Tools) != 3 {
			t.Fatalf("tools/list: %v, %v", tools, err)
		}
		first, err := echo(ctx, cs, "hi "+strconv.Itoa(i))
		if err != nil || first.Text != "hi "+strconv.Itoa(i) {
			t.Fatalf("echo: %+v %v", first, err)
		}
		for range 3 { // sticky: the same replica every call
			again, err := echo(ctx, cs, "x")
			if err != nil || again.Pid != first.Pid {
				t.Fatalf("session moved from replica pid %d to %d (%v)", first.Pid, again.Pid, err)
			}
		}
		pids[first.Pid]++
	}
	if len(pids) != 2 || pids[firstKey(pids)] != 2 {
		t.Errorf("4 sessions over 2 replicas by pid: %v, want 2 and 2", pids)
	}
	st, _ := m.Get("test")
	for _, r := range st.ReplicaStates {
		if r.Sessions != 2 {
			t.Errorf("replica %d has %d sessions, want 2", r.Index, r.Sessions)
		}
	}
	// The replica's JSON-RPC errors come back as they are.
	_, err := connect(t, ctx, url, nil).CallTool(ctx, &mcp.CallToolParams{Name: "nope"})
	if err == nil {
		t.Error("unknown tool: no error")
	}
}

func firstKey(m map[int]int) int {
	for k := range m {
		return k
	}
	return 0
}

func TestGatewayRoutesProgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, url := startGateway(t, testSpec(1))
	waitReady(t, m, "test", 1)
	var mu sync.Mutex
	var got []float64
	cs := connect(t, ctx, url, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		defer mu.Unlock()
		if req.Params.ProgressToken != "mine" {
			t.Errorf("progress token %v, want the client's own", req.Params.ProgressToken)
		}
		got = append(got, req.Params.Progress)
	}})
	p := &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"millis": 200}}
	p.SetProgressToken("mine")
	if _, err := cs.CallTool(ctx, p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress notifications: %v, want 4", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReplicaKilledMidSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, url := startGateway(t, testSpec(2))
	waitReady(t, m, "test", 2)
	cs := connect(t, ctx, url, nil)
	before, err := echo(ctx, cs, "a")
	if err != nil {
		t.Fatal(err)
	}
	// Kill the session's replica while a call runs on it.
	errc := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"millis": 5000}})
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(before.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = <-errc
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != CodeReplicaGone {
		t.Fatalf("call on a killed replica: %v, want a JSON-RPC error %d", err, CodeReplicaGone)
	}
	t.Logf("the client was told: %s", werr.Message)
	// The session goes on, on the other replica.
	after, err := echo(ctx, cs, "b")
	if err != nil || after.Pid == before.Pid {
		t.Fatalf("after the kill: %+v %v (killed pid %d)", after, err, before.Pid)
	}
	st := waitReady(t, m, "test", 2)
	t.Logf("replica replaced and ready %v after the kill", time.Since(killed))
	restarts := 0
	for _, r := range st.ReplicaStates {
		restarts += r.Restarts
	}
	if restarts != 1 {
		t.Errorf("restarts: %d, want 1", restarts)
	}
}

func TestNoReadyReplica(t *testing.T) {
	spec := Spec{Name: "broken", Command: []string{"/bin/sh", "-c", "echo 'bad start' >&2; exit 7"}, Replicas: 1}
	m, url := startGateway(t, spec)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _ := m.Get("broken")
		r := st.ReplicaStates[0]
		if r.Restarts >= 2 && r.Message != "" {
			t.Logf("replica: %s: %s", r.State, r.Message)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failures seen: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "1"}, nil)
	_, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, MaxRetries: -1}, nil)
	if err == nil {
		t.Fatal("connect to a server with no ready replica: no error")
	}
	t.Logf("connect: %v", err)
}
