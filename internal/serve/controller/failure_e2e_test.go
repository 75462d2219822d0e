//go:build !windows

package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/serve/controller"
	"github.com/raygo/raygo/internal/serve/proxy"
)

// failApp is a Python command replica for the failure tests: GET and
// POST answer "REPLICA METHOD BYTES" (BYTES: the request body's length),
// after sleeping ?sleep=SECONDS when asked, so that some requests are in
// flight when the replica is killed.
const failApp = `import http.server, os, time, urllib.parse
rid = os.environ["RAYGO_SERVE_REPLICA"]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, n):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if "sleep" in q:
            time.sleep(float(q["sleep"][0]))
        body = ("%s %s %d" % (rid, self.command, n)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(0)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.answer(len(self.rfile.read(n)))
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((os.environ.get("RAYGO_SERVE_HOST", "127.0.0.1"), int(os.environ["PORT"])), H).serve_forever()
`

func failConfig(pkg string, replicas int) string {
	return fmt.Sprintf(`applications:
  - name: crash
    route_prefix: /crash
    runtime_env: {working_dir: %s}
    deployments:
      - name: api
        command: [python3, server.py]
        num_replicas: %d
        health_path: /
        health_check_period_s: 1
        graceful_shutdown_wait_loop_s: 0.5
        graceful_shutdown_timeout_s: 2
        ray_actor_options: {num_cpus: 0.5}
`, pkg, replicas)
}

// uploadFailApp packages failApp and returns the package's name.
func uploadFailApp(t *testing.T, apiURL string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(failApp), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := runtimeenv.Package(dir, runtimeenv.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := apiclient.New(apiURL, testToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.UploadPackage(context.Background(), pkg.Name, pkg.Data, nil); err != nil {
		t.Fatal(err)
	}
	return pkg.Name
}

// requestHang is how long a load request may take before the test calls
// it hung: far beyond the slowest handler (0.8 s) and the replacement.
const requestHang = 30 * time.Second

// outcome is one request of a loadMix.
type outcome struct {
	method     string
	start, end time.Time
	code       int
	body       string
	err        error
}

// loadMix sends requests to url from several clients until stop: fast
// GETs, slow GETs (0.8 s), fast POSTs with a 64 KiB body and slow POSTs,
// recording every outcome.
type loadMix struct {
	url  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	outs []outcome // guarded by mu
}

func startLoadMix(url string) *loadMix {
	l := &loadMix{url: url, stop: make(chan struct{})}
	hc := &http.Client{Timeout: requestHang}
	body := strings.Repeat("x", 64<<10)
	kinds := []struct{ method, query, body string }{
		{"GET", "", ""}, {"GET", "", ""}, {"GET", "?sleep=0.8", ""},
		{"POST", "", body}, {"POST", "", body}, {"POST", "?sleep=0.8", body},
	}
	for _, k := range kinds {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				o := outcome{method: k.method, start: time.Now()}
				o.code, o.body, o.err = doWith(hc, k.method, url+k.query, k.body)
				o.end = time.Now()
				l.mu.Lock()
				l.outs = append(l.outs, o)
				l.mu.Unlock()
			}
		})
	}
	return l
}

// finish stops the load and returns every outcome.
func (l *loadMix) finish() []outcome {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outs
}

