package controller_test

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/serve/controller"
)

func TestStatusSamples(t *testing.T) {
	S := func(metric string, v float64, labels ...string) controller.Sample {
		return controller.Sample{Metric: metric, Labels: labels, Value: v}
	}
	states := func(app, dep string, n map[string]float64) []controller.Sample {
		var out []controller.Sample
		for _, s := range controller.ReplicaStates {
			out = append(out, S(controller.MetricDeploymentReplicas, n[s], app, dep, s))
		}
		return out
	}
	status := func(metric, current string, labels ...string) []controller.Sample {
		var out []controller.Sample
		for _, s := range controller.Statuses {
			v := 0.0
			if s == current {
				v = 1
			}
			out = append(out, S(metric, v, append(append([]string{}, labels...), s)...))
		}
		return out
	}
	cat := func(parts ...[]controller.Sample) []controller.Sample {
		var out []controller.Sample
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		apps []controller.AppStatus
		want []controller.Sample
	}{
		{name: "nothing deployed", apps: nil, want: nil},
		{
			name: "one running deployment",
			apps: []controller.AppStatus{{Name: "echo", Status: controller.StatusRunning, Deployments: []controller.DeploymentStatus{{
				Name: "api", Status: controller.StatusRunning, TargetReplicas: 2,
				Replicas: []controller.ReplicaStatus{{ID: "1", State: "READY"}, {ID: "2", State: "READY"}}}}}},
			want: cat(status(controller.MetricApplicationStatus, "RUNNING", "echo"),
				status(controller.MetricDeploymentStatus, "RUNNING", "echo", "api"),
				[]controller.Sample{S(controller.MetricDeploymentTarget, 2, "echo", "api")},
				states("echo", "api", map[string]float64{"READY": 2})),
		},
		{
			name: "a roll: new replicas starting, old ones draining, one failing",
			apps: []controller.AppStatus{{Name: "a", Status: controller.StatusUnhealthy, Deployments: []controller.DeploymentStatus{{
				Name: "d", Status: controller.StatusUnhealthy, TargetReplicas: 3,
				Replicas: []controller.ReplicaStatus{{State: "STARTING"}, {State: "BACKOFF"}, {State: "READY"}, {State: "DRAINING"}, {State: "DRAINING"}}}}}},
			want: cat(status(controller.MetricApplicationStatus, "UNHEALTHY", "a"),
				status(controller.MetricDeploymentStatus, "UNHEALTHY", "a", "d"),
				[]controller.Sample{S(controller.MetricDeploymentTarget, 3, "a", "d")},
				states("a", "d", map[string]float64{"STARTING": 1, "BACKOFF": 1, "READY": 1, "DRAINING": 2})),
		},
		{
			name: "an application with no deployment left, and states newer than the lists",
			apps: []controller.AppStatus{
				{Name: "gone", Status: controller.StatusDeleting},
				{Name: "x", Status: "PAUSED", Deployments: []controller.DeploymentStatus{{Name: "y", Status: "PAUSED",
					Replicas: []controller.ReplicaStatus{{State: "ZOMBIE"}, {State: "ASLEEP"}, {State: "ZOMBIE"}}}}},
			},
			want: cat(status(controller.MetricApplicationStatus, "DELETING", "gone"),
				status(controller.MetricApplicationStatus, "PAUSED", "x"),
				[]controller.Sample{S(controller.MetricApplicationStatus, 1, "x", "PAUSED")},
				status(controller.MetricDeploymentStatus, "PAUSED", "x", "y"),
				[]controller.Sample{S(controller.MetricDeploymentStatus, 1, "x", "y", "PAUSED")},
				[]controller.Sample{S(controller.MetricDeploymentTarget, 0, "x", "y")},
				states("x", "y", nil),
				[]controller.Sample{S(controller.MetricDeploymentReplicas, 1, "x", "y", "ASLEEP"), S(controller.MetricDeploymentReplicas, 2, "x", "y", "ZOMBIE")}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := controller.StatusSamples(tc.apps)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}

// scrape GETs the head's /metrics and parses it.
func scrape(t *testing.T, c *cluster) map[string]*dto.MetricFamily {
	t.Helper()
	body := mustCall(t, "GET", c.api+"/metrics", "", 200)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// metricValue is the value of family name's series with exactly labels
// (less the node's), or false.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
next:
	for _, m := range mfs[name].GetMetric() {
		n := 0
		for _, l := range m.GetLabel() {
			if l.GetName() == "node_id" || l.GetName() == "NodeAddress" {
				continue
			}
			if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
			n++
		}
		if n != len(labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue(), true
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue(), true
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// TestServeMetrics deploys a Python replica and an application whose
// replica cannot start, sends requests through the head's proxy (200s, a
// 501 from the replica, a 404, a 503 from the deployment without
// replicas) and reads the head's GET /metrics: the proxy's counters and
// histogram by route, and the controller's replica counts and statuses.
func TestServeMetrics(t *testing.T) {
	c := startHead(t)
	pkg := uploadApp(t, c)
	cfg := `http_options: {request_timeout_s: 0.5}
` + appConfigN(pkg, "v1", 1) + `  - name: broken
    route_prefix: /broken
    deployments:
      - name: fails
        command: [sh, -c, 'exit 3']
        num_replicas: 1
        ray_actor_options: {num_cpus: 0.1}
`
	mustCall(t, "PUT", c.api+controller.ApplicationsPath, cfg, 200)
	eventually(t, 60*time.Second, "echo RUNNING, broken UNHEALTHY", func() (bool, string) {
		st := status(t, c)
		ok := len(st.Applications) == 2 && st.Applications[0].Status == controller.StatusRunning &&
			st.Applications[1].Status == controller.StatusUnhealthy
		return ok, fmt.Sprintf("%+v", st.Applications)
	})
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/echo", 200}, {"GET", "/echo/a", 200}, {"POST", "/echo/form", 501},
		{"GET", "/nothing/here", 404}, {"GET", "/broken/x", 503},
	} {
		// No bodies: the replica reads none, and what it leaves unread
		// on a keep-alive connection would start the next request.
		req, _ := http.NewRequest(r.method, c.proxy+r.path, nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		res.Body.Close()
		if res.StatusCode != r.want {
			t.Fatalf("%s %s: %d, want %d", r.method, r.path, res.StatusCode, r.want)
		}
	}

	mfs := scrape(t, c)
	L := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, w := range []struct {
		metric string
		labels map[string]string
		value  float64
	}{
		{raylet.MetricServeRequests, L("application", "echo", "deployment", "api", "route", "/echo", "method", "GET", "status_code", "200"), 2},
		{raylet.MetricServeRequests, L("application", "echo", "deployment", "api", "route", "/echo", "method", "POST", "status_code", "501"), 1},
		{raylet.MetricServeRequests, L("application", "", "deployment", "", "route", "", "method", "GET", "status_code", "404"), 1},
		{raylet.MetricServeRequests, L("application", "broken", "deployment", "fails", "route", "/broken", "method", "GET", "status_code", "503"), 1},
		{raylet.MetricServeErrors, L("application", "echo", "deployment", "api", "route", "/echo", "method", "POST", "error_code", "501"), 1},
		{raylet.MetricServeErrors, L("application", "", "deployment", "", "route", "", "method", "GET", "error_code", "404"), 1},
		{raylet.MetricServeErrors, L("application", "broken", "deployment", "fails", "route", "/broken", "method", "GET", "error_code", "503"), 1},
		{raylet.MetricServeLatency, L("application", "echo", "deployment", "api", "route", "/echo"), 3},
		{raylet.MetricServeOngoing, L("application", "echo", "deployment", "api"), 0},
		{raylet.MetricServeQueued, L("application", "echo", "deployment", "api"), 0},
		{controller.MetricDeploymentReplicas, L("application", "echo", "deployment", "api", "state", "READY"), 1},
		{controller.MetricDeploymentReplicas, L("application", "echo", "deployment", "api", "state", "BACKOFF"), 0},
		{controller.MetricDeploymentReplicas, L("application", "broken", "deployment", "fails", "state", "READY"), 0},
		{controller.MetricDeploymentTarget, L("application", "echo", "deployment", "api"), 1},
		{controller.MetricApplicationStatus, L("application", "echo", "status", "RUNNING"), 1},
		{controller.MetricApplicationStatus, L("application", "echo", "status", "DEPLOYING"), 0},
		{controller.MetricApplicationStatus, L("application", "broken", "status", "UNHEALTHY"), 1},
		{controller.MetricDeploymentStatus, L("application", "echo", "deployment", "api", "status", "RUNNING"), 1},
	} {
		if got, ok := metricValue(mfs, w.metric, w.labels); !ok || got != w.value {
			t.Errorf("%s%v = %v (found %v), want %v", w.metric, w.labels, got, ok, w.value)
		}
	}

	// After a shutdown the controller's series are gone; the proxy's
	// counters stay (they count what happened).
	mustCall(t, "DELETE", c.api+controller.ApplicationsPath, "", 200)
	eventually(t, 30*time.Second, "no applications", func() (bool, string) {
		st := status(t, c)
		return len(st.Applications) == 0, fmt.Sprintf("%+v", st.Applications)
	})
	mfs = scrape(t, c)
	if n := len(mfs[controller.MetricApplicationStatus].GetMetric()); n != 0 {
		t.Errorf("%d application status series after shutdown, want 0", n)
	}
	if _, ok := metricValue(mfs, raylet.MetricServeRequests, L("application", "echo", "deployment", "api", "route", "/echo", "method", "GET", "status_code", "200")); !ok {
		t.Errorf("the request counter is gone after shutdown")
	}
}
