// Package framed carries protobuf messages between two processes on one
// machine over a local unix socket (package localsock: abstract on Linux,
// a socket file on darwin): each message is a little-endian uint32 length
// and the message's bytes. A connection opens with the token exchange
// (package tokenauth: both ends prove they hold the cluster token, which
// never crosses the socket) and then a hello that says what the
// connection is for and who calls; the listener first checks that the
// peer runs as the same user (or root, by SO_PEERCRED on Linux,
// LOCAL_PEERCRED on darwin). Before the exchange succeeds the listener
// reads at most tokenauth.ServerReads bytes, and the hello may be at most
// wirecheck.HelloBytes long. Platforms without local sockets (windows)
// have no framed connections: Listen and Dial fail with an error wrapping
// localsock.ErrUnsupported.
//
// Frames are bounded: by MaxFrame, or by a connection's own SetMaxFrame,
// and a reader allocates for a large frame only as its bytes arrive, so a
// peer claiming a huge frame costs nothing until it sends it. Messages
// whose type can nest without bound are checked for depth
// (wirecheck.Depth) before they are decoded.
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
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/tokenauth"
	"github.com/raygo/raygo/internal/wirecheck"
)

// MaxFrame bounds one message, as rpc.MaxMessageBytes bounds a gRPC one.
const MaxFrame = wirecheck.BigMessageBytes

// growStep is how much a reader allocates ahead of the bytes it has for a
// frame larger than it: a frame's claimed length is not trusted.
const growStep = 1 << 20

// HelloTimeout bounds the hello exchange on both sides.
const HelloTimeout = 5 * time.Second

// Conn is one connection. Writes are serialized, so any goroutine may
// Write; Read must be called from one goroutine at a time.
type Conn struct {
	nc       *net.UnixConn
	src      *source // what r reads: bytes left over by ReadWithFD, then nc
	r        *bufio.Reader
	rbuf     []byte
	maxFrame int // the largest frame Read accepts

	wmu  sync.Mutex
	wbuf []byte // guarded by wmu
}

// Listener accepts framed connections on a local unix socket.
type Listener struct {
	l     *net.UnixListener
	token string
}

// Listen serves name (a local socket name from localsock.Name) for peers
// that present token.
func Listen(name, token string) (*Listener, error) {
	l, err := localsock.Listen(name)
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
	src := &source{nc: nc}
	return &Conn{nc: nc, src: src, r: bufio.NewReaderSize(src, 64<<10), maxFrame: MaxFrame}
}

// SetMaxFrame lowers the largest frame this connection reads (at most
// MaxFrame) to what its protocol needs. Call it before the first Read,
// from the reading goroutine.
func (c *Conn) SetMaxFrame(n int) { c.maxFrame = min(n, MaxFrame) }

// source reads bytes a ReadWithFD took beyond its frame, then the socket.
type source struct {
	pending []byte
	nc      *net.UnixConn

	// Busy-polling (SetSpin): spin is the budget, zero for none; misses
	// counts the reads in a row that waited longer than it; maxSpin is
	// how many reads of the process may poll at once (see spinners).
	spin    time.Duration
	misses  int
	maxSpin int32
	rc      syscall.RawConn
}

// spinners counts the reads of this process polling now. However many
// connections poll, at most a few reads do at once (each connection's
// maxSpin: half the process's Ps when SetSpin ran, at least 1, at most
// maxSpinners); the others sleep in the kernel at once, so that polling
// never takes more than a share of the process's CPUs from the work it
// waits for. peakSpinners is the most seen at once, for tests.
var spinners, peakSpinners atomic.Int32

// maxSpinners bounds the reads of one process that poll at once.
const maxSpinners = 4

// acquireSpin takes a polling slot, or reports that limit reads poll
// already.
func acquireSpin(limit int32) bool {
	n := spinners.Add(1)
	if n > limit {
		spinners.Add(-1)
		return false
	}
	for {
		p := peakSpinners.Load()
		if n <= p || peakSpinners.CompareAndSwap(p, n) {
			return true
		}
	}
}

func (s *source) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	if s.spin <= 0 {
		return s.nc.Read(p)
	}
	if s.misses < maxSpinMisses {
		if !acquireSpin(s.maxSpin) {
			return s.nc.Read(p) // enough reads poll already
		}
		n, err, ok := s.poll(p, time.Now().Add(s.spin))
		spinners.Add(-1)
		if ok {
			s.misses = 0
			return n, err
		}
		s.misses++
		return s.nc.Read(p)
	}
	start := time.Now()
	n, err := s.nc.Read(p)
	if time.Since(start) < s.spin {
		s.misses = 0 // it would have paid: poll again next time
	}
	return n, err
}

// maxSpinMisses is how many reads in a row may find nothing within the
// spin budget before reads stop polling (until one waits less than it).
const maxSpinMisses = 2

// Peer is what a listener learns in the hello.
type Peer struct {
	Purpose  string // what the connection is for
	Name     string // who the peer says it is
	PID      int    // its process, from the kernel
	JobID    ids.ID // its job, when it says (Nil otherwise)
	WorkerID ids.ID // its worker id, when it says (Nil otherwise)
}

