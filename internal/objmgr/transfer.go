package objmgr

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/faults"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/internal/tokenauth"
)

// The transfer protocol moves chunks between node daemons on a TCP
// connection of its own, after the cluster token exchange
// (internal/tokenauth) like every raygo connection. Bytes go from the
// holder's shared memory to the socket and from the socket into the
// puller's shared memory with no copy in between: one write and one
// read system call's worth per chunk, as a raw TCP stream.
//
//	request (40 bytes)  magic "RGC1" | flags (1) | 3 zero bytes | object id (16) | offset (8) | length (8)
//	answer  (16 bytes)  status (1) | flags (1) | 2 zero bytes | message length (4) | length (8)
//	                    then length bytes of the object (status ok) or the message
//	ack     (1 byte)    from the puller, once it has read the bytes, when the answer asked for one
//
// Integers are big-endian. A connection carries one request at a time;
// a puller keeps several connections per holder for chunks in flight.
//
// Zero-copy sending. On Linux a holder whose store region is a file
// (the memfd) sends a chunk with sendfile(2): the socket takes the
// region's pages by reference, so the holder's CPU copies nothing (a
// raw stream's writer copies every byte once). The pages then sit in the
// socket's queues until the puller reads them, so the chunk must not
// change until it has: a request flagged flagCanAck says the puller
// acks, the answer flagged answerAck asks it to, and the holder keeps
// the object pinned (its memory cannot be reused) until the ack comes.
const (
	requestBytes = 40
	answerBytes  = 16

	statusOK       = 0
	statusNotFound = 1
	statusInvalid  = 2
	statusFailed   = 3

	// maxMessageBytes bounds an error message in an answer.
	maxMessageBytes = 4 << 10

	// flagCanAck (request flags): the puller acks an answer that asks.
	flagCanAck = 1
	// answerAck (answer flags): ack once the bytes are read.
	answerAck = 1
	// ackByte is the ack.
	ackByte = 'A'
)

var requestMagic = [4]byte{'R', 'G', 'C', '1'}

// Transfer limits.
const (
	// MaxServerConns bounds the connections a Server serves at once;
	// more are closed at accept.
	MaxServerConns = 512
	// IdleTimeout closes a server connection that sends no request for
	// this long (pullers keep idle connections for reuse).
	IdleTimeout = 2 * time.Minute
	// ChunkTimeout bounds one chunk's request and answer on either side,
	// so a holder that stops answering (a paused node, a cut link) is a
	// failed holder, not a hung pull.
	ChunkTimeout = 30 * time.Second
	// MaxIdleConnsPerNode is how many idle connections a Client keeps to
	// one node.
	MaxIdleConnsPerNode = 16
)

// Reader reads an object from the node's store for the duration of fn
// (objstore.Store.Read); found is false when the store lacks it.
type Reader func(id ids.ID, fn func([]byte) error) (found bool, err error)

// PartialReader reads [off, off+n) of an object the node is still
// pulling, for the duration of fn (Manager.ServePartial); found is false
// when it has no such bytes.
type PartialReader func(id ids.ID, off, n int64, fn func([]byte) error) (found bool, err error)

// Region is the store's shared region as a file: its descriptor and the
// daemon's mapping of it (objstore.Store.Region). Chunks that lie in Mem
// are sent from FD with sendfile where the platform has it.
type Region struct {
	FD  int
	Mem []byte
}

