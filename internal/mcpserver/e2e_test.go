//go:build !windows

package mcpserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/mcpserver"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/ray"
)

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	code := m.Run()
	cleanupBin()
	os.Exit(code)
}

const clusterToken = "mcpserver-test-token-0123456789"

// cluster is a head started by a test, with a read and a write token.
type cluster struct {
	head          *node.Head
	read, write   string // secrets of the tokens "agent-r" and "agent-w"
	url           string
	adminAPI      *apiclient.Client
	mutateAllowed bool
}

func startCluster(t *testing.T, allowMutations bool) *cluster {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	t.Setenv(resources.FakeGPUsEnv, "0")
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 4 << 30}
	rc.SessionDir = t.TempDir()
	rc.ObjectStoreBytes = 64 << 20
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: clusterToken, API: node.APIConfig{MCPAllowMutations: allowMutations}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	ctx := ctxFor(t, 10*time.Second)
	c := &cluster{head: h, url: h.APIURL(), mutateAllowed: allowMutations}
	if c.read, err = h.API().Tokens().Create(ctx, "agent-r", api.ScopeRead, false); err != nil {
		t.Fatal(err)
	}
	if c.write, err = h.API().Tokens().Create(ctx, "agent-w", api.ScopeWrite, false); err != nil {
		t.Fatal(err)
	}
	if c.adminAPI, err = apiclient.New(c.url, clusterToken); err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// inMemory connects a client to an MCP server acting with token, over
// the SDK's in-memory transport (as `raygo mcp` serves stdio).
func (c *cluster) inMemory(t *testing.T, token string, allowMutations bool) *mcp.ClientSession {
	t.Helper()
	api, err := apiclient.New(c.url, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.CloseIdle)
	srv, err := mcpserver.New(mcpserver.Config{Client: mcpserver.FixedClient(api), AllowMutations: allowMutations, Transport: "stdio"})
	if err != nil {
		t.Fatal(err)
	}
	st, ct := mcp.NewInMemoryTransports()
	ctx := ctxFor(t, 2*time.Minute)
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		_ = ss.Wait()
	})
	return cs
}

// headerTransport adds headers to every request.
type headerTransport struct {
	h    http.Header
	base http.RoundTripper
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.h {
		r.Header[k] = v
	}
	return t.base.RoundTrip(r)
}

