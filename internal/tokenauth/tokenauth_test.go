package tokenauth

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the bytes read through it.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func run(t *testing.T, clientToken, serverToken string) (clientErr, serverErr error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		err := Server(b, serverToken)
		if err != nil {
			b.Close() // what a server does: close without a word
		}
		done <- err
	}()
	clientErr = Client(context.Background(), a, clientToken)
	if clientErr != nil {
		a.Close()
	}
	return clientErr, <-done
}

func TestSameToken(t *testing.T) {
	if cerr, serr := run(t, "t0ken", "t0ken"); cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
}

func TestWrongToken(t *testing.T) {
	cerr, serr := run(t, "wrong", "right")
	if !errors.Is(cerr, ErrBadPeer) {
		t.Fatalf("client: %v, want ErrBadPeer", cerr)
	}
	if serr == nil {
		t.Fatal("the server accepted a client with the wrong token")
	}
}

// TestGarbageReadsLittle: a peer that sends a large message instead of the
// exchange makes the server read no more than the challenge.
func TestGarbageReadsLittle(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	cb := &countingConn{Conn: b}
	go func() { _, _ = a.Write(bytes.Repeat([]byte{0xff}, 1<<20)) }()
	if err := Server(cb, "t"); !errors.Is(err, ErrBadPeer) {
		t.Fatalf("Server = %v, want ErrBadPeer", err)
	}
	if n := cb.read.Load(); n > int64(ServerReads) {
		t.Fatalf("the server read %d bytes from an unauthenticated peer, more than %d", n, ServerReads)
	}
}

// TestForgedProofReadsLittle: a peer that passes the magic but cannot
// prove the token gets the server's proof and nothing more.
func TestForgedProofReadsLittle(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	cb := &countingConn{Conn: b}
	go func() {
		_, _ = a.Write(append(Magic[:], make([]byte, nonceSize)...))
		_, _ = io.ReadFull(a, make([]byte, nonceSize+macSize))
		_, _ = a.Write(bytes.Repeat([]byte{1}, 1<<20))
	}()
	if err := Server(cb, "t"); !errors.Is(err, ErrBadPeer) {
		t.Fatalf("Server = %v, want ErrBadPeer", err)
	}
	if n := cb.read.Load(); n != int64(ServerReads) {
		t.Fatalf("the server read %d bytes, want exactly %d", n, ServerReads)
	}
}

// TestClientAgainstSilentServer: a server that closes at once (what an
// endpoint of a cluster with another token looks like to an impostor, and
// what a non-raygo listener often does) is ErrBadPeer for the client.
func TestClientAgainstSilentServer(t *testing.T) {
	a, b := net.Pipe()
	go func() { _, _ = io.ReadFull(b, make([]byte, len(Magic)+nonceSize)); b.Close() }()
	if err := Client(context.Background(), a, "t"); !errors.Is(err, ErrBadPeer) {
		t.Fatalf("Client = %v, want ErrBadPeer", err)
	}
}

// scriptConn is a connection whose peer's bytes are given in advance;
// what is written to it is counted and dropped.
type scriptConn struct {
	net.Conn
	r       *bytes.Reader
	read    int
	written int
}

func (c *scriptConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}
func (c *scriptConn) Write(p []byte) (int, error)      { c.written += len(p); return len(p), nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzServer: whatever a peer sends, the server's side never panics,
// never reads more than ServerReads bytes or writes more than its 64-byte
// proof, and never accepts a peer that does not hold the token.
func FuzzServer(f *testing.F) {
	f.Add(append(Magic[:], make([]byte, nonceSize+macSize)...))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	f.Add(Magic[:])
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &scriptConn{r: bytes.NewReader(data)}
		if err := Server(c, "the token"); err == nil {
			t.Fatal("accepted a peer that cannot know the token")
		}
		if c.read > ServerReads || c.written > nonceSize+macSize {
			t.Fatalf("read %d, wrote %d", c.read, c.written)
		}
	})
}
