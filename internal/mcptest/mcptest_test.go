package mcptest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/mcptest"
)

// TestVersionsMatchScript keeps Versions and scripts/ensure-mcp-npm.sh in
// step: Dir checks for exactly what the script installs.
func TestVersionsMatchScript(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "scripts", "ensure-mcp-npm.sh"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\s*"(@modelcontextprotocol/[a-z-]+)@([0-9.]+)"\s*$`)
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		got[m[1]] = m[2]
	}
	if fmt.Sprint(got) != fmt.Sprint(mcptest.Versions) {
		t.Fatalf("scripts/ensure-mcp-npm.sh pins %v; mcptest.Versions is %v", got, mcptest.Versions)
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestEverythingStdio drives the reference server-everything over stdio
// with the TypeScript SDK's client.
func TestEverythingStdio(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	res := mcptest.RunClient(t, ctx, mcptest.Plan{
		Transport: mcptest.Stdio(mcptest.Bin(t, "mcp-server-everything"), "stdio"),
		Steps: []mcptest.Step{
			mcptest.ListTools(),
			mcptest.CallTool("echo", map[string]any{"message": "hello raygo"}),
			mcptest.CallTool("no-such-tool", nil),
			mcptest.Parallel(
				mcptest.Ping(),
				mcptest.CallTool("get-sum", map[string]any{"a": 2, "b": 3}),
				mcptest.CallTool("echo", map[string]any{"message": "beside"}),
			),
			mcptest.ListResources(),
			mcptest.ReadResource("demo://resource/static/document/architecture.md"),
			mcptest.ListPrompts(),
			mcptest.GetPrompt("simple-prompt", nil),
			mcptest.Sleep(time.Millisecond),
		},
	})
	if errs := res.Errors(); len(errs) > 0 {
		t.Fatalf("failures: %v", errs)
	}
	s := res.Session(t, 0)
	if s.ServerInfo == nil || s.ServerInfo.Name == "" {
		t.Errorf("no server info: %+v", s)
	}

	var tools mcp.ListToolsResult
	s.Steps[0].Decode(t, &tools)
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"echo", "get-sum"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %q: %v", want, names)
		}
	}
	if got := s.Steps[1].Text(t); got != "Echo: hello raygo" {
		t.Errorf("echo returned %q", got)
	}

	var missing mcp.CallToolResult
	s.Steps[2].Decode(t, &missing)
	if !missing.IsError {
		t.Errorf("calling an unknown tool did not fail: %+v", missing)
	}

	par := s.Steps[3].Parallel
	if len(par) != 3 {
		t.Fatalf("parallel step has %d results, want 3", len(par))
	}
	if got := par[1].Text(t); !strings.Contains(got, "5") {
		t.Errorf("get-sum 2+3 returned %q", got)
	}
	if got := par[2].Text(t); got != "Echo: beside" {
		t.Errorf("parallel echo returned %q", got)
	}

	var read mcp.ReadResourceResult
	s.Steps[5].Decode(t, &read)
	if len(read.Contents) == 0 || read.Contents[0].Text == "" {
		t.Errorf("resources/read returned no text: %+v", read)
	}
	var prompt mcp.GetPromptResult
	s.Steps[7].Decode(t, &prompt)
	if len(prompt.Messages) == 0 {
		t.Errorf("prompts/get returned no messages")
	}
	for i, st := range s.Steps {
		if st.Ms <= 0 {
			t.Errorf("step %d (%s) has no timing: %v ms", i, st.Op, st.Ms)
		}
	}
}

// TestBadPlan checks that client.mjs refuses a wrong plan
// before connecting, and that RunClient fails the test with its message
// (seen through a recorder standing in for the test).
func TestBadPlan(t *testing.T) {
	mcptest.Dir(t)
	ctx := testContext(t, 30*time.Second)
	rec := &recorder{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != errFatal {
				panic(r)
			}
		}()
		mcptest.RunClient(rec, ctx, mcptest.Plan{
			Transport: mcptest.Stdio("true"),
			Steps:     []mcptest.Step{{Op: "listTool"}},
		})
	}()
	if !rec.fatal || !strings.Contains(rec.msg, `unknown op "listTool"`) {
		t.Fatalf("a plan with an unknown op: fatal=%v, message %q", rec.fatal, rec.msg)
	}
}

var errFatal = fmt.Errorf("fatal")

// recorder is a testing.TB whose Fatal records the message and unwinds
// (by a panic the caller recovers), so that a test can check how a helper
// fails.
type recorder struct {
	testing.TB
	fatal bool
	msg   string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal, r.msg = true, fmt.Sprintf(format, args...)
	panic(errFatal)
}
func (r *recorder) Fatal(args ...any) {
	r.fatal, r.msg = true, fmt.Sprint(args...)
	panic(errFatal)
}

// verifyNoLeaks checks, after the test's later cleanups (the server's
// Close among them), that every goroutine the test started has ended.
func verifyNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

const testToken = "mcptest-secret-token"

// goServer is a Go MCP server (the go-sdk) over streamable HTTP behind the
// SDK's bearer-token middleware, recording the sessions and users its
// tools saw.
type goServer struct {
	URL    string
	server *mcp.Server

	mu       sync.Mutex
	sessions map[string]bool // session ids seen by tool calls
	users    map[string]bool // token users seen by tool calls
}

type addIn struct {
	A float64 `json:"a" jsonschema:"first addend"`
	B float64 `json:"b" jsonschema:"second addend"`
}

type addOut struct {
	Sum float64 `json:"sum"`
}

func startGoServer(t *testing.T) *goServer {
	g := &goServer{sessions: map[string]bool{}, users: map[string]bool{}}
	server := mcp.NewServer(&mcp.Implementation{Name: "mcptest-go", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "add", Description: "Adds a and b."},
		func(ctx context.Context, req *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, addOut, error) {
			g.mu.Lock()
			g.sessions[req.Session.ID()] = true
			if req.Extra != nil && req.Extra.TokenInfo != nil {
				g.users[req.Extra.TokenInfo.UserID] = true
			}
			g.mu.Unlock()
			sum := in.A + in.B
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: fmt.Sprint(sum)}}}, addOut{Sum: sum}, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	verify := func(ctx context.Context, token string, req *http.Request) (*auth.TokenInfo, error) {
		if token != testToken {
			return nil, fmt.Errorf("%w: unknown token", auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{UserID: "tester", Expiration: time.Now().Add(time.Hour)}, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", auth.RequireBearerToken(verify, nil)(handler))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	// Runs before srv.Close (cleanups run last first): a client that left
	// without ending its session (the Inspector's CLI does not send the
	// DELETE) would otherwise keep it, and its goroutines, forever.
	t.Cleanup(func() {
		for ss := range server.Sessions() {
			ss.Close()
		}
	})
	g.URL = srv.URL + "/mcp"
	g.server = server
	return g
}

// openSessions counts the server's sessions not yet ended.
func (g *goServer) openSessions() int {
	n := 0
	for range g.server.Sessions() {
		n++
	}
	return n
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// TestGoServerHTTP reaches a Go MCP server over streamable HTTP with the
// TypeScript client, with and without the right bearer token.
func TestGoServerHTTP(t *testing.T) {
	mcptest.Dir(t)
	verifyNoLeaks(t)
	g := startGoServer(t)
	ctx := testContext(t, 60*time.Second)

	res := mcptest.RunClient(t, ctx, mcptest.Plan{
		Transport: mcptest.HTTP(g.URL, bearer(testToken)),
		Steps:     []mcptest.Step{mcptest.ListTools(), mcptest.CallTool("add", map[string]any{"a": 1, "b": 2})},
	})
	if errs := res.Errors(); len(errs) > 0 {
		t.Fatalf("failures: %v", errs)
	}
	s := res.Session(t, 0)
	if s.ServerInfo == nil || s.ServerInfo.Name != "mcptest-go" {
		t.Errorf("server info %+v, want mcptest-go", s.ServerInfo)
	}
	var tools mcp.ListToolsResult
	s.Steps[0].Decode(t, &tools)
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "add" {
		t.Errorf("tools/list: %+v", tools.Tools)
	}
	call := s.Steps[1].ToolResult(t)
	if got := s.Steps[1].Text(t); got != "3" {
		t.Errorf("add 1 2 returned %q", got)
	}
	var out addOut
	if b, _ := json.Marshal(call.StructuredContent); json.Unmarshal(b, &out) != nil || out.Sum != 3 {
		t.Errorf("add's structured content: %s", b)
	}
	g.mu.Lock()
	if !g.users["tester"] {
		t.Errorf("the tool saw no token user: %v", g.users)
	}
	g.mu.Unlock()

	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"no header", nil},
		{"wrong token", bearer("not-the-token")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := mcptest.RunClient(t, ctx, mcptest.Plan{
				Transport: mcptest.HTTP(g.URL, tc.headers),
				Steps:     []mcptest.Step{mcptest.ListTools()},
			})
			if len(res.Sessions) != 1 || res.Sessions[0].Error == nil {
				t.Fatalf("connected without a valid token: %+v", res.Sessions)
			}
			if e := res.Sessions[0].Error; e.Kind != "http" || e.Code != http.StatusUnauthorized {
				t.Errorf("connection error %v, want an HTTP 401", e)
			}
		})
	}
}

// TestHundredSessions opens 100 sessions at once against the Go server,
// each listing tools and calling one.
func TestHundredSessions(t *testing.T) {
	mcptest.Dir(t)
	verifyNoLeaks(t)
	g := startGoServer(t)
	ctx := testContext(t, 120*time.Second)
	const n = 100
	res := mcptest.RunClient(t, ctx, mcptest.Plan{
		Transport: mcptest.HTTP(g.URL, bearer(testToken)),
		Sessions:  n,
		Steps:     []mcptest.Step{mcptest.ListTools(), mcptest.CallTool("add", map[string]any{"a": 20, "b": 22})},
	})
	if errs := res.Errors(); len(errs) > 0 {
		t.Fatalf("%d failures, first: %v", len(errs), errs[0])
	}
	if len(res.Sessions) != n {
		t.Fatalf("%d sessions in the result, want %d", len(res.Sessions), n)
	}
	var connect, call []float64
	for i := range res.Sessions {
		s := res.Session(t, i)
		if got := s.Steps[1].Text(t); got != "42" {
			t.Errorf("session %d: add returned %q", i, got)
		}
		connect = append(connect, s.ConnectMs)
		call = append(call, s.Steps[1].Ms)
	}
	g.mu.Lock()
	distinct := len(g.sessions)
	g.mu.Unlock()
	if distinct != n {
		t.Errorf("the server saw %d distinct sessions, want %d", distinct, n)
	}
	// The client ends each session (an HTTP DELETE) before it exits.
	if open := g.openSessions(); open != 0 {
		t.Errorf("%d sessions still open on the server after the client exited", open)
	}
	t.Logf("%d sessions in %.0f ms; connect p50 %.1f ms p99 %.1f ms; call p50 %.1f ms p99 %.1f ms",
		n, res.TotalMs, quantile(connect, 0.5), quantile(connect, 0.99), quantile(call, 0.5), quantile(call, 0.99))
}

func quantile(xs []float64, q float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1))]
}

// TestInspectorMemoryStdio lists the tools of the reference memory server
// with the Inspector's CLI over stdio.
func TestInspectorMemoryStdio(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	memory := filepath.Join(t.TempDir(), "memory.jsonl")
	out, err := mcptest.Inspector(t, ctx, "-e", "MEMORY_FILE_PATH="+memory, mcptest.Bin(t, "mcp-server-memory"), "--method", "tools/list")
	if err != nil {
		t.Fatal(err)
	}
	var tools mcp.ListToolsResult
	if err := json.Unmarshal([]byte(out), &tools); err != nil {
		t.Fatalf("inspector output is not a tools/list result: %v\n%s", err, out)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	for _, want := range []string{"create_entities", "read_graph", "search_nodes"} {
		if !slices.Contains(names, want) {
			t.Errorf("memory server's tools lack %q: %v", want, names)
		}
	}
}

// TestInspectorHTTP calls the Go server's tool with the Inspector's CLI
// over streamable HTTP with a bearer header, and is refused without it.
func TestInspectorHTTP(t *testing.T) {
	mcptest.Dir(t)
	verifyNoLeaks(t)
	g := startGoServer(t)
	ctx := testContext(t, 60*time.Second)
	out, err := mcptest.Inspector(t, ctx, g.URL, "--transport", "http",
		"--header", "Authorization: Bearer "+testToken,
		"--method", "tools/call", "--tool-name", "add", "--tool-arg", "a=4", "b=5")
	if err != nil {
		t.Fatal(err)
	}
	var call mcp.CallToolResult
	if err := json.Unmarshal([]byte(out), &call); err != nil {
		t.Fatalf("inspector output is not a tools/call result: %v\n%s", err, out)
	}
	if call.IsError || len(call.Content) == 0 {
		t.Fatalf("tools/call add: %s", out)
	}
	if tc, ok := call.Content[0].(*mcp.TextContent); !ok || tc.Text != "9" {
		t.Errorf("add 4 5 returned %s", out)
	}

	if out, err := mcptest.Inspector(t, ctx, g.URL, "--transport", "http", "--method", "tools/list"); err == nil {
		t.Errorf("the inspector listed tools without a token: %s", out)
	}
}

// TestContextEndKillsServers runs a plan against a stdio "server" that
// never answers, under a short deadline, and checks that RunClient fails
// with the deadline and that the server process node started is gone
// (killed with node's process group).
func TestContextEndKillsServers(t *testing.T) {
	mcptest.Dir(t)
	if runtime.GOOS != "linux" {
		t.Skip("finds processes in /proc")
	}
	marker := fmt.Sprintf("mcptest-never-answers-%d-%d", os.Getpid(), time.Now().UnixNano())
	ctx := testContext(t, 3*time.Second)
	rec := &recorder{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil && r != errFatal {
				panic(r)
			}
		}()
		mcptest.RunClient(rec, ctx, mcptest.Plan{
			Transport: mcptest.Stdio("node", "-e", "setInterval(() => {}, 1000)", marker),
			Steps:     []mcptest.Step{mcptest.ListTools()},
		})
	}()
	if !rec.fatal || !strings.Contains(rec.msg, "deadline exceeded") {
		t.Fatalf("RunClient past its deadline: fatal=%v, message %q", rec.fatal, rec.msg)
	}
	if pids := processesWith(t, marker); len(pids) > 0 {
		t.Fatalf("the stdio server outlived RunClient: pids %v", pids)
	}
}

// processesWith returns the pids whose command line contains s.
func processesWith(t *testing.T, s string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
