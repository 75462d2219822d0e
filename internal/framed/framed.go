// Package framed carries protobuf messages between two processes on one
// machine over an abstract unix socket: each message is a little-endian
// uint32 length and the message's bytes. A connection opens with a hello
// that the listener checks: the peer must run as the same user (or root,
// by SO_PEERCRED) and present the cluster token.
//
// It exists for the task push path between an owner and a leased worker
// on the same node, where a gRPC stream's machinery (a writer goroutine
// and a reader goroutine on each side, flow control) costs more than the
// work of a trivial task: a frame here is written by the goroutine that
// sends it and read by the goroutine that waits for it.
package framed

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// MaxFrame bounds one message, as rpc.MaxMessageBytes bounds a gRPC one.
const MaxFrame = 512 << 20

// HelloTimeout bounds the hello exchange on both sides.
const HelloTimeout = 5 * time.Second

// Conn is one connection. Writes are serialized, so any goroutine may
// Write; Read must be called from one goroutine at a time.
type Conn struct {
	nc   *net.UnixConn
	r    *bufio.Reader
	rbuf []byte

	wmu  sync.Mutex
	wbuf []byte // guarded by wmu
}

// Listener accepts framed connections on an abstract unix socket.
type Listener struct {
	l     *net.UnixListener
	token string
}

// Listen serves name (an abstract socket name, "@…") for peers that
// present token.
func Listen(name, token string) (*Listener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("framed: listen on %s: %w", name, err)
	}
	return &Listener{l: l, token: token}, nil
}

// Accept waits for the next connection. Call Hello on it (on its own
// goroutine) before anything else.
func (l *Listener) Accept() (*Conn, error) {
	nc, err := l.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return newConn(nc), nil
}

// Close stops accepting.
func (l *Listener) Close() error { return l.l.Close() }

func newConn(nc *net.UnixConn) *Conn {
	return &Conn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10)}
}

// Hello runs the listener's side of the hello: it checks the peer's uid
// and token and returns what the peer says the connection is for.
func (l *Listener) Hello(c *Conn) (purpose string, err error) {
	_ = c.nc.SetDeadline(time.Now().Add(HelloTimeout))
	defer c.nc.SetDeadline(time.Time{})
	raw, err := c.nc.SyscallConn()
	if err != nil {
		return "", err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) { cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return "", err
	}
	if credErr != nil {
		return "", fmt.Errorf("framed: peer credentials: %w", credErr)
	}
	if uid := uint32(os.Getuid()); cred.Uid != uid && cred.Uid != 0 {
		return "", fmt.Errorf("framed: peer pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, uid)
	}
	var h pb.FramedHello
	if err := c.Read(&h); err != nil {
		return "", fmt.Errorf("framed: hello: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(h.GetToken()), []byte(l.token)) != 1 {
		_ = c.Write(&pb.FramedHelloReply{Error: errs.ToInfo(&errs.Status{Kind: errs.KindInvalid, Message: "framed: bad token"})})
		return "", fmt.Errorf("%w: framed: peer pid %d sent a bad token", errs.ErrUnauthenticated, cred.Pid)
	}
	return h.GetPurpose(), c.Write(&pb.FramedHelloReply{})
}

// Dial connects to name and says hello with token and purpose.
func Dial(ctx context.Context, name, token, purpose string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", name)
	if err != nil {
		return nil, fmt.Errorf("framed: connect to %s: %w", name, err)
	}
	c := newConn(nc.(*net.UnixConn))
	_ = c.nc.SetDeadline(time.Now().Add(HelloTimeout))
	var reply pb.FramedHelloReply
	err = c.Write(&pb.FramedHello{Token: token, Purpose: purpose})
	if err == nil {
		err = c.Read(&reply)
	}
	if err == nil && reply.GetError() != nil {
		err = fmt.Errorf("%w: %v", errs.ErrUnauthenticated, errs.FromInfo(reply.GetError()))
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("framed: hello to %s: %w", name, err)
	}
	_ = c.nc.SetDeadline(time.Time{})
	return c, nil
}

// Write sends one message.
func (c *Conn) Write(m proto.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := proto.MarshalOptions{}.MarshalAppend(append(c.wbuf[:0], 0, 0, 0, 0), m)
	if err != nil {
		return err
	}
	if len(b)-4 > MaxFrame {
		return fmt.Errorf("framed: message of %d bytes exceeds the %d-byte limit", len(b)-4, MaxFrame)
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
	_, err = c.nc.Write(b)
	if cap(b) <= 1<<20 { // keep small buffers for the next message
		c.wbuf = b
	}
	return err
}

// Read receives one message into m.
func (c *Conn) Read(m proto.Message) error {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > MaxFrame {
		return fmt.Errorf("framed: frame of %d bytes exceeds the %d-byte limit", n, MaxFrame)
	}
	if cap(c.rbuf) < int(n) {
		c.rbuf = make([]byte, n)
	}
	buf := c.rbuf[:n]
	if _, err := io.ReadFull(c.r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	err := proto.Unmarshal(buf, m) // copies what it keeps
	if cap(c.rbuf) > 1<<20 {
		c.rbuf = nil // do not hold on to a large one
	}
	return err
}

// CloseWrite half-closes the connection: the peer's Read sees io.EOF.
func (c *Conn) CloseWrite() error { return c.nc.CloseWrite() }

// Close closes the connection; a Read blocked on it returns.
func (c *Conn) Close() error { return c.nc.Close() }
