// Package mcpserver is raygo as an MCP server: tools, resources and
// prompts to use and operate a cluster, served over stdio by `raygo mcp`
// and over streamable HTTP by the head at /mcp (docs/mcp.md).
//
// Everything a tool, resource or prompt does goes through the head's HTTP
// API (internal/apiclient) with the caller's token: over stdio the token
// `raygo mcp` was given, at /mcp the bearer token of each request. So the
// API's scope checks and audit log apply to MCP callers exactly as to the
// CLI: a read token lists and reads, a write token also submits, stops
// and deletes jobs and kills actors, and every such change is in the
// audit log under the token's name.
//
// The tools are built with the official Go SDK's typed AddTool, so each
// has an input and an output schema. The mutating ones (submit_job,
// stop_job, delete_job, kill_actor) are only offered when the server
// allows mutations (Config.AllowMutations: `raygo mcp --allow-mutations`,
// `raygo start --head --mcp-allow-mutations`); the destructive ones also
// need confirm: true in their input. Failures are tool errors
// (CallToolResult.IsError) whose text says what to do.
//
//	srv := mcpserver.New(mcpserver.Config{Client: mcpserver.FixedClient(c)})
//	err := srv.Run(ctx, &mcp.StdioTransport{})
//
// Limits: list pages of DefaultPageSize rows (at most MaxPageSize),
// job_logs pages of DefaultLogPageBytes (at most MaxLogPageBytes), waits
// of at most MaxWaitSeconds, tails of at most MaxTailLines lines; HTTP
// sessions end after SessionIdleTimeout without a request.
package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/apiclient"
)

// Options configures the head's /mcp endpoint.
type Options struct {
	// AllowMutations enables the tools that change the cluster (submit
	// and stop jobs, kill actors); a caller still needs a write token.
	AllowMutations bool
}

// Config configures an MCP server of a cluster.
type Config struct {
	// Client returns the API client a request acts with: its caller's
	// token against the head's API. Required.
	Client func(ctx context.Context, req mcp.Request) (*apiclient.Client, error)
	// AllowMutations offers submit_job, stop_job, delete_job and
	// kill_actor; without it they are not listed.
	AllowMutations bool
	// Version is reported to clients as the server's version.
	Version string
	// Transport names how clients reach this server, for messages that
	// tell them how to fix a token: "stdio" or "http".
	Transport string
}

// FixedClient is a Config.Client that acts with c for every request (the
// stdio server: one user, one token).
func FixedClient(c *apiclient.Client) func(context.Context, mcp.Request) (*apiclient.Client, error) {
	return func(context.Context, mcp.Request) (*apiclient.Client, error) { return c, nil }
}

// serverName is the name the server reports to clients.
const serverName = "raygo"

// instructions tell an agent how to use the server.
const instructions = `raygo runs distributed Go tasks and actors on a cluster, and jobs (shell entrypoints) on its nodes.
Start with cluster_status. list_* tools page with limit (default 100, at most 1000) and next_cursor, and filter with
"key=value" / "key!=value" on the rows' fields (e.g. state=ALIVE). Ids may be abbreviated to 6+ hex digits.
To watch a job: job_logs with offset from the previous call's next_offset and wait_seconds (at most 30) until ended is true.`

// New makes the MCP server: its tools, resources and prompts.
func New(cfg Config) (*mcp.Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("mcpserver: Config.Client is required")
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := mcp.NewServer(&mcp.Implementation{Name: serverName, Title: "raygo cluster", Version: cfg.Version},
		&mcp.ServerOptions{Instructions: instructions})
	b := &backend{cfg: cfg}
	b.addReadTools(s)
	if cfg.AllowMutations {
		b.addWriteTools(s)
	}
	b.addResources(s)
	b.addPrompts(s)
	return s, nil
}

// backend carries the server's configuration to its handlers.
type backend struct{ cfg Config }

// client is the API client req acts with.
func (b *backend) client(ctx context.Context, req mcp.Request) (*apiclient.Client, error) {
	c, err := b.cfg.Client(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("no connection to the raygo API: %w", err)
	}
	return c, nil
}

// tokenFix says how a caller of this server changes its token.
func (b *backend) tokenFix() string {
	if b.cfg.Transport == "http" {
		return "send another token in this MCP client's Authorization: Bearer header"
	}
	return "restart `raygo mcp` with --token (or $RAYGO_TOKEN) set to another token"
}

// apiError turns an API call's error into a tool error an agent can act
// on; hint is added to not-found errors (where to find valid ids).
func (b *backend) apiError(err error, hint string) error {
	var e *apiclient.Error
	if !errors.As(err, &e) {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			return fmt.Errorf("the request was cancelled or timed out: %v", err)
		}
		return fmt.Errorf("%v (is the raygo cluster running and its HTTP API reachable?)", err)
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return fmt.Errorf("the raygo API refused the token: %s. Fix: %s (`raygo token` prints the cluster token; `raygo token create NAME --scope read|write` makes one)", e.Message, b.tokenFix())
	case http.StatusForbidden:
		if e.Code == "forbidden" {
			return fmt.Errorf("%s. Fix: this needs a token with write scope: have the cluster's admin run `raygo token create NAME --scope write` and %s", e.Message, b.tokenFix())
		}
		return fmt.Errorf("refused: %s", e.Message)
	case http.StatusNotFound:
		if hint != "" {
			return fmt.Errorf("%s. %s", strings.TrimSuffix(e.Message, "."), hint)
		}
	}
	return errors.New(e.Message)
}

// inputError is a tool error for input the tool cannot take.
func inputError(err error) error {
	msg := err.Error()
	for _, p := range []string{ErrBadInput.Error() + ": ", ErrBadCursor.Error() + ": "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return errors.New(msg)
}

// boolPtr is &v.
func boolPtr(v bool) *bool { return &v }
