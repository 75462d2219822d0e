package metrics_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/raylet"
)

// dashboardPath is the Grafana dashboard shipped in the repository.
var dashboardPath = filepath.Join("..", "..", "deploy", "grafana", "raygo-dashboard.json")

// dashboardExprs reads the dashboard and returns every panel's PromQL,
// with the $SessionName variable replaced by a match-all regexp.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string `json:"title"`
			Type       string `json:"type"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", dashboardPath, err)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["SessionName"] != "query" {
		t.Fatalf("dashboard variables %v, want a datasource variable and a SessionName query", vars)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Fatalf("panel %q: datasource %q, %d queries; want ${datasource} and a query", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			exprs = append(exprs, strings.ReplaceAll(q.Expr, "$SessionName", ".*"))
		}
	}
	return exprs
}

var metricName = regexp.MustCompile(`\braygo_[a-z_]+`)

// TestDashboardNamesRealMetrics: every metric the Grafana dashboard
// queries is one a head serves (GPU series appear only with nvidia-smi,
// so those are checked by name).
func TestDashboardNamesRealMetrics(t *testing.T) {
	h := startHead(t, false)
	known := map[string]bool{raylet.MetricGPUUtilization: true, raylet.MetricGRAMUsed: true, raylet.MetricGRAMAvailable: true}
	for name := range families(t, h, clusterToken) {
		known[name] = true
	}
	exprs := dashboardExprs(t)
	if len(exprs) < 10 {
		t.Fatalf("dashboard has %d queries", len(exprs))
	}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			base := m
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				if strings.HasSuffix(m, suf) && known[strings.TrimSuffix(m, suf)] {
					base = strings.TrimSuffix(m, suf)
				}
			}
			if !known[base] {
				t.Errorf("dashboard queries %s, which the head does not serve (in %s)", m, e)
			}
		}
	}
}
