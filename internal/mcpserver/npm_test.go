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

// TestNPMClientOperates: the TypeScript SDK's client, over HTTP with a
// write token on a head that allows mutations, calls every read tool,
// submits a job and follows its log with job_logs to the job's end; a
// read token's submit_job is refused with a tool error naming its scope.
func TestNPMClientOperates(t *testing.T) {
	mcptest.Dir(t)
	c := startCluster(t, true)
	ctx := ctxFor(t, 2*time.Minute)
	url := c.url + mcpserver.Path
	as := func(tok string) mcptest.Transport {
		return mcptest.HTTP(url, map[string]string{"Authorization": "Bearer " + tok})
	}
	var steps []mcptest.Step
	for _, name := range readTools {
		args := map[string]any{}
		switch {
		case strings.HasPrefix(name, "get_"):
			args["id"] = "0123456789ab" // none such: a tool error an agent can act on
		case name == "job_logs":
			args["submission_id"] = "raysubmit_none"
			args["tail_lines"] = 10
		}
		steps = append(steps, mcptest.CallTool(name, args))
	}
	steps = append(steps, mcptest.CallTool("submit_job", map[string]any{"entrypoint": "echo hello-from-npm; sleep 0.3; echo done-from-npm"}))
	s := mcptest.RunClient(t, ctx, mcptest.Plan{Transport: as(c.write), Steps: steps}).Session(t, 0)
	for i, name := range readTools {
		st := s.Steps[i]
		if st.Error != nil {
			t.Errorf("%s: %v", name, st.Error)
			continue
		}
		res, text := st.ToolOutcome(t)
		if wantErr := strings.HasPrefix(name, "get_") || name == "job_logs"; res.IsError != wantErr {
			t.Errorf("%s: isError %t, want %t: %s", name, res.IsError, wantErr, text)
		}
	}
	var sub struct {
		SubmissionID string `json:"submission_id"`
	}
	if err := json.Unmarshal([]byte(s.Steps[len(readTools)].Text(t)), &sub); err != nil || sub.SubmissionID == "" {
		t.Fatalf("submit_job: %v: %s", err, s.Steps[len(readTools)].Text(t))
	}
	// Follow the log, a page at a time, to the job's end.
	var text strings.Builder
	offset := int64(0)
	for range 60 {
		s := mcptest.RunClient(t, ctx, mcptest.Plan{Transport: as(c.read), Steps: []mcptest.Step{
			mcptest.CallTool("job_logs", map[string]any{"submission_id": sub.SubmissionID, "offset": offset, "wait_seconds": 10}),
		}}).Session(t, 0)
		var page mcpserver.JobLogsOutput
		if err := json.Unmarshal([]byte(s.Steps[0].Text(t)), &page); err != nil {
			t.Fatalf("job_logs: %v: %s", err, s.Steps[0].Text(t))
		}
		text.WriteString(page.Text)
		offset = page.NextOffset
		if page.Ended {
			if page.Status != "SUCCEEDED" {
				t.Fatalf("job ended %s (%s)", page.Status, page.Message)
			}
			break
		}
	}
	if got := text.String(); !strings.Contains(got, "hello-from-npm\n") || !strings.Contains(got, "done-from-npm\n") {
		t.Fatalf("the job's log as followed: %q", got)
	}
	s = mcptest.RunClient(t, ctx, mcptest.Plan{Transport: as(c.read), Steps: []mcptest.Step{
		mcptest.CallTool("submit_job", map[string]any{"entrypoint": "echo no"}),
	}}).Session(t, 0)
	if res, text := s.Steps[0].ToolOutcome(t); !res.IsError || !strings.Contains(text, "scope read") {
		t.Errorf("submit_job with a read token: %s", text)
	}
}
