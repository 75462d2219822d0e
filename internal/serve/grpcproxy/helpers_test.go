package grpcproxy_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/raygo/raygo/internal/serve/grpcproxy"
	"github.com/raygo/raygo/internal/serve/proxy"
)

const tokenKey = "x-raygo-token"

// replica is a real gRPC server serving grpc.testing.TestService, as a
// command deployment's replica would serve the user's services.
type replica struct {
	name string
	url  string
	srv  *grpc.Server

	started  chan struct{} // a "block" call began
	release  chan struct{} // closed to let "block" calls finish
	canceled chan error    // a "block" call's context ended first: its error
}

func startReplica(t *testing.T, name string) *replica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, url: "http://" + lis.Addr().String(), srv: grpc.NewServer(),
		started: make(chan struct{}, 16), release: make(chan struct{}), canceled: make(chan error, 16)}
	testgrpc.RegisterTestServiceServer(r.srv, &testService{r: r})
	done := make(chan struct{})
	go func() { defer close(done); _ = r.srv.Serve(lis) }()
	t.Cleanup(func() {
		r.unblock()
		r.srv.Stop()
		<-done
	})
	return r
}

var unblockMu sync.Mutex

func (r *replica) unblock() {
	unblockMu.Lock()
	defer unblockMu.Unlock()
	select {
	case <-r.release:
	default:
		close(r.release)
	}
}

type testService struct {
	testgrpc.UnimplementedTestServiceServer
	r *replica
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// UnaryCall echoes the payload and tells who answered (ServerId), the
// token (Username), the request id (OauthScope) and the application
// metadata (Hostname). Payload bodies "block" and "deadline" wait for
// release and report the deadline; ResponseStatus is returned as the
// call's status.
func (s *testService) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	_ = grpc.SetHeader(ctx, metadata.Pairs("replica", s.r.name, grpcproxy.MetadataRequestID, "the-replica-s-own"))
	if st := req.GetResponseStatus(); st != nil {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("replica-trailer", s.r.name))
		return nil, status.Error(codes.Code(st.Code), st.Message)
	}
	res := &testgrpc.SimpleResponse{Payload: req.GetPayload(), ServerId: s.r.name, Username: first(md, tokenKey),
		OauthScope: first(md, grpcproxy.MetadataRequestID), Hostname: first(md, grpcproxy.MetadataApplication)}
	switch string(req.GetPayload().GetBody()) {
	case "block":
		s.r.started <- struct{}{}
		select {
		case <-s.r.release:
		case <-ctx.Done():
			s.r.canceled <- ctx.Err()
			return nil, ctx.Err()
		}
	case "deadline":
		res.Username = "none"
		if d, ok := ctx.Deadline(); ok {
			res.Username = strconv.FormatInt(time.Until(d).Milliseconds(), 10)
		}
	}
	return res, nil
}

// StreamingOutputCall sends one message per ResponseParameters, of its
// size, then the ResponseStatus if any.
func (s *testService) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range req.GetResponseParameters() {
		body := make([]byte, p.GetSize())
		copy(body, s.r.name)
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: body}}); err != nil {
			return err
		}
	}
	if rs := req.GetResponseStatus(); rs != nil {
		return status.Error(codes.Code(rs.Code), rs.Message)
	}
	return nil
}

// StreamingInputCall sums the sizes of the payloads received.
func (s *testService) StreamingInputCall(st grpc.ClientStreamingServer[testgrpc.StreamingInputCallRequest, testgrpc.StreamingInputCallResponse]) error {
	n := 0
	for {
		req, err := st.Recv()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			return st.SendAndClose(&testgrpc.StreamingInputCallResponse{AggregatedPayloadSize: int32(n)})
		}
		n += len(req.GetPayload().GetBody())
	}
}

// FullDuplexCall echoes every message's payload as it arrives.
func (s *testService) FullDuplexCall(st grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	for {
		req, err := st.Recv()
		if err != nil {
			if status.Code(err) == codes.Canceled {
				return err
			}
			return nil
		}
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// front is a Proxy served by a grpc.Server on loopback, and a client of
// it.
type front struct {
	p      *grpcproxy.Proxy
	addr   string
	client testgrpc.TestServiceClient
	cc     *grpc.ClientConn
}

func startProxy(t *testing.T, opts grpcproxy.Options) *front {
	t.Helper()
	p, err := grpcproxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := p.NewServer()
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		s.Stop()
		<-done
		p.Close()
	})
	return &front{p: p, addr: lis.Addr().String(), client: testgrpc.NewTestServiceClient(cc), cc: cc}
}

func route(app string, reps ...*replica) proxy.Route {
	rt := proxy.Route{Prefix: "/" + app, App: app, Deployment: app + "-dep", Replicas: []proxy.Replica{}}
	for _, r := range reps {
		rt.Replicas = append(rt.Replicas, proxy.Replica{ID: r.name, Node: "n1", URL: r.url})
	}
	return rt
}

func setRoutes(t *testing.T, f *front, rs ...proxy.Route) {
	t.Helper()
	if err := f.p.SetRoutes(rs); err != nil {
		t.Fatal(err)
	}
}

func withApp(ctx context.Context, app string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, grpcproxy.MetadataApplication, app)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func payload(s string) *testgrpc.Payload { return &testgrpc.Payload{Body: []byte(s)} }

// eventually polls cond every 5 ms for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wantCode(t *testing.T, err error, code codes.Code, contains ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Fatalf("status %v %q, want %v", st.Code(), st.Message(), code)
	}
	for _, c := range contains {
		if !strings.Contains(st.Message(), c) {
			t.Fatalf("message %q does not contain %q", st.Message(), c)
		}
	}
}
