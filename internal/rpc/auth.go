package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/tokenauth"
)

// Authentication is per connection, in the transport, before gRPC reads a
// byte of HTTP/2: a server's transport credentials run the server's side
// of the token exchange (package tokenauth) on every connection it accepts,
// on TCP and on the unix socket beside it, and a client's dialer runs the
// client's side before handing the connection to gRPC. An unauthenticated
// peer gets the same answer from every endpoint, whatever service it
// serves: after at most tokenauth.ServerReads bytes, the connection closes.

// serverCreds are a server's transport credentials: the token exchange.
type serverCreds struct{ token string }

type authInfo struct{ credentials.CommonAuthInfo }

func (authInfo) AuthType() string { return "raygo-token" }

func (c serverCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if err := tokenauth.Server(raw, c.token); err != nil {
		return nil, nil, err // gRPC closes raw
	}
	return raw, authInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}, nil
}

// ClientHandshake is not used: clients authenticate in their dialer
// (dialAuthenticated), which can fall back from a local socket whose
// listener fails the exchange to TCP.
func (serverCreds) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("rpc: server credentials used by a client")
}

func (serverCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "raygo-token", ProtocolVersion: "1"}
}
func (c serverCreds) Clone() credentials.TransportCredentials { return c }
func (serverCreds) OverrideServerName(string) error           { return nil }

// dialState remembers, for one client connection, why its last dial
// failed the token exchange, so that calls failing for want of a
// connection say so with a typed error (errs.ErrUnauthenticated) instead
// of a bare "unavailable".
type dialState struct {
	addr    string
	mu      sync.Mutex
	authErr error // guarded by mu; nil after a dial that authenticated
}

func (s *dialState) set(err error) {
	s.mu.Lock()
	s.authErr = err
	s.mu.Unlock()
}

// typed turns an unavailable error into an unauthenticated one when the
// last dial failed the token exchange.
func (s *dialState) typed(err error) error {
	if err == nil || !IsUnavailable(err) {
		return err
	}
	s.mu.Lock()
	authErr := s.authErr
	s.mu.Unlock()
	if authErr == nil {
		return err
	}
	return fmt.Errorf("%w: %s: %v", errs.ErrUnauthenticated, s.addr, authErr)
}

// dialAuthenticated connects to addr (its local socket first, then TCP)
// and runs the client's side of the token exchange on the connection.
func (s *dialState) dialAuthenticated(ctx context.Context, addr, token string) (net.Conn, error) {
	c, err := dialLocalFirst(ctx, addr, func(c net.Conn) error { return tokenauth.Client(ctx, c, token) })
	if errors.Is(err, tokenauth.ErrBadPeer) {
		s.set(fmt.Errorf("the endpoint does not hold this cluster token (a wrong token, or another cluster's endpoint): %w", err))
	} else if err == nil {
		s.set(nil)
	}
	return c, err
}
