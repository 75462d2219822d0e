package raymcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/mcptest"
	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/ray/raymcp"
)

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves the actors below; never returns
	}
	code := m.Run()
	if clusterUp {
		if err := ray.Shutdown(); err != nil {
			fmt.Fprintln(os.Stderr, "ray.Shutdown:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	clusterOnce sync.Once
	clusterUp   bool
	clusterErr  error
)

// cluster starts the embedded cluster the tests share (once; TestMain
// shuts it down).
func cluster(t *testing.T) {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		clusterErr = ray.Init(ctx, ray.LogWorkers(false))
		clusterUp = clusterErr == nil
	})
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
}

// Memory is an actor that uses a hosted memory server through its own
// sessions: what the tests check runs in a worker process, with the
// worker's token.
type Memory struct{ server string }

func NewMemory(ctx context.Context, server string) (*Memory, error) {
	return &Memory{server: server}, nil
}

// Found is what a Memory call read back.
type Found struct {
	Entities     []string
	Observations []string
	Replica      string // the gateway session's id, to tell sessions apart
}

// Remember stores an entity with one observation, then searches for it,
// over one session.
func (m *Memory) Remember(ctx context.Context, entity, observation string) (Found, error) {
	cs, err := raymcp.Connect(ctx, m.server, nil)
	if err != nil {
		return Found{}, err
	}
	defer cs.Close()
	args := map[string]any{"entities": []map[string]any{{"name": entity, "entityType": "test", "observations": []string{observation}}}}
	if _, err := toolCall(ctx, cs, "create_entities", args); err != nil {
		return Found{}, err
	}
	f, err := toolCall(ctx, cs, "search_nodes", map[string]any{"query": entity})
	f.Replica = cs.ID()
	return f, err
}

// ReadGraph reads the whole graph over a new session.
func (m *Memory) ReadGraph(ctx context.Context) (Found, error) {
	cs, err := raymcp.Connect(ctx, m.server, nil)
	if err != nil {
		return Found{}, err
	}
	defer cs.Close()
	f, err := toolCall(ctx, cs, "read_graph", map[string]any{})
	f.Replica = cs.ID()
	return f, err
}

var (
	MemoryActor = ray.Actor1(NewMemory)
	Remember    = ray.Method2(MemoryActor, (*Memory).Remember)
	ReadGraph   = ray.Method0(MemoryActor, (*Memory).ReadGraph)
)

// toolCall calls a memory-server tool and decodes its graph answer.
func toolCall(ctx context.Context, cs *mcp.ClientSession, tool string, args any) (Found, error) {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return Found{}, fmt.Errorf("%s: %w", tool, err)
	}
	if res.IsError {
		return Found{}, fmt.Errorf("%s: tool error: %s", tool, text(res))
	}
	return decodeGraph(res)
}

