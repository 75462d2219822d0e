package metrics_test

import (
	"net/http"
	"testing"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
)

// BenchmarkScrape measures one GET /metrics on a local cluster after a
// few tasks (target: under 50 ms): the head's node alone (read in
// process), and with two more node daemons (asked over gRPC).
func BenchmarkScrape(b *testing.B) {
	for _, extra := range []int{0, 2} {
		name := map[int]string{0: "1node", 2: "3nodes"}[extra]
		b.Run(name, func(b *testing.B) {
			h := startHead(b, false)
			for range extra {
				rc := raylet.DefaultConfig()
				rc.GCSAddress, rc.Token = h.GCSAddress(), clusterToken
				rc.Resources = resources.Set{"CPU": 1}
				rc.SessionDir = b.TempDir()
				r, err := raylet.Start(rc)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(r.Stop)
			}
			runTasks(b, h, 10)
			tok := readToken(b, h, "bench")
			var size int
			b.ResetTimer()
			for b.Loop() {
				code, body := scrape(b, h, tok)
				if code != http.StatusOK {
					b.Fatalf("GET /metrics: %d %s", code, body)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes/scrape")
		})
	}
}
