package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/serve/config"
)

// maxRegistrationBytes bounds a Go application's registration.
const maxRegistrationBytes = 1 << 20

// registerGoRoutes adds the Go applications' routes:
//
//	PUT    /api/serve/go_apps/{name}          register a Go application (goapp.Registration)  write, audited serve.register
//	PUT    /api/serve/applications/{name}     apply one application (config.Application, JSON or YAML)  write, audited serve.deploy
//	DELETE /api/serve/applications/{name}     delete one application                          write, audited serve.delete
//	GET    /api/serve/replicas/{actor_id}     a starting Go replica's goapp.Init              write (workers' token)
//	PUT    /api/serve/replicas/{actor_id}     its address (goapp.Address)                    write
//	GET    /api/serve/handle_targets?app=&deployment=  a handle's replicas (goapp.HandleTarget)  read
func (h *httpAPI) registerGoRoutes() {
	h.s.Handle("PUT "+goapp.RegisterPath+"{name}", api.ScopeWrite, h.register)
	h.s.Handle("PUT "+goapp.AppPath+"{name}", api.ScopeWrite, h.putApp)
	h.s.Handle("DELETE "+goapp.AppPath+"{name}", api.ScopeWrite, h.deleteApp)
	h.s.Handle("GET "+goapp.ReplicaPath+"{actor}", api.ScopeWrite, h.replicaInit)
	h.s.Handle("PUT "+goapp.ReplicaPath+"{actor}", api.ScopeWrite, h.replicaAddress)
	h.s.Handle("GET "+goapp.HandlePath, api.ScopeRead, h.handleTarget)
}

func (h *httpAPI) register(w http.ResponseWriter, r *http.Request) {
	var reg goapp.Registration
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRegistrationBytes)).Decode(&reg); err != nil {
		api.WriteError(w, api.BadRequest("serve: Go application registration: %v (at most %d bytes of JSON)", err, maxRegistrationBytes))
		return
	}
	if reg.Name != r.PathValue("name") {
		api.WriteError(w, api.BadRequest("serve: the registration names %q, the path %q", reg.Name, r.PathValue("name")))
		return
	}
	if err := h.ctl.Register(r.Context(), reg); err != nil {
		h.s.Audit().Record(r, api.Who(r.Context()), "serve.register", reg.Name, "refused: "+err.Error())
		api.WriteError(w, httpError(err))
		return
	}
	h.s.Audit().Record(r, api.Who(r.Context()), "serve.register", reg.Name, fmt.Sprintf("ok: job %s, %d deployments", reg.JobID, len(reg.Deployments)))
	w.WriteHeader(http.StatusNoContent)
}

func (h *httpAPI) putApp(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, config.MaxConfigBytes))
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusRequestEntityTooLarge, "too_large", "the application is over %d bytes", config.MaxConfigBytes))
		return
	}
	var app config.Application
	if err := json.Unmarshal(body, &app); err != nil {
		// YAML: parse it as a one-application config.
		cfg, perr := config.Parse(append([]byte("applications:\n"), indentList(body)...))
		if perr != nil || len(cfg.Applications) != 1 {
			api.WriteError(w, api.BadRequest("serve: application: want a config.Application as JSON or YAML: %v", errors.Join(err, perr)))
			return
		}
		app = cfg.Applications[0]
	}
	name := r.PathValue("name")
	if app.Name == "" {
		app.Name = name
	}
	if app.Name != name {
		api.WriteError(w, api.BadRequest("serve: the application is named %q, the path %q", app.Name, name))
		return
	}
	totals, err := h.totals(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if _, err := h.ctl.ApplyApplication(r.Context(), app, totals); err != nil {
		h.s.Audit().Record(r, api.Who(r.Context()), "serve.deploy", name, "refused: "+err.Error())
		api.WriteError(w, httpError(err))
		return
	}
	h.s.Audit().Record(r, api.Who(r.Context()), "serve.deploy", name, "ok: 1 application")
	api.WriteJSON(w, h.status(r.Context()))
}

// indentList makes a YAML mapping one item of a list.
func indentList(b []byte) []byte {
	out := []byte("  - ")
	for i, c := range b {
		out = append(out, c)
		if c == '\n' && i < len(b)-1 {
			out = append(out, "    "...)
		}
	}
	return out
}

func (h *httpAPI) deleteApp(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.ctl.DeleteApplication(r.Context(), name); err != nil {
		api.WriteError(w, httpError(err))
		return
	}
	h.s.Audit().Record(r, api.Who(r.Context()), "serve.delete", name, "ok")
	w.WriteHeader(http.StatusNoContent)
}

func (h *httpAPI) replicaID(w http.ResponseWriter, r *http.Request) (ids.ID, bool) {
	aid, ok := ids.Parse(r.PathValue("actor"))
	if !ok {
		api.WriteError(w, api.BadRequest("serve: %q is not an actor id", r.PathValue("actor")))
	}
	return aid, ok
}

func (h *httpAPI) replicaInit(w http.ResponseWriter, r *http.Request) {
	aid, ok := h.replicaID(w, r)
	if !ok {
		return
	}
	init, ok := h.ctl.goReplicaInit(aid)
	if !ok {
		api.WriteError(w, api.NotFound("serve: actor %s is not a Go replica the controller is starting", aid))
		return
	}
	api.WriteJSON(w, init)
}

func (h *httpAPI) replicaAddress(w http.ResponseWriter, r *http.Request) {
	aid, ok := h.replicaID(w, r)
	if !ok {
		return
	}
	var a goapp.Address
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&a); err != nil || a.HostPort == "" {
		api.WriteError(w, api.BadRequest("serve: replica address: want {\"host_port\": \"host:port\"} (%v)", err))
		return
	}
	if !h.ctl.goReplicaAddress(aid, a.HostPort) {
		api.WriteError(w, api.NotFound("serve: actor %s is not a Go replica the controller is starting", aid))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *httpAPI) handleTarget(w http.ResponseWriter, r *http.Request) {
	t, err := h.ctl.HandleTarget(r.URL.Query().Get("app"), r.URL.Query().Get("deployment"))
	if err != nil {
		api.WriteError(w, httpError(err))
		return
	}
	api.WriteJSON(w, t)
}

// totals are the alive nodes' resource totals, for checks.
func (h *httpAPI) totals(r *http.Request) ([]map[string]float64, error) {
	nodes, err := h.nodes(r.Context())
	if err != nil {
		return nil, fmt.Errorf("serve: list the cluster's nodes: %w", err)
	}
	totals := []map[string]float64{}
	for _, n := range nodes {
		totals = append(totals, n.Total)
	}
	return totals, nil
}
