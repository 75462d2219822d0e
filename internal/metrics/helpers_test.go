package metrics_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/metrics"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/ray"
)

const clusterToken = "tok"

// startHead starts a head whose node has 2 CPUs, with its HTTP API, a
// session directory, and /metrics open to anyone when open.
func startHead(t testing.TB, open bool) *head {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir()) // local sockets go under the session root
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{"CPU": 2}
	rc.SessionDir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(rc.SessionDir, "logs"), 0o700); err != nil {
		t.Fatal(err)
	}
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: clusterToken, API: node.APIConfig{MetricsOpen: open}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	return &head{Head: h, sessionDir: rc.SessionDir}
}

// head is a head started for a test, and its session directory.
type head struct {
	*node.Head
	sessionDir string
}

// readToken makes an API token of scope read.
func readToken(t testing.TB, h *head, name string) string {
	t.Helper()
	tok, err := h.API().Tokens().Create(context.Background(), name, api.ScopeRead, false)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// scrape GETs /metrics with token ("" sends none) and returns the status
// and body.
func scrape(t testing.TB, h *head, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", h.APIURL()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// families scrapes with token and parses the exposition.
func families(t testing.TB, h *head, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := scrape(t, h, token)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	mfs, err := metrics.ParseText(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	return mfs
}

// samples returns the values of family name's series whose labels include
// want (histograms: their sample count).
func samples(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []float64 {
	var out []float64
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		have := labelsOf(m)
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.GetGauge() != nil:
			out = append(out, m.GetGauge().GetValue())
		case m.GetCounter() != nil:
			out = append(out, m.GetCounter().GetValue())
		case m.GetHistogram() != nil:
			out = append(out, float64(m.GetHistogram().GetSampleCount()))
		case m.GetUntyped() != nil:
			out = append(out, m.GetUntyped().GetValue())
		}
	}
	return out
}

func labelsOf(m *dto.Metric) map[string]string {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	return have
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// eventually polls cond every 50 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not within %s; last: %s", what, d, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runTasks connects a driver (this test binary) to the head and runs n
// tasks to completion.
func runTasks(t testing.TB, h *head, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(h.GCSAddress()), ray.Token(clusterToken)); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	refs := make([]ray.ObjectRef[int], n)
	for i := range refs {
		refs[i] = Square.Remote(ctx, i)
	}
	vals, err := ray.Get(ctx, refs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != i*i {
			t.Fatalf("task %d answered %d", i, v)
		}
	}
}
