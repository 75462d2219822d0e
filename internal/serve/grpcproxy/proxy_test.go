package grpcproxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/raygo/raygo/internal/serve/grpcproxy"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/router"
)

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		replicaMain()
		return
	}
	goleak.VerifyTestMain(m)
}

func TestRoutesByApplicationMetadata(t *testing.T) {
	a, b := startReplica(t, "a1"), startReplica(t, "b1")
	f := startProxy(t, grpcproxy.Options{})
	ctx := ctxT(t)

	_, err := f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.Unavailable, "routing table not received yet")

	setRoutes(t, f, route("alpha", a), route("beta", b))
	res, err := f.client.UnaryCall(withApp(ctx, "beta"), &testgrpc.SimpleRequest{Payload: payload("hi")})
	if err != nil {
		t.Fatal(err)
	}
	if res.ServerId != "b1" || string(res.Payload.Body) != "hi" || res.Hostname != "beta" {
		t.Fatalf("answered by %q with %q (application %q), want b1 with hi (beta)", res.ServerId, res.Payload.Body, res.Hostname)
	}
	_, err = f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.NotFound, `set the "application" metadata`, "alpha, beta")
	_, err = f.client.UnaryCall(withApp(ctx, "gamma"), &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.NotFound, `application "gamma" not found`, "alpha, beta")

	setRoutes(t, f, route("alpha", a))
	res, err = f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	if err != nil || res.ServerId != "a1" {
		t.Fatalf("the only application without metadata: %v %v, want a1", res, err)
	}
	setRoutes(t, f)
	_, err = f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.NotFound, "no applications are deployed")
}

func TestMetadataTokenAndRequestID(t *testing.T) {
	r := startReplica(t, "r1")
	f := startProxy(t, grpcproxy.Options{UpstreamMetadata: map[string]string{tokenKey: "the-token"}})
	setRoutes(t, f, route("app", r))
	ctx := metadata.AppendToOutgoingContext(ctxT(t), tokenKey, "forged", grpcproxy.MetadataRequestID, "req-42")

	var hdr metadata.MD
	res, err := f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if res.Username != "the-token" {
		t.Fatalf("replica got token %q, want the proxy's", res.Username)
	}
	if res.OauthScope != "req-42" || strings.Join(hdr.Get(grpcproxy.MetadataRequestID), ",") != "req-42" {
		t.Fatalf("request id: replica saw %q, client got %q; want req-42 both", res.OauthScope, hdr.Get(grpcproxy.MetadataRequestID))
	}
	if got := hdr.Get("replica"); len(got) != 1 || got[0] != "r1" {
		t.Fatalf("replica's header %q not passed on", got)
	}

	hdr = nil
	res, err = f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	ids := hdr.Get(grpcproxy.MetadataRequestID)
	if len(ids) != 1 || ids[0] != res.OauthScope || ids[0] == "" {
		t.Fatalf("generated request id: client %q, replica %q", ids, res.OauthScope)
	}
}

func TestStreamingBothWays(t *testing.T) {
	r := startReplica(t, "r1")
	f := startProxy(t, grpcproxy.Options{})
	setRoutes(t, f, route("app", r))
	ctx := ctxT(t)

	// Server streaming, a large message included.
	sizes := []int32{10, 1 << 20, 3}
	req := &testgrpc.StreamingOutputCallRequest{}
	for _, s := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: s})
	}
	out, err := f.client.StreamingOutputCall(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sizes {
		m, err := out.Recv()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if len(m.Payload.Body) != int(s) || !strings.HasPrefix(string(m.Payload.Body), "r1") {
			t.Fatalf("message %d: %d bytes, want %d from r1", i, len(m.Payload.Body), s)
		}
	}
	if _, err := out.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v, want EOF", err)
	}

	// Client streaming.
	in, err := f.client.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for i := range 50 {
		body := strings.Repeat("x", i*100)
		total += len(body)
		if err := in.Send(&testgrpc.StreamingInputCallRequest{Payload: payload(body)}); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := in.CloseAndRecv()
	if err != nil || int(sum.AggregatedPayloadSize) != total {
		t.Fatalf("client stream: %v %v, want %d bytes", sum, err, total)
	}

	// Bidirectional, in lock step: each reply comes before the next send.
	bidi, err := f.client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		msg := fmt.Sprint("ping ", i)
		if err := bidi.Send(&testgrpc.StreamingOutputCallRequest{Payload: payload(msg)}); err != nil {
			t.Fatal(err)
		}
		m, err := bidi.Recv()
		if err != nil || string(m.Payload.Body) != msg {
			t.Fatalf("echo %d: %v %v", i, m, err)
		}
	}
	if err := bidi.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := bidi.Recv(); err != io.EOF {
		t.Fatalf("end of bidi stream: %v, want EOF", err)
	}
	eventually(t, "no call in flight", func() bool { return f.p.Stats()[0].InFlight == 0 })
}

