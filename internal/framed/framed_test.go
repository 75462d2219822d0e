package framed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

func listen(t *testing.T) (*Listener, string) {
	t.Helper()
	name := fmt.Sprintf("@raygo-test/framed/%d/%s", os.Getpid(), t.Name())
	l, err := Listen(name, "secret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, name
}

// serveOne accepts one connection, runs the hello, and hands both to fn
// (the hello's error too); fn's result comes back on the channel.
func serveOne(l *Listener, fn func(c *Conn, peer Peer, helloErr error) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		peer, err := l.Hello(c)
		done <- fn(c, peer, err)
	}()
	return done
}

func TestRoundTrip(t *testing.T) {
	l, name := listen(t)
	done := serveOne(l, func(c *Conn, peer Peer, err error) error {
		if err != nil || peer.Purpose != "echo" || peer.Name != "tester" || peer.PID != os.Getpid() {
			return fmt.Errorf("hello: %+v %v", peer, err)
		}
		for {
			var m pb.StoreObjectIDs
			if err := c.Read(&m); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if err := c.Write(&m); err != nil {
				return err
			}
		}
	})
	c, err := Dial(context.Background(), name, "secret", "echo", "tester")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, n := range []int{0, 1, 1000, 70000} { // 70k ids: a frame larger than the read buffer
		out := &pb.StoreObjectIDs{}
		for i := range n {
			out.ObjectIds = append(out.ObjectIds, []byte{byte(i), byte(i >> 8)})
		}
		if err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		var in pb.StoreObjectIDs
		if err := c.Read(&in); err != nil {
			t.Fatal(err)
		}
		if len(in.ObjectIds) != n {
			t.Fatalf("echoed %d ids, sent %d", len(in.ObjectIds), n)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestBadTokenRefused(t *testing.T) {
	l, name := listen(t)
	got := serveOne(l, func(_ *Conn, _ Peer, err error) error { return err })
	if _, err := Dial(context.Background(), name, "wrong", "x", ""); !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("dial with a bad token: %v", err)
	}
	if err := <-got; !errors.Is(err, errs.ErrUnauthenticated) {
		t.Fatalf("listener side: %v", err)
	}
}

func TestSilentPeerTimesOut(t *testing.T) {
	l, name := listen(t)
	go func() {
		c, err := l.Accept()
		if err == nil {
			time.Sleep(HelloTimeout + 2*time.Second) // never answers
			c.Close()
		}
	}()
	start := time.Now()
	_, err := Dial(context.Background(), name, "secret", "x", "")
	if err == nil || time.Since(start) > HelloTimeout+3*time.Second {
		t.Fatalf("dial to a silent listener: %v after %v", err, time.Since(start))
	}
}

func TestOversizedFrameRejected(t *testing.T) {
	l, name := listen(t)
	got := serveOne(l, func(c *Conn, _ Peer, err error) error {
		if err != nil {
			return err
		}
		var m pb.StoreObjectIDs
		return c.Read(&m)
	})
	c, err := Dial(context.Background(), name, "secret", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.nc.Write([]byte{0xff, 0xff, 0xff, 0x7f}); err != nil { // a 2 GiB length
		t.Fatal(err)
	}
	if err := <-got; err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized frame: %v", err)
	}
}

// A descriptor sent with the first message after the hello arrives with
// it, and later messages read normally.
func TestDescriptorPassing(t *testing.T) {
	l, name := listen(t)
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("through the socket")
	serveOne(l, func(c *Conn, _ Peer, err error) error {
		if err != nil {
			return err
		}
		c.WriteWithFD(&pb.FramedHello{Name: "first"}, int(f.Fd()))
		c.Write(&pb.FramedHello{Name: "second"})
		var m pb.FramedHello
		return c.Read(&m) // until the client closes
	})
	c, err := Dial(context.Background(), name, "secret", "fd", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var first, second pb.FramedHello
	fd, err := c.ReadWithFD(&first)
	if err != nil || fd < 0 || first.Name != "first" {
		t.Fatalf("ReadWithFD: fd %d, %v, %v", fd, &first, err)
	}
	got := os.NewFile(uintptr(fd), "passed")
	defer got.Close()
	b := make([]byte, 64)
	n, _ := got.ReadAt(b, 0)
	if string(b[:n]) != "through the socket" {
		t.Fatalf("passed descriptor reads %q", b[:n])
	}
	if err := c.Read(&second); err != nil || second.Name != "second" {
		t.Fatalf("message after the descriptor: %v %v", &second, err)
	}
}
