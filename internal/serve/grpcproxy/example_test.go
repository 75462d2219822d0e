package grpcproxy_test

import (
	"log"
	"net"

	"github.com/raygo/raygo/internal/serve/grpcproxy"
	"github.com/raygo/raygo/internal/serve/proxy"
)

// A gRPC ingress for one application whose replica serves gRPC on
// 10.0.0.2:41233; clients call any of its methods on :9000 with the
// "application: shop" metadata (or none: it is the only application).
func Example() {
	p, err := grpcproxy.New(grpcproxy.Options{
		NodeID:           "node-1",
		UpstreamMetadata: map[string]string{"x-raygo-token": "…"},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := p.NewServer()
	if err := p.SetRoutes([]proxy.Route{{Prefix: "/shop", App: "shop", Deployment: "Cart",
		Replicas: []proxy.Replica{{ID: "Cart#1", Node: "node-2", URL: "http://10.0.0.2:41233"}}}}); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", ":9000")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	// … and when done:
	srv.GracefulStop()
	p.Close()
}
