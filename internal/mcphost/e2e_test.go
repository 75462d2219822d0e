//go:build !windows

package mcphost_test

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/mcphost"
	"github.com/raygo/raygo/internal/mcphost/hostspec"
	"github.com/raygo/raygo/internal/mcptest"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
)

// Hosting end to end: a real head and node daemon, the reference npm MCP
// servers as hosted replicas (RunReplica streams), and the npm SDK's
// client reaching them through the head's gateway with tokens.

func startHead(t testing.TB) (*node.Head, *apiclient.Client) {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 4 << 30}
	rc.SessionDir = t.TempDir()
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: "mcphost-test-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	c, err := apiclient.New(h.APIURL(), h.Token())
	if err != nil {
		t.Fatal(err)
	}
	return h, c
}

func waitServerReady(t testing.TB, ctx context.Context, c *apiclient.Client, name string, n int) hostspec.Status {
	t.Helper()
	for {
		st, err := c.MCPServer(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Ready >= n {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d replicas ready: %+v", name, st.Ready, n, st.ReplicaStates)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func TestHostedServersThroughTheGateway(t *testing.T) {
	mcptest.Dir(t)
	memory, everything := mcptest.Bin(t, "mcp-server-memory"), mcptest.Bin(t, "mcp-server-everything")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h, c := startHead(t)
	mem := filepath.Join(t.TempDir(), "memory.jsonl")
	for _, spec := range []hostspec.Spec{
		{Name: "memory", Command: []string{memory}, Replicas: 2, Env: map[string]string{"MEMORY_FILE_PATH": mem}},
		{Name: "everything", Command: []string{everything}, Replicas: 2, Access: "read"},
	} {
		if _, err := c.HostMCPServer(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	waitServerReady(t, ctx, c, "memory", 2)
	st := waitServerReady(t, ctx, c, "everything", 2)
	if st.ServerName == "" || st.ReplicaStates[0].LogFile == "" || st.ReplicaStates[0].Pid == 0 {
		t.Errorf("status lacks the server's name, a log file or a pid: %+v", st)
	}
	if _, err := c.HostMCPServer(ctx, hostspec.Spec{Name: "memory", Command: []string{memory}, Replicas: 1}); !isStatus(err, http.StatusConflict) {
		t.Errorf("hosting a taken name: %v, want a conflict", err)
	}

	gw := func(name string) string { return h.APIURL() + hostspec.GatewayPath(name) }
	// The npm client: tools of both servers, a tool call on each.
	res := mcptest.RunClient(t, ctx, mcptest.Plan{Transport: mcptest.HTTP(gw("memory"), bearer(h.Token())), Steps: []mcptest.Step{
		mcptest.ListTools(),
		mcptest.CallTool("create_entities", map[string]any{"entities": []map[string]any{{"name": "raygo", "entityType": "project", "observations": []string{"hosted on the cluster"}}}}),
		mcptest.CallTool("read_graph", map[string]any{}),
	}})
	s := res.Session(t, 0)
	for i, step := range s.Steps {
		if step.Error != nil {
			t.Fatalf("memory step %d (%s): %v", i, step.Op, step.Error)
		}
	}
	if got := s.Steps[2].Text(t); !strings.Contains(got, "hosted on the cluster") {
		t.Errorf("read_graph through the gateway: %s", got)
	}
	ro, err := h.API().Tokens().Create(ctx, "viewer", api.ScopeRead, false)
	if err != nil {
		t.Fatal(err)
	}
	res = mcptest.RunClient(t, ctx, mcptest.Plan{Transport: mcptest.HTTP(gw("everything"), bearer(ro)), Steps: []mcptest.Step{
		mcptest.ListTools(), mcptest.CallTool("echo", map[string]any{"message": "through the gateway"}),
	}})
	if got := res.Session(t, 0).Steps[1].Text(t); !strings.Contains(got, "through the gateway") {
		t.Errorf("echo with a read token on a read-access server: %q", got)
	}

	// Refusals: no token, a wrong one, a read token on a write-access
	// server, a foreign Origin, an unknown server.
	for _, tc := range []struct {
		name    string
		url     string
		headers map[string]string
		status  int
	}{
		{"no token", gw("memory"), nil, http.StatusUnauthorized},
		{"wrong token", gw("memory"), bearer("wrong"), http.StatusUnauthorized},
		{"read token, write server", gw("memory"), bearer(ro), http.StatusForbidden},
		{"foreign origin", gw("memory"), map[string]string{"Authorization": "Bearer " + h.Token(), "Origin": "https://evil.example"}, http.StatusForbidden},
		{"unknown server", gw("nope"), bearer(h.Token()), http.StatusNotFound},
	} {
		res := mcptest.RunClient(t, ctx, mcptest.Plan{Transport: mcptest.HTTP(tc.url, tc.headers), Steps: []mcptest.Step{mcptest.ListTools()}})
		e := res.Sessions[0].Error
		if e == nil || e.Kind != "http" || e.Code != tc.status {
			t.Errorf("%s: %+v, want HTTP %d", tc.name, e, tc.status)
		}
	}

	// A replica killed mid-session: the call under way fails with a clear
	// error, the session goes on on the other replica, and the replica is
	// replaced.
	done := make(chan mcptest.Result, 1)
	go func() {
		done <- mcptest.RunClient(t, ctx, mcptest.Plan{Transport: mcptest.HTTP(gw("everything"), bearer(h.Token())), Steps: []mcptest.Step{
			mcptest.CallTool("trigger-long-running-operation", map[string]any{"duration": 5, "steps": 5}),
			mcptest.CallTool("echo", map[string]any{"message": "after the kill"}),
		}})
	}()
	var victim hostspec.ReplicaStatus
	for victim.Pid == 0 {
		st, err := c.MCPServer(ctx, "everything")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range st.ReplicaStates {
			if r.InFlight > 0 {
				victim = r
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no call under way on any replica")
		}
		time.Sleep(20 * time.Millisecond)
	}
	killed := time.Now()
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedRes := <-done
	ks := killedRes.Session(t, 0)
	if e := ks.Steps[0].Error; e == nil || e.Code != mcphost.CodeReplicaGone || !strings.Contains(e.Message, victim.ID) {
		t.Errorf("the call on the killed replica: %+v, want error %d naming replica %s", e, mcphost.CodeReplicaGone, victim.ID)
	} else {
		t.Logf("the client was told: %s", e.Message)
	}
	if got := ks.Steps[1].Text(t); !strings.Contains(got, "after the kill") {
		t.Errorf("the session after the kill: %q", got)
	}
	for {
		st, err := c.MCPServer(ctx, "everything")
		if err != nil {
			t.Fatal(err)
		}
		if st.Ready == 2 && st.ReplicaStates[victim.Index].ID != victim.ID {
			t.Logf("replica %s killed; %s replaced it, ready %v after the kill", victim.ID, st.ReplicaStates[victim.Index].ID, time.Since(killed))
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("not replaced: %+v", st.ReplicaStates)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// 100 concurrent sessions on one gateway.
	res = mcptest.RunClient(t, ctx, mcptest.Plan{Transport: mcptest.HTTP(gw("everything"), bearer(h.Token())), Sessions: 100,
		Steps: []mcptest.Step{mcptest.ListTools(), mcptest.CallTool("get-sum", map[string]any{"a": 20, "b": 22})}})
	if errs := res.Errors(); len(errs) > 0 {
		t.Fatalf("100 sessions: %d errors, first: %v", len(errs), errs[0])
	}
	for i := range res.Sessions {
		if got := res.Session(t, i).Steps[1].Text(t); !strings.Contains(got, "42") {
			t.Fatalf("session %d: get-sum: %q", i, got)
		}
	}
	t.Logf("100 concurrent sessions in %.0f ms, no errors", res.TotalMs)

	// Stop: replicas go, the gateway answers 404.
	if err := c.StopMCPServer(ctx, "memory"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MCPServer(ctx, "memory"); !apiclient.IsNotFound(err) {
		t.Errorf("after stop: %v, want not found", err)
	}
}

func isStatus(err error, status int) bool {
	var e *apiclient.Error
	return errors.As(err, &e) && e.Status == status
}

// TestPythonServerSurvivesHeadRestart: a stdio MCP server written in
// Python (standard library only, testdata/shout_server.py) hosted on a
// head keeping its state in storage; the head stops (its replicas with
// it) and starts again on the same storage: the server is hosted again,
// its replicas started, and its gateway answers.
func TestPythonServerSurvivesHeadRestart(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	script, err := filepath.Abs("testdata/shout_server.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	store := filepath.Join(t.TempDir(), "state.db")
	start := func() (*node.Head, *apiclient.Client) {
		rc := raylet.DefaultConfig()
		rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 4 << 30}
		rc.SessionDir = t.TempDir()
		h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: "mcphost-restart-token-0123456789", Storage: store})
		if err != nil {
			t.Fatal(err)
		}
		c, err := apiclient.New(h.APIURL(), h.Token())
		if err != nil {
			t.Fatal(err)
		}
		return h, c
	}
	shout := func(h *node.Head) string {
		cl := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
		cs, err := cl.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: h.APIURL() + hostspec.GatewayPath("py"),
			HTTPClient: &http.Client{Transport: headerRT{"Bearer " + h.Token()}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		if got := cs.InitializeResult().ServerInfo.Name; got != "py-shout" {
			t.Errorf("server name through the gateway: %q", got)
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "shout", Arguments: map[string]any{"text": "hello"}})
		if err != nil || res.IsError || len(res.Content) != 1 {
			t.Fatalf("shout: %+v %v", res, err)
		}
		return res.Content[0].(*mcp.TextContent).Text
	}

	h, c := start()
	if _, err := c.HostMCPServer(ctx, hostspec.Spec{Name: "py", Command: []string{py, script}, Replicas: 1}); err != nil {
		h.Stop()
		t.Fatal(err)
	}
	first := waitServerReady(t, ctx, c, "py", 1).ReplicaStates[0]
	if got := shout(h); got != "HELLO from "+first.ID {
		t.Errorf("shout = %q", got)
	}
	h.Stop()
	if err := syscall.Kill(first.Pid, 0); err == nil {
		t.Errorf("replica pid %d outlived its head", first.Pid)
	}

	h, c = start()
	defer h.Stop()
	again := waitServerReady(t, ctx, c, "py", 1).ReplicaStates[0]
	if again.ID == first.ID {
		t.Errorf("the replica after the restart has the old id %s", again.ID)
	}
	if got := shout(h); got != "HELLO from "+again.ID {
		t.Errorf("shout after the restart = %q", got)
	}
}
