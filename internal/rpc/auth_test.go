package rpc_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/tokenauth"
	"github.com/raygo/raygo/internal/wirecheck"
)

// countingListener counts the bytes the server reads from all its
// connections.
type countingListener struct {
	net.Listener
	read atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.read}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// serveCounting serves srv on a loopback port whose reads are counted.
func serveCounting(t *testing.T, srv *grpc.Server) (string, *countingListener) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: lis}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(cl) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String(), cl
}

// answer sends what an unauthenticated caller might (a gRPC preface and a
// large message, or a forged start of the token exchange) and returns
// everything the server sends back until it closes the connection.
func answer(t *testing.T, addr string, send []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * tokenauth.Timeout))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = c.Write(send) }()
	got, _ := io.ReadAll(c)
	_ = c.Close()
	wg.Wait()
	return got
}

// TestUnauthenticatedCallers: whatever an unauthenticated caller sends, a
// server reads at most tokenauth.ServerReads bytes of it and answers it
// the same way on every endpoint, whatever services it serves (or none).
func TestUnauthenticatedCallers(t *testing.T) {
	huge := make([]byte, 64<<20) // an HTTP/2 preface and a 64 MiB "message"
	copy(huge, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	forged := append(append(tokenauth.Magic[:], make([]byte, 32)...), bytes.Repeat([]byte{7}, 1<<20)...)

	servers := map[string]*grpc.Server{}
	gcsSrv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(gcsSrv, &errorStore{})
	servers["control store"] = gcsSrv
	nd := rpc.NewServer(token)
	pb.RegisterNodeDaemonServer(nd, pb.UnimplementedNodeDaemonServer{})
	servers["node daemon"] = nd
	servers["no services"] = rpc.NewServer(token)

	for name, srv := range servers {
		addr, cl := serveCounting(t, srv)
		plain, forgedAnswer := answer(t, addr, huge), answer(t, addr, forged)
		if n := cl.read.Load(); n > 2*int64(tokenauth.ServerReads) {
			t.Fatalf("%s: read %d bytes from two unauthenticated callers, more than 2 × %d", name, n, tokenauth.ServerReads)
		}
		// The same answer everywhere: nothing to a caller that does not
		// start the exchange, the server's 64-byte nonce and proof (random)
		// to one that does, then the connection closes.
		if len(plain) != 0 {
			t.Fatalf("%s: answered a caller without the exchange with %q", name, plain)
		}
		if len(forgedAnswer) != 64 {
			t.Fatalf("%s: answered a forged exchange with %d bytes, want the 64-byte proof", name, len(forgedAnswer))
		}
	}
}

// TestMessageLimitsPerType: a message larger than its type's limit is
// refused before it is decoded, though the transport would carry it.
func TestMessageLimitsPerType(t *testing.T) {
	store := &errorStore{}
	srv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(srv, store)
	c := dial(t, serve(t, srv), token)
	key := string(bytes.Repeat([]byte{'k'}, wirecheck.SmallMessageBytes+1))
	if _, err := c.KVGet(ctx(t), &pb.KVGetRequest{Key: key}); err == nil {
		t.Fatal("a KVGet over its 1 MiB limit was served")
	}
	if _, err := c.KVGet(ctx(t), &pb.KVGetRequest{Key: "small"}); err != nil {
		t.Fatalf("a small KVGet after the refusal: %v", err)
	}
}

// TestRequestsAreChecked: requests are checked by wirecheck before the
// handler runs; a NaN resource from the wire is a typed invalid request.
func TestRequestsAreChecked(t *testing.T) {
	c := dial(t, serveGCS(t), token)
	nan := &pb.Resources{Amounts: map[string]float64{"CPU": math.NaN()}}
	_, err := c.RegisterNode(ctx(t), &pb.RegisterNodeRequest{Node: &pb.NodeInfo{NodeId: bytes.Repeat([]byte{1}, 16), Address: "127.0.0.1:1", Total: nan}})
	if !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("RegisterNode with NaN CPU: %v, want ErrInvalidRequest", err)
	}
	nodes, err := c.GetNodes(ctx(t), &pb.GetNodesRequest{IncludeDead: true})
	if err != nil || len(nodes.GetNodes()) != 0 {
		t.Fatalf("the refused node was registered: %v, %v", nodes, err)
	}
}
