package rpc

import (
	"context"
	"net"
	"sync"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/localsock"
)

// Every endpoint listens on TCP and, beside it, on a local unix socket
// named after its TCP address (package localsock: an abstract socket
// "@raygo/127.0.0.1:41234" on Linux, a socket file on darwin). Clients on
// the same machine reach the socket by the address alone and use it
// instead of TCP loopback: the same gRPC service, at a fraction of the
// latency (a loopback TCP round trip costs ~80 µs on the VMs we measure
// on, a unix socket ~8 µs). Both start with the token exchange (auth.go).
// Remote clients, local ones when the socket is gone, and every client on
// platforms without local sockets (windows) use TCP.

// Listener is a TCP listener and its local unix socket twin.
type Listener struct {
	tcp  net.Listener
	unix net.Listener // nil when the socket could not be made
}

// Listen opens a TCP listener on addr ("127.0.0.1:0" picks a free port)
// and the local unix socket for the address it got.
func Listen(addr string) (*Listener, error) {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errsListen(addr, err)
	}
	l := &Listener{tcp: tcp}
	if name, err := localsock.Name(tcp.Addr().String(), localsock.GRPC); err == nil {
		if u, err := localsock.Listen(name); err == nil {
			l.unix = u
		}
	}
	return l, nil
}

// Addr is the TCP address: the endpoint's name cluster-wide.
func (l *Listener) Addr() string { return l.tcp.Addr().String() }

// Serve serves srv on both listeners until srv stops; wg tracks the
// serving goroutines.
func (l *Listener) Serve(srv *grpc.Server, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Serve(l.tcp) }()
	if l.unix != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Serve(l.unix) }()
	}
}

// Close closes both listeners (for a listener never served).
func (l *Listener) Close() {
	_ = l.tcp.Close()
	if l.unix != nil {
		_ = l.unix.Close()
	}
}

// dialLocalFirst connects through the local socket of addr when one
// answers and passes check (the token exchange), and over TCP otherwise.
// A local socket that fails check (another process squatting on the name)
// is closed and skipped.
func dialLocalFirst(ctx context.Context, addr string, check func(net.Conn) error) (net.Conn, error) {
	if name, err := localsock.Name(addr, localsock.GRPC); err == nil {
		if c, err := localsock.Dial(ctx, name); err == nil {
			if err := check(c); err == nil {
				return c, nil
			}
			c.Close()
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := check(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