// Hello runs the listener's side of the hello: it checks the peer's uid,
// runs the token exchange (reading at most tokenauth.ServerReads bytes
// before the peer is known), reads the hello (at most
// wirecheck.HelloBytes) and returns who the peer is. On an error the
// caller closes the connection; the peer is told nothing.
func (l *Listener) Hello(c *Conn) (peer Peer, err error) {
	_ = c.nc.SetDeadline(time.Now().Add(HelloTimeout))
	defer c.nc.SetDeadline(time.Time{})
	raw, err := c.nc.SyscallConn()
	if err != nil {
		return peer, err
	}
	var cred peerCred
	var credErr error
	if err := raw.Control(func(fd uintptr) { cred, credErr = peerCredentials(int(fd)) }); err != nil {
		return peer, err
	}
	if credErr != nil {
		return peer, fmt.Errorf("framed: peer credentials: %w", credErr)
	}
	if uid := uint32(os.Getuid()); cred.Uid != uid && cred.Uid != 0 {
		return peer, fmt.Errorf("framed: peer pid %d runs as uid %d, not %d", cred.Pid, cred.Uid, uid)
	}
	return l.admit(c, int(cred.Pid))
}

// admit runs what follows the peer's uid check: the token exchange, then
// the hello (at most wirecheck.HelloBytes), and answers it.
func (l *Listener) admit(c *Conn, pid int) (Peer, error) {
	if err := tokenauth.Server(c.nc, l.token); err != nil {
		return Peer{}, fmt.Errorf("%w: framed: peer pid %d: %v", errs.ErrUnauthenticated, pid, err)
	}
	var h pb.FramedHello
	if err := c.readFrom(c.src, &h, wirecheck.HelloBytes); err != nil {
		return Peer{}, fmt.Errorf("framed: hello from pid %d: %w", pid, err)
	}
	if err := wirecheck.Message(&h); err != nil {
		return Peer{}, fmt.Errorf("framed: hello from pid %d: %w", pid, err)
	}
	peer := Peer{Purpose: h.GetPurpose(), Name: h.GetName(), PID: pid,
		JobID: ids.MustFromBytes(h.GetJobId()), WorkerID: ids.MustFromBytes(h.GetWorkerId())}
	return peer, c.Write(&pb.FramedHelloReply{})
}

// Dial connects to the socket name, runs the token exchange and says
// hello: what the connection is for, and who is calling.
func Dial(ctx context.Context, name, token, purpose, who string) (*Conn, error) {
	return DialHello(ctx, name, token, &pb.FramedHello{Purpose: purpose, Name: who})
}

// DialHello is Dial with the whole hello given (a store client says its
// job and worker id too). A listener that does not hold token fails the
// exchange: the error wraps errs.ErrUnauthenticated.
func DialHello(ctx context.Context, name, token string, hello *pb.FramedHello) (*Conn, error) {
	nc, err := localsock.Dial(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("framed: connect to %s: %w", name, err)
	}
	c := newConn(nc)
	if err := tokenauth.Client(ctx, c.nc, token); err != nil {
		nc.Close()
		if errors.Is(err, tokenauth.ErrBadPeer) {
			return nil, fmt.Errorf("%w: framed: %s: %v", errs.ErrUnauthenticated, name, err)
		}
		return nil, fmt.Errorf("framed: hello to %s: %w", name, err)
	}
	_ = c.nc.SetDeadline(time.Now().Add(HelloTimeout))
	var reply pb.FramedHelloReply
	err = c.Write(hello)
	if err == nil {
		// Unbuffered: the listener's next message may carry a descriptor
		// (ReadWithFD), which a buffered read would lose.
		err = c.readFrom(c.src, &reply, wirecheck.HelloBytes)
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

// vtMessage is what the vtprotobuf generator adds to the package pb's
// messages: marshalling and unmarshalling without reflection, several
// times cheaper than package proto's on the task path. Messages without it
// go through package proto.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
}

// marshalAppend appends m's encoding to b.
func marshalAppend(b []byte, m proto.Message) ([]byte, error) {
	vm, ok := m.(vtMessage)
	if !ok {
		return proto.MarshalOptions{}.MarshalAppend(b, m)
	}
	n := vm.SizeVT()
	if n > MaxFrame {
		return nil, fmt.Errorf("framed: message of %d bytes exceeds the %d-byte limit", n, MaxFrame)
	}
	b = slices.Grow(b, n)
	if _, err := vm.MarshalToSizedBufferVT(b[len(b) : len(b)+n]); err != nil {
		return nil, err
	}
	return b[:len(b)+n], nil
}

// unmarshal decodes buf into m, which must be empty; what m keeps is
// copied out of buf. vtprotobuf's decoders do not bound recursion, so the
// nesting of types that can nest without bound is checked first.
func unmarshal(buf []byte, m proto.Message) error {
	if vm, ok := m.(vtMessage); ok {
		if err := wirecheck.Depth(buf, m.ProtoReflect().Descriptor()); err != nil {
			return fmt.Errorf("framed: %w", err)
		}
		return vm.UnmarshalVT(buf)
	}
	return proto.Unmarshal(buf, m)
}

// Write sends one message.
func (c *Conn) Write(m proto.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := marshalAppend(append(c.wbuf[:0], 0, 0, 0, 0), m)
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

// Read receives one message into m, which must be empty.
func (c *Conn) Read(m proto.Message) error { return c.readFrom(c.r, m, c.maxFrame) }

func (c *Conn) readFrom(r io.Reader, m proto.Message, limit int) error {
	buf, err := c.readFrame(r, limit)
	if err != nil {
		return err
	}
	err = unmarshal(buf, m) // copies what it keeps
	if cap(c.rbuf) > 1<<20 {
		c.rbuf = nil // do not hold on to a large one
	}
	return err
}

// readFrame reads one frame of at most limit bytes. The buffer it returns
// is the connection's and is reused by the next read. A frame larger than
// growStep is read into memory allocated as its bytes arrive.
func (c *Conn) readFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[:]))
	if n > limit {
		return nil, fmt.Errorf("framed: frame of %d bytes exceeds the %d-byte limit", n, limit)
	}
	if n <= max(cap(c.rbuf), growStep) {
		if cap(c.rbuf) < n {
			c.rbuf = make([]byte, n)
		}
		buf := c.rbuf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, unexpectedEOF(err)
		}
		return buf, nil
	}
	buf := c.rbuf[:0]
	for len(buf) < n {
		chunk := min(n-len(buf), max(growStep, len(buf))) // double as bytes arrive
		buf = slices.Grow(buf, chunk)
		if _, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk]); err != nil {
			return nil, unexpectedEOF(err)
		}
		buf = buf[:len(buf)+chunk]
	}
	c.rbuf = buf
	return buf, nil
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteWithFD sends one message with a file descriptor attached
// (SCM_RIGHTS); the peer takes it with ReadWithFD.
func (c *Conn) WriteWithFD(m proto.Message, fd int) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := marshalAppend([]byte{0, 0, 0, 0}, m)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
	_, _, err = c.nc.WriteMsgUnix(b, unixRights(fd), nil)
	return err
}

