package grpcproxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/serve/controller"
)

// The end-to-end test's replicas are this test binary, re-executed by a
// node daemon as a command deployment's program with replicaEnv set: a
// Go gRPC server on $PORT serving grpc.testing.TestService, refusing
// calls without the proxy's token (expected in tokenEnv).
const (
	replicaEnv = "RAYGO_GRPCPROXY_TEST_REPLICA"
	tokenEnv   = "RAYGO_GRPCPROXY_TEST_TOKEN"
)

// replicaMain runs the replica program until SIGTERM.
func replicaMain() {
	want := os.Getenv(tokenEnv)
	lis, err := net.Listen("tcp", net.JoinHostPort(os.Getenv(raylet.EnvServeHost), os.Getenv(raylet.DefaultPortEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		os.Exit(1)
	}
	checkToken := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get(raylet.ServeTokenMetadata); len(got) != 1 || got[0] != want {
			return status.Errorf(codes.Unauthenticated, "replica: missing or wrong %s", raylet.ServeTokenMetadata)
		}
		return nil
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := checkToken(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := checkToken(ss.Context()); err != nil {
				return err
			}
			return h(srv, ss)
		}))
	r := &replica{name: os.Getenv(raylet.EnvServeReplica), started: make(chan struct{}, 1024),
		release: make(chan struct{}), canceled: make(chan error, 1024)}
	close(r.release) // nothing blocks here
	testgrpc.RegisterTestServiceServer(srv, &testService{r: r})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; srv.GracefulStop() }()
	_ = srv.Serve(lis)
}

const e2eToken = "grpc-ingress-e2e-token-0123456789abcdef"

// TestGRPCIngressEndToEnd: a head whose node runs the gRPC proxy
// (ServeGRPCPort, `raygo start --serve-grpc-port`), an application of a
// command deployment whose replicas are Go gRPC servers, and calls
// through the node's gRPC proxy naming the application: unary and
// streaming, spread over both replicas, with the upstream token; an
// unknown application refused naming the deployed one.
func TestGRPCIngressEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a head and replica processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{resources.CPU: 4, resources.Memory: 4 << 30}
	rc.SessionDir = t.TempDir()
	rc.ServePort = 0
	rc.ServeGRPCPort = 0
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: e2eToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	grpcAddr := h.Raylet().ServeGRPCAddress()
	if grpcAddr == "" {
		t.Fatal("the head's node runs no gRPC proxy")
	}

	cfg := fmt.Sprintf(`applications:
  - name: greeter
    route_prefix: /greeter
    runtime_env:
      env_vars: {%s: "1", %s: %q}
    deployments:
      - name: grpc
        command: [%q, "-test.run=^$"]
        num_replicas: 2
        graceful_shutdown_timeout_s: 2
        ray_actor_options: {num_cpus: 0.5}
`, replicaEnv, tokenEnv, raylet.ServeUpstreamToken(e2eToken), exe)
	apiCall(t, "PUT", h.APIURL()+controller.ApplicationsPath, cfg)

	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "application", "greeter")

	// Both replicas answer once they are up and routed.
	seen := map[string]bool{}
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for len(seen) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("replicas answering through the gRPC proxy: %v; last error: %v", seen, last)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := client.UnaryCall(cctx, &testgrpc.SimpleRequest{Payload: payload("hello")})
		cancel()
		if err != nil {
			last = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if string(res.Payload.Body) != "hello" || res.Hostname != "greeter" {
			t.Fatalf("answer %v", res)
		}
		seen[res.ServerId] = true
	}

	// Streaming both ways through the proxy.
	bidi, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		msg := fmt.Sprint("m", i)
		if err := bidi.Send(&testgrpc.StreamingOutputCallRequest{Payload: payload(msg)}); err != nil {
			t.Fatal(err)
		}
		if m, err := bidi.Recv(); err != nil || string(m.Payload.Body) != msg {
			t.Fatalf("echo %d: %v %v", i, m, err)
		}
	}
	_ = bidi.CloseSend()
	if _, err := bidi.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}

	// One application: no metadata needed; an unknown one is refused.
	if _, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("without application metadata: %v", err)
	}
	_, err = client.UnaryCall(metadata.AppendToOutgoingContext(context.Background(), "application", "nope"), &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.NotFound, `application "nope" not found (applications: greeter)`)

	apiCall(t, "DELETE", h.APIURL()+controller.ApplicationsPath, "")
}

func apiCall(t *testing.T, method, url, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, url, res.Status, b)
	}
}
