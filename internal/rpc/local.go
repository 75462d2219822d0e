package rpc

import (
	"context"
	"errors"
	"fmt"
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
	addr string       // the advertised address: host and the port listened on
}

// Listen opens a TCP listener on addr ("127.0.0.1:0" picks a free port)
// and the local unix socket for the address it got. addr's host must be
// a specific one (ListenOn serves every interface).
func Listen(addr string) (*Listener, error) { return ListenOn(addr, "") }

// ListenOn opens a TCP listener on addr and names the endpoint, cluster
// wide, with advertise (a host) in place of addr's host: a daemon that
// listens on every interface ("0.0.0.0:0") is reached at its node's
// routable address, and its local socket is named after that address,
// which is what clients dial. An empty advertise keeps addr's host, which
// then must not be unspecified (nobody can dial 0.0.0.0 from elsewhere).
func ListenOn(addr, advertise string) (*Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, errsListen(addr, err)
	}
	if advertise == "" {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			return nil, errsListen(addr, errors.New("an address listening on every interface needs a routable address to advertise"))
		}
	} else if ip := net.ParseIP(advertise); ip == nil || ip.IsUnspecified() {
		return nil, errsListen(addr, fmt.Errorf("advertised address %q is not a routable IP address", advertise))
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errsListen(addr, err)
	}
	l := &Listener{tcp: tcp, addr: tcp.Addr().String()}
	if advertise != "" {
		_, port, _ := net.SplitHostPort(l.addr)
		l.addr = net.JoinHostPort(advertise, port)
	}
	if name, err := localsock.Name(l.addr, localsock.GRPC); err == nil {
		if u, err := localsock.Listen(name); err == nil {
			l.unix = u
		}
	}
	return l, nil
}

// Addr is the advertised TCP address: the endpoint's name cluster-wide.
func (l *Listener) Addr() string { return l.addr }

// RoutableIP is the address this host reaches target ("host:port") from:
// the source address of its route there (nothing is sent). It is what a
// process listening on every interface, or one on a host without a node,
// advertises.
func RoutableIP(target string) (string, error) {
	c, err := net.Dial("udp", target)
	if err != nil {
		return "", fmt.Errorf("find this host's address toward %s: %w", target, err)
	}
	defer c.Close()
	host, _, err := net.SplitHostPort(c.LocalAddr().String())
	return host, err
}

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
