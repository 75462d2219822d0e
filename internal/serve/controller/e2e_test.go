package controller_test

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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/serve/controller"
)

const testToken = "serve-controller-test-token-0123456789"

// app is a Python command replica: it answers every GET with its replica
// id and the APP_VERSION of its environment.
const app = `import http.server, os
rid = os.environ["RAYGO_SERVE_REPLICA"]
ver = os.environ.get("APP_VERSION", "")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = (rid + " " + ver).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((os.environ.get("RAYGO_SERVE_HOST", "127.0.0.1"), int(os.environ["PORT"])), H).serve_forever()
`

func appConfig(pkg, version string) string { return appConfigN(pkg, version, 2) }

func appConfigN(pkg, version string, replicas int) string {
	return fmt.Sprintf(`applications:
  - name: echo
    route_prefix: /echo
    runtime_env:
      working_dir: %s
      env_vars: {APP_VERSION: %s}
    deployments:
      - name: api
        command: [python3, server.py]
        num_replicas: %d
        health_path: /
        health_check_period_s: 1
        graceful_shutdown_wait_loop_s: 0.5
        graceful_shutdown_timeout_s: 2
        ray_actor_options: {num_cpus: 0.5}
`, pkg, version, replicas)
}

type cluster struct {
	head  *node.Head
	api   string
	proxy string
}

func startHead(t *testing.T) *cluster {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed for the command replicas")
	}
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{resources.CPU: 4, resources.Memory: 4 << 30}
	rc.SessionDir = t.TempDir()
	rc.ServePort = 0
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return &cluster{head: h, api: h.APIURL(), proxy: "http://" + h.Raylet().ServeProxyAddress()}
}

