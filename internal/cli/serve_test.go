//go:build !windows

package cli

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// serveApp answers every GET with "hello from " and its replica id.
const serveApp = `import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("hello from " + os.environ["RAYGO_SERVE_REPLICA"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

const serveConfig = `applications:
  - name: hello
    route_prefix: /hello
    runtime_env: {working_dir: ./app}
    deployments:
      - name: api
        command: [python3, server.py]
        num_replicas: 2
        ray_actor_options: {num_cpus: 0.5}
        graceful_shutdown_wait_loop_s: 0.2
`

// TestServeCommands runs `raygo serve deploy|status|shutdown` (the binary)
// against a head with a Serve proxy, deploying a Python command app from a
// local working dir.
func TestServeCommands(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed for the command replicas")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app", "server.py"), []byte(serveApp), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "app.yaml")
	if err := os.WriteFile(cfg, []byte(serveConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newCLIEnv(t)
	r := e.raygo("start", "--head", "--port", "0", "--num-cpus", "2", "--dashboard-port", "0", "--serve-port", "0")
	if r.code != 0 {
		t.Fatalf("start --head: %v", r)
	}
	t.Cleanup(func() { e.raygo("stop", "--force") })

	r = e.raygo("serve", "deploy", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, "hello: http://") {
		t.Fatalf("serve deploy: %v", r)
	}
	url := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(r.stdout), "hello: "))
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(string(body), "hello from ") {
		t.Fatalf("GET %s: %d %q", url, res.StatusCode, body)
	}

	r = e.raygo("serve", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "status: RUNNING") || strings.Count(r.stdout, "state: READY") != 2 {
		t.Errorf("serve status: %v", r)
	}
	r = e.raygo("serve", "status", "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"route_prefix": "/hello"`) {
		t.Errorf("serve status --format json: %v", r)
	}
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "deploy"}, 2, "want one config file"},
		{[]string{"serve", "status", "--format", "xml"}, 2, "want yaml or json"},
		{[]string{"serve", "deploy", filepath.Join(dir, "app", "server.py")}, 2, "server.py"},
	} {
		r := e.raygo(bad.args...)
		if r.code != bad.code || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("raygo %s: want exit %d and %q; %v", strings.Join(bad.args, " "), bad.code, bad.want, r)
		}
	}
	r = e.raygo("serve", "shutdown")
	if r.code != 0 {
		t.Errorf("serve shutdown: %v", r)
	}
	r = e.raygo("serve", "shutdown")
	if r.code != 1 || !strings.Contains(r.stderr, "no Serve applications") {
		t.Errorf("serve shutdown again: %v", r)
	}
}
