//go:build !windows

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
)

// envRunDriver makes this test binary a driver that deploys the echo
// application on the cluster in RAYGO_ADDRESS and exits.
const envRunDriver = "RAYGO_E2E_SERVE_DRIVER"

// runDriver is the driver's whole life: connect, deploy, leave.
func runDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.LogWorkers(false)); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 1
	}
	defer func() { _ = ray.Shutdown() }()
	if err := serve.Run(ctx, serve.NewApplication("echo", Echo)); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 1
	}
	return 0
}

// TestGoAppOutlivesItsDriverAndTheHead: an application deployed by a
// program keeps serving after the program exits (its replicas are
// detached actors of the program's binary, kept by the control store),
// and comes back after a head restarted with storage — as Ray's
// serve.run on a long-running cluster.
func TestGoAppOutlivesItsDriverAndTheHead(t *testing.T) {
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	store := filepath.Join(t.TempDir(), "state.db")
	const token = "rgo_e2e-outlive-token-0123456789abcdef"
	start := func() *node.Head {
		rc := raylet.DefaultConfig()
		rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 4 << 30}
		rc.SessionDir = t.TempDir()
		rc.ServePort = 0
		h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: token, Storage: store})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	answers := func(h *node.Head) time.Duration {
		t.Helper()
		url := "http://" + h.Raylet().ServeProxyAddress() + "/echo/x"
		began := time.Now()
		var last string
		for time.Since(began) < time.Minute {
			resp, err := http.Get(url)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && string(b) == "echo /echo/x" {
					return time.Since(began)
				}
				last = fmt.Sprintf("%s %q", resp.Status, b)
			} else {
				last = err.Error()
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the application does not answer at %s: %s", url, last)
		return 0
	}

	h := start()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envRunDriver+"=1", "RAYGO_ADDRESS="+h.GCSAddress(), "RAYGO_TOKEN="+token)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.Stop()
		t.Fatalf("driver: %v\n%s", err, out)
	}
	answers(h) // the driver has exited
	h.Stop()

	h = start()
	defer h.Stop()
	t.Logf("after a head restart with storage: answering again in %v", answers(h).Round(time.Millisecond))
	// Both replicas come back: the application is RUNNING again.
	var last string
	for began := time.Now(); ; {
		req, _ := http.NewRequest(http.MethodGet, h.APIURL()+"/api/serve/applications", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = resp.Status + " " + string(b)
		if resp.StatusCode == http.StatusOK && strings.Contains(last, `"name":"echo"`) && strings.Contains(last, `"status":"RUNNING"`) {
			break
		}
		if time.Since(began) > time.Minute {
			t.Fatalf("status after the restart, a minute on: %s", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