func doWith(hc *http.Client, method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	res, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// failureVerdict sorts a request that did not get 200: nil when it is
// the failure the proxy owes a request that was on a killed replica (502
// with JSON naming one of the killed replicas), else why not.
func failureVerdict(o outcome, killed map[string]bool) error {
	if o.err != nil {
		return fmt.Errorf("%s failed after %v: %w", o.method, o.end.Sub(o.start).Round(time.Millisecond), o.err)
	}
	var er proxy.ErrorResponse
	if o.code != http.StatusBadGateway || json.Unmarshal([]byte(o.body), &er) != nil {
		return fmt.Errorf("%s: %d %q", o.method, o.code, o.body)
	}
	if !killed[er.Replica] || !strings.Contains(er.Error, "replica "+er.Replica) {
		return fmt.Errorf("%s: 502 naming replica %q (killed: %v): %s", o.method, er.Replica, killed, er.Error)
	}
	return nil
}

// TestKillReplicaUnderLoad: two replicas serve fast and slow GETs and
// POSTs with bodies from six clients; one replica's process group is
// killed (SIGKILL). A replacement becomes READY (the time is logged);
// requests that were on the killed replica get 502 naming it (GETs
// may instead be retried on the other replica and succeed); no request
// hangs; every other request succeeds, before, during and after; the
// status shows the slot's restart, and the new replica takes requests.
func TestKillReplicaUnderLoad(t *testing.T) {
	c := startHead(t)
	pkg := uploadFailApp(t, c.api)
	mustCall(t, "PUT", c.api+controller.ApplicationsPath, failConfig(pkg, 2), 200)
	st := runningApp(t, c, "crash", 2)
	eventually(t, 20*time.Second, "the route answers", func() (bool, string) {
		code, body, err := call("GET", c.proxy+"/crash", "")
		return code == 200, fmt.Sprintf("%d %q %v", code, body, err)
	})

	// The status lists the head node's proxy, healthy, and the
	// application's URL on it.
	if ps := status(t, c).Proxies; len(ps) != 1 || ps[0].URL != c.proxy || ps[0].Status != controller.ProxyHealthy ||
		ps[0].NodeID != c.head.Raylet().NodeID().String() {
		t.Errorf("proxies in the status: %+v, want the head's at %s, HEALTHY", ps, c.proxy)
	}
	if len(st.URLs) != 1 || st.URLs[0] != c.proxy+"/crash" {
		t.Errorf("the application's URLs: %v, want [%s/crash]", st.URLs, c.proxy)
	}

	l := startLoadMix(c.proxy + "/crash")
	time.Sleep(1500 * time.Millisecond) // every client has requests under way, slow ones included
	victim := st.Deployments[0].Replicas[0]
	if victim.Pid <= 0 {
		t.Fatalf("no pid in the replica's status: %+v", victim)
	}
	if err := syscall.Kill(-victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill replica %s's process group %d: %v", victim.ID, victim.Pid, err)
	}
	killed := time.Now()
	var replaced controller.AppStatus
	eventually(t, 60*time.Second, "a replacement READY", func() (bool, string) {
		replaced = status(t, c).Applications[0]
		rs := replaced.Deployments[0].Replicas
		ok := len(rs) == 2
		for _, r := range rs {
			ok = ok && r.State == "READY" && r.ID != victim.ID
		}
		return ok, fmt.Sprintf("%+v", rs)
	})
	readyAfter := time.Since(killed)
	var fresh controller.ReplicaStatus
	for _, r := range replaced.Deployments[0].Replicas {
		if r.ID != st.Deployments[0].Replicas[1].ID {
			fresh = r
		}
	}
	if fresh.Restarts < 1 {
		t.Errorf("the killed replica's slot shows no restart: %+v", replaced.Deployments[0].Replicas)
	}
	// The new replica takes requests.
	seenFresh := false
	eventually(t, 20*time.Second, "the new replica answers", func() (bool, string) {
		_, body, _ := call("GET", c.proxy+"/crash", "")
		seenFresh = seenFresh || strings.HasPrefix(body, fresh.ID+" ")
		return seenFresh, body
	})
	time.Sleep(time.Second)
	outs := l.finish()

	var ok, bad502, inFlight int
	byMethod := map[string]int{}
	var slowest time.Duration
	for _, o := range outs {
		slowest = max(slowest, o.end.Sub(o.start))
		if o.start.Before(killed) && o.end.After(killed) {
			inFlight++
		}
		if o.code == http.StatusOK && o.err == nil {
			ok++
			continue
		}
		if err := failureVerdict(o, map[string]bool{victim.ID: true}); err != nil {
			t.Errorf("a request failed otherwise than on the killed replica: %v", err)
			continue
		}
		bad502++
		byMethod[o.method]++
	}
	t.Logf("replica %s killed: replacement %s READY %v later (slot restarts %d); %d requests, %d ok, %d got 502 naming the killed replica %v, "+
		"%d were under way at the kill; slowest request %v", victim.ID, fresh.ID, readyAfter.Round(time.Millisecond), fresh.Restarts,
		len(outs), ok, bad502, byMethod, inFlight, slowest.Round(time.Millisecond))
	if ok < 20 {
		t.Errorf("only %d requests succeeded", ok)
	}
	if slowest >= requestHang {
		t.Errorf("a request took %v", slowest)
	}
	mustCall(t, "DELETE", c.api+controller.ApplicationsPath, "", 200)
}

// runningApp waits until the only application, name, is RUNNING with n
// READY replicas of its current version, and returns its status.
func runningApp(t *testing.T, c *cluster, name string, n int) controller.AppStatus {
	t.Helper()
	var last controller.AppStatus
	eventually(t, 60*time.Second, name+" RUNNING", func() (bool, string) {
		st := status(t, c)
		if len(st.Applications) != 1 || st.Applications[0].Name != name {
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
