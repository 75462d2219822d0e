//go:build !windows

package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
)

// greeter serves grpc.testing.TestService's UnaryCall: the request's
// payload back, and its process id as the server id.
type greeter struct {
	testgrpc.UnimplementedTestServiceServer
}

func (*greeter) RegisterGRPC(s *grpc.Server) { testgrpc.RegisterTestServiceServer(s, &greeter{}) }

func (*greeter) UnaryCall(ctx context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get("x-raygo-token")) > 0 {
		return nil, fmt.Errorf("the proxies' token reached the user's code")
	}
	return &testgrpc.SimpleResponse{Payload: in.GetPayload(), ServerId: strconv.Itoa(os.Getpid())}, nil
}

// Greeter is a Go deployment serving gRPC.
var Greeter = serve.NewDeployment("Greeter", func(context.Context) (*greeter, error) { return &greeter{}, nil },
	serve.NumReplicas(2), serve.NumCPUs(0.1))

// TestGoDeploymentServesGRPC: a Go deployment whose value registers gRPC
// services is reached through the node's gRPC proxy by the
// "application" metadata; both replicas answer.
func TestGoDeploymentServesGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	if err := ray.Init(ctx, ray.ServePort(0), ray.ServeGRPCPort(port)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	if err := serve.Run(ctx, serve.NewApplication("greeter", Greeter)); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	cctx := metadata.AppendToOutgoingContext(ctx, "application", "greeter")
	servers := map[string]bool{}
	for i := 0; len(servers) < 2; i++ {
		if i == 200 {
			t.Fatalf("200 calls reached replicas %v only", servers)
		}
		res, err := client.UnaryCall(cctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("hi")}})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.GetPayload().GetBody()) != "hi" {
			t.Fatalf("payload %q", res.GetPayload().GetBody())
		}
		servers[res.GetServerId()] = true
	}
	t.Logf("gRPC calls through the proxy reached both replicas: %v", servers)

	// The status names the node's gRPC proxy.
	base, token, err := ray.ClusterAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/serve/applications", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Proxies []struct {
			GRPCAddress string `json:"grpc_address"`
		} `json:"proxies"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.Proxies) != 1 || st.Proxies[0].GRPCAddress != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("status proxies %+v, want the gRPC proxy at 127.0.0.1:%d", st.Proxies, port)
	}
}
