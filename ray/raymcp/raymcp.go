package raymcp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/mcphost/hostspec"
	"github.com/raygo/raygo/ray"
)

// Limits, as the head enforces them (docs/mcp-hosting.md).
const (
	// MaxReplicas bounds a hosted server's replicas.
	MaxReplicas = hostspec.MaxReplicas
	// MaxNameLen bounds a hosted server's name.
	MaxNameLen = hostspec.MaxNameLen
)

// Replica states (ReplicaState.State).
const (
	StatePending  = hostspec.StatePending  // waiting for a node with its resources
	StateStarting = hostspec.StateStarting // process started, not yet answering
	StateReady    = hostspec.StateReady    // initialized and answering pings
	StateBackoff  = hostspec.StateBackoff  // failed; waiting before its next start
)

// Server is a hosted MCP server as the head reports it.
type Server struct {
	// Name is the server's name; its gateway is /mcp/hosted/NAME.
	Name string
	// Command is the stdio program the replicas run, with its arguments.
	Command []string
	// Replicas is how many copies run; Ready how many answer now.
	Replicas, Ready int
	// Access is the token scope the gateway asks for: "read" or "write".
	Access string
	// Gateway is the server's streamable-HTTP MCP endpoint, a full URL.
	Gateway string
	// Resources each replica holds; Env the replicas' extra environment.
	Resources map[string]float64
	Env       map[string]string
	// ServerName and ServerVersion are what the replicas call themselves
	// (empty until one is ready).
	ServerName, ServerVersion string
	// Created and CreatedBy (the token name) say who hosted it, when.
	Created   time.Time
	CreatedBy string
	// ReplicaStates are the replicas, by index.
	ReplicaStates []ReplicaState
}

// ReplicaState is one replica of a hosted server.
type ReplicaState struct {
	Index int
	ID    string
	// State is StatePending, StateStarting, StateReady or StateBackoff;
	// Message says why, when it is not ready.
	State, Message string
	Since          time.Time
	NodeID         string
	Pid            int
	// Restarts counts the replica's replacements; Sessions the gateway
	// sessions bound to it; InFlight its calls under way.
	Restarts, Sessions, InFlight int
}

// HostOptions describe a server to host.
type HostOptions struct {
	// Name names the server: 1 to MaxNameLen lowercase letters, digits
	// and '-'. Required.
	Name string
	// Command is the stdio MCP server to run, found on each node's PATH
	// (or the PATH in Env), with its arguments. Required.
	Command []string
	// Replicas is how many copies run, 1 to MaxReplicas (0 means 1). A
	// gateway session stays on one replica, so a stateful server's
	// replicas share state only if the server keeps it outside the
	// process (server-memory's MEMORY_FILE_PATH on a shared file system).
	Replicas int
	// Env is added to each replica's environment.
	Env map[string]string
	// Resources each replica holds while it runs ({"CPU": 1}); none by
	// default.
	Resources map[string]float64
	// Access is the token scope the gateway asks for: "read" or "write"
	// (the default: a hosted server's tools may change things).
	Access string
}

// api is a client of the head's HTTP API with this program's token.
func api(ctx context.Context) (*apiclient.Client, error) {
	base, token, err := ray.ClusterAPI(ctx)
	if err != nil {
		return nil, fmt.Errorf("raymcp: %w", err)
	}
	return apiclient.New(base, token)
}

