//go:build !windows

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
)

type hello struct{}

// Hello is the throughput target: a Go deployment with one replica
// answering a short body.
var Hello = serve.NewDeployment("Hello", func(context.Context) (*hello, error) { return &hello{}, nil },
	serve.NumReplicas(1), serve.NumCPUs(0.1), serve.MaxOngoingRequests(100))

func (*hello) ServeHTTP(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }

// TestGoReplicaThroughput measures the target, in one run and
// side by side: requests/s and p50 of a Go deployment's replica called
// through a node's proxy, against the same replica's net/http listener
// called directly (with the proxies' token). The replica runs in its own
// worker process; the client and the proxy (the embedded head's node) in
// this one. Set RAYGO_SERVE_THROUGHPUT=1 to run it (about 40 s).
func TestGoReplicaThroughput(t *testing.T) {
	if os.Getenv("RAYGO_SERVE_THROUGHPUT") == "" {
		t.Skip("set RAYGO_SERVE_THROUGHPUT=1 to measure")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.ServePort(0), ray.LogWorkers(false)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	if err := serve.Run(ctx, serve.NewApplication("hello", Hello)); err != nil {
		t.Fatal(err)
	}
	st, err := serve.GetStatus(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := ray.ClusterAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxied := st.URLs[0]
	direct := "http://" + st.Deployments[0].Replicas[0].HostPort + "/hello"
	hdr := http.Header{goapp.TokenHeader: {raylet.ServeUpstreamToken(token)}}
	for _, clients := range []int{1, 8} {
		for round := range 3 {
			d := measure(t, direct, hdr, clients, 3*time.Second)
			p := measure(t, proxied, nil, clients, 3*time.Second)
			t.Logf("%d clients, round %d: direct %.0f req/s p50 %v, proxied %.0f req/s p50 %v: %.2fx, +%v p50",
				clients, round, d.rate, d.p50, p.rate, p.p50, p.rate/d.rate, (p.p50 - d.p50).Round(time.Microsecond))
		}
	}
}

type figures struct {
	rate float64
	p50  time.Duration
}

func measure(t *testing.T, url string, hdr http.Header, clients int, d time.Duration) figures {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				for k, v := range hdr {
					req.Header[k] = v
				}
				began := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Error(fmt.Errorf("%s: %s", url, resp.Status))
					return
				}
				mine = append(mine, time.Since(began))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) == 0 {
		t.Fatal("no request answered")
	}
	return figures{rate: float64(len(lat)) / d.Seconds(), p50: lat[len(lat)/2]}
}
