// Package rpc holds what every raygo gRPC endpoint shares: cluster-token
// authentication of every connection before gRPC reads from it (auth.go),
// checks of every message received against its type's size limit and
// wirecheck's rules, the table that turns typed errors into gRPC statuses
// and back, and a pool of client connections.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/faults"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/wirecheck"
)

// MaxMessageBytes bounds one gRPC message (a task batch, a reply batch, an
// object transfer). An object moves between a node's store and a process
// in one message for now, so this is also the largest object. Each
// message type has a limit of its own, at most this one
// (wirecheck.MaxBytes).
const MaxMessageBytes = wirecheck.BigMessageBytes

// maxHeaderBytes bounds a call's metadata: raygo sends none of its own.
const maxHeaderBytes = 64 << 10

// Flow-control windows per stream and per connection.
const (
	windowBytes     = 4 << 20
	connWindowBytes = 16 << 20
)

// NewServer returns a gRPC server that authenticates every connection
// with token before reading from it (the token exchange, auth.go),
// refuses any message larger than its type's limit (wirecheck.MaxBytes)
// before decoding it, checks every request and streamed message with
// wirecheck.Message before the handler sees it, and converts handler
// errors to typed statuses.
func NewServer(token string) *grpc.Server {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if m, ok := req.(proto.Message); ok {
			if err := wirecheck.Message(m); err != nil {
				return nil, ToStatus(err)
			}
		}
		// Fault points (internal/faults): the request lost on its way in,
		// or the reply on its way out (the handler ran).
		if err := faults.Eval("rpc" + info.FullMethod + "/request"); err != nil {
			return nil, ToStatus(fmt.Errorf("%w: %v", errs.ErrUnavailable, err))
		}
		resp, err := h(ctx, req)
		if ferr := faults.Eval("rpc" + info.FullMethod + "/reply"); ferr != nil {
			return nil, ToStatus(fmt.Errorf("%w: %v", errs.ErrUnavailable, ferr))
		}
		return resp, ToStatus(err)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := faults.Eval("rpc" + info.FullMethod + "/request"); err != nil {
			return ToStatus(fmt.Errorf("%w: %v", errs.ErrUnavailable, err))
		}
		return ToStatus(h(srv, checkedStream{ss}))
	}
	return grpc.NewServer(
		grpc.Creds(serverCreds{token: token}),
		grpc.ForceServerCodecV2(limitCodec{}),
		grpc.UnaryInterceptor(unary),
		grpc.StreamInterceptor(stream),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 10 * time.Second}),
		// Fixed windows turn off BDP probing, whose pings cost a round trip
		// on every small exchange.
		grpc.InitialWindowSize(windowBytes), grpc.InitialConnWindowSize(connWindowBytes),
	)
}

// checkedStream checks every message a streaming handler receives.
type checkedStream struct{ grpc.ServerStream }

func (s checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		if err := wirecheck.Message(pm); err != nil {
			return ToStatus(err)
		}
	}
	return nil
}

// limitCodec is the proto codec with each message type's size limit
// (wirecheck.MaxBytes) checked before decoding.
type limitCodec struct{}

var protoCodec = encoding.GetCodecV2("proto")

func (limitCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }
func (limitCodec) Name() string                           { return "proto" }
func (limitCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(proto.Message); ok {
		if err := wirecheck.CheckSize(m, data.Len()); err != nil {
			return err
		}
	}
	// The generated fast decoder (vtprotobuf; it copies what it keeps,
	// so the buffer may go back to its pool after) where the message has
	// one: several times faster than reflection on the control store's
	// hot messages (task events, log batches, heartbeats).
	if vt, ok := v.(vtUnmarshaler); ok {
		if len(data) == 1 {
			return vt.UnmarshalVT(data[0].ReadOnlyData())
		}
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		defer buf.Free()
		return vt.UnmarshalVT(buf.ReadOnlyData())
	}
	return protoCodec.Unmarshal(data, v)
}

// vtUnmarshaler is a message with vtprotobuf's generated decoder.
type vtUnmarshaler interface{ UnmarshalVT([]byte) error }

