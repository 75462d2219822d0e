package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// The targets, measured side by side: the same trivial handler
// served by net/http directly, and behind the proxy with one replica,
// each driven by a keep-alive client over loopback.
//
//	go test -run '^$' -bench 'Direct|Proxy' -benchtime 3s ./internal/serve/proxy/
//
// "serial" is one request at a time (latency: the proxy's added p50 is
// Proxy/serial p50 − Direct/serial p50); "parallel" is benchParallelism
// clients per CPU (throughput: Proxy req/s ÷ Direct req/s). Client,
// proxy and replica share one process here; TestProxyThroughputProcesses
// (procbench_test.go) measures the same with each in its own process.

const benchParallelism = 4

func trivialHandler(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

func BenchmarkDirect(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(trivialHandler))
	defer srv.Close()
	benchTargets(b, srv.URL+"/app/x")
}

func BenchmarkProxy(b *testing.B) {
	rep := httptest.NewServer(http.HandlerFunc(trivialHandler))
	defer rep.Close()
	p, err := New(Options{NodeID: "n1"})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.SetRoutes([]Route{{Prefix: "/app", App: "a", Deployment: "d",
		Replicas: []Replica{{ID: "r1", Node: "n1", URL: rep.URL, MaxOngoingRequests: 1000}}}}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	benchTargets(b, srv.URL+"/app/x")
}

func benchTargets(b *testing.B, url string) {
	b.Run("serial", func(b *testing.B) { benchRequests(b, url, false) })
	b.Run("parallel", func(b *testing.B) { benchRequests(b, url, true) })
}

// benchRequests sends b.N GETs to url and reports requests/s and the
// median latency.
func benchRequests(b *testing.B, url string, parallel bool) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	one := func(lat *[]time.Duration) {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			panic(resp.Status)
		}
		*lat = append(*lat, time.Since(start))
	}
	var mu sync.Mutex
	var all []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if parallel {
		b.SetParallelism(benchParallelism)
		b.RunParallel(func(pb *testing.PB) {
			lat := make([]time.Duration, 0, 1024)
			for pb.Next() {
				one(&lat)
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
	} else {
		all = make([]time.Duration, 0, b.N)
		for range b.N {
			one(&all)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100])/1e3, "p99-µs")
}
