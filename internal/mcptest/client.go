package mcptest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

//go:embed testdata/client.mjs
var clientScript []byte

// Limits on a plan, as testdata/client.mjs enforces them (a plan past them
// fails RunClient).
const (
	MaxSessions = 1000 // Plan.Sessions
	MaxParallel = 1000 // steps in one Parallel
	MaxSleep    = 10 * time.Minute
)

// DefaultRequestTimeout is the SDK's per-request timeout when
// Plan.RequestTimeout is zero.
const DefaultRequestTimeout = 30 * time.Second

// A Plan is what the node client does: which server it connects to, how
// many independent sessions it opens at once, and the steps each session
// runs in order.
type Plan struct {
	Transport Transport `json:"transport"`
	// Sessions is how many sessions to open concurrently, each with its own
	// connection (and, over stdio, its own server process), each running
	// every step; 0 means 1. At most MaxSessions.
	Sessions int `json:"sessions,omitempty"`
	// RequestTimeout bounds each MCP request, the connection's initialize
	// included; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration `json:"-"`
	Steps          []Step        `json:"steps"`
}

// Transport names the server: exactly one of Stdio and HTTP is set.
type Transport struct {
	Stdio *StdioTransport `json:"stdio,omitempty"`
	HTTP  *HTTPTransport  `json:"http,omitempty"`
}

// StdioTransport starts the server as a process and speaks over its stdin
// and stdout (the SDK's StdioClientTransport). The server's stderr goes to
// node's, which RunClient keeps (Result.Stderr).
type StdioTransport struct {
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"`
	// Env is added to the SDK's default environment (HOME, PATH, USER and
	// a few more; not the test's whole environment).
	Env map[string]string `json:"env,omitempty"`
	Dir string            `json:"cwd,omitempty"`
}

// HTTPTransport connects over streamable HTTP (the SDK's
// StreamableHTTPClientTransport), sending Headers with every request.
type HTTPTransport struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

// Stdio returns a transport that starts command with args.
func Stdio(command string, args ...string) Transport {
	return Transport{Stdio: &StdioTransport{Command: command, Args: args}}
}

// HTTP returns a streamable HTTP transport to url with headers (may be nil).
func HTTP(url string, headers map[string]string) Transport {
	return Transport{HTTP: &HTTPTransport{URL: url, Headers: headers}}
}

// A Step is one thing a session does. Build steps with ListTools,
// CallTool, ListResources, ReadResource, ListPrompts, GetPrompt, Ping,
// Sleep and Parallel; the fields are what client.mjs reads.
type Step struct {
	Op        string `json:"op"`
	Name      string `json:"name,omitempty"`
	Arguments any    `json:"arguments,omitempty"`
	URI       string `json:"uri,omitempty"`
	Ms        int64  `json:"ms,omitempty"`
	Steps     []Step `json:"steps,omitempty"`
}

// ListTools asks for tools/list.
func ListTools() Step { return Step{Op: "listTools"} }

// CallTool calls a tool; args is anything that marshals to a JSON object
// (nil for none).
func CallTool(name string, args any) Step {
	return Step{Op: "callTool", Name: name, Arguments: args}
}

// ListResources asks for resources/list.
func ListResources() Step { return Step{Op: "listResources"} }

// ReadResource asks for resources/read of uri.
func ReadResource(uri string) Step { return Step{Op: "readResource", URI: uri} }

// ListPrompts asks for prompts/list.
func ListPrompts() Step { return Step{Op: "listPrompts"} }

// GetPrompt asks for prompts/get with args (nil for none).
func GetPrompt(name string, args map[string]string) Step {
	s := Step{Op: "getPrompt", Name: name}
	if args != nil {
		s.Arguments = args
	}
	return s
}

// Ping sends a ping.
func Ping() Step { return Step{Op: "ping"} }

// Sleep waits d (at most MaxSleep) without sending anything.
func Sleep(d time.Duration) Step { return Step{Op: "sleep", Ms: d.Milliseconds()} }

// Parallel runs steps concurrently on the same session; its result holds
// theirs, in the same order, in StepResult.Parallel. At most MaxParallel.
func Parallel(steps ...Step) Step { return Step{Op: "parallel", Steps: steps} }

