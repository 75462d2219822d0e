package objmgr

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
)

const token = "transfer-test-token"

// serveObjects serves objects from a map over real TCP on loopback.
func serveObjects(t *testing.T, objects map[ids.ID][]byte) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	read := func(id ids.ID, fn func([]byte) error) (bool, error) {
		mu.Lock()
		b, ok := objects[id]
		mu.Unlock()
		if !ok {
			return false, nil
		}
		return true, fn(b)
	}
	s, err := Serve(lis, token, read, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func clientFor(t *testing.T, s *Server, tok string) *Client {
	c := NewClient(tok, func(context.Context, string) (string, error) { return s.Addr(), nil })
	t.Cleanup(c.Close)
	return c
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*13 + i>>10)
	}
	return b
}

func TestTransferReadsChunks(t *testing.T) {
	id := ids.New()
	obj := pattern(3<<20 + 17)
	s := serveObjects(t, map[ids.ID][]byte{id: obj})
	c := clientFor(t, s, token)
	got := make([]byte, len(obj))
	// Chunks in parallel over several connections, as a pull reads them.
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for _, ch := range chunks(int64(len(obj)), 512<<10) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.ReadChunk(t.Context(), "node", id, ch.off, got[ch.off:ch.off+ch.n]); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if !bytes.Equal(got, obj) {
		t.Fatal("chunks differ from the object")
	}
	if s.Served() != 7 {
		t.Fatalf("served %d chunks, want 7", s.Served())
	}
	// Connections are reused: one more read after the burst works.
	if err := c.ReadChunk(t.Context(), "node", id, 0, got[:10]); err != nil {
		t.Fatal(err)
	}
}

func TestTransferErrors(t *testing.T) {
	id := ids.New()
	s := serveObjects(t, map[ids.ID][]byte{id: pattern(1000)})
	c := clientFor(t, s, token)
	buf := make([]byte, 100)
	if err := c.ReadChunk(t.Context(), "node", ids.New(), 0, buf); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("missing object: %v, want not found", err)
	}
	// The connection stays usable after a "not found".
	if err := c.ReadChunk(t.Context(), "node", id, 900, buf); err != nil {
		t.Fatal(err)
	}
	if err := c.ReadChunk(t.Context(), "node", id, 950, buf); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("chunk past the end: %v, want invalid", err)
	}
	if err := c.ReadChunk(t.Context(), "node", id, 0, make([]byte, MaxChunkBytes+1)); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("chunk over the limit: %v, want invalid", err)
	}
}

func TestTransferNeedsTheToken(t *testing.T) {
	id := ids.New()
	s := serveObjects(t, map[ids.ID][]byte{id: pattern(1000)})
	c := clientFor(t, s, "another cluster's token")
	err := c.ReadChunk(t.Context(), "node", id, 0, make([]byte, 10))
	if !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("wrong token: %v, want unauthenticated", err)
	}
	// A peer that skips the exchange gets nothing.
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req [requestBytes]byte
	copy(req[:], requestMagic[:])
	copy(req[8:], id[:])
	req[39] = 10
	_, _ = conn.Write(req[:])
	n, _ := conn.Read(make([]byte, 64))
	if n != 0 {
		t.Fatalf("an unauthenticated peer read %d bytes", n)
	}
}

func TestTransferUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	c := NewClient(token, func(context.Context, string) (string, error) { return addr, nil })
	defer c.Close()
	if err := c.ReadChunk(t.Context(), "node", ids.New(), 0, make([]byte, 10)); !errors.Is(err, errs.ErrUnavailable) {
		t.Fatalf("closed port: %v, want unavailable", err)
	}
}

// TestTransferCancel: a read from a holder that does not answer ends
// with its context.
func TestTransferCancel(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a holder that accepts and never speaks
		defer wg.Done()
		c, err := lis.Accept()
		if err == nil {
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
	}()
	c := NewClient(token, func(context.Context, string) (string, error) { return lis.Addr().String(), nil })
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.ReadChunk(ctx, "node", ids.New(), 0, make([]byte, 10)); err == nil {
		t.Fatal("read with a cancelled context succeeded")
	}
	lis.Close()
	wg.Wait()
}