// reconnectMax bounds the wait between a client connection's tries to
// reach a peer it lost.
const reconnectMax = time.Second

// Dial opens a client connection whose every connection is authenticated
// with token (the token exchange, auth.go) and which rebuilds typed errors
// from statuses. It does not block: an unreachable address fails the first
// call with ErrUnavailable, an endpoint that does not hold token with
// ErrUnauthenticated.
func Dial(addr, token string) (*grpc.ClientConn, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, errs.Invalidf("raygo: bad address %q: want host:port", addr)
	}
	st := &dialState{addr: addr}
	unary := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, inv grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return st.typed(FromStatus(inv(ctx, method, req, reply, cc, opts...)))
	}
	streams := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamErrors(ctx, desc, cc, method, streamer, opts...)
		return cs, st.typed(err)
	}
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return st.dialAuthenticated(ctx, a, token) }),
		grpc.WithUnaryInterceptor(unary),
		grpc.WithStreamInterceptor(streams),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		// Reconnect within a second of a peer coming back (gRPC's default
		// backoff grows to two minutes): a head restarted from storage is
		// reached again at once by its nodes and drivers.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2,
			MaxDelay: reconnectMax}, MinConnectTimeout: 5 * time.Second}),
		grpc.WithInitialWindowSize(windowBytes), grpc.WithInitialConnWindowSize(connWindowBytes),
	)
}

// ToStatus converts a typed error to a gRPC status carrying its ErrorInfo,
// with the code the error table in internal/errs gives its kind (context
// errors included: context.Canceled becomes Canceled, DeadlineExceeded
// DeadlineExceeded). Statuses and nil pass through.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	info := errs.ToInfo(err)
	code := errs.Code(info.GetKind())
	st, serr := status.New(code, err.Error()).WithDetails(info)
	if serr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}

// FromStatus rebuilds a typed error from a gRPC status: from its ErrorInfo
// when it has one, else from its code as errs.FromCode reads it; a status
// with neither passes through.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*pb.ErrorInfo); ok {
			return errs.FromInfo(info)
		}
	}
	if typed := errs.FromCode(st.Code(), st.Message()); typed != nil {
		return typed
	}
	return err
}

// IsUnavailable reports whether err means the peer could not be reached
// or the connection broke.
func IsUnavailable(err error) bool {
	if errors.Is(err, errs.ErrUnavailable) {
		return true
	}
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.Unavailable
}

// Pool caches one client connection per address. It is safe for
// concurrent use.
type Pool struct {
	token string
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // guarded by mu
}

// NewPool returns an empty pool whose connections carry token.
func NewPool(token string) *Pool { return &Pool{token: token, conns: map[string]*grpc.ClientConn{}} }

// Get returns the connection to addr, dialing it on first use.
func (p *Pool) Get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := Dial(addr, p.token)
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

// Drop closes and forgets the connection to addr (after its peer died).
func (p *Pool) Drop(addr string) {
	p.mu.Lock()
	c := p.conns[addr]
	delete(p.conns, addr)
	p.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[string]*grpc.ClientConn{}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func errsListen(addr string, err error) error {
	return fmt.Errorf("raygo: listen on %s: %w", addr, err)
}

// IsLoopback reports whether a listen address stays on this host.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1" {
		return true
	}
	return false
}

// streamErrors makes streaming calls return typed errors too: stream
// creation, SendMsg, RecvMsg (except io.EOF, the normal end) and
// CloseSend go through FromStatus.
func streamErrors(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, FromStatus(err)
	}
	return typedStream{cs}, nil
}

type typedStream struct{ grpc.ClientStream }

func (s typedStream) SendMsg(m any) error {
	if err := s.ClientStream.SendMsg(m); err != nil && !errors.Is(err, io.EOF) {
		return FromStatus(err)
	} else {
		return err
	}
}

func (s typedStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil && !errors.Is(err, io.EOF) {
		return FromStatus(err)
	} else {
		return err
	}
}

func (s typedStream) CloseSend() error { return FromStatus(s.ClientStream.CloseSend()) }