// Repeat returns n copies of s, for Parallel(Repeat(n, s)...) or a plan's
// steps.
func Repeat(n int, s Step) []Step {
	out := make([]Step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// Result is the node client's document: one SessionResult per session, in
// session order.
type Result struct {
	// TotalMs is the wall time of all sessions together, in milliseconds.
	TotalMs  float64         `json:"totalMs"`
	Sessions []SessionResult `json:"sessions"`
	// Stderr is the end of node's stderr (StderrTail bytes), with what
	// stdio servers wrote there.
	Stderr string `json:"-"`
}

// SessionResult is what one session did. Error is set when it could not
// connect (then there are no steps).
type SessionResult struct {
	Index      int                 `json:"index"`
	ConnectMs  float64             `json:"connectMs"`
	ServerInfo *mcp.Implementation `json:"serverInfo,omitempty"`
	Error      *StepError          `json:"error,omitempty"`
	// CloseError is set when ending the session failed (over HTTP, the
	// DELETE that ends it on the server).
	CloseError *StepError   `json:"closeError,omitempty"`
	Steps      []StepResult `json:"steps"`
}

// StepResult is one step's outcome: Result (the MCP result, as JSON) or
// Error, and how long it took. A tool that ran and reported failure
// (isError) is a Result, not an Error.
type StepResult struct {
	Op       string          `json:"op"`
	Ms       float64         `json:"ms"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    *StepError      `json:"error,omitempty"`
	Parallel []StepResult    `json:"parallel,omitempty"`
}

// StepError is how a request or a connection failed, as the SDK reported
// it.
type StepError struct {
	Message string `json:"message"`
	// Kind is "mcp" for a JSON-RPC error from the server (Code is its
	// code), "http" for a refused HTTP request (Code is the HTTP status),
	// "other" for anything else (a timeout, a refused connection).
	Kind string          `json:"kind"`
	Code int             `json:"code,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

func (e *StepError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("%s error %d: %s", e.Kind, e.Code, e.Message)
	}
	return fmt.Sprintf("%s error: %s", e.Kind, e.Message)
}

// RunClient runs plan with the TypeScript SDK's client (testdata/client.mjs
// under node), bounded by ctx (DefaultTimeout when ctx has no deadline),
// and returns its document. A session that could not connect is reported
// in its SessionResult, not by failing the test; RunClient fails the test
// when the npm packages are missing (see Dir), the plan is bad, or node
// ends without a document. When the test fails, node's stderr is logged.
func RunClient(t testing.TB, ctx context.Context, plan Plan) Result {
	t.Helper()
	dir := Dir(t)
	wire := struct {
		Plan
		TimeoutMs int64 `json:"timeoutMs,omitempty"`
	}{Plan: plan, TimeoutMs: plan.RequestTimeout.Milliseconds()}
	if plan.RequestTimeout > 0 && wire.TimeoutMs == 0 {
		wire.TimeoutMs = 1
	}
	in, err := json.Marshal(wire)
	if err != nil {
		t.Fatalf("mcptest: encoding the plan: %v", err)
	}
	script := filepath.Join(t.TempDir(), "client.mjs")
	if err := os.WriteFile(script, clientScript, 0o644); err != nil {
		t.Fatalf("mcptest: writing the client script: %v", err)
	}
	r := runNode(ctx, []string{EnvDir + "=" + dir}, in, script)
	t.Cleanup(func() {
		if t.Failed() && r.stderr != "" {
			t.Logf("mcptest: the node client's stderr:\n%s", r.stderr)
		}
	})
	// Exit 2: some session could not connect; the document says which.
	if r.err != nil && r.exitCode != 2 {
		t.Fatalf("%v\nstderr:\n%s", r.err, r.stderr)
	}
	var res Result
	if err := json.Unmarshal(r.stdout, &res); err != nil {
		t.Fatalf("mcptest: the node client's output is not its JSON document (%v): %.2000q\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	res.Stderr = r.stderr
	return res
}

// Session returns session i, failing the test when there is none or it
// could not connect.
func (r Result) Session(t testing.TB, i int) SessionResult {
	t.Helper()
	if i < 0 || i >= len(r.Sessions) {
		t.Fatalf("mcptest: no session %d (the result has %d)", i, len(r.Sessions))
	}
	s := r.Sessions[i]
	if s.Error != nil {
		t.Fatalf("mcptest: session %d could not connect: %v", i, s.Error)
	}
	return s
}

// Errors returns every failure in the result, connections and steps
// (nested ones included), each naming its session and step; nil when all
// went well. Tool results with isError are not failures here.
func (r Result) Errors() []error {
	var errs []error
	var walk func(session int, path string, steps []StepResult)
	walk = func(session int, path string, steps []StepResult) {
		for i, s := range steps {
			p := fmt.Sprintf("%s%d", path, i)
			if s.Error != nil {
				errs = append(errs, fmt.Errorf("session %d step %s (%s): %w", session, p, s.Op, s.Error))
			}
			walk(session, p+".", s.Parallel)
		}
	}
	for _, s := range r.Sessions {
		if s.Error != nil {
			errs = append(errs, fmt.Errorf("session %d connect: %w", s.Index, s.Error))
		}
		walk(s.Index, "", s.Steps)
	}
	return errs
}

// Decode unmarshals the step's result into v (an *mcp.ListToolsResult,
// *mcp.CallToolResult, …), failing the test when the step failed or the
// result does not decode.
func (s StepResult) Decode(t testing.TB, v any) {
	t.Helper()
	if s.Error != nil {
		t.Fatalf("mcptest: step %s failed: %v", s.Op, s.Error)
	}
	if err := json.Unmarshal(s.Result, v); err != nil {
		t.Fatalf("mcptest: step %s: decoding its result into %T: %v (%.500s)", s.Op, v, err, s.Result)
	}
}

// ToolResult decodes a callTool step's result, failing the test when the
// call failed (an error, or a result with isError).
func (s StepResult) ToolResult(t testing.TB) *mcp.CallToolResult {
	t.Helper()
	var res mcp.CallToolResult
	s.Decode(t, &res)
	if res.IsError {
		t.Fatalf("mcptest: tool call returned isError: %s", joinText(res.Content))
	}
	return &res
}

// ToolOutcome decodes a callTool step's result whether the tool succeeded
// or reported failure (isError), with its text content joined; it fails
// the test only when the request itself failed.
func (s StepResult) ToolOutcome(t testing.TB) (*mcp.CallToolResult, string) {
	t.Helper()
	var res mcp.CallToolResult
	s.Decode(t, &res)
	return &res, joinText(res.Content)
}

// Text returns the text content of a successful callTool step, joined
// with newlines.
func (s StepResult) Text(t testing.TB) string {
	t.Helper()
	return joinText(s.ToolResult(t).Content)
}

func joinText(content []mcp.Content) string {
	var parts []string
	for _, c := range content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// Inspector runs the MCP Inspector's CLI (mcp-inspector --cli args...)
// under node, bounded by ctx (DefaultTimeout when ctx has no deadline),
// and returns its stdout. The arguments are the CLI's: a server command
// (or a URL, with --transport http and --header "Authorization: Bearer
// …") followed by --method tools/list, or tools/call with --tool-name and
// --tool-arg k=v, and so on. Its catalog (MCP_CATALOG_PATH) is a file in
// the test's temporary directory, never the user's. err is not nil when
// it exited with a failure status; it holds the status and the end of its
// stderr. It fails the test only when the npm packages are missing.
func Inspector(t testing.TB, ctx context.Context, args ...string) (stdout string, err error) {
	t.Helper()
	bin := Bin(t, "mcp-inspector")
	env := []string{"MCP_CATALOG_PATH=" + filepath.Join(t.TempDir(), "mcp-catalog.json")}
	r := runNode(ctx, env, nil, append([]string{bin, "--cli"}, args...)...)
	if r.err != nil {
		return string(r.stdout), fmt.Errorf("%w (exit status %d); stderr:\n%s", r.err, r.exitCode, r.stderr)
	}
	return string(r.stdout), nil
}
