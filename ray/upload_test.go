//go:build !windows

package ray

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/jobbinary"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// TestUploadBinary: a control store that cannot read the driver's file (no
// binary directory, as on another machine) receives it over the wire,
// whole, and serves it back; a second Init finds it stored.
func TestUploadBinary(t *testing.T) {
	lis, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pool := rpc.NewPool("tok")
	store := gcs.New(gcs.DefaultConfig(), pool) // no BinaryDir: uploads only
	srv := rpc.NewServer("tok")
	pb.RegisterControlStoreServer(srv, store)
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	t.Cleanup(func() { store.Close(); srv.Stop(); wg.Wait(); pool.Close() })
	conn, err := rpc.Dial(lis.Addr(), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewControlStoreClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	hash, err := uploadBinary(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	f, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if want, _ := jobbinary.Hash(f); hash != want {
		t.Fatalf("uploadBinary said %s, the executable hashes to %s", hash, want)
	}
	stream, err := c.GetBinary(ctx, &pb.GetBinaryRequest{Hash: hash})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	var n int64
	for {
		ch, err := stream.Recv()
		if err != nil {
			break
		}
		n += int64(len(ch.GetData()))
	}
	if n != st.Size() {
		t.Fatalf("the control store served %d bytes of a %d-byte executable", n, st.Size())
	}
	if again, err := uploadBinary(ctx, c); err != nil || again != hash {
		t.Fatalf("second upload: %s, %v", again, err)
	}
}
