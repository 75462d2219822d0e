package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

const token = "secret-token"

// serve runs srv on a fresh loopback port until the test ends.
func serve(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// serveGCS serves a real control store behind rpc.NewServer(token).
func serveGCS(t *testing.T) string {
	t.Helper()
	pool := rpc.NewPool(token)
	g := gcs.New(gcs.DefaultConfig(), pool)
	srv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(srv, g)
	addr := serve(t, srv)
	t.Cleanup(func() { g.Close(); pool.Close() })
	return addr
}

func dial(t *testing.T, addr, tok string) pb.ControlStoreClient {
	t.Helper()
	conn, err := rpc.Dial(addr, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewControlStoreClient(conn)
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestTokenAuthentication(t *testing.T) {
	addr := serveGCS(t)
	put := &pb.KVPutRequest{Key: "k", Value: []byte("v")}

	for _, tok := range []string{"wrong", ""} {
		_, err := dial(t, addr, tok).KVPut(ctx(t), put)
		if !errors.Is(err, errs.ErrUnauthenticated) {
			t.Fatalf("token %q: err = %v, want ErrUnauthenticated", tok, err)
		}
	}

	// A plain gRPC client, which does not run the token exchange, never
	// gets a connection: unary calls and streams alike.
	raw, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, err = pb.NewControlStoreClient(raw).KVPut(ctx(t), put)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("no token: err = %v, want Unavailable", err)
	}
	stream, err := pb.NewControlStoreClient(raw).GetBinary(ctx(t), &pb.GetBinaryRequest{Hash: "h"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("no token on a stream: err = %v, want Unavailable", err)
	}

	good := dial(t, addr, token)
	if _, err := good.KVPut(ctx(t), put); err != nil {
		t.Fatalf("right token: %v", err)
	}
	got, err := good.KVGet(ctx(t), &pb.KVGetRequest{Key: "k"})
	if err != nil || !got.GetFound() || string(got.GetValue()) != "v" {
		t.Fatalf("KVGet = %v, %v", got, err)
	}
}

// errorStore answers KVGet with the error named by the key.
type errorStore struct {
	pb.UnimplementedControlStoreServer
	errs map[string]error
}

func (s *errorStore) KVGet(_ context.Context, req *pb.KVGetRequest) (*pb.KVGetReply, error) {
	return &pb.KVGetReply{Found: true}, s.errs[req.GetKey()]
}

func TestHandlerErrorsArriveTyped(t *testing.T) {
	infeasible := &errs.InfeasibleError{Function: "f", Request: "{CPU: 100}", Cluster: "{CPU: 2}"}
	died := &errs.ActorDiedError{ActorID: "a", Name: "counter", Reason: "killed"}
	tests := []struct {
		key   string
		err   error
		check func(error) bool
	}{
		{"none", nil, func(err error) bool { return err == nil }},
		{"notfound", errs.NotFoundf("no such thing"), func(err error) bool {
			var st *errs.Status
			return errors.As(err, &st) && errors.Is(err, errs.ErrNotFound) && st.Message == "no such thing"
		}},
		{"infeasible", infeasible, func(err error) bool {
			var ie *errs.InfeasibleError
			return errors.As(err, &ie) && *ie == *infeasible
		}},
		{"wrapped", fmt.Errorf("context: %w", died), func(err error) bool {
			var ad *errs.ActorDiedError
			return errors.As(err, &ad) && *ad == *died
		}},
		{"plain", errors.New("disk on fire"), func(err error) bool {
			return errors.Is(err, errs.ErrSystem) && err.Error() == "disk on fire"
		}},
		{"deadline", context.DeadlineExceeded, func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"canceled", fmt.Errorf("stop: %w", context.Canceled), func(err error) bool { return errors.Is(err, context.Canceled) }},
		{"timeout", errs.Timeoutf("Get timed out"), func(err error) bool {
			return errors.Is(err, context.DeadlineExceeded) && errors.Is(err, errs.ErrTimeout) && err.Error() == "Get timed out"
		}},
		{"cancelled task", &errs.CancelledError{Function: "f", TaskID: "t"}, func(err error) bool {
			var ce *errs.CancelledError
			return errors.As(err, &ce) && ce.Function == "f" && errors.Is(err, context.Canceled)
		}},
		{"unavailable", fmt.Errorf("%w: node gone", errs.ErrUnavailable), func(err error) bool {
			return rpc.IsUnavailable(err) && err.Error() == "raygo: unavailable: node gone"
		}},
		{"status", status.Error(codes.Unavailable, "down"), rpc.IsUnavailable},
	}
	store := &errorStore{errs: map[string]error{}}
	for _, tt := range tests {
		store.errs[tt.key] = tt.err
	}
	srv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(srv, store)
	c := dial(t, serve(t, srv), token)
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := c.KVGet(ctx(t), &pb.KVGetRequest{Key: tt.key})
			if !tt.check(err) {
				t.Fatalf("got %T %v", err, err)
			}
		})
	}
}