// Servers lists the cluster's hosted MCP servers, by name.
func Servers(ctx context.Context) ([]Server, error) {
	c, err := api(ctx)
	if err != nil {
		return nil, err
	}
	defer c.CloseIdle()
	sts, err := c.MCPServers(ctx)
	if err != nil {
		return nil, fmt.Errorf("raymcp: list hosted MCP servers: %w", err)
	}
	out := make([]Server, 0, len(sts))
	for _, st := range sts {
		out = append(out, fromStatus(c.BaseURL(), st))
	}
	slices.SortFunc(out, func(a, b Server) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns one hosted server; an unknown name's error wraps
// ErrNotFound.
func Get(ctx context.Context, name string) (Server, error) {
	c, err := api(ctx)
	if err != nil {
		return Server{}, err
	}
	defer c.CloseIdle()
	return get(ctx, c, name)
}

func get(ctx context.Context, c *apiclient.Client, name string) (Server, error) {
	st, err := c.MCPServer(ctx, name)
	if err != nil {
		return Server{}, apiError("get", name, err)
	}
	return fromStatus(c.BaseURL(), st), nil
}

// Host hosts an MCP server on the cluster and returns it as the head
// first reports it (its replicas still starting: see WaitReady). Hosting
// needs a write-scope token; a name already hosted is refused.
func Host(ctx context.Context, o HostOptions) (Server, error) {
	spec := hostspec.Spec{Name: o.Name, Command: slices.Clone(o.Command), Replicas: o.Replicas,
		Env: maps.Clone(o.Env), Resources: maps.Clone(o.Resources), Access: o.Access}
	if spec.Replicas == 0 {
		spec.Replicas = 1
	}
	if err := spec.Validate(); err != nil { // the head checks too; this names the mistake without a round trip
		return Server{}, fmt.Errorf("raymcp: %w", err)
	}
	c, err := api(ctx)
	if err != nil {
		return Server{}, err
	}
	defer c.CloseIdle()
	st, err := c.HostMCPServer(ctx, spec)
	if err != nil {
		return Server{}, fmt.Errorf("raymcp: host %q: %w", o.Name, err)
	}
	return fromStatus(c.BaseURL(), st), nil
}

// Stop stops a hosted server's replicas and forgets it; an unknown name's
// error wraps ErrNotFound. Sessions open on its gateway end.
func Stop(ctx context.Context, name string) error {
	c, err := api(ctx)
	if err != nil {
		return err
	}
	defer c.CloseIdle()
	if err := c.StopMCPServer(ctx, name); err != nil {
		return apiError("stop", name, err)
	}
	return nil
}

// PollInterval bounds how long WaitReady waits between two looks at a
// server's replicas (it starts at a tenth of it).
const PollInterval = time.Second

// WaitReady waits until every replica of the named server is ready and
// returns the server then. When ctx ends first, its error wraps ctx's and
// names each replica's state and message (a command that is not found, a
// server that exits at start, a node without the resources asked for);
// an unknown name fails at once with ErrNotFound.
func WaitReady(ctx context.Context, name string) (Server, error) {
	c, err := api(ctx)
	if err != nil {
		return Server{}, err
	}
	defer c.CloseIdle()
	wait := PollInterval / 10
	var last Server
	var lastErr error
	for {
		s, err := get(ctx, c, name)
		switch {
		case err == nil:
			if allReady(s) {
				return s, nil
			}
			last, lastErr = s, nil
		case errors.Is(err, ErrNotFound), ctx.Err() == nil && !isTransient(err):
			return Server{}, err
		default:
			lastErr = err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if last.Name == "" {
				return Server{}, fmt.Errorf("raymcp: hosted MCP server %q not ready: %w (last error: %v)", name, ctx.Err(), lastErr)
			}
			return Server{}, fmt.Errorf("raymcp: hosted MCP server %q not ready: %w: %s", name, ctx.Err(), describe(last))
		case <-t.C:
		}
		wait = min(2*wait, PollInterval)
	}
}

// allReady reports whether every replica of s is ready.
func allReady(s Server) bool {
	if s.Ready < s.Replicas || len(s.ReplicaStates) < s.Replicas {
		return false
	}
	for _, r := range s.ReplicaStates {
		if r.State != StateReady {
			return false
		}
	}
	return true
}

// describe says how far s's replicas are: "1 of 2 replicas ready:
// replica 0 READY; replica 1 BACKOFF (exit status 1)".
func describe(s Server) string {
	parts := make([]string, 0, len(s.ReplicaStates))
	for _, r := range s.ReplicaStates {
		p := fmt.Sprintf("replica %d %s", r.Index, r.State)
		if r.Message != "" {
			p += " (" + r.Message + ")"
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("%d of %d replicas ready: %s", s.Ready, s.Replicas, strings.Join(parts, "; "))
}

// isTransient reports whether a failed look at a server is worth
// repeating: the head unreachable or restarting, not a refusal.
func isTransient(err error) bool {
	var e *apiclient.Error
	if !errors.As(err, &e) {
		return true // no answer at all: the head may be restarting
	}
	return e.Status >= 500
}

// apiError words an API error about one server, wrapping ErrNotFound
// for a 404.
func apiError(op, name string, err error) error {
	if apiclient.IsNotFound(err) {
		return fmt.Errorf("%w %q (raymcp.Servers or `raygo mcp list` lists the hosted ones)", ErrNotFound, name)
	}
	return fmt.Errorf("raymcp: %s hosted MCP server %q: %w", op, name, err)
}

func fromStatus(base string, st hostspec.Status) Server {
	s := Server{Name: st.Name, Command: st.Command, Replicas: st.Replicas, Ready: st.Ready, Access: st.Access,
		Gateway: base + hostspec.GatewayPath(st.Name), Resources: st.Resources, Env: st.Env,
		ServerName: st.ServerName, ServerVersion: st.ServerVersion, Created: st.Created, CreatedBy: st.CreatedBy}
	for _, r := range st.ReplicaStates {
		s.ReplicaStates = append(s.ReplicaStates, ReplicaState{Index: r.Index, ID: r.ID, State: r.State, Message: r.Message,
			Since: r.Since, NodeID: r.NodeID, Pid: r.Pid, Restarts: r.Restarts, Sessions: r.Sessions, InFlight: r.InFlight})
	}
	return s
}
