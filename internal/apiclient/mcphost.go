package apiclient

import (
	"context"
	"net/http"
	"net/url"

	"github.com/raygo/raygo/internal/mcphost/hostspec"
)

// HostMCPServer hosts an MCP server on the cluster (POST /api/mcp/servers).
func (c *Client) HostMCPServer(ctx context.Context, spec hostspec.Spec) (hostspec.Status, error) {
	var out hostspec.Status
	err := c.Do(ctx, http.MethodPost, "/api/mcp/servers", spec, &out)
	return out, err
}

// MCPServers lists the hosted MCP servers, by name.
func (c *Client) MCPServers(ctx context.Context) ([]hostspec.Status, error) {
	var out struct {
		Servers []hostspec.Status `json:"servers"`
	}
	err := c.Do(ctx, http.MethodGet, "/api/mcp/servers", nil, &out)
	return out.Servers, err
}

// MCPServer is one hosted MCP server.
func (c *Client) MCPServer(ctx context.Context, name string) (hostspec.Status, error) {
	var out hostspec.Status
	err := c.Do(ctx, http.MethodGet, "/api/mcp/servers/"+url.PathEscape(name), nil, &out)
	return out, err
}

// StopMCPServer stops a hosted MCP server's replicas and forgets it.
func (c *Client) StopMCPServer(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/api/mcp/servers/"+url.PathEscape(name), nil, nil)
}
