package raymcp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ClusterServer is the server name under which a Client reaches raygo's
// own MCP server (/mcp) rather than a hosted one; hosted names are never
// empty.
const ClusterServer = ""

// Client keeps one MCP session per server for its owner (a driver, an
// actor), opened on first use with Connect or ConnectCluster, and opens a
// new one when the gateway has forgotten the old one (unused for 30
// minutes, or the head restarted).
//
// A call is repeated on the new session only when it cannot have run:
// the gateway answered that it no longer knows the session
// (mcp.ErrSessionMissing), or the call is a listing. A call that was
// under way when its session broke (mcp.ErrConnectionClosed) or when its
// replica died (IsReplicaGone) returns its error and is not repeated: it
// may have run, and only the caller knows whether running it twice is
// safe. The next call uses a working session either way.
//
// A Client is safe for concurrent use; Close closes its sessions.
type Client struct {
	opts *mcp.ClientOptions

	mu       sync.Mutex
	closed   bool
	sessions map[string]*session // guarded by mu; by server name
	wg       sync.WaitGroup      // the sessions' watchers
}

// session is a Client's session with one server; done closes when it
// ends, however it ends.
type session struct {
	cs   *mcp.ClientSession
	done chan struct{}
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// NewClient returns a Client whose sessions use opts (nil is fine).
func NewClient(opts *mcp.ClientOptions) *Client {
	return &Client{opts: opts, sessions: map[string]*session{}}
}

// Session returns the Client's session with server (ClusterServer for
// raygo's own), opening it when there is none or it has ended. The
// session stays the Client's: do not close it.
func (c *Client) Session(ctx context.Context, server string) (*mcp.ClientSession, error) {
	s, err := c.session(ctx, server)
	if err != nil {
		return nil, err
	}
	return s.cs, nil
}

func (c *Client) session(ctx context.Context, server string) (*session, error) {
	// Held while connecting: concurrent first calls share one session
	// rather than each opening their own.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClientClosed
	}
	if s := c.sessions[server]; s != nil && !s.ended() {
		return s, nil
	}
	var cs *mcp.ClientSession
	var err error
	if server == ClusterServer {
		cs, err = ConnectCluster(ctx, c.opts)
	} else {
		cs, err = Connect(ctx, server, c.opts)
	}
	if err != nil {
		return nil, err
	}
	s := &session{cs: cs, done: make(chan struct{})}
	c.sessions[server] = s
	c.wg.Add(1)
	go func() { // ends when the session does; Close ends every session
		defer c.wg.Done()
		_ = cs.Wait()
		close(s.done)
	}()
	return s, nil
}

// drop closes s and forgets it, if it is still server's session.
func (c *Client) drop(server string, s *session) {
	c.mu.Lock()
	if c.sessions[server] == s {
		delete(c.sessions, server)
	}
	c.mu.Unlock()
	_ = s.cs.Close()
}

// do runs f on server's session; when the session turns out to be gone,
// it drops it and, if f cannot have run (or is safe to repeat), runs f
// once more on a new session.
func (c *Client) do(ctx context.Context, server string, repeatable bool, f func(*mcp.ClientSession) error) error {
	s, err := c.session(ctx, server)
	if err != nil {
		return err
	}
	err = f(s.cs)
	if err == nil || !sessionGone(err) {
		return err
	}
	c.drop(server, s)
	if !repeatable && !errors.Is(err, mcp.ErrSessionMissing) {
		return fmt.Errorf("raymcp: the session with %s ended during the call (it may have run; the next call opens a new session): %w", serverLabel(server), err)
	}
	if s, err = c.session(ctx, server); err != nil {
		return err
	}
	return f(s.cs)
}

// sessionGone reports whether err says the session cannot be used again.
func sessionGone(err error) bool {
	return errors.Is(err, mcp.ErrSessionMissing) || errors.Is(err, mcp.ErrConnectionClosed)
}

func serverLabel(server string) string {
	if server == ClusterServer {
		return "the cluster's MCP server"
	}
	return fmt.Sprintf("hosted MCP server %q", server)
}

// CallTool calls tool on server (ClusterServer for raygo's own) with args
// (a value that marshals to a JSON object, or nil). A tool's own failure
// is a result with IsError set, not an error; see Client for when a call
// is repeated.
func (c *Client) CallTool(ctx context.Context, server, tool string, args any) (*mcp.CallToolResult, error) {
	var res *mcp.CallToolResult
	err := c.do(ctx, server, false, func(cs *mcp.ClientSession) error {
		var err error
		res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
		return err
	})
	return res, err
}

// Tools lists every tool of server (ClusterServer for raygo's own),
// following the pages.
func (c *Client) Tools(ctx context.Context, server string) ([]*mcp.Tool, error) {
	var tools []*mcp.Tool
	err := c.do(ctx, server, true, func(cs *mcp.ClientSession) error {
		tools = tools[:0]
		for t, err := range cs.Tools(ctx, nil) {
			if err != nil {
				return err
			}
			tools = append(tools, t)
		}
		return nil
	})
	return tools, err
}

// Close closes every session of the Client and waits for them to end.
// Later calls fail with ErrClientClosed. Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	sessions := c.sessions
	c.sessions = map[string]*session{}
	c.mu.Unlock()
	var errs []error
	for name, s := range sessions {
		if err := s.cs.Close(); err != nil && !sessionGone(err) {
			errs = append(errs, fmt.Errorf("raymcp: close the session with %s: %w", serverLabel(name), err))
		}
	}
	c.wg.Wait()
	return errors.Join(errs...)
}