// offsetOf returns the offset of b in the region, or false when b does
// not lie in it (an object spilled to a file of its own, say).
func (r *Region) offsetOf(b []byte) (int64, bool) {
	if r == nil || len(b) == 0 || len(r.Mem) == 0 {
		return 0, false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(r.Mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p+uintptr(len(b)) > base+uintptr(len(r.Mem)) {
		return 0, false
	}
	return int64(p - base), true
}

// Server answers chunk requests from other nodes' pullers.
type Server struct {
	lis      net.Listener
	token    string
	read     Reader
	partial  PartialReader // nil: only sealed objects are served
	region   *Region       // nil: chunks are written, not sent from the file
	fromFile atomic.Int64  // chunks sent from the region's file
	stop     *stopper.Stopper
	log      *slog.Logger
	served   atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
}

// Serve starts serving chunk requests accepted on lis, reading objects
// with read and, for objects read lacks, parts of copies being pulled
// with partial (may be nil); it takes lis (Close closes it). Bytes that
// lie in region (may be nil) are sent from its file (see "Zero-copy
// sending" above).
func Serve(lis net.Listener, token string, read Reader, partial PartialReader, region *Region, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if !canSendFile {
		region = nil
	}
	s := &Server{lis: lis, token: token, read: read, partial: partial, region: region, stop: stopper.New(), log: log, conns: map[net.Conn]struct{}{}}
	if err := s.stop.Go("objmgr.accept", s.accept); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Served is the number of chunks the server has sent.
func (s *Server) Served() int64 { return s.served.Load() }

// SentFromFile is the number of those sent from the region's file
// (sendfile), not written from memory.
func (s *Server) SentFromFile() int64 { return s.fromFile.Load() }

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (s *Server) Close() {
	_ = s.lis.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.stop.Stop()
}

func (s *Server) accept(ctx context.Context) {
	for {
		c, err := s.lis.Accept()
		if err != nil {
			return // closed
		}
		s.mu.Lock()
		full := len(s.conns) >= MaxServerConns
		if !full {
			s.conns[c] = struct{}{}
		}
		s.mu.Unlock()
		if full || s.stop.Go("objmgr.serve", func(context.Context) { s.serve(c) }) != nil {
			s.drop(c)
		}
	}
}

func (s *Server) drop(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serve answers one connection's requests until it closes or fails.
func (s *Server) serve(c net.Conn) {
	defer s.drop(c)
	if tokenauth.Server(c, s.token) != nil {
		return // said nothing, as every raygo endpoint
	}
	setBuffers(c)
	var req [requestBytes]byte
	for {
		_ = c.SetReadDeadline(time.Now().Add(IdleTimeout))
		if _, err := io.ReadFull(c, req[:]); err != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(ChunkTimeout))
		if [4]byte(req[:4]) != requestMagic {
			_ = answer(c, statusInvalid, 0, "objmgr: not a chunk request")
			return
		}
		id := ids.ID(req[8:24])
		off := int64(binary.BigEndian.Uint64(req[24:32]))
		n := int64(binary.BigEndian.Uint64(req[32:40]))
		if n < 0 || n > MaxChunkBytes || off < 0 {
			_ = answer(c, statusInvalid, 0, fmt.Sprintf("objmgr: chunk of %d bytes at %d (at most %d)", n, off, MaxChunkBytes))
			return
		}
		canAck := req[4]&flagCanAck != 0
		sent := false
		send := func(b []byte) error {
			sent = true
			if err := faults.Eval("objmgr/chunk"); err != nil { // fault point: the holder breaks off mid-chunk
				return err
			}
			if off, ok := s.region.offsetOf(b); ok && canAck {
				// From the file; the object stays pinned (we are inside the
				// read) until the puller says it has the bytes.
				if err := answerFlags(c, statusOK, answerAck, int64(len(b)), ""); err != nil {
					return err
				}
				if err := sendFile(c, s.region.FD, off, int64(len(b))); err != nil {
					return err
				}
				var ack [1]byte
				if _, err := io.ReadFull(c, ack[:]); err != nil {
					return err
				}
				if ack[0] != ackByte {
					return fmt.Errorf("objmgr: the puller acked with %q", ack[0])
				}
				s.fromFile.Add(1)
				return nil
			}
			if err := answer(c, statusOK, int64(len(b)), ""); err != nil {
				return err
			}
			_, err := c.Write(b)
			return err
		}
		found, err := s.read(id, func(b []byte) error {
			if off+n > int64(len(b)) {
				return errs.Invalidf("objmgr: chunk [%d, %d) beyond the object's %d bytes", off, off+n, len(b))
			}
			return send(b[off : off+n])
		})
		if !found && err == nil && s.partial != nil {
			found, err = s.partial(id, off, n, send)
		}
		switch {
		case sent && err != nil:
			return // the connection broke mid-chunk
		case !found:
			err = answer(c, statusNotFound, 0, "objmgr: object "+id.String()+" is not in this node's store")
		case err != nil && errors.Is(err, errs.ErrInvalidRequest):
			err = answer(c, statusInvalid, 0, err.Error())
		case err != nil:
			err = answer(c, statusFailed, 0, err.Error())
		default:
			s.served.Add(1)
		}
		if err != nil {
			return
		}
	}
}

// answer writes an answer's header and, for errors, its message.
func answer(c net.Conn, status byte, n int64, msg string) error {
	return answerFlags(c, status, 0, n, msg)
}

func answerFlags(c net.Conn, status, flags byte, n int64, msg string) error {
	if len(msg) > maxMessageBytes {
		msg = msg[:maxMessageBytes]
	}
	buf := make([]byte, answerBytes+len(msg))
	buf[0], buf[1] = status, flags
	binary.BigEndian.PutUint32(buf[4:8], uint32(len(msg)))
	binary.BigEndian.PutUint64(buf[8:16], uint64(n))
	copy(buf[answerBytes:], msg)
	_, err := c.Write(buf)
	return err
}

// Client reads chunks from other nodes' Servers, keeping idle
// connections per node for reuse. resolve maps a node daemon's address
// to its transfer address; it is called for each new connection. It is
// safe for concurrent use.
type Client struct {
	token   string
	resolve func(ctx context.Context, node string) (string, error)

	mu     sync.Mutex
	idle   map[string][]net.Conn // guarded by mu; by node
	closed bool                  // guarded by mu
}

// NewClient returns a Client authenticating with token.
func NewClient(token string, resolve func(ctx context.Context, node string) (string, error)) *Client {
	return &Client{token: token, resolve: resolve, idle: map[string][]net.Conn{}}
}

// ReadChunk implements Sources: it fills dst with the object's bytes
// from off, read from node. A node that lacks the object answers with an
// error wrapping errs.ErrNotFound; a node that cannot be reached, with
// one wrapping errs.ErrUnavailable.
func (cl *Client) ReadChunk(ctx context.Context, node string, id ids.ID, off int64, dst []byte) error {
	c, err := cl.conn(ctx, node)
	if err != nil {
		return err
	}
	err = roundTrip(ctx, c, id, off, dst)
	var pe *peerError
	if err == nil || errors.As(err, &pe) && pe.keep {
		cl.put(node, c)
	} else {
		_ = c.Close()
	}
	if err != nil && !errors.As(err, &pe) {
		err = fmt.Errorf("%w: objmgr: read a chunk of %s from %s: %v", errs.ErrUnavailable, id.Short(), node, err)
	}
	return err
}

// peerError is an error the holder answered with.
type peerError struct {
	error
	keep bool // the connection is still in step
}

func (e *peerError) Unwrap() error { return e.error }

func roundTrip(ctx context.Context, c net.Conn, id ids.ID, off int64, dst []byte) error {
	deadline := time.Now().Add(ChunkTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var req [requestBytes]byte
	copy(req[:4], requestMagic[:])
	req[4] = flagCanAck
	copy(req[8:24], id[:])
	binary.BigEndian.PutUint64(req[24:32], uint64(off))
	binary.BigEndian.PutUint64(req[32:40], uint64(len(dst)))
	if _, err := c.Write(req[:]); err != nil {
		return err
	}
	var hdr [answerBytes]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	status := hdr[0]
	mlen := binary.BigEndian.Uint32(hdr[4:8])
	n := int64(binary.BigEndian.Uint64(hdr[8:16]))
	if status != statusOK {
		if mlen > maxMessageBytes {
			return fmt.Errorf("objmgr: an error message of %d bytes", mlen)
		}
		msg := make([]byte, mlen)
		if _, err := io.ReadFull(c, msg); err != nil {
			return err
		}
		switch status {
		case statusNotFound:
			return &peerError{errs.NotFoundf("%s", msg), true}
		case statusInvalid:
			return &peerError{errs.Invalidf("%s", msg), false}
		default:
			return &peerError{errs.Systemf("%s", msg), true}
		}
	}
	if n != int64(len(dst)) {
		return fmt.Errorf("objmgr: asked for %d bytes, the holder sends %d", len(dst), n)
	}
	_, err := io.ReadFull(c, dst)
	if err == nil && hdr[1]&answerAck != 0 {
		_, err = c.Write([]byte{ackByte})
	}
	if err == nil {
		_ = c.SetDeadline(time.Time{})
	}
	return err
}

func (cl *Client) conn(ctx context.Context, node string) (net.Conn, error) {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil, errs.Systemf("objmgr: client closed")
	}
	if list := cl.idle[node]; len(list) > 0 {
		c := list[len(list)-1]
		cl.idle[node] = list[:len(list)-1]
		cl.mu.Unlock()
		return c, nil
	}
	cl.mu.Unlock()
	addr, err := cl.resolve(ctx, node)
	if err != nil {
		return nil, fmt.Errorf("%w: objmgr: the transfer address of %s: %v", errs.ErrUnavailable, node, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: objmgr: dial %s (node %s): %v", errs.ErrUnavailable, addr, node, err)
	}
	if err := tokenauth.Client(ctx, c, cl.token); err != nil {
		_ = c.Close()
		if errors.Is(err, tokenauth.ErrBadPeer) {
			return nil, fmt.Errorf("%w: objmgr: %s: %v", errs.ErrUnauthenticated, addr, err)
		}
		return nil, fmt.Errorf("%w: objmgr: token exchange with %s: %v", errs.ErrUnavailable, addr, err)
	}
	setBuffers(c)
	return c, nil
}

func (cl *Client) put(node string, c net.Conn) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.closed || len(cl.idle[node]) >= MaxIdleConnsPerNode {
		_ = c.Close()
		return
	}
	cl.idle[node] = append(cl.idle[node], c)
}

// Close closes every idle connection; connections in use close when
// their reads end.
func (cl *Client) Close() {
	cl.mu.Lock()
	cl.closed = true
	idle := cl.idle
	cl.idle = map[string][]net.Conn{}
	cl.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			_ = c.Close()
		}
	}
}

// setBuffers asks for socket buffers large enough for a chunk in flight
// on a fast link (the kernel caps them at its own limits).
func setBuffers(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 20)
		_ = tc.SetWriteBuffer(4 << 20)
	}
}
