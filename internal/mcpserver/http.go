package mcpserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/mcpauth"
)

// Path is the head's MCP endpoint.
const Path = "/mcp"

// SessionIdleTimeout ends an HTTP MCP session that has had no request for
// this long (the client starts a new one with initialize).
const SessionIdleTimeout = 30 * time.Minute

// Feature registers /mcp on the head's HTTP server: streamable HTTP
// (POST, GET and DELETE /mcp) for callers with a read token, sent as
// "Authorization: Bearer …" (a dashboard session cookie is refused).
// Tools act through the head's own API with the caller's token, so its
// scope checks and audit log apply to them. The api guard has already
// refused bad origins and unknown tokens; the SDK's handler also refuses
// requests to a loopback address whose Host is not a loopback name (DNS
// rebinding), and ties each session to the token name that opened it.
func Feature(o Options) api.Feature {
	return func(s *api.Server, _ *api.Cluster) (func(), error) {
		self := &selfClient{s: s}
		srv, err := New(Config{AllowMutations: o.AllowMutations, Transport: "http",
			Client: func(_ context.Context, req mcp.Request) (*apiclient.Client, error) {
				var h http.Header
				if ex := req.GetExtra(); ex != nil {
					h = ex.Header
				}
				tok, ok := mcpauth.Bearer(h)
				if !ok {
					return nil, fmt.Errorf("the request carried no bearer token")
				}
				base, err := self.get()
				if err != nil {
					return nil, err
				}
				return base.WithToken(tok), nil
			}})
		if err != nil {
			return nil, err
		}
		log := slog.Default().With("component", "mcpserver")
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv },
			&mcp.StreamableHTTPOptions{SessionTimeout: SessionIdleTimeout, Logger: log})
		handler := mcpauth.Wrap(s, Path, h)
		for _, m := range []string{"POST", "GET", "DELETE"} {
			s.HandleProtocol(m+" "+Path, api.ScopeRead, handler)
		}
		return func() {
			for ss := range srv.Sessions() {
				_ = ss.Close()
			}
			self.close()
		}, nil
	}
}

// selfClient is a client of the head's own API, made once the server
// listens (features are registered before it does).
type selfClient struct {
	s  *api.Server
	mu sync.Mutex
	c  *apiclient.Client // guarded by mu
}

func (sc *selfClient) get() (*apiclient.Client, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.c != nil {
		return sc.c, nil
	}
	addr := sc.s.Addr()
	if addr == "" {
		return nil, fmt.Errorf("the head's HTTP API is not listening yet")
	}
	c, err := apiclient.New("http://"+dialable(addr), "")
	if err != nil {
		return nil, err
	}
	sc.c = c
	return c, nil
}

func (sc *selfClient) close() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.c != nil {
		sc.c.CloseIdle()
	}
}

// dialable turns a listen address into one to connect to: an
// unspecified host (0.0.0.0, ::) becomes loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}