// ReadWithFD receives one message sent with WriteWithFD, and its file
// descriptor (-1 if none came). It must be the connection's first read
// after the hello.
func (c *Conn) ReadWithFD(m proto.Message) (fd int, err error) {
	if c.r.Buffered() > 0 || len(c.src.pending) > 0 {
		return -1, errors.New("framed: ReadWithFD after other reads")
	}
	fd = -1
	buf := make([]byte, 64<<10)
	oob := make([]byte, rightsSpace(1))
	var got []byte
	for {
		n, oobn, _, _, err := c.nc.ReadMsgUnix(buf, oob)
		if err != nil {
			closeFD(fd)
			return -1, err
		}
		if oobn > 0 {
			fds, perr := parseUnixRights(oob[:oobn])
			for _, f := range fds {
				if fd < 0 {
					fd = f
				} else {
					closeFD(f) // one was asked for
				}
			}
			if perr != nil {
				closeFD(fd)
				return -1, perr
			}
			oob = nil // ancillary data comes with the first bytes only
		}
		if n == 0 {
			closeFD(fd)
			return -1, io.ErrUnexpectedEOF
		}
		got = append(got, buf[:n]...)
		if len(got) < 4 {
			continue
		}
		size := int(binary.LittleEndian.Uint32(got))
		if size > c.maxFrame {
			closeFD(fd)
			return -1, fmt.Errorf("framed: frame of %d bytes exceeds the %d-byte limit", size, c.maxFrame)
		}
		if len(got) >= 4+size {
			c.src.pending = got[4+size:]
			if err := unmarshal(got[4:4+size], m); err != nil {
				closeFD(fd)
				return -1, err
			}
			return fd, nil
		}
	}
}

// SetSpin makes reads busy-poll the socket for up to d before sleeping in
// the kernel. After maxSpinMisses reads in a row find nothing within d,
// reads stop polling until one waits less than d, so a connection that
// carries a request-reply exchange polls and an idle one does not.
// A sleeping reader is woken by the kernel, which on a virtual machine
// whose other CPUs are halted costs tens of microseconds per message;
// polling avoids the wake-up at the price of up to d of CPU per read.
// Zero (the default) turns polling off. However many connections poll,
// at most half the process's Ps (GOMAXPROCS, read here; at least one, at
// most 4) of their reads poll at once; the others sleep in the kernel.
// Call it before the first Read, from the reading goroutine.
func (c *Conn) SetSpin(d time.Duration) {
	rc, err := c.nc.SyscallConn()
	if err != nil {
		return
	}
	c.src.spin, c.src.rc = d, rc
	c.src.maxSpin = int32(min(max(runtime.GOMAXPROCS(0)/2, 1), maxSpinners))
}

// CloseWrite half-closes the connection: the peer's Read sees io.EOF.
func (c *Conn) CloseWrite() error { return c.nc.CloseWrite() }

// Close closes the connection; a Read blocked on it returns.
func (c *Conn) Close() error { return c.nc.Close() }
