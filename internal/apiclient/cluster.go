package apiclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// WithToken returns a client of the same API that sends token instead,
// sharing c's connections (the head's /mcp endpoint acts for each caller
// with the caller's own token this way). It is safe to use both at once.
func (c *Client) WithToken(token string) *Client {
	return &Client{base: c.base, token: token, hc: c.hc}
}

// Whoami is who the API takes the client's token for.
type Whoami struct {
	Name  string `json:"name"`
	Scope string `json:"scope"` // read, write or admin
}

// WhoAmI asks the API whose token the client sends.
func (c *Client) WhoAmI(ctx context.Context) (Whoami, error) {
	var out Whoami
	err := c.Do(ctx, http.MethodGet, "/api/whoami", nil, &out)
	return out, err
}

// ClusterStatus is what `raygo status` shows (GET /api/v0/cluster_status).
type ClusterStatus struct {
	AliveNodes        int                 `json:"alive_nodes"`
	DeadNodes         int                 `json:"dead_nodes"`
	Machines          int                 `json:"machines"`
	Nodes             []ClusterStatusNode `json:"nodes"`
	ResourcesTotal    map[string]float64  `json:"resources_total"`
	ResourcesUsed     map[string]float64  `json:"resources_used"`
	PendingDemands    []Demand            `json:"pending_demands"`
	InfeasibleDemands []Demand            `json:"infeasible_demands"`
}

// ClusterStatusNode is one node of ClusterStatus.
type ClusterStatusNode struct {
	NodeID         string             `json:"node_id"`
	Address        string             `json:"address"`
	State          string             `json:"state"`
	IsHeadNode     bool               `json:"is_head_node"`
	NumWorkers     int                `json:"num_workers"`
	ResourcesTotal map[string]float64 `json:"resources_total"`
	ResourcesUsed  map[string]float64 `json:"resources_used,omitempty"`
	Labels         map[string]string  `json:"labels,omitempty"`
}

// Demand is a shape of resource request and how many requests of it wait.
type Demand struct {
	Shape string `json:"shape"`
	Count int    `json:"count"`
}

// ClusterStatus returns the cluster's nodes, resource usage and pending
// and infeasible demands.
func (c *Client) ClusterStatus(ctx context.Context) (*ClusterStatus, error) {
	out := &ClusterStatus{}
	if err := c.Do(ctx, http.MethodGet, "/api/v0/cluster_status", nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// KillActorReply answers KillActor.
type KillActorReply struct {
	ActorID   string `json:"actor_id"`
	NoRestart bool   `json:"no_restart"`
	Killed    bool   `json:"killed"`
}

// KillActor kills the actor id names (a full id or at least 6 of its
// first or last hex digits). With noRestart it is dead for good (Ray's
// ray.kill default); without, it restarts if it has restarts left. It
// needs a write token, and the head's audit log records it.
func (c *Client) KillActor(ctx context.Context, id string, noRestart bool) (KillActorReply, error) {
	var out KillActorReply
	if id == "" {
		return out, fmt.Errorf("kill actor: no id given")
	}
	err := c.Do(ctx, http.MethodPost, "/api/v0/actors/"+url.PathEscape(id)+"/kill", map[string]bool{"no_restart": noRestart}, &out)
	return out, err
}

// MaxMetricsBytes bounds what Metrics reads of a scrape.
const MaxMetricsBytes = 32 << 20

// Metrics returns the head's Prometheus scrape (GET /metrics, text
// format): every alive node's metrics and the cluster's. The caller
// closes it; at most MaxMetricsBytes of it can be read.
func (c *Client) Metrics(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.Request(ctx, http.MethodGet, "/metrics", nil, "")
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, MaxMetricsBytes), resp.Body}, nil
}
