package raylet_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/routes"
)

// headMetrics GETs the head's /metrics (every node's registry merged)
// and parses it.
func headMetrics(t *testing.T, c *testCluster) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", c.head.APIURL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.StatusCode, body)
	}
	return parseMetrics(t, body)
}

// TestServeProxyMetrics: a second node's proxy forwards to real HTTP
// replicas; the head's GET /metrics then shows that node's request
// counters (by route prefix, method and status: 200s, a 404, a 503, an
// unknown method as OTHER), its latency histogram and error counter,
// and, while requests wait on a busy replica, its ongoing and queued
// gauges.
func TestServeProxyMetrics(t *testing.T) {
	c := startClusterWith(t, func(rc *raylet.Config) { rc.ServePort = 0 }, resources.Set{resources.CPU: 1}, resources.Set{resources.CPU: 1})
	node := c.nodes[1]
	nodeID := node.NodeID().String()
	base := "http://" + node.ServeProxyAddress()

	fast := replicaServer(t, "fast")
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, "slow")
	}))
	t.Cleanup(slow.Close)
	table := []proxy.Route{
		{Prefix: "/fast", App: "shop", Deployment: "Cart", MaxQueuedRequests: -1,
			Replicas: []proxy.Replica{{ID: "Cart#1", Node: nodeID, URL: fast.URL}}},
		{Prefix: "/slow", App: "shop", Deployment: "Slow", MaxQueuedRequests: -1,
			Replicas: []proxy.Replica{{ID: "Slow#1", Node: nodeID, URL: slow.URL, MaxOngoingRequests: 1}}},
		{Prefix: "/empty", App: "idle", Deployment: "None", MaxQueuedRequests: -1, RequestTimeout: 200 * time.Millisecond,
			Replicas: []proxy.Replica{}},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	v, err := routes.Put(context.Background(), client, c.head.APIURL(), token, table)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for node.ServeRoutesVersion() != v {
		if time.Now().After(deadline) {
			t.Fatalf("node applied version %d, want %d within 10s", node.ServeRoutesVersion(), v)
		}
		time.Sleep(10 * time.Millisecond)
	}
	send := func(method, path string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(""))
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/fast", 200}, {"GET", "/fast/a/b?q=1", 200}, {"GET", "/fast/c", 200},
		{"POST", "/fast/items", 200}, {"BREW", "/fast/pot", 200},
		{"GET", "/nowhere/x", 404}, {"GET", "/empty/x", 503}, {"GET", "/-/healthz", 200},
	} {
		if got := send(r.method, r.path); got != r.want {
			t.Fatalf("%s %s: %d, want %d", r.method, r.path, got, r.want)
		}
	}

	// Two requests on a replica that takes one at a time: one ongoing,
	// one queued, as the head's scrape reads them from the node's proxy.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if got := send("GET", "/slow"); got != 200 {
				t.Errorf("GET /slow: %d", got)
			}
		})
	}
	slowLabels := map[string]string{"node_id": nodeID, "application": "shop", "deployment": "Slow"}
	deadline = time.Now().Add(10 * time.Second)
	for {
		mfs := headMetrics(t, c)
		on, _ := value(mfs, raylet.MetricServeOngoing, slowLabels)
		q, _ := value(mfs, raylet.MetricServeQueued, slowLabels)
		if on == 1 && q == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ongoing %v, queued %v for shop/Slow on node %s; want 1 and 1", on, q, nodeID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	free()
	wg.Wait()

	mfs := headMetrics(t, c)
	type want struct {
		metric string
		labels map[string]string
		value  float64
	}
	lbl := func(kv ...string) map[string]string {
		m := map[string]string{"node_id": nodeID}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, w := range []want{
		{raylet.MetricServeRequests, lbl("application", "shop", "deployment", "Cart", "route", "/fast", "method", "GET", "status_code", "200"), 3},
		{raylet.MetricServeRequests, lbl("application", "shop", "deployment", "Cart", "route", "/fast", "method", "POST", "status_code", "200"), 1},
		{raylet.MetricServeRequests, lbl("application", "shop", "deployment", "Cart", "route", "/fast", "method", "OTHER", "status_code", "200"), 1},
		{raylet.MetricServeRequests, lbl("application", "", "deployment", "", "route", "", "method", "GET", "status_code", "404"), 1},
		{raylet.MetricServeRequests, lbl("application", "idle", "deployment", "None", "route", "/empty", "method", "GET", "status_code", "503"), 1},
		{raylet.MetricServeRequests, lbl("application", "shop", "deployment", "Slow", "route", "/slow", "method", "GET", "status_code", "200"), 2},
		{raylet.MetricServeErrors, lbl("route", "", "method", "GET", "error_code", "404"), 1},
		{raylet.MetricServeErrors, lbl("application", "idle", "route", "/empty", "method", "GET", "error_code", "503"), 1},
		{raylet.MetricServeLatency, lbl("application", "shop", "deployment", "Cart", "route", "/fast"), 5},
		{raylet.MetricServeLatency, lbl("application", "shop", "deployment", "Slow", "route", "/slow"), 2},
		{raylet.MetricServeOngoing, lbl("application", "shop", "deployment", "Slow"), 0},
		{raylet.MetricServeQueued, lbl("application", "shop", "deployment", "Slow"), 0},
		{raylet.MetricServeOngoing, lbl("application", "shop", "deployment", "Cart"), 0},
	} {
		got, ok := value(mfs, w.metric, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (found %v), want %v", w.metric, w.labels, got, ok, w.value)
		}
	}
	// Only errors are in the error counter; the health check is in none.
	if got, ok := value(mfs, raylet.MetricServeErrors, lbl("error_code", "200")); ok {
		t.Errorf("a 200 counted as an error: %v", got)
	}
	for _, m := range mfs[raylet.MetricServeRequests].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && strings.Contains(l.GetValue(), "healthz") || l.GetName() == "route" && strings.Contains(l.GetValue(), "/a/") {
				t.Errorf("a series with route %q: routes are prefixes only", l.GetValue())
			}
		}
	}
	// The histogram has Ray's buckets, in milliseconds (and +Inf).
	for _, m := range mfs[raylet.MetricServeLatency].GetMetric() {
		b := m.GetHistogram().GetBucket()
		if len(b) != len(raylet.ServeLatencyBucketsMs)+1 || b[0].GetUpperBound() != 1 || b[len(b)-2].GetUpperBound() != 600000 {
			t.Fatalf("latency buckets %v, want Ray's %v", b, raylet.ServeLatencyBucketsMs)
		}
		break
	}
	// The head's own proxy served nothing, and reports no request.
	headID := c.head.Raylet().NodeID().String()
	if got, ok := value(mfs, raylet.MetricServeRequests, map[string]string{"node_id": headID}); ok {
		t.Errorf("the head's proxy reports %v requests; it served none", got)
	}
}
