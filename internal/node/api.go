package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/dashboard"
	"github.com/raygo/raygo/internal/jobs"
	"github.com/raygo/raygo/internal/logs"
	"github.com/raygo/raygo/internal/mcphost"
	"github.com/raygo/raygo/internal/mcpserver"
	"github.com/raygo/raygo/internal/metrics"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/serve/controller"
	"github.com/raygo/raygo/internal/state"
	"github.com/raygo/raygo/internal/timeline"
)

// APIConfig configures the head's HTTP API and dashboard (internal/api).
type APIConfig struct {
	// Disabled: no HTTP server at all.
	Disabled bool
	// Address to listen on; empty: 127.0.0.1:0 (a free port; `raygo start
	// --head` passes 127.0.0.1:8265).
	Address        string
	AllowedOrigins []string
	MetricsOpen    bool
	// MCPAllowMutations enables /mcp's tools that change the cluster
	// (internal/mcpserver); they still need a write token.
	MCPAllowMutations bool
}

// authNamespace is the control store KV namespace of the API's tokens.
const authNamespace = "raygo/auth"

// features are the HTTP API's parts; the head registers each on its
// server, in this order.
var features = []api.Feature{dashboard.Register, state.Register, metrics.Register, timeline.Register, jobs.Register, logs.Register, mcphost.Register, controller.Register}

// startAPI starts the head's HTTP server with every feature's routes.
func (h *Head) startAPI(cfg HeadConfig) error {
	if cfg.API.Disabled {
		return nil
	}
	addr := cfg.API.Address
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if !rpc.IsLoopback(addr) {
		slog.Warn("raygo: the HTTP API and dashboard listen beyond loopback without TLS; every request still needs a token", "address", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tokens, err := api.NewTokens(ctx, h.token, h.gcs.KV(authNamespace))
	cancel()
	if err != nil {
		return err
	}
	audit := ""
	if cfg.Raylet.SessionDir != "" {
		audit = filepath.Join(cfg.Raylet.SessionDir, "logs", "audit.log")
	}
	s, err := api.New(api.Config{Address: addr, AllowedOrigins: cfg.API.AllowedOrigins, MetricsOpen: cfg.API.MetricsOpen, AuditPath: audit}, tokens)
	if err != nil {
		return err
	}
	c := &api.Cluster{GCS: h.gcs, Pool: h.pool, Address: h.address, SessionDir: cfg.Raylet.SessionDir, HeadNode: h.raylet}
	for _, f := range append(features, mcpserver.Feature(mcpserver.Options{AllowMutations: cfg.API.MCPAllowMutations})) {
		stop, err := f(s, c)
		if err != nil {
			h.stopAPI()
			s.Close()
			return fmt.Errorf("node: HTTP API: %w", err)
		}
		if stop != nil {
			h.apiStops = append(h.apiStops, stop)
		}
	}
	if err := s.Start(); err != nil {
		h.stopAPI()
		s.Close()
		return err
	}
	h.api = s
	h.gcs.SetClusterInfo(s.Addr(), cfg.Version, h.raylet.NodeID())
	return nil
}

func (h *Head) stopAPI() {
	if h.api != nil {
		h.api.Close()
	}
	for i := len(h.apiStops) - 1; i >= 0; i-- {
		h.apiStops[i]()
	}
	h.apiStops = nil
}

// API is the head's HTTP server (nil when disabled).
func (h *Head) API() *api.Server { return h.api }

// APIURL is the HTTP API's and dashboard's base URL ("" when disabled).
func (h *Head) APIURL() string {
	if h.api == nil {
		return ""
	}
	return h.api.URL()
}
