package rpc

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc/peer"

	"github.com/raygo/raygo/internal/pb"
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

// TestLocalClientsUseUnixSocket checks that a client on this machine
// reaches a server through its unix socket, and that the token is still
// required there.
func TestLocalClientsUseUnixSocket(t *testing.T) {
	srv := NewServer("tok")
	store := &peerStore{}
	pb.RegisterControlStoreServer(srv, store)
	lis, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
