//go:build !windows

package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/serve/controller"
)

// serveReplica is a Python command replica answering every GET with its
// replica id (as in internal/serve/controller's tests).
const serveReplica = `import http.server, os
rid = os.environ["RAYGO_SERVE_REPLICA"]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = rid.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((os.environ.get("RAYGO_SERVE_HOST", "127.0.0.1"), int(os.environ["PORT"])), H).serve_forever()
`

const serveConfig = `applications:
  - name: echo
    route_prefix: /echo
    runtime_env: {working_dir: %s}
    deployments:
      - name: api
        command: [python3, server.py]
        num_replicas: 2
        health_path: /
        health_check_period_s: 1
        graceful_shutdown_timeout_s: 2
        ray_actor_options: {num_cpus: 0.5}
`

// serveCall sends a request to the head's API with the cluster token.
func serveCall(t *testing.T, head *node.Head, method, path, body string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(method, head.APIURL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	return string(b)
}

// TestBrowserServe deploys a command application (two Python replicas)
// on a head running a Serve proxy and checks the Serve page in headless
// Chromium: the empty state, then the application with its status,
// route prefix, URL, deployment and replicas (state, node, host:port),
// refreshed without a reload, and the empty state again after a
// shutdown.
func TestBrowserServe(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed for the command replicas")
	}
	findChromium(t)
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 2 << 30}
	rc.SessionDir = t.TempDir()
	rc.ObjectStoreBytes = 64 << 20
	rc.ServePort = 0
	head, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(head.Stop)
	proxyURL := "http://" + head.Raylet().ServeProxyAddress()

	b := newBrowser(t, head.APIURL())
	b.visit("/login?next=%2Fserve")
	// Module scripts run before the document is complete: then the form
	// is the script's, not submitted by the browser itself.
	b.until("the login form", `document.querySelector("#login-form") !== null && document.readyState === "complete"`, 10*time.Second)
	b.do("log in", 20*time.Second, chromedp.SendKeys(chromedp.ID("token"), testToken), chromedp.Click(chromedp.ID("login-submit")))
	b.until("the Serve page", `location.pathname === "/serve" && document.querySelector("#serve-sub") !== null`, 20*time.Second)
	b.until("the empty state", `(document.querySelector("#serve-empty") || {innerText: ""}).innerText.includes("No Serve applications")`, 20*time.Second)
	if !strings.Contains(b.text("#serve-proxies"), proxyURL) {
		t.Errorf("the proxies table does not list the head's proxy %s: %q", proxyURL, b.text("#serve-proxies"))
	}
	b.shot("serve-empty")

	// Deploy through the REST API, as `raygo serve deploy` does; the
	// page, left open, shows the application as it comes up.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(serveReplica), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := runtimeenv.Package(dir, runtimeenv.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := apiclient.New(head.APIURL(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.UploadPackage(context.Background(), pkg.Name, pkg.Data, nil); err != nil {
		t.Fatal(err)
	}
	serveCall(t, head, "PUT", controller.ApplicationsPath, fmt.Sprintf(serveConfig, pkg.Name), 200)
	b.until("echo RUNNING with 2 ready replicas",
		`(() => { const a = document.querySelector('[data-app="echo"]'); if (!a) return false;
		   const badges = [...a.querySelectorAll('.serve-app-head .badge')].map(x => x.textContent);
		   const ready = [...a.querySelectorAll('.serve-replicas tbody tr')].filter(r => r.innerText.includes("READY")).length;
		   return badges.includes("RUNNING") && ready === 2; })()`, 90*time.Second)

	var st controller.StatusResponse
	if err := json.Unmarshal([]byte(serveCall(t, head, "GET", controller.ApplicationsPath, "", 200)), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Applications) != 1 || len(st.Applications[0].Deployments) != 1 {
		t.Fatalf("status: %+v", st)
	}
	card := b.text(`[data-app="echo"]`)
	for _, want := range []string{"echo", "RUNNING", "/echo", proxyURL + "/echo", "api", "2 / 2 replicas ready"} {
		if !strings.Contains(card, want) {
			t.Errorf("the application's card does not show %q:\n%s", want, card)
		}
	}
	nodeShort := head.Raylet().NodeID().String()
	nodeShort = nodeShort[len(nodeShort)-12:]
	for _, r := range st.Applications[0].Deployments[0].Replicas {
		row := b.text(fmt.Sprintf(`tr[data-replica=%s]`, js(r.ID)))
		for _, want := range []string{r.ID, "READY", r.HostPort, nodeShort} {
			if !strings.Contains(row, want) {
				t.Errorf("replica %s's row %q does not show %q", r.ID, row, want)
			}
		}
	}
	// The URL the page shows serves the application.
	res, err := http.Get(proxyURL + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET %s/echo: %d", proxyURL, res.StatusCode)
	}
	b.shot("serve")

	serveCall(t, head, "DELETE", controller.ApplicationsPath, "", 200)
	b.until("the empty state after shutdown", `(document.querySelector("#serve-empty") || {innerText: ""}).innerText.includes("No Serve applications")`, 60*time.Second)
	b.shot("serve-shutdown")
}
