package mcphost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/mcphost/hostspec"
)

// Namespace is the control store KV namespace of the hosted servers'
// specs, each under its name.
const Namespace = "raygo/mcp"

// Errors a Manager returns (the HTTP layer maps them).
var (
	ErrNotFound = errors.New("mcphost: no such hosted MCP server")
	ErrExists   = errors.New("mcphost: a hosted MCP server has that name")
	ErrInvalid  = errors.New("mcphost: invalid hosted MCP server")
	ErrTooMany  = errors.New("mcphost: too many hosted MCP servers")
	ErrClosed   = errors.New("mcphost: the manager is stopped")
)

// Config configures a Manager.
type Config struct {
	// ClusterAddress is the control store's, given to replicas as
	// RAYGO_ADDRESS.
	ClusterAddress string
	// Version is raygo's, as the gateway's client names itself to replicas.
	Version string
}

// Manager runs the cluster's hosted MCP servers: it keeps their specs in
// the control store's KV, runs each one's replica slots and serves its
// gateway. Safe for concurrent use; Close stops every replica.
type Manager struct {
	cfg      Config
	kv       *gcs.KVNamespace
	launcher Launcher
	log      *slog.Logger

	mu      sync.Mutex
	servers map[string]*hosted
	closed  bool
}

// NewManager makes a manager; Load starts the servers kept in kv.
func NewManager(cfg Config, kv *gcs.KVNamespace, l Launcher) *Manager {
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	return &Manager{cfg: cfg, kv: kv, launcher: l, log: slog.Default().With("component", "mcphost"), servers: map[string]*hosted{}}
}

// Load starts the hosted servers kept in the KV (after a head restart).
func (m *Manager) Load(ctx context.Context) error {
	if m.kv == nil {
		return nil
	}
	for _, name := range m.kv.Keys() {
		b, ok, err := m.kv.Get(ctx, name)
		if err != nil || !ok {
			continue
		}
		var s Spec
		if err := json.Unmarshal(b, &s); err != nil || s.Validate() != nil {
			m.log.Warn("mcp: skipping an unreadable hosted server spec", "name", name, "err", err)
			continue
		}
		m.mu.Lock()
		if _, dup := m.servers[s.Name]; !dup && !m.closed {
			if h, err := newHosted(m, s); err != nil {
				m.log.Warn("mcp: skipping a hosted server spec", "name", name, "err", err)
			} else {
				m.servers[s.Name] = h
			}
		}
		m.mu.Unlock()
	}
	return nil
}

// Create hosts a server: validates spec, keeps it, starts its replicas.
func (m *Manager) Create(ctx context.Context, spec Spec, by string) (Status, error) {
	if err := spec.Validate(); err != nil {
		return Status{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	spec.Created, spec.CreatedBy = time.Now().UTC().Truncate(time.Millisecond), by
	b, err := json.Marshal(spec)
	if err != nil {
		return Status{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closed:
		return Status{}, ErrClosed
	case m.servers[spec.Name] != nil:
		return Status{}, fmt.Errorf("%w: %q (stop it first: raygo mcp stop %s)", ErrExists, spec.Name, spec.Name)
	case len(m.servers) >= hostspec.MaxServers:
		return Status{}, fmt.Errorf("%w: %d hosted already (the limit)", ErrTooMany, len(m.servers))
	}
	if m.kv != nil {
		if err := m.kv.Put(ctx, spec.Name, b); err != nil {
			return Status{}, fmt.Errorf("mcphost: keep %q in the control store: %w", spec.Name, err)
		}
	}
	h, err := newHosted(m, spec)
	if err != nil {
		if m.kv != nil {
			_ = m.kv.Delete(ctx, spec.Name)
		}
		return Status{}, err
	}
	m.servers[spec.Name] = h
	return h.statusOf(), nil
}

// Delete stops a hosted server's replicas and forgets it.
func (m *Manager) Delete(ctx context.Context, name string) error {
	m.mu.Lock()
	h := m.servers[name]
	if h == nil {
		m.mu.Unlock()
		return fmt.Errorf("%w: %q (raygo mcp list shows the hosted ones)", ErrNotFound, name)
	}
	delete(m.servers, name)
	m.mu.Unlock()
	var err error
	if m.kv != nil {
		err = m.kv.Delete(ctx, name)
	}
	h.close()
	return err
}

// Get is a hosted server's status.
func (m *Manager) Get(name string) (Status, error) {
	h := m.lookup(name)
	if h == nil {
		return Status{}, fmt.Errorf("%w: %q (raygo mcp list shows the hosted ones)", ErrNotFound, name)
	}
	return h.statusOf(), nil
}

// List is every hosted server's status, by name.
func (m *Manager) List() []Status {
	m.mu.Lock()
	hs := make([]*hosted, 0, len(m.servers))
	for _, h := range m.servers {
		hs = append(hs, h)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.statusOf())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (m *Manager) lookup(name string) *hosted {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.servers[name]
}

// Close stops every hosted server's replicas (their specs stay kept).
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	hs := m.servers
	m.servers = map[string]*hosted{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		go func() { defer wg.Done(); h.close() }()
	}
	wg.Wait()
}

func (h *hosted) statusOf() Status {
	st := Status{Spec: h.spec, Gateway: hostspec.GatewayPath(h.spec.Name)}
	for _, sl := range h.slots {
		r := sl.status()
		if r.State == StateReady {
			st.Ready++
		}
		st.ReplicaStates = append(st.ReplicaStates, r)
	}
	h.mu.Lock()
	if h.info != nil {
		st.ServerName, st.ServerVersion = h.info.Name, h.info.Version
	}
	h.mu.Unlock()
	return st
}