func TestReplicaStatusPassesUnchanged(t *testing.T) {
	r := startReplica(t, "r1")
	f := startProxy(t, grpcproxy.Options{})
	setRoutes(t, f, route("app", r))
	for _, code := range []codes.Code{codes.PermissionDenied, codes.Unavailable, codes.ResourceExhausted} {
		var tr metadata.MD
		_, err := f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(code), Message: "replica says no"}}, grpc.Trailer(&tr))
		wantCode(t, err, code)
		if msg := err.Error(); !strings.HasSuffix(msg, "desc = replica says no") {
			t.Fatalf("%v: message changed: %q", code, msg)
		}
		if got := tr.Get("replica-trailer"); len(got) != 1 || got[0] != "r1" {
			t.Fatalf("%v: replica's trailer %q not passed on", code, got)
		}
	}
	// After some messages of a stream too.
	out, err := f.client.StreamingOutputCall(ctxT(t), &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: []*testgrpc.ResponseParameters{{Size: 5}},
		ResponseStatus:     &testgrpc.EchoStatus{Code: int32(codes.Aborted), Message: "late failure"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Recv(); err != nil {
		t.Fatal(err)
	}
	_, err = out.Recv()
	wantCode(t, err, codes.Aborted, "late failure")
	// The replica is not avoided for its own errors.
	if q := f.p.Stats()[0].Replicas[0].QueueLen; q >= 0 {
		t.Fatalf("replica marked with queue length %d after its own statuses", q)
	}
}

func TestBackPressure(t *testing.T) {
	r := startReplica(t, "r1")
	f := startProxy(t, grpcproxy.Options{RetryAfter: 2 * time.Second})
	rt := route("app", r)
	rt.MaxQueuedRequests = 1
	rt.Replicas[0].MaxOngoingRequests = 1
	setRoutes(t, f, rt)
	ctx := ctxT(t)

	errs := make(chan error, 2)
	go func() {
		_, err := f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: payload("block")})
		errs <- err
	}()
	<-r.started
	go func() {
		_, err := f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		errs <- err
	}()
	eventually(t, "a queued call", func() bool { return f.p.Stats()[0].Queued == 1 })
	var tr metadata.MD
	_, err := f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{}, grpc.Trailer(&tr))
	wantCode(t, err, codes.ResourceExhausted, "app/app-dep is overloaded", "max_queued_requests=1")
	if got := tr.Get("grpc-retry-pushback-ms"); len(got) != 1 || got[0] != "2000" {
		t.Fatalf("pushback trailer %q, want 2000", got)
	}
	r.unblock()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeadlineAndCancellation(t *testing.T) {
	r := startReplica(t, "r1")
	f := startProxy(t, grpcproxy.Options{})
	setRoutes(t, f, route("app", r))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: payload("deadline")})
	if err != nil {
		t.Fatal(err)
	}
	if ms, err := strconv.Atoi(res.Username); err != nil || ms <= 0 || ms > 3000 {
		t.Fatalf("replica's deadline %q ms, want the client's 3 s", res.Username)
	}

	ctx, cancel = context.WithCancel(context.Background())
	errs := make(chan error, 1)
	go func() {
		_, err := f.client.UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: payload("block")})
		errs <- err
	}()
	<-r.started
	cancel()
	wantCode(t, <-errs, codes.Canceled)
	select {
	case err := <-r.canceled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("replica's call ended with %v, want canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replica's call was not cancelled")
	}
	eventually(t, "the slot released", func() bool { return f.p.Stats()[0].InFlight == 0 })

	// The route's own timeout.
	rt := route("app", r)
	rt.RequestTimeout = 200 * time.Millisecond
	setRoutes(t, f, rt)
	_, err = f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{Payload: payload("block")})
	// The replica has the deadline too (grpc-timeout): the status is its
	// own when it ends the call first, the proxy's when the proxy does.
	wantCode(t, err, codes.DeadlineExceeded)
	if m := status.Convert(err).Message(); m != "context deadline exceeded" && !strings.Contains(m, "replica r1 did not answer within the request timeout (200ms)") {
		t.Fatalf("message %q: neither the replica's nor the proxy's", m)
	}
	<-r.started
}

// deadURL is a loopback address nothing listens on.
func deadURL(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + lis.Addr().String()
	lis.Close()
	return u
}