// uploadApp packages a directory holding server.py and returns its name.
func uploadApp(t *testing.T, c *cluster) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := runtimeenv.Package(dir, runtimeenv.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := apiclient.New(c.api, testToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.UploadPackage(context.Background(), pkg.Name, pkg.Data, nil); err != nil {
		t.Fatal(err)
	}
	return pkg.Name
}

var client = &http.Client{Timeout: 10 * time.Second}

func call(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func mustCall(t *testing.T, method, url, body string, want int) string {
	t.Helper()
	code, got, err := call(method, url, body)
	if err != nil || code != want {
		t.Fatalf("%s %s: %d %s %v, want %d", method, url, code, got, err, want)
	}
	return got
}

func status(t *testing.T, c *cluster) controller.StatusResponse {
	t.Helper()
	var st controller.StatusResponse
	if err := json.Unmarshal([]byte(mustCall(t, "GET", c.api+controller.ApplicationsPath, "", 200)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually polls cond every 100 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("after %s, %s: %s", d, what, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running waits until the application is RUNNING with every replica of
// the deployment's current version, and returns its status.
func running(t *testing.T, c *cluster) controller.AppStatus { return runningN(t, c, 2) }

func runningN(t *testing.T, c *cluster, n int) controller.AppStatus {
	var last controller.AppStatus
	eventually(t, 60*time.Second, "echo RUNNING", func() (bool, string) {
		st := status(t, c)
		if len(st.Applications) != 1 {
			return false, fmt.Sprintf("%+v", st)
		}
		last = st.Applications[0]
		d := last.Deployments[0]
		ok := last.Status == controller.StatusRunning && len(d.Replicas) == n
		for _, r := range d.Replicas {
			ok = ok && r.State == "READY" && r.Version == d.Version
		}
		return ok, fmt.Sprintf("%+v", last)
	})
	return last
}

func TestDeployRollShutdown(t *testing.T) {
	c := startHead(t)
	pkg := uploadApp(t, c)
	url := c.api + controller.ApplicationsPath

	mustCall(t, "PUT", url, appConfig(pkg, "v1"), 200)
	st := running(t, c)
	if st.RoutePrefix != "/echo" || st.Deployments[0].TargetReplicas != 2 {
		t.Fatalf("status: %+v", st)
	}
	v1 := map[string]bool{}
	for _, r := range st.Deployments[0].Replicas {
		v1[r.ID] = true
	}

	// Requests through the node's proxy reach both replicas.
	seen := map[string]bool{}
	eventually(t, 20*time.Second, "both replicas answer through the proxy", func() (bool, string) {
		code, body, err := call("GET", c.proxy+"/echo", "")
		if err == nil && code == 200 {
			seen[strings.Fields(body)[0]] = true
		}
		return len(seen) == 2, fmt.Sprintf("seen %v (last: %d %q %v)", seen, code, body, err)
	})
	for id := range seen {
		if !v1[id] {
			t.Fatalf("answer from %q, not a replica of the status %v", id, v1)
		}
	}

	// A redeploy that changes the environment rolls to new replicas while
	// requests keep flowing: none fails.
	l := startLoad(c.proxy + "/echo")
	mustCall(t, "PUT", url, appConfig(pkg, "v2"), 200)
	st = running(t, c)
	// Every answer now comes from a new replica running v2.
	eventually(t, 10*time.Second, "only v2 replicas answer", func() (bool, string) {
		for range 10 {
			_, body, _ := call("GET", c.proxy+"/echo", "")
			f := strings.Fields(body)
			if len(f) != 2 || f[1] != "v2" || v1[f[0]] {
				return false, body
			}
		}
		return true, ""
	})
	l.check(t, "rolling update")
	for _, r := range st.Deployments[0].Replicas {
		if v1[r.ID] {
			t.Fatalf("old replica %s still listed after the roll: %+v", r.ID, st)
		}
	}

	// Updates in place: 3 replicas, then 1 under load (the two removed
	// are withdrawn from routing before they stop): none fails, and the
	// version stays.
	version := st.Deployments[0].Version
	mustCall(t, "PUT", url, appConfigN(pkg, "v2", 3), 200)
	st = runningN(t, c, 3)
	l = startLoad(c.proxy + "/echo")
	mustCall(t, "PUT", url, appConfigN(pkg, "v2", 1), 200)
	st = runningN(t, c, 1)
	l.check(t, "scale down 3 to 1")
	if st.Deployments[0].Version != version {
		t.Fatalf("a replica count change rolled the deployment: %s to %s", version, st.Deployments[0].Version)
	}

	// Bad configs are refused with every message.
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown field", strings.Replace(appConfig(pkg, "v3"), "num_replicas", "num_replica", 1), "did you mean num_replicas"},
		{"duplicate route", appConfig(pkg, "v3") + `  - name: other
    route_prefix: /echo
    deployments: [{name: x, command: [python3, server.py]}]
`, `route prefix \"/echo\" is taken`},
		{"impossible resources", strings.Replace(appConfig(pkg, "v3"), "num_cpus: 0.5", "num_cpus: 64", 1), "impossible resources"},
		{"unregistered go application", "applications: [{name: g, import_path: shop.App}]\n", `import_path \"shop.App\" names no registered Go application`},
		{"local working dir", strings.Replace(appConfig(pkg, "v3"), pkg, "./app", 1), "not an uploaded package"},
	} {
		code, body, err := call("PUT", url, tc.yaml)
		if err != nil || code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s %v, want 400 with %q", tc.name, code, body, err, tc.want)
		}
	}
	if st := status(t, c); st.Applications[0].Deployments[0].Version != st.Applications[0].Deployments[0].Replicas[0].Version {
		t.Fatalf("a refused config changed the deployment: %+v", st)
	}

	// Shutdown: the route goes, the proxy answers 404.
	mustCall(t, "DELETE", url, "", 200)
	eventually(t, 20*time.Second, "404 from the proxy", func() (bool, string) {
		code, body, err := call("GET", c.proxy+"/echo", "")
		return code == 404, fmt.Sprintf("%d %q %v", code, body, err)
	})
	eventually(t, 20*time.Second, "no applications", func() (bool, string) {
		st := status(t, c)
		return len(st.Applications) == 0, fmt.Sprintf("%+v", st)
	})
	mustCall(t, "DELETE", url, "", 404)
}

// TestAppliedConfigSurvivesHeadRestart: a head keeping its state in
// storage stops with an application deployed (its replicas with it) and
// starts again on the same storage: the application runs again and its
// route answers.
func TestAppliedConfigSurvivesHeadRestart(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is needed for the command replicas")
	}
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	t.Setenv("TMPDIR", t.TempDir()) // the replicas' mktemp
	store := filepath.Join(t.TempDir(), "state.db")
	start := func() *cluster {
		rc := raylet.DefaultConfig()
		rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 4 << 30}
		rc.SessionDir = t.TempDir()
		rc.ServePort = 0
		h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: testToken, Storage: store})
		if err != nil {
			t.Fatal(err)
		}
		return &cluster{head: h, api: h.APIURL(), proxy: "http://" + h.Raylet().ServeProxyAddress()}
	}
	const cfg = `applications:
  - name: files
    route_prefix: /files
    deployments:
      - name: web
        command: [sh, -c, 'd=$(mktemp -d) && mkdir "$d/files" && cd "$d" && exec python3 -m http.server "$PORT" --bind 127.0.0.1']
        num_replicas: 1
        ray_actor_options: {num_cpus: 0.5}
`
	answers := func(c *cluster) {
		t.Helper()
		eventually(t, 60*time.Second, "the route answers", func() (bool, string) {
			code, body, err := call("GET", c.proxy+"/files/", "")
			return code == 200 && strings.Contains(body, "Directory listing"), fmt.Sprintf("%d %.80q %v", code, body, err)
		})
	}
	c := start()
	mustCall(t, "PUT", c.api+controller.ApplicationsPath, cfg, 200)
	answers(c)
	c.head.Stop()

	c = start()
	defer c.head.Stop()
	answers(c)
	if st := status(t, c); len(st.Applications) != 1 || st.Applications[0].Name != "files" || len(st.Proxies) != 1 {
		t.Fatalf("status after the restart: %+v", st)
	}
	mustCall(t, "DELETE", c.api+controller.ApplicationsPath, "", 200)
}

// load sends GETs to url from 2 goroutines until check.
type load struct {
	sent, failed atomic.Int64
	firstFail    atomic.Value
	stop         chan struct{}
	wg           sync.WaitGroup
}

func startLoad(url string) *load {
	l := &load{stop: make(chan struct{})}
	for range 2 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body, err := call("GET", url, "")
				l.sent.Add(1)
				if err != nil || code != 200 {
					l.failed.Add(1)
					l.firstFail.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", code, body, err))
				}
			}
		}()
	}
	return l
}

// check stops the load and fails t if any request failed.
func (l *load) check(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.failed.Load() != 0 || l.sent.Load() < 10 {
		t.Fatalf("%s: %d of %d requests failed (first: %v)", what, l.failed.Load(), l.sent.Load(), l.firstFail.Load())
	}
	t.Logf("%s: %d requests, 0 failed", what, l.sent.Load())
}
