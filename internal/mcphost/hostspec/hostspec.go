// Package hostspec is what describes a hosted MCP server (internal/mcphost)
// on the wire: the Spec a user submits and the Status the head reports,
// with their validation and limits. It is kept apart from mcphost so that
// clients (the CLI, apiclient) need not link the MCP SDK.
package hostspec

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// Limits (docs/mcp-hosting.md).
const (
	// MaxReplicas bounds a hosted server's replicas.
	MaxReplicas = 64
	// MaxServers bounds the hosted servers of a cluster.
	MaxServers = 256
	// MaxNameLen bounds a hosted server's name.
	MaxNameLen = 48
	// MaxCommandBytes bounds a command and its arguments together.
	MaxCommandBytes = 64 << 10
)

// Spec is a hosted MCP server: what `raygo mcp host` and POST
// /api/mcp/servers create. It is kept in the control store's KV
// (Namespace), so hosted servers come back after a head restart with
// --storage.
type Spec struct {
	// Name names the server: its gateway is /mcp/hosted/NAME.
	Name string `json:"name"`
	// Command is the stdio MCP server to run: the program (found on each
	// node's PATH) and its arguments.
	Command []string `json:"command"`
	// Replicas is how many copies run (1 to MaxReplicas).
	Replicas int `json:"replicas"`
	// Resources each replica holds while it runs ({"CPU": 1}); none by
	// default: an MCP server mostly waits.
	Resources map[string]float64 `json:"resources,omitempty"`
	// Env and WorkingDir are the replicas' runtime environment (a working
	// dir is a package uploaded first: "sha256:<hex>", as for jobs).
	Env        map[string]string `json:"env,omitempty"`
	WorkingDir string            `json:"working_dir,omitempty"`
	// Access is the scope a token needs to use the server through the
	// gateway: "read" or "write" (the default: a hosted server's tools
	// may change things).
	Access string `json:"access,omitempty"`
	// Created and CreatedBy are set by the head.
	Created   time.Time `json:"created,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// ResourceSet is what each replica holds.
func (s *Spec) ResourceSet() resources.Set { return resources.Set(maps.Clone(s.Resources)) }

// RuntimeEnv is the replicas' runtime environment.
func (s *Spec) RuntimeEnv() runtimeenv.Env {
	return runtimeenv.Env{EnvVars: s.Env, WorkingDir: s.WorkingDir}
}

// Validate checks a spec as submitted, filling defaults (Access).
func (s *Spec) Validate() error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	if len(s.Command) == 0 || strings.TrimSpace(s.Command[0]) == "" {
		return fmt.Errorf("hosted MCP server %q: no command: give the stdio MCP server to run, e.g. `raygo mcp host %s -- npx -y @modelcontextprotocol/server-memory`", s.Name, s.Name)
	}
	n := 0
	for _, a := range s.Command {
		n += len(a)
	}
	if n > MaxCommandBytes {
		return fmt.Errorf("hosted MCP server %q: command is %d bytes, over the limit of %d", s.Name, n, MaxCommandBytes)
	}
	if s.Replicas < 1 || s.Replicas > MaxReplicas {
		return fmt.Errorf("hosted MCP server %q: replicas %d: want 1 to %d", s.Name, s.Replicas, MaxReplicas)
	}
	if err := resources.Validate(s.ResourceSet()); err != nil {
		return fmt.Errorf("hosted MCP server %q: resources: %v", s.Name, err)
	}
	if err := s.RuntimeEnv().Validate(); err != nil {
		return fmt.Errorf("hosted MCP server %q: %v", s.Name, err)
	}
	switch s.Access {
	case "":
		s.Access = "write"
	case "read", "write":
	default:
		return fmt.Errorf("hosted MCP server %q: access %q: want read or write", s.Name, s.Access)
	}
	return nil
}

// ValidName reports whether name can name a hosted server (and its
// gateway path and log files): 1 to MaxNameLen lowercase letters, digits
// and '-', starting with a letter or digit.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameLen || name[0] == '-' {
		return fmt.Errorf("hosted MCP server name %q: want 1 to %d lowercase letters, digits and '-', not starting with '-'", name, MaxNameLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("hosted MCP server name %q: character %q is not allowed (lowercase letters, digits, '-')", name, c)
		}
	}
	return nil
}

// Replica states, as `raygo mcp list` shows them.
const (
	StatePending  = "PENDING"  // waiting for a node with its resources
	StateStarting = "STARTING" // process started, not yet answering
	StateReady    = "READY"    // initialized and answering pings
	StateBackoff  = "BACKOFF"  // failed; waiting before its next start
)

// Status is a hosted server as `raygo mcp list` and GET
// /api/mcp/servers show it.
type Status struct {
	Spec
	// Gateway is the server's endpoint path on the head.
	Gateway string `json:"gateway"`
	// Ready counts the replicas answering now.
	Ready int `json:"ready"`
	// ServerInfo is what the replicas call themselves.
	ServerName    string          `json:"server_name,omitempty"`
	ServerVersion string          `json:"server_version,omitempty"`
	ReplicaStates []ReplicaStatus `json:"replica_states"`
}

// GatewayPath is a hosted server's endpoint path on the head.
func GatewayPath(name string) string { return "/mcp/hosted/" + name }

// ReplicaStatus is a replica as `raygo mcp list` shows it.
type ReplicaStatus struct {
	Index    int       `json:"index"`
	ID       string    `json:"replica_id"`
	State    string    `json:"state"`
	Message  string    `json:"message,omitempty"`
	Since    time.Time `json:"since"`
	NodeID   string    `json:"node_id,omitempty"`
	Pid      int       `json:"pid,omitempty"`
	LogFile  string    `json:"log_file,omitempty"`
	Restarts int       `json:"restarts"`
	Sessions int       `json:"sessions"`
	InFlight int       `json:"in_flight"`
}