func TestReplicaFailure(t *testing.T) {
	r := startReplica(t, "live")
	f := startProxy(t, grpcproxy.Options{})
	dead := proxy.Replica{ID: "dead", Node: "n1", URL: deadURL(t)}
	only := route("app")
	only.Replicas = []proxy.Replica{dead}
	setRoutes(t, f, only)
	_, err := f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.Unavailable, "deployment app/app-dep: replica dead failed")

	// With a live replica beside it, a call that could not be opened on
	// the dead one goes to the live one.
	both := route("app", r)
	both.Replicas = append(both.Replicas, proxy.Replica{ID: "dead2", Node: "n1", URL: deadURL(t)})
	setRoutes(t, f, both)
	for i := range 10 {
		res, err := f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{})
		if err != nil || res.ServerId != "live" {
			t.Fatalf("call %d: %v %v, want live", i, res, err)
		}
	}

	// A replica that dies during a stream.
	r2 := startReplica(t, "doomed")
	setRoutes(t, f, route("app", r2))
	bidi, err := f.client.FullDuplexCall(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := bidi.Send(&testgrpc.StreamingOutputCallRequest{Payload: payload("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := bidi.Recv(); err != nil {
		t.Fatal(err)
	}
	r2.srv.Stop()
	_, err = bidi.Recv()
	wantCode(t, err, codes.Unavailable, "replica doomed failed")
}

func TestNoReplicasAndHealth(t *testing.T) {
	f := startProxy(t, grpcproxy.Options{RequestTimeout: 200 * time.Millisecond})
	hc := healthgrpc.NewHealthClient(f.cc)
	check := func(want healthgrpc.HealthCheckResponse_ServingStatus) {
		t.Helper()
		res, err := hc.Check(ctxT(t), &healthgrpc.HealthCheckRequest{})
		if err != nil || res.Status != want {
			t.Fatalf("health: %v %v, want %v", res, err, want)
		}
	}
	check(healthgrpc.HealthCheckResponse_NOT_SERVING)
	setRoutes(t, f, route("app"))
	check(healthgrpc.HealthCheckResponse_SERVING)
	_, err := f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.Unavailable, "no replicas of app/app-dep are running (waited 200ms)")
	f.p.Close()
	check(healthgrpc.HealthCheckResponse_NOT_SERVING)
	_, err = f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{})
	wantCode(t, err, codes.Unavailable, "closed")
	if err := f.p.SetRoutes(nil); !errors.Is(err, grpcproxy.ErrClosed) {
		t.Fatalf("SetRoutes after Close: %v", err)
	}
}

func TestDrainingReplicaFinishesItsCalls(t *testing.T) {
	old, repl := startReplica(t, "old"), startReplica(t, "new")
	f := startProxy(t, grpcproxy.Options{})
	setRoutes(t, f, route("app", old))
	errs := make(chan error, 1)
	go func() {
		_, err := f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{Payload: payload("block")})
		errs <- err
	}()
	<-old.started
	// A roll: the new replica up and the old one draining, then the old
	// one left out while its call is still running.
	rt := route("app", old, repl)
	rt.Replicas[0].State = router.Draining
	setRoutes(t, f, rt)
	for range 5 {
		res, err := f.client.UnaryCall(ctxT(t), &testgrpc.SimpleRequest{})
		if err != nil || res.ServerId != "new" {
			t.Fatalf("during the roll: %v %v, want new", res, err)
		}
	}
	setRoutes(t, f, route("app", repl))
	old.unblock()
	if err := <-errs; err != nil {
		t.Fatalf("the draining replica's call: %v", err)
	}
}

func TestOptionsAndRoutesRefused(t *testing.T) {
	if _, err := grpcproxy.New(grpcproxy.Options{RequestTimeout: -1, UpstreamMetadata: map[string]string{"Bad Key": "v"}}); !errors.Is(err, grpcproxy.ErrInvalid) ||
		!strings.Contains(err.Error(), "RequestTimeout -1ns is negative") || !strings.Contains(err.Error(), `"Bad Key" is not a valid metadata key`) {
		t.Fatalf("New: %v", err)
	}
	f := startProxy(t, grpcproxy.Options{})
	err := f.p.SetRoutes([]proxy.Route{
		{Prefix: "/a", App: "a", Deployment: "d", Replicas: []proxy.Replica{{ID: "r", URL: "https://10.0.0.1:1"}}},
		{Prefix: "/b", App: "a", Deployment: "e"},
	})
	if !errors.Is(err, grpcproxy.ErrInvalid) || !strings.Contains(err.Error(), "cleartext HTTP/2") || !strings.Contains(err.Error(), "also has routes[0]") {
		t.Fatalf("SetRoutes: %v", err)
	}
}

// TestClientWithOtherCodecAndCompression: the proxy never decodes
// messages, so a client's gzip-compressed messages reach the replica
// decompressed and answers come back.
func TestClientCompression(t *testing.T) {
	r := startReplica(t, "r1")
	f := startProxy(t, grpcproxy.Options{})
	setRoutes(t, f, route("app", r))
	cc, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.UseCompressor("gzip")))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	res, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctxT(t), &testgrpc.SimpleRequest{Payload: payload(strings.Repeat("z", 10000))})
	if err != nil || len(res.Payload.Body) != 10000 {
		t.Fatalf("gzip client: %v %v", res, err)
	}
}
