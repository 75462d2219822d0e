package mcphost

import (
	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/mcphost/hostspec"
)

// The wire types, from hostspec.
type (
	Spec          = hostspec.Spec
	Status        = hostspec.Status
	ReplicaStatus = hostspec.ReplicaStatus
)

// Replica states (hostspec's).
const (
	StatePending  = hostspec.StatePending
	StateStarting = hostspec.StateStarting
	StateReady    = hostspec.StateReady
	StateBackoff  = hostspec.StateBackoff
)

// accessScope is the scope a spec's Access names.
func accessScope(s *Spec) api.Scope {
	if s.Access == "read" {
		return api.ScopeRead
	}
	return api.ScopeWrite
}
