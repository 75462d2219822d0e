package mcphost

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/mcpauth"
)

// Register is hosting's feature (internal/node/api.go): it starts the
// head's Manager (with the servers kept from before a restart) and serves
//
//	GET    /api/mcp/servers          the hosted servers (Status)
//	POST   /api/mcp/servers          host one (a Spec)            write
//	GET    /api/mcp/servers/{name}   one
//	DELETE /api/mcp/servers/{name}   stop one and forget it       write
//	POST|GET|DELETE /mcp/hosted/{name}   the server's MCP gateway (streamable HTTP)
//
// The gateway needs a token of the server's Access scope (write unless it
// was hosted with access read).
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	m := NewManager(Config{ClusterAddress: c.Address}, c.GCS.KV(Namespace), NodeLauncher{GCS: c.GCS, Pool: c.Pool})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := m.Load(ctx)
	cancel()
	if err != nil {
		return nil, err
	}
	h := &httpAPI{s: s, m: m}
	s.Handle("GET /api/mcp/servers", api.ScopeRead, h.list)
	s.Handle("POST /api/mcp/servers", api.ScopeWrite, h.create)
	s.Handle("GET /api/mcp/servers/{name}", api.ScopeRead, h.get)
	s.Handle("DELETE /api/mcp/servers/{name}", api.ScopeWrite, h.delete)
	gateway := mcpauth.Wrap(s, "/mcp/hosted/NAME", http.HandlerFunc(h.gateway))
	for _, method := range []string{"POST", "GET", "DELETE"} {
		s.HandleProtocol(method+" /mcp/hosted/{name}", api.ScopeRead, gateway)
	}
	return m.Close, nil
}

type httpAPI struct {
	s *api.Server
	m *Manager
}

func (h *httpAPI) list(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, struct {
		Servers []Status `json:"servers"`
	}{h.m.List()})
}

func (h *httpAPI) get(w http.ResponseWriter, r *http.Request) {
	st, err := h.m.Get(r.PathValue("name"))
	if err != nil {
		api.WriteError(w, httpError(err))
		return
	}
	api.WriteJSON(w, st)
}

func (h *httpAPI) create(w http.ResponseWriter, r *http.Request) {
	var spec Spec
	if err := h.s.ReadJSON(w, r, &spec); err != nil {
		api.WriteError(w, err)
		return
	}
	who := api.Who(r.Context())
	st, err := h.m.Create(r.Context(), spec, who.Name)
	if err != nil {
		h.s.Audit().Record(r, who, "mcp.host", spec.Name, "refused: "+err.Error())
		api.WriteError(w, httpError(err))
		return
	}
	h.s.Audit().Record(r, who, "mcp.host", spec.Name, "ok: "+strings.Join(spec.Command, " "))
	api.WriteJSON(w, st)
}

func (h *httpAPI) delete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	who := api.Who(r.Context())
	if err := h.m.Delete(r.Context(), name); err != nil {
		api.WriteError(w, httpError(err))
		return
	}
	h.s.Audit().Record(r, who, "mcp.stop", name, "ok")
	api.WriteJSON(w, struct {
		Stopped bool `json:"stopped"`
	}{true})
}

func (h *httpAPI) gateway(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	hs := h.m.lookup(name)
	if hs == nil {
		api.WriteError(w, api.NotFound("no hosted MCP server %q (GET /api/mcp/servers or `raygo mcp list` shows the hosted ones)", name))
		return
	}
	who := api.Who(r.Context())
	if need := accessScope(&hs.spec); who.Scope < need {
		api.WriteError(w, api.Errorf(http.StatusForbidden, "forbidden", "token %q has scope %s; hosted MCP server %q needs %s", who.Name, who.Scope, name, need))
		return
	}
	hs.serveHTTP(w, r)
}

// httpError maps a Manager error to the API's.
func httpError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return api.NotFound("%v", err)
	case errors.Is(err, ErrExists):
		return api.Conflict("%v", err)
	case errors.Is(err, ErrInvalid):
		return api.BadRequest("%v", err)
	case errors.Is(err, ErrTooMany):
		return api.Errorf(http.StatusTooManyRequests, "too_many", "%v", err)
	}
	return err
}
