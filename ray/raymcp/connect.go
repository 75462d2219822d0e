package raymcp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/mcphost/hostspec"
	"github.com/raygo/raygo/ray"
)

// ClusterPath is the path of raygo's own MCP server on the head.
const ClusterPath = "/mcp"

// Implementation is what sessions opened by this package call themselves
// in initialize.
var Implementation = mcp.Implementation{Name: "raygo-raymcp", Version: "1"}

// transport carries every session this process opens (connections are
// reused across sessions; idle ones close after a minute). Cluster
// addresses are reached directly, never through an HTTP proxy.
var transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}

// bearer adds the cluster token to every request of a session.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return transport.RoundTrip(r)
}

// Connect opens an MCP client session with the named hosted server
// through its gateway on the head (/mcp/hosted/NAME, streamable HTTP),
// with this program's token (ray.ClusterAPI): from a driver, a task or an
// actor alike. opts configures the SDK's client (handlers for sampling,
// notifications, …); nil is fine.
//
// The session is bound to one replica; when that replica dies, a call
// under way fails with CodeReplicaGone (IsReplicaGone) and the session
// moves to another ready replica. The caller owns the session and closes
// it. The gateway forgets a session unused for 30 minutes or across a
// head restart: Client reconnects in that case.
func Connect(ctx context.Context, name string, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	if err := hostspec.ValidName(name); err != nil {
		return nil, fmt.Errorf("raymcp: %w", err)
	}
	base, token, err := ray.ClusterAPI(ctx)
	if err != nil {
		return nil, fmt.Errorf("raymcp: %w", err)
	}
	cs, err := connect(ctx, base+hostspec.GatewayPath(url.PathEscape(name)), token, opts)
	if err != nil {
		// Say why when the head can: an unknown name, or no replica ready.
		if c, cerr := apiclient.New(base, token); cerr == nil {
			defer c.CloseIdle()
			if s, gerr := get(ctx, c, name); errors.Is(gerr, ErrNotFound) {
				return nil, gerr
			} else if gerr == nil && s.Ready == 0 {
				return nil, fmt.Errorf("raymcp: connect to hosted MCP server %q: %w (%s; WaitReady waits for them)", name, err, describe(s))
			}
		}
		return nil, fmt.Errorf("raymcp: connect to hosted MCP server %q: %w", name, err)
	}
	return cs, nil
}

// ConnectCluster opens an MCP client session with raygo's own MCP server
// on the head (/mcp: cluster_status, list_jobs, job_logs, …), with this
// program's token. The caller owns the session and closes it.
func ConnectCluster(ctx context.Context, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	base, token, err := ray.ClusterAPI(ctx)
	if err != nil {
		return nil, fmt.Errorf("raymcp: %w", err)
	}
	cs, err := connect(ctx, base+ClusterPath, token, opts)
	if err != nil {
		return nil, fmt.Errorf("raymcp: connect to the cluster's MCP server: %w", err)
	}
	return cs, nil
}

func connect(ctx context.Context, endpoint, token string, opts *mcp.ClientOptions) (*mcp.ClientSession, error) {
	impl := Implementation
	t := &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearer{token}}}
	return mcp.NewClient(&impl, opts).Connect(ctx, t, nil)
}
