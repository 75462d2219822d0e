//go:build !windows

package cli

import (
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/mcptest"
)

// TestMCPHostCommands runs `raygo mcp host|list|logs|stop` (the binary)
// against a head, hosting the reference npm server-everything.
func TestMCPHostCommands(t *testing.T) {
	t.Parallel()
	mcptest.Dir(t)
	everything := mcptest.Bin(t, "mcp-server-everything")
	e := newCLIEnv(t)
	r := e.raygo("start", "--head", "--port", "0", "--num-cpus", "2", "--dashboard-port", "0")
	if r.code != 0 {
		t.Fatalf("start --head: %v", r)
	}
	t.Cleanup(func() { e.raygo("stop", "--force") })

	r = e.raygo("mcp", "host", "everything", "--replicas", "2", "--env", "GREETING=hi", "--", everything)
	if r.code != 0 || !strings.Contains(r.stdout, "Gateway: http://") || !strings.Contains(r.stdout, "/mcp/hosted/everything") {
		t.Fatalf("mcp host: %v", r)
	}
	r = e.raygo("mcp", "list", "--detail")
	if r.code != 0 || !strings.Contains(r.stdout, "everything") || !strings.Contains(r.stdout, "2/2") || strings.Count(r.stdout[strings.Index(r.stdout, "REPLICA")+1:], "READY") != 2 || !strings.Contains(r.stdout, "http://") {
		t.Errorf("mcp list --detail: %v", r)
	}
	r = e.raygo("mcp", "list", "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"GREETING": "hi"`) {
		t.Errorf("mcp list --format json: %v", r)
	}
	r = e.raygo("mcp", "logs", "everything", "--replica", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "Starting default (STDIO) server") {
		t.Errorf("mcp logs --replica 1: %v", r)
	}
	r = e.raygo("mcp", "logs", "everything")
	if r.code != 0 || strings.Count(r.stdout, "== replica") != 2 {
		t.Errorf("mcp logs: %v", r)
	}
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"mcp", "host", "Bad_Name", "--", "x"}, 2, "not allowed"},
		{[]string{"mcp", "host", "x"}, 2, "want NAME, then --"},
		{[]string{"mcp", "host", "x", "--replicas", "0", "--", "y"}, 2, "replicas 0"},
		{[]string{"mcp", "host", "everything", "--", everything}, 1, "stop it first"},
		{[]string{"mcp", "logs", "everything", "--replica", "7"}, 2, "no replica"},
		{[]string{"mcp", "stop", "nope"}, 1, "no such hosted MCP server"},
	} {
		r := e.raygo(bad.args...)
		if r.code != bad.code || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("raygo %s: want exit %d and %q; %v", strings.Join(bad.args, " "), bad.code, bad.want, r)
		}
	}
	r = e.raygo("mcp", "stop", "everything")
	if r.code != 0 {
		t.Errorf("mcp stop: %v", r)
	}
	r = e.raygo("mcp", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "No hosted MCP servers") {
		t.Errorf("mcp list after stop: %v", r)
	}
}