func TestToStatusCodes(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
	}{
		{errs.Invalidf("x"), codes.InvalidArgument},
		{&errs.ArgumentError{Function: "f"}, codes.InvalidArgument},
		{errs.NotFoundf("x"), codes.NotFound},
		{fmt.Errorf("%w: job", errs.ErrNotFound), codes.NotFound},
		{&errs.NotRegisteredError{Name: "f"}, codes.NotFound},
		{errs.AlreadyExistsf("x"), codes.AlreadyExists},
		{&errs.InfeasibleError{}, codes.ResourceExhausted},
		{&errs.ObjectStoreFullError{Kind: errs.KindObjectStoreFull}, codes.ResourceExhausted},
		{&errs.TaskError{Function: "f"}, codes.FailedPrecondition},
		{&errs.WorkerStartupError{}, codes.FailedPrecondition},
		{&errs.NodeDiedError{}, codes.FailedPrecondition},
		{&errs.ObjectError{Kind: errs.KindObjectLost}, codes.FailedPrecondition},
		{&errs.CancelledError{Function: "f"}, codes.Canceled},
		{errs.Timeoutf("x"), codes.DeadlineExceeded},
		{fmt.Errorf("%w: x", errs.ErrUnavailable), codes.Unavailable},
		{fmt.Errorf("%w: x", errs.ErrUnauthenticated), codes.Unauthenticated},
		{errs.Systemf("x"), codes.Internal},
		{errors.New("x"), codes.Internal},
		{context.Canceled, codes.Canceled},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{status.Error(codes.Aborted, "x"), codes.Aborted},
	}
	for _, tt := range tests {
		got := rpc.ToStatus(tt.err)
		if status.Code(got) != tt.code {
			t.Errorf("ToStatus(%T %v) code = %v, want %v", tt.err, tt.err, status.Code(got), tt.code)
		}
		if _, isStatus := status.FromError(tt.err); !isStatus {
			if k := errs.ToInfo(tt.err).GetKind(); errs.Code(k) != tt.code {
				t.Errorf("%v: the table gives kind %v code %v, ToStatus %v", tt.err, k, errs.Code(k), tt.code)
			}
		}
	}
	if rpc.ToStatus(nil) != nil || rpc.FromStatus(nil) != nil {
		t.Fatal("nil must pass through")
	}
	plain := errors.New("not a status")
	if rpc.FromStatus(plain) != plain {
		t.Fatal("FromStatus changed a non-status error")
	}
}

// TestBareStatuses: statuses without an ErrorInfo (from gRPC itself or an
// interceptor) come back as the table's errors for their code.
func TestBareStatuses(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error
	}{
		{codes.Canceled, context.Canceled},
		{codes.DeadlineExceeded, context.DeadlineExceeded},
		{codes.Unauthenticated, errs.ErrUnauthenticated},
		{codes.Unavailable, errs.ErrUnavailable},
	}
	for _, tt := range tests {
		if got := rpc.FromStatus(status.Error(tt.code, "m")); !errors.Is(got, tt.want) {
			t.Errorf("FromStatus(bare %v) = %#v, want %v", tt.code, got, tt.want)
		}
	}
	aborted := status.Error(codes.Aborted, "m")
	if got := rpc.FromStatus(aborted); got != aborted {
		t.Errorf("FromStatus(bare Aborted) = %#v, want the status unchanged", got)
	}
}

func TestDialRejectsMalformedAddress(t *testing.T) {
	for _, addr := range []string{"", "localhost", "127.0.0.1", "a:b:c"} {
		conn, err := rpc.Dial(addr, token)
		if err == nil {
			conn.Close()
			t.Errorf("Dial(%q) succeeded", addr)
			continue
		}
		if !errors.Is(err, errs.ErrInvalidRequest) {
			t.Errorf("Dial(%q) err = %v, want ErrInvalidRequest", addr, err)
		}
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	_, err := dial(t, closedAddr(t), token).KVGet(ctx(t), &pb.KVGetRequest{Key: "k"})
	if err == nil || !rpc.IsUnavailable(err) || !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if rpc.IsUnavailable(errs.NotFoundf("x")) || rpc.IsUnavailable(nil) {
		t.Fatal("IsUnavailable true for a reachable peer's error")
	}
}

func TestPool(t *testing.T) {
	addr := serveGCS(t)
	other := closedAddr(t)
	p := rpc.NewPool(token)
	defer p.Close()

	a1, err := p.Get(addr)
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := p.Get(addr)
	b, _ := p.Get(other)
	if a1 != a2 {
		t.Fatal("Get returned two connections for one address")
	}
	if a1 == b {
		t.Fatal("Get returned one connection for two addresses")
	}
	if _, err := pb.NewControlStoreClient(a1).KVGet(ctx(t), &pb.KVGetRequest{Key: "k"}); err != nil {
		t.Fatalf("pooled conn carries no token? %v", err)
	}
	if _, err := p.Get("no-port"); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("Get(malformed) err = %v", err)
	}

	p.Drop(addr)
	if a1.GetState() != connectivity.Shutdown {
		t.Fatalf("dropped conn state = %v, want Shutdown", a1.GetState())
	}
	a3, _ := p.Get(addr)
	if a3 == a1 {
		t.Fatal("Get after Drop returned the closed connection")
	}
	p.Drop("never-dialed:1") // harmless

	p.Close()
	for _, c := range []*grpc.ClientConn{a3, b} {
		if c.GetState() != connectivity.Shutdown {
			t.Fatalf("conn state after Close = %v, want Shutdown", c.GetState())
		}
	}
	if a4, err := p.Get(addr); err != nil || a4 == a3 {
		t.Fatalf("Get after Close = %v, %v; want a fresh connection", a4, err)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:80", true},
		{"127.1.2.3:80", true},
		{"localhost:80", true},
		{"[::1]:80", true},
		{"0.0.0.0:80", false},
		{"10.0.0.1:80", false},
		{":80", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := rpc.IsLoopback(tt.addr); got != tt.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
