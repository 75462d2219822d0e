package rpc

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/peer"

	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/tokenauth"
)

// peerStore records the network of each caller.
type peerStore struct {
	pb.UnimplementedControlStoreServer
	mu       sync.Mutex
	networks []string
}

func (s *peerStore) KVGet(ctx context.Context, _ *pb.KVGetRequest) (*pb.KVGetReply, error) {
	p, _ := peer.FromContext(ctx)
	s.mu.Lock()
	s.networks = append(s.networks, p.Addr.Network())
	s.mu.Unlock()
	return &pb.KVGetReply{}, nil
}

// servePeerStore serves a peerStore on lis (token "tok") until the test
// ends.
func servePeerStore(t *testing.T, lis *Listener) *peerStore {
	t.Helper()
	srv := NewServer("tok")
	store := &peerStore{}
	pb.RegisterControlStoreServer(srv, store)
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	t.Cleanup(func() { srv.Stop(); wg.Wait() })
	return store
}

// kvGet makes one call to the server at addr with token "tok".
func kvGet(t *testing.T, addr string) {
	t.Helper()
	conn, err := Dial(addr, "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewControlStoreClient(conn).KVGet(context.Background(), &pb.KVGetRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
}

// TestLocalClientsUseUnixSocket checks that a client on this machine
// reaches a server through its unix socket, and that the token is still
// required there.
func TestLocalClientsUseUnixSocket(t *testing.T) {
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := servePeerStore(t, lis)
	kvGet(t, lis.Addr())
	if len(store.networks) != 1 || store.networks[0] != "unix" {
		t.Fatalf("local call arrived over %v, want unix", store.networks)
	}

	bad, err := Dial(lis.Addr(), "wrong")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := pb.NewControlStoreClient(bad).KVGet(context.Background(), &pb.KVGetRequest{Key: "k"}); err == nil {
		t.Fatal("the unix socket accepted a wrong token")
	}
}

func TestListenerWithoutSocketServesTCP(t *testing.T) {
	srv := NewServer("tok")
	store := &peerStore{}
	pb.RegisterControlStoreServer(srv, store)
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.unix.Close() // as if the socket could not be made
	lis.unix = nil
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	defer func() { srv.Stop(); wg.Wait() }()
	conn, err := Dial(lis.Addr(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewControlStoreClient(conn).KVGet(context.Background(), &pb.KVGetRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if store.networks[0] != "tcp" {
		t.Fatalf("fallback call arrived over %v, want tcp", store.networks)
	}
}

// TestSquatterOnLocalSocket: a process that binds an endpoint's local
// socket name without the token gets no token and no calls: the client
// fails the exchange there and falls back to TCP.
func TestSquatterOnLocalSocket(t *testing.T) {
	srv := NewServer("tok")
	store := &peerStore{}
	pb.RegisterControlStoreServer(srv, store)
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.unix.Close()
	lis.unix = nil
	name, err := localsock.Name(lis.Addr(), localsock.GRPC)
	if err != nil {
		t.Skip("no local sockets here")
	}
	squat, err := localsock.Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	defer squat.Close()
	var squatted sync.WaitGroup
	squatted.Add(1)
	go func() {
		defer squatted.Done()
		c, err := squat.Accept()
		if err != nil {
			return
		}
		_ = tokenauth.Server(c, "the squatter's guess")
		c.Close()
	}()
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	defer func() { srv.Stop(); wg.Wait() }()
	conn, err := Dial(lis.Addr(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewControlStoreClient(conn).KVGet(context.Background(), &pb.KVGetRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	squatted.Wait()
	if store.networks[0] != "tcp" {
		t.Fatalf("call arrived over %v, want tcp", store.networks)
	}
}

// TestListenOnEveryInterface: a server listening on every interface is
// named by the address it advertises, reached there (its local socket
// too), and refuses to start without one.
func TestListenOnEveryInterface(t *testing.T) {
	if _, err := ListenOn("0.0.0.0:0", ""); err == nil || !strings.Contains(err.Error(), "advertise") {
		t.Fatalf("ListenOn(0.0.0.0, no address) = %v, want an error asking for one", err)
	}
	for _, bad := range []string{"0.0.0.0", "not-an-ip", "::"} {
		if _, err := ListenOn("127.0.0.1:0", bad); err == nil {
			t.Errorf("ListenOn advertising %q succeeded", bad)
		}
	}
	lis, err := ListenOn("0.0.0.0:0", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	store := servePeerStore(t, lis)
	if host, port, _ := net.SplitHostPort(lis.Addr()); host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr() = %s, want 127.0.0.1 and the port listened on", lis.Addr())
	}
	kvGet(t, lis.Addr())
	if len(store.networks) != 1 || store.networks[0] != "unix" {
		t.Errorf("local call arrived over %v, want the unix socket named after the advertised address", store.networks)
	}
	if ip, err := RoutableIP(lis.Addr()); err != nil || ip != "127.0.0.1" {
		t.Errorf("RoutableIP(%s) = %q, %v", lis.Addr(), ip, err)
	}
}