// overHTTP connects a client to the head's /mcp with token.
func (c *cluster) overHTTP(t *testing.T, token string) *mcp.ClientSession {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: headerTransport{h: http.Header{"Authorization": {"Bearer " + token}}, base: tr}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).
		Connect(ctxFor(t, time.Minute), &mcp.StreamableClientTransport{Endpoint: c.url + mcpserver.Path, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// call calls a tool and decodes its structured output into out (nil:
// not decoded); it returns the result.
func call(t *testing.T, cs *mcp.ClientSession, name string, args any, out any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(ctxFor(t, time.Minute), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	if out != nil && !res.IsError {
		raw, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: output %s: %v", name, raw, err)
		}
	}
	return res
}

// mustCall calls a tool that must succeed.
func mustCall(t *testing.T, cs *mcp.ClientSession, name string, args any, out any) {
	t.Helper()
	if res := call(t, cs, name, args, out); res.IsError {
		t.Fatalf("%s(%v): tool error: %s", name, args, text(res))
	}
}

// mustFail calls a tool that must fail with a message containing each
// of want.
func mustFail(t *testing.T, cs *mcp.ClientSession, name string, args any, want ...string) string {
	t.Helper()
	res := call(t, cs, name, args, nil)
	msg := text(res)
	if !res.IsError {
		t.Fatalf("%s(%v) succeeded: %s; want a tool error", name, args, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("%s(%v): error %q does not say %q", name, args, msg, w)
		}
	}
	return msg
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(ctxFor(t, time.Minute), nil) {
		if err != nil {
			t.Fatal(err)
		}
		if tool.InputSchema == nil || tool.OutputSchema == nil || tool.Description == "" {
			t.Errorf("tool %s lacks an input schema, an output schema or a description", tool.Name)
		}
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

var readTools = []string{"cluster_status", "get_actor", "get_job", "get_node", "get_task", "job_logs", "list_actors", "list_jobs",
	"list_nodes", "list_objects", "list_placement_groups", "list_tasks", "memory_summary", "metrics_summary"}

var writeTools = []string{"delete_job", "kill_actor", "stop_job", "submit_job"}

type listOut struct {
	Rows        []map[string]any `json:"rows"`
	NumFiltered int              `json:"num_filtered"`
	NextCursor  string           `json:"next_cursor"`
}

type logsOut struct {
	Text       string `json:"text"`
	NextOffset int64  `json:"next_offset"`
	Ended      bool   `json:"ended"`
	More       bool   `json:"more"`
	Status     string `json:"status"`
}

// TestToolsInMemory drives every read tool, a job's submission and the
// paging of its log, over the in-memory transport with a write token.
func TestToolsInMemory(t *testing.T) {
	c := startCluster(t, true)
	cs := c.inMemory(t, c.write, true)

	if got, want := toolNames(t, cs), slices.Sorted(slices.Values(append(slices.Clone(readTools), writeTools...))); !slices.Equal(got, want) {
		t.Fatalf("tools %v, want %v", got, want)
	}

	var st apiclient.ClusterStatus
	mustCall(t, cs, "cluster_status", map[string]any{}, &st)
	if st.AliveNodes != 1 || st.ResourcesTotal["CPU"] != 2 || len(st.Nodes) != 1 || !st.Nodes[0].IsHeadNode {
		t.Fatalf("cluster_status = %+v", st)
	}
	var nodes listOut
	mustCall(t, cs, "list_nodes", map[string]any{"filters": []string{"state=ALIVE"}}, &nodes)
	if len(nodes.Rows) != 1 {
		t.Fatalf("list_nodes = %+v", nodes)
	}
	nodeID := nodes.Rows[0]["node_id"].(string)
	var one struct {
		Row map[string]any `json:"row"`
	}
	mustCall(t, cs, "get_node", map[string]any{"id": nodeID[len(nodeID)-8:]}, &one)
	if one.Row["node_id"] != nodeID || one.Row["resources_available"] == nil {
		t.Fatalf("get_node = %v", one.Row)
	}
	for _, k := range []string{"list_actors", "list_tasks", "list_objects", "list_jobs", "list_placement_groups"} {
		var out listOut
		mustCall(t, cs, k, map[string]any{"limit": 5, "detail": true}, &out)
		if out.Rows == nil {
			t.Fatalf("%s: rows is null", k)
		}
	}
	mustCall(t, cs, "memory_summary", map[string]any{}, nil)
	var mets mcpserver.MetricsOutput
	mustCall(t, cs, "metrics_summary", map[string]any{}, &mets)
	if !slices.ContainsFunc(mets.Metrics, func(m mcpserver.MetricValue) bool { return m.Name == "raygo_cluster_active_nodes" && m.Value == 1 }) {
		t.Fatalf("metrics_summary has no raygo_cluster_active_nodes = 1: %+v", mets.Metrics)
	}

	// Errors an agent can act on.
	mustFail(t, cs, "list_nodes", map[string]any{"filters": []string{"colour=red"}}, `"colour" is no column`, "node_id")
	mustFail(t, cs, "list_nodes", map[string]any{"filters": []string{"state"}}, "key=value")
	mustFail(t, cs, "list_nodes", map[string]any{"limit": 5000}, "1 to 1000")
	mustFail(t, cs, "list_nodes", map[string]any{"cursor": "garbage"}, "not a cursor")
	mustFail(t, cs, "get_actor", map[string]any{"id": "0123456789ab"}, "list_actors")
	mustFail(t, cs, "get_task", map[string]any{"id": "0123456789ab"}, "list_tasks")
	mustFail(t, cs, "get_job", map[string]any{"id": "no-such-job"}, "list_jobs")
	mustFail(t, cs, "job_logs", map[string]any{"submission_id": "no-such-job"}, "list_jobs")

	// A job with a working dir and env, followed to its end by paging.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("from the working dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var sub mcpserver.SubmitJobOutput
	mustCall(t, cs, "submit_job", map[string]any{"entrypoint": "echo hello; cat data.txt; echo $GREETING; sleep 0.2; echo done",
		"working_dir": dir, "env": map[string]string{"GREETING": "hi there"}, "metadata": map[string]string{"by": "test"},
		"resources": map[string]any{"num_cpus": 0.5}}, &sub)
	if sub.SubmissionID == "" || !strings.Contains(sub.Next, "job_logs") {
		t.Fatalf("submit_job = %+v", sub)
	}
	mustFail(t, cs, "submit_job", map[string]any{"entrypoint": "true", "working_dir": "relative/dir"}, "absolute path")
	var all strings.Builder
	var off int64
	pages := 0
	deadline := time.Now().Add(90 * time.Second)
	for {
		var l logsOut
		mustCall(t, cs, "job_logs", map[string]any{"submission_id": sub.SubmissionID, "offset": off, "wait_seconds": 5, "max_bytes": 8}, &l)
		all.WriteString(l.Text)
		off = l.NextOffset
		pages++
		if l.Ended {
			if l.Status != "SUCCEEDED" {
				t.Fatalf("job ended %s; log:\n%s", l.Status, all.String())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job has not ended; log so far:\n%s", all.String())
		}
	}
	want := "hello\nfrom the working dir\nhi there\ndone\n"
	if all.String() != want || pages < 5 {
		t.Fatalf("paged log (%d pages) = %q, want %q in pages of 8 bytes", pages, all.String(), want)
	}
	var tail logsOut
	mustCall(t, cs, "job_logs", map[string]any{"submission_id": sub.SubmissionID, "tail_lines": 2}, &tail)
	if tail.Text != "hi there\ndone\n" || tail.NextOffset != int64(len(want)) || !tail.Ended {
		t.Fatalf("tail = %+v", tail)
	}
	mustFail(t, cs, "job_logs", map[string]any{"submission_id": sub.SubmissionID, "offset": 1000}, "past the end")
	mustCall(t, cs, "get_job", map[string]any{"id": sub.SubmissionID}, &one)
	if one.Row["status"] != "SUCCEEDED" || one.Row["driver_exit_code"] != float64(0) {
		t.Fatalf("get_job = %v", one.Row)
	}
	var jobs listOut
	mustCall(t, cs, "list_jobs", map[string]any{"filters": []string{"submission_id=" + sub.SubmissionID}}, &jobs)
	if jobs.NumFiltered != 1 {
		t.Fatalf("list_jobs by submission id = %+v", jobs)
	}

	// Destructive tools need confirm.
	mustFail(t, cs, "delete_job", map[string]any{"submission_id": sub.SubmissionID}, `"confirm": true`)
	mustFail(t, cs, "stop_job", map[string]any{"submission_id": sub.SubmissionID}, `"confirm": true`)
	mustFail(t, cs, "kill_actor", map[string]any{"actor_id": "0123456789ab"}, `"confirm": true`)
	mustFail(t, cs, "kill_actor", map[string]any{"actor_id": "0123456789ab", "confirm": true}, "no actor", "list actors")
	var del mcpserver.DeleteJobOutput
	mustCall(t, cs, "delete_job", map[string]any{"submission_id": sub.SubmissionID, "confirm": true}, &del)
	if !del.Deleted {
		t.Fatalf("delete_job = %+v", del)
	}

	// Every change is in the audit log under the caller's token.
	var saw []string
	for _, e := range c.head.API().Audit().Recent() {
		if e.Who == "agent-w" {
			saw = append(saw, e.Action)
		}
	}
	for _, a := range []string{"package.upload", "job.submit", "job.delete", "actor.kill"} {
		if !slices.Contains(saw, a) {
			t.Errorf("the audit log has no %s by agent-w (it has %v)", a, saw)
		}
	}
}

// TestResourcesAndPrompts reads the resources and gets the prompts.
func TestResourcesAndPrompts(t *testing.T) {
	c := startCluster(t, false)
	cs := c.inMemory(t, c.read, false)
	ctx := ctxFor(t, 2*time.Minute)
	id, err := c.adminAPI.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "echo boom >&2; echo line2; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		d, err := c.adminAPI.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Terminal() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res, err := cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res.Resources, func(r *mcp.Resource) bool { return r.URI == "raygo://jobs/"+id }) {
		t.Fatalf("resources/list does not name the job: %v", res.Resources)
	}
	tpl, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(tpl.ResourceTemplates) != 4 {
		t.Fatalf("templates = %v, %v", tpl, err)
	}
	read := func(uri string) string {
		t.Helper()
		r, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		return r.Contents[0].Text
	}
	if got := read("raygo://jobs/" + id + "/logs"); got != "boom\nline2\n" {
		t.Fatalf("log resource = %q", got)
	}
	if got := read("raygo://jobs/" + id); !strings.Contains(got, `"FAILED"`) {
		t.Fatalf("job resource = %s", got)
	}
	if got := read("raygo://jobs"); !strings.Contains(got, id) {
		t.Fatalf("jobs resource = %s", got)
	}
	st, _ := c.adminAPI.ClusterStatus(ctx)
	if got := read("raygo://nodes/" + st.Nodes[0].NodeID); !strings.Contains(got, "resources_available") {
		t.Fatalf("node resource = %s", got)
	}
	if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "raygo://actors/0123456789ab"}); err == nil || !strings.Contains(err.Error(), "list_actors") {
		t.Fatalf("a missing actor's resource: %v", err)
	}

	p, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "diagnose_failing_job", Arguments: map[string]string{"job_id": id}})
	if err != nil {
		t.Fatal(err)
	}
	msg := p.Messages[0].Content.(*mcp.TextContent).Text
	for _, w := range []string{id, "FAILED", "boom", "## Cluster"} {
		if !strings.Contains(msg, w) {
			t.Fatalf("diagnose_failing_job's prompt lacks %q:\n%s", w, msg)
		}
	}
	if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "why_task_pending", Arguments: map[string]string{"task_id": "0123456789ab"}}); err == nil || !strings.Contains(err.Error(), "list_tasks") {
		t.Fatalf("why_task_pending of a missing task: %v", err)
	}
	// A read token on a server without mutations: no mutating tools.
	if got := toolNames(t, cs); !slices.Equal(got, readTools) {
		t.Fatalf("tools without --allow-mutations: %v", got)
	}
}

