package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/serve/controller"
)

// slowApp is a Python command replica whose every GET takes 300 ms.
const slowApp = `import http.server, os, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path != "/":
            time.sleep(0.3)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer((os.environ.get("RAYGO_SERVE_HOST", "127.0.0.1"), int(os.environ["PORT"])), H).serve_forever()
`

const autoscaleConfig = `applications:
  - name: slow
    route_prefix: /slow
    runtime_env: {working_dir: %s}
    deployments:
      - name: api
        command: [python3, server.py]
        health_path: /
        health_check_period_s: 1
        graceful_shutdown_wait_loop_s: 0.5
        graceful_shutdown_timeout_s: 2
        ray_actor_options: {num_cpus: 0.5}
        autoscaling_config:
          min_replicas: 1
          max_replicas: 3
          target_ongoing_requests: 1
          upscale_delay_s: 1
          downscale_delay_s: 2
          metrics_interval_s: 0.5
          look_back_period_s: 2
`

// TestAutoscaleCommandDeployment drives a command deployment with a load
// step: the proxy's load reports reach the controller, whose policy
// scales it up within 10 s and back down once the load stops.
func TestAutoscaleCommandDeployment(t *testing.T) {
	c := startHead(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server.py"), []byte(slowApp), 0o644); err != nil {
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
	mustCall(t, "PUT", c.api+controller.ApplicationsPath, fmt.Sprintf(autoscaleConfig, pkg.Name), 200)

	ready := func() (int, controller.DeploymentStatus) {
		st := status(t, c)
		if len(st.Applications) != 1 || len(st.Applications[0].Deployments) != 1 {
			return 0, controller.DeploymentStatus{}
		}
		d := st.Applications[0].Deployments[0]
		n := 0
		for _, r := range d.Replicas {
			if r.State == "READY" {
				n++
			}
		}
		return n, d
	}
	eventually(t, 60*time.Second, "one ready replica", func() (bool, string) {
		n, d := ready()
		return n == 1 && d.TargetReplicas == 1, fmt.Sprintf("%+v", d)
	})
	if _, d := ready(); strings.Contains(d.Message, "not active") {
		t.Fatalf("status message %q", d.Message)
	}

	// Six clients, each with one request at a time.
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopLoad(); wg.Wait() }()
	hc := &http.Client{Timeout: 10 * time.Second}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", c.proxy+"/slow/work", nil)
				if res, err := hc.Do(req); err == nil {
					res.Body.Close()
				}
			}
		}()
	}
	start := time.Now()
	eventually(t, 10*time.Second, "scaled up to 2 or more ready replicas under load", func() (bool, string) {
		n, d := ready()
		return n >= 2, fmt.Sprintf("%d ready: %+v", n, d)
	})
	_, d := ready()
	t.Logf("load step answered in %v: target %d, %q", time.Since(start).Round(10*time.Millisecond), d.TargetReplicas, d.Message)
	if !strings.Contains(d.Message, "autoscaling: target") {
		t.Errorf("status message %q, want the last decision", d.Message)
	}
	time.Sleep(2 * time.Second)
	stopLoad()
	wg.Wait()

	stopped := time.Now()
	eventually(t, 30*time.Second, "back to one replica after the load", func() (bool, string) {
		n, d := ready()
		return n == 1 && d.TargetReplicas == 1 && len(d.Replicas) == 1, fmt.Sprintf("%d ready: %+v", n, d)
	})
	t.Logf("back to one replica %v after the load stopped", time.Since(stopped).Round(10*time.Millisecond))
}