func decodeGraph(res *mcp.CallToolResult) (Found, error) {
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return Found{}, err
	}
	var g struct {
		Entities []struct {
			Name         string   `json:"name"`
			Observations []string `json:"observations"`
		} `json:"entities"`
	}
	if err := json.Unmarshal(raw, &g); err != nil {
		return Found{}, fmt.Errorf("decode %s: %w", raw, err)
	}
	var f Found
	for _, e := range g.Entities {
		f.Entities = append(f.Entities, e.Name)
		f.Observations = append(f.Observations, e.Observations...)
	}
	return f, nil
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// hostMemory hosts mcp-server-memory under name with replicas sharing
// one memory file, waits for them, and stops the server at the end.
func hostMemory(t *testing.T, ctx context.Context, name string, replicas int) raymcp.Server {
	t.Helper()
	bin := mcptest.Bin(t, "mcp-server-memory") // skips (or fails, in CI) without the npm packages
	cluster(t)
	s, err := raymcp.Host(ctx, raymcp.HostOptions{Name: name, Command: []string{bin}, Replicas: replicas,
		Env: map[string]string{"MEMORY_FILE_PATH": filepath.Join(t.TempDir(), "memory.jsonl")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := raymcp.Stop(ctx, name); err != nil && !errors.Is(err, raymcp.ErrNotFound) {
			t.Errorf("stop %s: %v", name, err)
		}
	})
	if s.Name != name || s.Replicas != replicas || s.Access != "write" {
		t.Errorf("Host returned %+v", s)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	s, err = raymcp.WaitReady(waitCtx, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHostedMemoryFromActor hosts the reference memory server with two
// replicas, uses it from an actor (stores, searches and reads back over
// the gateway with the worker's token), lists it, and stops it.
func TestHostedMemoryFromActor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := hostMemory(t, ctx, "memory-actor", 2)
	if s.Ready != 2 || len(s.ReplicaStates) != 2 || s.ServerName != "memory-server" {
		t.Errorf("ready server: %+v", s)
	}

	a := MemoryActor.Remote(ctx, "memory-actor")
	got, err := Remember.Remote(ctx, a, "raygo", "raygo hosts MCP servers").Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Entities, []string{"raygo"}) || !slices.Equal(got.Observations, []string{"raygo hosts MCP servers"}) {
		t.Errorf("search_nodes after create_entities found %+v", got)
	}
	// New sessions spread over the replicas; both read the shared file.
	for range 3 {
		g, err := ReadGraph.Remote(ctx, a).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(g.Observations, "raygo hosts MCP servers") {
			t.Errorf("read_graph (session %s) lacks the observation: %+v", g.Replica, g)
		}
	}

	all, err := raymcp.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(all, func(s raymcp.Server) bool { return s.Name == "memory-actor" })
	if i < 0 {
		t.Fatalf("Servers lacks memory-actor: %+v", all)
	}
	if l := all[i]; l.Ready != 2 || !strings.HasSuffix(l.Gateway, "/mcp/hosted/memory-actor") || !strings.HasPrefix(l.Gateway, "http://") ||
		!strings.HasSuffix(l.Command[0], "mcp-server-memory") {
		t.Errorf("Servers lists %+v", l)
	}

	if err := raymcp.Stop(ctx, "memory-actor"); err != nil {
		t.Fatal(err)
	}
	all, err = raymcp.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(all, func(s raymcp.Server) bool { return s.Name == "memory-actor" }) {
		t.Errorf("Servers still lists memory-actor after Stop: %+v", all)
	}
	if _, err := raymcp.Get(ctx, "memory-actor"); !errors.Is(err, raymcp.ErrNotFound) {
		t.Errorf("Get after Stop: %v, want ErrNotFound", err)
	}
	if _, err := raymcp.Connect(ctx, "memory-actor", nil); !errors.Is(err, raymcp.ErrNotFound) {
		t.Errorf("Connect after Stop: %v, want ErrNotFound", err)
	}
	if err := raymcp.Stop(ctx, "memory-actor"); !errors.Is(err, raymcp.ErrNotFound) {
		t.Errorf("second Stop: %v, want ErrNotFound", err)
	}
}

// TestClientReconnects checks that a Client opens a new session, and
// repeats the call, when the gateway has forgotten its session.
func TestClientReconnects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := hostMemory(t, ctx, "memory-client", 1)

	c := raymcp.NewClient(nil)
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	args := map[string]any{"entities": []map[string]any{{"name": "n1", "entityType": "test", "observations": []string{"o1"}}}}
	if res, err := c.CallTool(ctx, "memory-client", "create_entities", args); err != nil || res.IsError {
		t.Fatalf("create_entities: %v %v", err, res)
	}
	cs, err := c.Session(ctx, "memory-client")
	if err != nil {
		t.Fatal(err)
	}
	old := cs.ID()

	// End the session on the gateway, as its idle timeout or a head
	// restart would.
	_, token, err := ray.ClusterAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, s.Gateway, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", old)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE the session: HTTP %d", resp.StatusCode)
	}

	res, err := c.CallTool(ctx, "memory-client", "read_graph", map[string]any{})
	if err != nil {
		t.Fatalf("read_graph after the gateway forgot the session: %v", err)
	}
	g, err := decodeGraph(res)
	if err != nil || !slices.Equal(g.Observations, []string{"o1"}) {
		t.Errorf("read_graph: %+v %v", g, err)
	}
	cs, err = c.Session(ctx, "memory-client")
	if err != nil {
		t.Fatal(err)
	}
	if cs.ID() == old {
		t.Errorf("the Client kept session %s the gateway forgot", old)
	}
	tools, err := c.Tools(ctx, "memory-client")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tools, func(t *mcp.Tool) bool { return t.Name == "search_nodes" }) {
		t.Errorf("tools/list lacks search_nodes: %d tools", len(tools))
	}
}

// TestConnectCluster calls raygo's own MCP server, directly and through
// a Client.
func TestConnectCluster(t *testing.T) {
	cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := raymcp.ConnectCluster(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "cluster_status"})
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		AliveNodes int `json:"alive_nodes"`
	}
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &st); err != nil || res.IsError || st.AliveNodes < 1 {
		t.Errorf("cluster_status: %s (%v): %s", raw, err, text(res))
	}

	c := raymcp.NewClient(nil)
	defer c.Close()
	tools, err := c.Tools(ctx, raymcp.ClusterServer)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tools, func(t *mcp.Tool) bool { return t.Name == "cluster_status" }) {
		t.Errorf("the cluster's tools lack cluster_status: %d tools", len(tools))
	}
}

// TestWaitReadyNamesReplicas hosts a command that does not exist and
// checks that WaitReady's error says what the replicas are doing.
func TestWaitReadyNamesReplicas(t *testing.T) {
	cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := raymcp.Host(ctx, raymcp.HostOptions{Name: "broken", Command: []string{"/nonexistent/mcp-server"}}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := raymcp.Stop(ctx, "broken"); err != nil {
			t.Error(err)
		}
	}()
	waitCtx, cancelWait := context.WithTimeout(ctx, 3*time.Second)
	defer cancelWait()
	_, err := raymcp.WaitReady(waitCtx, "broken")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "0 of 1 replicas ready: replica 0 ") {
		t.Fatalf("WaitReady: %v", err)
	}
	t.Log(err)
	if _, err := raymcp.WaitReady(ctx, "no-such-server"); !errors.Is(err, raymcp.ErrNotFound) {
		t.Errorf("WaitReady(no-such-server): %v, want ErrNotFound", err)
	}
	if _, err := raymcp.Host(ctx, raymcp.HostOptions{Name: "Bad_Name", Command: []string{"x"}}); err == nil || !strings.Contains(err.Error(), "Bad_Name") {
		t.Errorf("Host(Bad_Name): %v", err)
	}
	if _, err := raymcp.Connect(ctx, "no-such-server", nil); !errors.Is(err, raymcp.ErrNotFound) {
		t.Errorf("Connect(no-such-server): %v, want ErrNotFound", err)
	}
}
