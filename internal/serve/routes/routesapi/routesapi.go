// Package routesapi serves the head's Serve routing table (package
// routes) on the head's HTTP API (package api):
//
//	GET /api/serve/routes?since=N&wait=30s   read scope: long poll, routes.Response
//	PUT /api/serve/routes                    write scope: set the table, routes.PutRequest
//
// GET answers at once when the table's version differs from since (0 or
// absent: the caller has none), else when it changes, else after wait (a
// Go duration, "30s"; default routes.DefaultWait, at most routes.MaxWait)
// with {"version": since, "changed": false}. Node daemons follow it with
// routes.Follower. PUT replaces the whole table; it is how an operator
// or a test sets routes while Serve's controller does not exist, and the
// controller will own the same routes.Table in process (Feature). Errors
// are the API's JSON errors: 400 naming the bad parameter or route, 401
// without a token, 403 with a read token on PUT, 503 once the table is
// closed (the head stopping).
//
// It is a separate package from routes because package api depends on
// the node daemon, which follows the table with package routes.
package routesapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/serve/routes"
)

// Register is the routing table's API feature (internal/node/api.go): a
// fresh routes.Table served at routes.Path, closed when the head stops.
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	t := routes.NewTable()
	if _, err := Feature(t)(s, c); err != nil {
		return nil, err
	}
	return t.Close, nil
}

// Feature serves t at routes.Path. The caller owns t: the feature's stop
// function does nothing, and the caller closes t when the head stops (a
// closed table ends waiting polls with 503, so close it before the API
// server's shutdown deadline passes).
func Feature(t *routes.Table) api.Feature {
	return func(s *api.Server, _ *api.Cluster) (func(), error) {
		h := &handler{s: s, t: t}
		s.Handle("GET "+routes.Path, api.ScopeRead, h.get)
		s.Handle("PUT "+routes.Path, api.ScopeWrite, h.put)
		return nil, nil
	}
}

type handler struct {
	s *api.Server
	t *routes.Table
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			api.WriteError(w, api.BadRequest("since=%q: want the version of the table you have (an unsigned integer; 0 for none)", v))
			return
		}
		since = n
	}
	wait := routes.DefaultWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > routes.MaxWait {
			api.WriteError(w, api.BadRequest("wait=%q: want a duration from 0s to %s, like 30s", v, routes.MaxWait))
			return
		}
		wait = d
	}
	version, table, err := h.t.Get(r.Context(), since, wait)
	switch {
	case errors.Is(err, routes.ErrClosed):
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "unavailable", "the routing table is closed: the head is stopping"))
		return
	case err != nil: // the client went away
		return
	}
	resp := routes.Response{Version: version, Changed: version != since}
	if resp.Changed {
		resp.Routes = routes.ToWire(table)
	}
	api.WriteJSON(w, resp)
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	var req routes.PutRequest
	if err := h.s.ReadJSON(w, r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	who := api.Who(r.Context())
	table, err := routes.FromWire(req.Routes)
	if err == nil {
		var version uint64
		if version, err = h.t.Set(table); err == nil {
			h.s.Audit().Record(r, who, "serve.routes.set", "", fmt.Sprintf("ok: version %d, %d routes", version, len(table)))
			api.WriteJSON(w, routes.PutResponse{Version: version})
			return
		}
	}
	h.s.Audit().Record(r, who, "serve.routes.set", "", "refused: "+err.Error())
	switch {
	case errors.Is(err, routes.ErrInvalid):
		api.WriteError(w, api.BadRequest("%v", err))
	case errors.Is(err, routes.ErrClosed):
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "unavailable", "the routing table is closed: the head is stopping"))
	default:
		api.WriteError(w, err)
	}
}
