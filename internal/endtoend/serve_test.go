//go:build !windows

package endtoend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/serve/controller"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/ray"
)

// Role of the Serve test (TestServeAcrossHosts): a node daemon with a
// Serve proxy on its host's address (a free port), the head's
// (control store, HTTP API on its host's address) when envServeHead is
// "1", else a node joining RAYGO_ADDRESS. It prints "up" and, comma
// separated, the control store's address, the API's URL and the proxy's
// address (the head), or the proxy's address (a node), then runs until
// stdin closes.
const (
	roleServeHost = "serve-host"
	envServeHead  = "RAYGO_E2E_SERVE_HEAD"
)

func runServeHost() int {
	ip := os.Getenv(envIP)
	rc, done, err := roleNodeConfig(64 << 20)
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer done()
	rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 2 << 30}
	rc.ServeHost, rc.ServePort = ip, 0
	if os.Getenv(envServeHead) == "1" {
		head, err := node.StartHead(node.HeadConfig{GCSAddress: net.JoinHostPort(ip, "0"), Raylet: rc, Token: os.Getenv(ray.EnvToken),
			API: node.APIConfig{Address: net.JoinHostPort(ip, "0")}})
		if err != nil {
			fmt.Println("head:", err)
			return 1
		}
		defer head.Stop()
		fmt.Println("up", head.GCSAddress()+","+head.APIURL()+","+head.Raylet().ServeProxyAddress())
	} else {
		rc.GCSAddress, rc.Token = os.Getenv(ray.EnvAddress), os.Getenv(ray.EnvToken)
		n, err := raylet.Start(rc)
		if err != nil {
			fmt.Println("node:", err)
			return 1
		}
		defer n.Stop()
		fmt.Println("up", n.ServeProxyAddress())
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// serveApp answers GET and POST with "REPLICA METHOD BYTES" after
// ?sleep=SECONDS, listening where the node daemon says
// (RAYGO_SERVE_HOST, $PORT).
const serveApp = `import http.server, os, time, urllib.parse
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
http.server.ThreadingHTTPServer((os.environ["RAYGO_SERVE_HOST"], int(os.environ["PORT"])), H).serve_forever()
`

// serveConfig: three replicas of one request at a time each, so that a
// proxy whose own node's replica is busy sends requests to other hosts.
const serveConfig = `applications:
  - name: spread
    route_prefix: /spread
    runtime_env: {working_dir: %s}
    deployments:
      - name: api
        command: [python3, server.py]
        num_replicas: 3
        max_ongoing_requests: 1
        health_path: /
        health_check_period_s: 1
        graceful_shutdown_wait_loop_s: 0.2
        graceful_shutdown_timeout_s: 1
        ray_actor_options: {num_cpus: 0.5}
`

// TestServeAcrossHosts: a head and two worker hosts (network namespaces),
// each node daemon with a Serve proxy on its host's address; a command
// deployment's three replicas spread over the three hosts. The status
// lists the three proxies, healthy, with the application's URL on each,
// and requests through every proxy reach replicas on the other hosts.
// Then a worker host dies under load (its node daemon killed, its
// replica with it): its replica is replaced on the surviving hosts;
// requests through the surviving proxies fail only if they were on the
// dead host's replica (502 naming it; counted and logged) and all
// succeed once the replacement is in; the dead host's proxy refuses
// connections, and the status stops listing it.
func TestServeAcrossHosts(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("python3 is needed for the command replicas")
	}
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "head", "w1", "w2")
	const token = "e2e-serve-token"
	tok := ray.EnvToken + "=" + token
	up := strings.Split(startRole(t, hosts[0], roleServeHost, tok, envServeHead+"=1"), ",")
	if len(up) != 3 {
		t.Fatalf("head: %q", up)
	}
	gcsAddr, apiURL := up[0], up[1]
	proxyOf := map[string]string{hosts[0].Name: "http://" + up[2]} // host → proxy URL
	var victim = hosts[2]
	var victimCmd interface{ Signal(os.Signal) error }
	for _, h := range hosts[1:] {
		addr, cmd := startRoleCmd(t, h, roleServeHost, tok, ray.EnvAddress+"="+gcsAddr)
		proxyOf[h.Name] = "http://" + addr
		if h == victim {
			victimCmd = cmd.Process
		}
	}
	for _, h := range hosts {
		if !strings.HasPrefix(proxyOf[h.Name], "http://"+h.IP+":") {
			t.Fatalf("host %s (%s): proxy at %s", h.Name, h.IP, proxyOf[h.Name])
		}
	}

	c, err := apiclient.New(apiURL, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// After the kill: when the status first left the dead host's proxy out.
	var killed, proxyGone time.Time
	victimNode := ""
	serveStatus := func() controller.StatusResponse {
		t.Helper()
		var st controller.StatusResponse
		if err := c.Do(ctx, "GET", controller.ApplicationsPath, nil, &st); err != nil {
			t.Fatal(err)
		}
		if !killed.IsZero() && proxyGone.IsZero() && !slices.ContainsFunc(st.Proxies, func(p controller.ProxyStatus) bool { return p.NodeID == victimNode }) {
			proxyGone = time.Now()
		}
		return st
	}
	waitFor := func(what string, cond func(controller.StatusResponse) (bool, string)) controller.StatusResponse {
		t.Helper()
		for {
			st := serveStatus()
			ok, why := cond(st)
			if ok {
				return st
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: never (%s)", what, why)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Deploy: three replicas, one per host.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(serveApp), 0o644); err != nil {
		t.Fatal(err)
	}
	pkg, err := runtimeenv.Package(dir, runtimeenv.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadPackage(ctx, pkg.Name, pkg.Data, nil); err != nil {
		t.Fatal(err)
	}
	res, err := c.Request(ctx, "PUT", controller.ApplicationsPath, strings.NewReader(fmt.Sprintf(serveConfig, pkg.Name)), "application/yaml")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	hostOfNode := map[string]string{} // node id → host name, from the proxies' URLs
	st := waitFor("3 replicas on 3 hosts and 3 healthy proxies", func(st controller.StatusResponse) (bool, string) {
		why := fmt.Sprintf("%+v", st)
		if len(st.Applications) != 1 || st.Applications[0].Status != controller.StatusRunning || len(st.Proxies) != 3 {
			return false, why
		}
		nodes := map[string]bool{}
		for _, r := range st.Applications[0].Deployments[0].Replicas {
			nodes[r.Node] = r.State == "READY"
		}
		for _, p := range st.Proxies {
			if p.Status != controller.ProxyHealthy {
				return false, why
			}
		}
		return len(nodes) == 3 && !slices.Contains(slices.Collect(maps.Values(nodes)), false), why
	})
	for _, p := range st.Proxies {
		for _, h := range hosts {
			if p.URL == proxyOf[h.Name] {
				hostOfNode[p.NodeID] = h.Name
			}
		}
	}
	if len(hostOfNode) != 3 {
		t.Fatalf("the status's proxies %+v are not the hosts' %v", st.Proxies, proxyOf)
	}
	for i, u := range st.Applications[0].URLs {
		if u != st.Proxies[i].URL+"/spread" {
			t.Errorf("application URL %d: %s, want %s/spread", i, u, st.Proxies[i].URL)
		}
	}
	hostOfReplica := map[string]string{}
	var victimReplica controller.ReplicaStatus
	for _, r := range st.Applications[0].Deployments[0].Replicas {
		hostOfReplica[r.ID] = hostOfNode[r.Node]
		if hostOfNode[r.Node] == victim.Name {
			victimReplica, victimNode = r, r.Node
		}
	}

	// Through every host's proxy, requests reach the replicas of the
	// other hosts: bursts of three slow requests at once fill the local
	// replica (one request at a time) and spill over.
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, h := range hosts {
		reached := reachHosts(t, hc, proxyOf[h.Name]+"/spread?sleep=0.3", 3, func(body string) string {
			return hostOfReplica[strings.Fields(body)[0]]
		})
		t.Logf("through %s's proxy: replicas on %v (replicas by host: %v)", h.Name, reached, hostOfReplica)
	}

	// Load through the surviving hosts' proxies, then the victim host
	// dies: its node daemon is killed, and its replica with it.
	var loads []*serveLoad
	for _, h := range hosts[:2] {
		loads = append(loads, startServeLoad(hc, proxyOf[h.Name]+"/spread"))
	}
	time.Sleep(time.Second)
	if err := victimCmd.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = time.Now()
	st = waitFor("the victim's replica replaced on the other hosts", func(st controller.StatusResponse) (bool, string) {
		rs := st.Applications[0].Deployments[0].Replicas
		ok := len(rs) == 3
		for _, r := range rs {
			ok = ok && r.State == "READY" && r.ID != victimReplica.ID && hostOfNode[r.Node] != victim.Name
		}
		return ok, fmt.Sprintf("%+v", rs)
	})
	movedAfter := time.Since(killed)
	// From here every request succeeds.
	moved := time.Now()
	time.Sleep(2 * time.Second)
	var total, failedMove, failedAfter int
	moveByMethod := map[string]int{}
	for _, l := range loads {
		for _, o := range l.finish() {
			total++
			if o.err == nil && o.code == http.StatusOK {
				continue
			}
			why := serveFailure(o, victimReplica.ID)
			switch {
			case o.start.After(moved):
				failedAfter++
				t.Errorf("a request after the move failed: %v", why)
			case why != nil:
				t.Errorf("a request failed otherwise than on the dead host's replica: %v", why)
			default:
				failedMove++
				moveByMethod[o.method]++
			}
		}
	}
	t.Logf("host %s killed: its replica %s replaced, 3 READY on the other hosts %v later; %d requests through the surviving proxies, "+
		"%d failed during the move (502 naming the dead replica: %v), %d after", victim.Name, victimReplica.ID, movedAfter.Round(time.Millisecond),
		total, failedMove, moveByMethod, failedAfter)

	// The dead host's proxy is simply gone, and so is its replica.
	for _, u := range []string{proxyOf[victim.Name] + "/spread", "http://" + victimReplica.HostPort + "/"} {
		if _, _, err := httpDo(hc, "GET", u, ""); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("GET %s on the dead host: %v, want connection refused", u, err)
		}
	}
	st = waitFor("the dead host's proxy off the status", func(st controller.StatusResponse) (bool, string) {
		if len(st.Proxies) != 2 {
			return false, fmt.Sprintf("%+v", st.Proxies)
		}
		for _, p := range st.Proxies {
			if hostOfNode[p.NodeID] == victim.Name || p.Status != controller.ProxyHealthy {
				return false, fmt.Sprintf("%+v", st.Proxies)
			}
		}
		return len(st.Applications[0].URLs) == 2, fmt.Sprintf("%+v", st.Applications[0].URLs)
	})
	t.Logf("the dead host's proxy left the status %v after the kill", proxyGone.Sub(killed).Round(100*time.Millisecond))
	// Shut down, and let the replicas drain before the hosts stop.
	if err := c.Do(ctx, "DELETE", controller.ApplicationsPath, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor("no applications", func(st controller.StatusResponse) (bool, string) {
		return len(st.Applications) == 0, fmt.Sprintf("%+v", st.Applications)
	})
}

// serveFailure is nil for the failure a request on the dead replica is
// owed (502 with JSON naming it), else why the failure is not that.
func serveFailure(o serveOutcome, dead string) error {
	if o.err != nil {
		return fmt.Errorf("%s after %v: %w", o.method, o.end.Sub(o.start).Round(time.Millisecond), o.err)
	}
	var er proxy.ErrorResponse
	if o.code != http.StatusBadGateway || json.Unmarshal([]byte(o.body), &er) != nil || er.Replica != dead {
		return fmt.Errorf("%s: %d %q", o.method, o.code, o.body)
	}
	return nil
}

// serveOutcome is one request of a serveLoad.
type serveOutcome struct {
	method     string
	start, end time.Time
	code       int
	body       string
	err        error
}

// serveLoad sends GETs (some slow) and POSTs with a body to url from
// four clients until finish.
type serveLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	outs []serveOutcome // guarded by mu
}

// reachHosts sends bursts of three concurrent GETs to url (a proxy's; the
// slow requests fill the local replica and spill over) until the answers
// come from n hosts, hostOf(body) naming each answer's host, and returns
// them. A failed request, or 20 bursts without all n, fails the test.
func reachHosts(t *testing.T, hc *http.Client, url string, n int, hostOf func(body string) string) map[string]bool {
	t.Helper()
	reached := map[string]bool{}
	for try := 0; len(reached) < n; try++ {
		if try == 20 {
			t.Fatalf("through %s, requests reached hosts %v only, want %d", url, reached, n)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				code, body, err := httpDo(hc, "GET", url, "")
				if err != nil || code != 200 {
					t.Errorf("GET %s: %d %q %v", url, code, body, err)
					return
				}
				h := hostOf(body)
				mu.Lock()
				reached[h] = true
				mu.Unlock()
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	return reached
}

func startServeLoad(hc *http.Client, url string) *serveLoad {
	l := &serveLoad{stop: make(chan struct{})}
	body := strings.Repeat("y", 16<<10)
	for _, k := range []struct{ method, query, body string }{
		{"GET", "", ""}, {"GET", "?sleep=0.3", ""}, {"POST", "", body}, {"POST", "?sleep=0.3", body},
	} {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				o := serveOutcome{method: k.method, start: time.Now()}
				o.code, o.body, o.err = httpDo(hc, k.method, url+k.query, k.body)
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
func (l *serveLoad) finish() []serveOutcome {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outs
}

func httpDo(hc *http.Client, method, url, body string) (int, string, error) {
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
