//go:build !windows

package mcphost_test

import (
	"context"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/mcphost/hostspec"
	"github.com/raygo/raygo/internal/mcptest"
)

// BenchmarkHostedCall measures a tools/call of mcp-server-everything's
// echo, side by side in one run: straight over the server's stdio
// (direct), and through the head's gateway to a hosted replica of the
// same server (gateway), both with the Go SDK's client. p50-µs and
// p99-µs are each side's latency; the difference of the p50s is what the
// gateway adds (target: ≤ 1 ms).
//
//	go test -run '^$' -bench HostedCall -benchtime 2000x ./internal/mcphost/
func BenchmarkHostedCall(b *testing.B) {
	mcptest.Dir(b)
	everything := mcptest.Bin(b, "mcp-server-everything")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, c := startHead(b)
	if _, err := c.HostMCPServer(ctx, hostspec.Spec{Name: "everything", Command: []string{everything}, Replicas: 1}); err != nil {
		b.Fatal(err)
	}
	waitServerReady(b, ctx, c, "everything", 1)

	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	direct, err := client.Connect(ctx, &mcp.CommandTransport{Command: exec.Command(everything)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer direct.Close()
	hc := &http.Client{Transport: headerRT{"Bearer " + h.Token()}}
	gw, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: h.APIURL() + hostspec.GatewayPath("everything"), HTTPClient: hc}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer gw.Close()
	for _, side := range []struct {
		name string
		cs   *mcp.ClientSession
	}{{"direct", direct}, {"gateway", gw}} {
		b.Run(side.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			p := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "ping"}}
			for range 50 { // warm up
				if _, err := side.cs.CallTool(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if _, err := side.cs.CallTool(ctx, p); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

type headerRT struct{ auth string }

func (h headerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", h.auth)
	return http.DefaultTransport.RoundTrip(r)
}
