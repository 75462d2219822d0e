package routes_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/routes"
)

// BenchmarkSet: the controller's Set of a 20-route table of 10 replicas
// each (validated with the proxy's rules, copied, waiters woken).
func BenchmarkSet(b *testing.B) {
	var tables [2][]proxy.Route
	for k := range tables {
		for i := range 20 {
			rt := proxy.Route{Prefix: fmt.Sprintf("/app%d", i), App: fmt.Sprint("app", i), Deployment: "d"}
			for j := range 10 {
				rt.Replicas = append(rt.Replicas, proxy.Replica{ID: fmt.Sprint("r", j), Node: "n", URL: fmt.Sprintf("http://10.0.%d.%d:8000", k, j)})
			}
			tables[k] = append(tables[k], rt)
		}
	}
	tb := routes.NewTable()
	defer tb.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := tb.Set(tables[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetChanged: a poll answered at once (the follower behind).
func BenchmarkGetChanged(b *testing.B) {
	tb := routes.NewTable()
	defer tb.Close()
	if _, err := tb.Set(nil); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tb.Get(ctx, 0, routes.DefaultWait); err != nil {
			b.Fatal(err)
		}
	}
}
