//go:build !windows

package mcpserver_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/mcpserver"
	"github.com/raygo/raygo/internal/mcptest"
)

var (
	buildOnce sync.Once
	raygoBin  string
	buildErr  error
)

// raygo builds the raygo binary once per test binary.
func raygo(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "raygo-mcpserver-test-")
		if err != nil {
			buildErr = err
			return
		}
		raygoBin = filepath.Join(dir, "raygo")
		out, err := exec.Command("go", "build", "-o", raygoBin, "github.com/raygo/raygo/cmd/raygo").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build raygo: %v", buildErr)
	}
	return raygoBin
}

// cleanupBin removes the binary raygo built (TestMain calls it).
func cleanupBin() {
	if raygoBin != "" {
		_ = os.RemoveAll(filepath.Dir(raygoBin))
	}
}

// TestNPMClient drives `raygo mcp` over stdio and the head's /mcp over
// HTTP with the official TypeScript SDK's client.
func TestNPMClient(t *testing.T) {
	mcptest.Dir(t) // skips (or fails, in CI) without the npm packages
	bin := raygo(t)
	c := startCluster(t, false)
	ctx := ctxFor(t, 2*time.Minute)
	steps := []mcptest.Step{mcptest.ListTools(), mcptest.CallTool("cluster_status", map[string]any{}),
		mcptest.CallTool("list_nodes", map[string]any{"limit": 1}), mcptest.CallTool("get_actor", map[string]any{"id": "0123456789ab"})}
	for _, tr := range []struct {
		name string
		t    mcptest.Transport
	}{
		{"stdio", mcptest.Transport{Stdio: &mcptest.StdioTransport{Command: bin, Args: []string{"mcp", "--address", c.url, "--token", c.read}}}},
		{"http", mcptest.HTTP(c.url+mcpserver.Path, map[string]string{"Authorization": "Bearer " + c.read})},
	} {
		t.Run(tr.name, func(t *testing.T) {
			res := mcptest.RunClient(t, ctx, mcptest.Plan{Transport: tr.t, Steps: steps})
			s := res.Session(t, 0)
			if s.ServerInfo == nil || s.ServerInfo.Name != "raygo" {
				t.Fatalf("server info %+v", s.ServerInfo)
			}
			var tools mcp.ListToolsResult
			s.Steps[0].Decode(t, &tools)
			if len(tools.Tools) != len(readTools) {
				t.Fatalf("%d tools, want the %d read tools", len(tools.Tools), len(readTools))
			}
			for _, tool := range tools.Tools {
				if tool.OutputSchema == nil {
					t.Errorf("tool %s has no output schema", tool.Name)
				}
			}
			if got := s.Steps[1].Text(t); !strings.Contains(got, `"alive_nodes":1`) {
				t.Fatalf("cluster_status = %s", got)
			}
			if got := s.Steps[2].Text(t); !strings.Contains(got, `"node_id"`) {
				t.Fatalf("list_nodes = %s", got)
			}
			var miss mcp.CallToolResult
			s.Steps[3].Decode(t, &miss)
			if !miss.IsError {
				t.Fatalf("get_actor of a missing actor succeeded")
			}
		})
	}
}

// TestInspectorCLI lists the tools of the head's /mcp with the MCP
// Inspector's CLI, and is refused without a token, with a wrong one and
// from a foreign origin.
func TestInspectorCLI(t *testing.T) {
	mcptest.Dir(t)
	c := startCluster(t, false)
	ctx := ctxFor(t, 2*time.Minute)
	url := c.url + mcpserver.Path
	out, err := mcptest.Inspector(t, ctx, url, "--transport", "http", "--header", "Authorization: Bearer "+c.read, "--method", "tools/list")
	if err != nil {
		t.Fatal(err)
	}
	var tools mcp.ListToolsResult
	if err := json.Unmarshal([]byte(out), &tools); err != nil || len(tools.Tools) != len(readTools) {
		t.Fatalf("tools/list: %v\n%s", err, out)
	}
	out, err = mcptest.Inspector(t, ctx, url, "--transport", "http", "--header", "Authorization: Bearer "+c.read,
		"--method", "tools/call", "--tool-name", "list_jobs")
	if err != nil || !strings.Contains(out, `"rows"`) {
		t.Fatalf("tools/call list_jobs: %v\n%s", err, out)
	}
	for name, hdr := range map[string][]string{
		"no token":    nil,
		"wrong token": {"--header", "Authorization: Bearer wrong"},
		"bad origin":  {"--header", "Authorization: Bearer " + c.read, "--header", "Origin: https://evil.example"},
	} {
		args := append(append([]string{url, "--transport", "http"}, hdr...), "--method", "tools/list")
		if out, err := mcptest.Inspector(t, ctx, args...); err == nil {
			t.Errorf("%s: the inspector listed tools: %s", name, out)
		}
	}
}
