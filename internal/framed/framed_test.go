package framed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/pb"
)

func listen(t *testing.T) (*Listener, string) {
	t.Helper()
	name := fmt.Sprintf("@raygo-test/framed/%d/%s", os.Getpid(), t.Name())
	if m, _ := localsock.CurrentMode(); m == localsock.Files {
		name = filepath.Join(shortTempDir(t), "s")
	}
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

// echo sends every message back until the peer half-closes.
func echo(c *Conn) error {
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
}

func TestRoundTrip(t *testing.T) {
	l, name := listen(t)
	done := serveOne(l, func(c *Conn, peer Peer, err error) error {
		if err != nil || peer.Purpose != "echo" || peer.Name != "tester" || peer.PID != os.Getpid() {
			return fmt.Errorf("hello: %+v %v", peer, err)
		}
		return echo(c)
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

// TestSpinRead runs an echo exchange with polling readers on both ends:
// every message arrives whole and in order, a large frame too, and the
// half-close still reads as io.EOF.
func TestSpinRead(t *testing.T) {
	l, name := listen(t)
	done := serveOne(l, func(c *Conn, _ Peer, err error) error {
		if err != nil {
			return err
		}
		c.SetSpin(time.Millisecond)
		return echo(c)
	})
	c, err := Dial(context.Background(), name, "secret", "echo", "tester")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetSpin(time.Millisecond)
	for i := range 2000 {
		n := 1 + i%3
		if i == 1000 {
			n = 70000 // a frame larger than the read buffer, read in many pieces
		}
		out := &pb.StoreObjectIDs{}
		for j := range n {
			out.ObjectIds = append(out.ObjectIds, []byte{byte(i), byte(j), byte(j >> 8)})
		}
		if err := c.Write(out); err != nil {
			t.Fatal(err)
		}
		var in pb.StoreObjectIDs
		if err := c.Read(&in); err != nil {
			t.Fatal(err)
		}
		if len(in.ObjectIds) != n || in.ObjectIds[n-1][0] != byte(i) {
			t.Fatalf("message %d: got %d ids", i, len(in.ObjectIds))
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSpinReadStopsWhenIdle: reads that wait longer than the budget stop
// polling after maxSpinMisses of them, and one quick read turns it back on.
func TestSpinReadStopsWhenIdle(t *testing.T) {
	l, name := listen(t)
	send := make(chan time.Duration)
	done := serveOne(l, func(c *Conn, _ Peer, err error) error {
		if err != nil {
			return err
		}
		for d := range send {
			time.Sleep(d)
			if err := c.Write(&pb.StoreObjectIDs{}); err != nil {
				return err
			}
		}
		return nil
	})
	c, err := Dial(context.Background(), name, "secret", "echo", "tester")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const budget = 2 * time.Millisecond
	c.SetSpin(budget)
	read := func(after time.Duration) {
		t.Helper()
		send <- after
		var m pb.StoreObjectIDs
		if err := c.Read(&m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxSpinMisses + 1 {
		read(20 * budget)
		if want := min(i+1, maxSpinMisses); c.src.misses != want {
			t.Fatalf("after %d slow reads: %d misses, want %d", i+1, c.src.misses, want)
		}
	}
	read(0)
	if c.src.misses != 0 {
		t.Fatalf("after a quick read: %d misses, want 0", c.src.misses)
	}
	close(send)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSpinReadClose: closing a connection whose reader is polling ends
// the read with an error, not a hang.
func TestSpinReadClose(t *testing.T) {
	l, name := listen(t)
	hold := make(chan struct{})
	done := serveOne(l, func(c *Conn, _ Peer, err error) error {
		<-hold
		return err
	})
	c, err := Dial(context.Background(), name, "secret", "echo", "tester")
	if err != nil {
		t.Fatal(err)
	}
	c.SetSpin(100 * time.Millisecond) // a Close is seen at the latest when the budget ends
	got := make(chan error, 1)
	go func() {
		var m pb.StoreObjectIDs
		got <- c.Read(&m)
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("Read on a closed connection returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return after Close")
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSpinnersBounded: however many connections poll, at most a few reads
// of the process poll at once (every reader used to poll, so a process
// with many streams could keep all its CPUs spinning).
func TestSpinnersBounded(t *testing.T) {
	l, name := listen(t)
	const conns = 8
	release := make(chan struct{})
	var served []<-chan error
	for range conns {
		served = append(served, serveOne(l, func(c *Conn, _ Peer, err error) error {
			if err != nil {
				return err
			}
			<-release
			return c.Write(&pb.StoreObjectIDs{})
		}))
	}
	var clients []*Conn
	for range conns {
		c, err := Dial(context.Background(), name, "secret", "echo", "tester")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	peakSpinners.Store(0)
	read := make(chan error, conns)
	var limit int32
	for _, c := range clients {
		c.SetSpin(time.Second) // every read would poll until its message came
		limit = c.src.maxSpin
		go func() {
			var m pb.StoreObjectIDs
			read <- c.Read(&m)
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for spinners.Load() < limit { // the readers are polling
		if time.Now().After(deadline) {
			t.Fatal("no reader polls")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range conns {
		if err := <-read; err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range served {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	if got := peakSpinners.Load(); got < 1 || got > limit || limit > maxSpinners {
		t.Fatalf("%d of %d readers polled at once, want 1 to %d", got, conns, limit)
	}
}

func TestAcquireSpin(t *testing.T) {
	if !acquireSpin(2) || !acquireSpin(2) {
		t.Fatal("two slots of two refused")
	}
	if acquireSpin(2) {
		t.Fatal("a third slot of two granted")
	}
	spinners.Add(-1)
	if !acquireSpin(2) {
		t.Fatal("a freed slot refused")
	}
	spinners.Add(-2)
}
