package raylet_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/routes"
)

// grpcReplica answers UnaryCall with its name (ServerId) and the token
// metadata it got (Username).
type grpcReplica struct {
	testgrpc.UnimplementedTestServiceServer
	name string
}

func (g *grpcReplica) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	res := &testgrpc.SimpleResponse{ServerId: g.name}
	if v := md.Get(raylet.ServeTokenMetadata); len(v) > 0 {
		res.Username = v[0]
	}
	return res, nil
}

// TestServeGRPCFollowsHeadTable: a node daemon started with
// ServeGRPCPort runs the gRPC proxy beside the HTTP one; a table PUT on
// the head reaches it through the HTTP proxy's follower, and a call
// naming the application reaches the replica with the upstream token.
func TestServeGRPCFollowsHeadTable(t *testing.T) {
	c := startClusterWith(t, func(rc *raylet.Config) { rc.ServePort, rc.ServeGRPCPort = 0, 0 },
		resources.Set{resources.CPU: 1}, resources.Set{resources.CPU: 1})
	node := c.nodes[1]
	addr := node.ServeGRPCAddress()
	if addr == "" {
		t.Fatal("the node runs no gRPC proxy")
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, &grpcReplica{name: "replica-a"})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	defer func() { srv.Stop(); <-done }()

	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hc := healthgrpc.NewHealthClient(cc)
	if res, err := hc.Check(ctx, &healthgrpc.HealthCheckRequest{}); err != nil || res.Status != healthgrpc.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health before a table: %v %v, want NOT_SERVING", res, err)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	v, err := routes.Put(ctx, client, c.head.APIURL(), token, []proxy.Route{{Prefix: "/shop", App: "shop", Deployment: "Cart",
		Replicas: []proxy.Replica{{ID: "Cart#1", Node: node.NodeID().String(), URL: "http://" + lis.Addr().String()}}}})
	if err != nil {
		t.Fatal(err)
	}
	for node.ServeRoutesVersion() != v {
		if ctx.Err() != nil {
			t.Fatalf("node applied version %d, want %d", node.ServeRoutesVersion(), v)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if res, err := hc.Check(ctx, &healthgrpc.HealthCheckRequest{}); err != nil || res.Status != healthgrpc.HealthCheckResponse_SERVING {
		t.Fatalf("health with a table: %v %v, want SERVING", res, err)
	}
	res, err := testgrpc.NewTestServiceClient(cc).UnaryCall(metadata.AppendToOutgoingContext(ctx, "application", "shop"), &testgrpc.SimpleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ServerId != "replica-a" || res.Username != raylet.ServeUpstreamToken(token) {
		t.Fatalf("replica %q got token %q, want replica-a with the upstream token", res.ServerId, res.Username)
	}
	// The call is counted on the node's registry, merged into the head's
	// /metrics.
	fams := headMetrics(t, c)
	f := fams[raylet.MetricServeGRPCRequests]
	counted := 0.0
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["application"] == "shop" && labels["deployment"] == "Cart" && labels["status_code"] == "OK" {
			counted += m.GetCounter().GetValue()
		}
	}
	if counted != 1 {
		t.Errorf("%s{shop,Cart,OK} = %v, want 1 (family: %v)", raylet.MetricServeGRPCRequests, counted, f)
	}
	if h := fams[raylet.MetricServeGRPCLatency]; h == nil || len(h.GetMetric()) == 0 || h.GetMetric()[0].GetHistogram().GetSampleCount() != 1 {
		t.Errorf("%s: %v, want one sample", raylet.MetricServeGRPCLatency, h)
	}
}