// TestHTTPEndpoint drives /mcp over real HTTP: tokens, scopes, origins.
func TestHTTPEndpoint(t *testing.T) {
	c := startCluster(t, true)

	w := c.overHTTP(t, c.write)
	if got := toolNames(t, w); len(got) != len(readTools)+len(writeTools) {
		t.Fatalf("tools over HTTP: %v", got)
	}
	var st apiclient.ClusterStatus
	mustCall(t, w, "cluster_status", map[string]any{}, &st)
	if st.AliveNodes != 1 {
		t.Fatalf("cluster_status over HTTP = %+v", st)
	}
	var sub mcpserver.SubmitJobOutput
	mustCall(t, w, "submit_job", map[string]any{"entrypoint": "echo hello; sleep 0.2; echo done"}, &sub)
	var l logsOut
	var log strings.Builder
	deadline := time.Now().Add(90 * time.Second)
	for !l.Ended && time.Now().Before(deadline) {
		mustCall(t, w, "job_logs", map[string]any{"submission_id": sub.SubmissionID, "offset": l.NextOffset, "wait_seconds": 5}, &l)
		log.WriteString(l.Text)
	}
	if log.String() != "hello\ndone\n" {
		t.Fatalf("log over HTTP = %q (ended %t)", log.String(), l.Ended)
	}

	// A read token reads, and its mutations are refused by the API and
	// audited under its name.
	r := c.overHTTP(t, c.read)
	mustCall(t, r, "list_jobs", map[string]any{}, nil)
	mustFail(t, r, "submit_job", map[string]any{"entrypoint": "echo no"}, `token "agent-r" has scope read`, "--scope write", "Authorization")
	mustFail(t, r, "stop_job", map[string]any{"submission_id": sub.SubmissionID, "confirm": true}, "agent-r", "write")
	denied := false
	submitted := false
	for _, e := range c.head.API().Audit().Recent() {
		denied = denied || (e.Who == "agent-r" && e.Action == "denied")
		submitted = submitted || (e.Who == "agent-w" && e.Action == "job.submit" && e.Target == sub.SubmissionID)
	}
	if !denied || !submitted {
		t.Fatalf("audit: agent-r's refusal recorded %t, agent-w's submission %t; want both", denied, submitted)
	}

	// Raw HTTP: what the guard and the endpoint refuse.
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	post := func(hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, c.url+mcpserver.Path, strings.NewReader(initBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name string
		hdr  map[string]string
		code int
		want string
	}{
		{"no token", nil, 401, "Authorization: Bearer"},
		{"wrong token", map[string]string{"Authorization": "Bearer nope"}, 401, "missing or wrong token"},
		{"bad origin", map[string]string{"Authorization": "Bearer " + c.read, "Origin": "https://evil.example"}, 403, "may not call this server"},
		{"own origin", map[string]string{"Authorization": "Bearer " + c.read, "Origin": c.url}, 200, "serverInfo"},
		{"read token", map[string]string{"Authorization": "Bearer " + c.read}, 200, "serverInfo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(tt.hdr)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Fatalf("HTTP %d %s; want %d with %q", code, body, tt.code, tt.want)
			}
		})
	}
	// A dashboard session cookie (with its CSRF token) is not enough for
	// /mcp.
	resp, err := http.Post(c.url+"/api/login", "application/json", strings.NewReader(`{"token":"`+c.read+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login api.LoginReply
	err = json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == api.SessionCookie {
			cookie = ck
		}
	}
	if cookie == nil {
		t.Fatal("login set no session cookie")
	}
	code, body := post(map[string]string{"Cookie": cookie.Name + "=" + cookie.Value, api.CSRFHeader: login.CSRF})
	if code != 401 || !strings.Contains(body, "cookie is not accepted") {
		t.Fatalf("cookie only: HTTP %d %s; want 401 saying cookies are not accepted", code, body)
	}
}

// TestMutationsNeedTheFlag: a head without --mcp-allow-mutations offers
// no mutating tool, even to the cluster token.
func TestMutationsNeedTheFlag(t *testing.T) {
	c := startCluster(t, false)
	cs := c.overHTTP(t, clusterToken)
	if got := toolNames(t, cs); !slices.Equal(got, readTools) {
		t.Fatalf("tools = %v, want only %v", got, readTools)
	}
	res, err := cs.CallTool(ctxFor(t, time.Minute), &mcp.CallToolParams{Name: "submit_job", Arguments: map[string]any{"entrypoint": "true"}})
	if err == nil && !res.IsError {
		t.Fatal("submit_job ran on a server without mutations")
	}
}
