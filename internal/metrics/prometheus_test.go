package metrics_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/metrics"
)

// envRequirePrometheus=1 turns a missing prometheus binary into a
// failure (CI runs scripts/ensure-prometheus.sh and sets it).
const envRequirePrometheus = "RAYGO_REQUIRE_PROMETHEUS"

// prometheusWait bounds the wait for Prometheus to discover, scrape and
// answer a query with the cluster's metrics (its scrape interval is 1 s).
const prometheusWait = 90 * time.Second

// TestRealPrometheus runs the prometheus server against a cluster: it
// finds the head through the service-discovery file, scrapes /metrics
// with a read token from a credentials file, and answers a query for the
// tasks the test ran.
func TestRealPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv(envRequirePrometheus) == "1" {
			t.Fatalf("no prometheus binary on PATH and %s=1: run scripts/ensure-prometheus.sh", envRequirePrometheus)
		}
		t.Skipf("no prometheus binary on PATH: run scripts/ensure-prometheus.sh (%s=1 makes this a failure)", envRequirePrometheus)
	}
	h := startHead(t, false)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "raygo-token")
	if err := os.WriteFile(tokenFile, []byte(readToken(t, h, "prometheus")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sd := filepath.Join(h.sessionDir, metrics.DiscoveryFile)
	eventually(t, 10*time.Second, "the discovery file", func() (bool, string) {
		_, err := os.Stat(sd)
		return err == nil, fmt.Sprint(err)
	})
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: raygo
    authorization:
      credentials_file: %s
    file_sd_configs:
      - files: [%s]
        refresh_interval: 1s
`, tokenFile, sd)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	runTasks(t, h, 20)

	query := `sum(raygo_tasks{job="raygo",State="FINISHED"})`
	var last string
	deadline := time.Now().Add(prometheusWait)
	for {
		v, state, err := promQuery(addr, query)
		last = fmt.Sprintf("%s = %v (%s, %v)", query, v, state, err)
		if err == nil && v >= 20 {
			break
		}
		if time.Now().After(deadline) {
			targets, _ := httpGet("http://" + addr + "/api/v1/targets")
			logs, _ := os.ReadFile(logPath)
			t.Fatalf("Prometheus did not answer with the cluster's metrics within %s; last: %s\ntargets: %s\nlog:\n%s",
				prometheusWait, last, targets, tail(logs, 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Log(last)
	// The target carries the discovery file's labels.
	v, _, err := promQuery(addr, fmt.Sprintf(`up{job="raygo",SessionName=%q}`, filepath.Base(h.sessionDir)))
	if err != nil || v != 1 {
		t.Fatalf("up{SessionName=…} = %v, %v; want 1", v, err)
	}
	// Prometheus accepts every query of the Grafana dashboard.
	for _, e := range dashboardExprs(t) {
		if _, body, err := promQuery(addr, e); err != nil && !strings.Contains(body, `"status":"success"`) {
			t.Errorf("Prometheus refuses the dashboard's query %s: %s", e, body)
		}
	}
}

// promQuery runs an instant query and returns the first sample's value.
func promQuery(addr, q string) (float64, string, error) {
	body, err := httpGet("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, "", err
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, string(body), err
	}
	if r.Status != "success" || len(r.Data.Result) == 0 {
		return 0, string(body), fmt.Errorf("no result")
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, string(body), err
}

func httpGet(u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
