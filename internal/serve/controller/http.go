package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/replicaset"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/internal/serve/routes/routesapi"
	"github.com/raygo/raygo/serve/config"
)

// ApplicationsPath is the controller's REST resource.
const ApplicationsPath = "/api/serve/applications"

// loadTimeout bounds re-applying the kept config when the head starts.
const loadTimeout = 10 * time.Second

// StatusResponse is GET ApplicationsPath's body.
type StatusResponse struct {
	Applications []AppStatus `json:"applications" yaml:"applications"`
	// Proxies are the Serve proxies of the alive nodes (every node
	// started with --serve-port), by node id, each probed by the head
	// (ProxyStatus); a node that died is no longer listed.
	Proxies []ProxyStatus `json:"proxies" yaml:"proxies"`
}

// Register is Serve's head feature (internal/node/api.go): it owns the
// routing table that every node's proxy follows (serving the routes API
// on it, routesapi.Feature), starts the controller with the config kept
// from before a restart, and serves
//
//	PUT    /api/serve/applications   apply a config (YAML body)      write, audited serve.deploy
//	GET    /api/serve/applications   status (StatusResponse)         read
//	DELETE /api/serve/applications   shut every application down     write, audited serve.shutdown
//	POST   /api/serve/load           a proxy's load (routes.LoadReport) write (proxies use the cluster token); not audited
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	t := routes.NewTable()
	if _, err := routesapi.Feature(t)(s, c); err != nil {
		t.Close()
		return nil, err
	}
	launcher := replicaset.NodeLauncher{GCS: c.GCS, Pool: c.Pool}
	opts := Options{KV: c.GCS.KV(Namespace), Launcher: launcher, Table: t, ClusterAddress: c.Address}
	if c.HeadNode != nil {
		opts.Actors, opts.UpstreamToken = c.GCS, c.HeadNode.ServeUpstreamToken()
	}
	ctl, err := New(opts)
	if err != nil {
		t.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	err = ctl.Load(ctx)
	cancel()
	if err != nil {
		ctl.Close()
		t.Close()
		return nil, err
	}
	unregister := registerMetrics(c.Metrics, ctl) // metrics.go
	h := &httpAPI{s: s, ctl: ctl, nodes: launcher.Nodes, gcs: c.GCS,
		probe: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second}}}
	s.Handle("PUT "+ApplicationsPath, api.ScopeWrite, h.put)
	s.Handle("GET "+ApplicationsPath, api.ScopeRead, h.get)
	s.Handle("DELETE "+ApplicationsPath, api.ScopeWrite, h.delete)
	s.Handle("POST "+routes.LoadPath, api.ScopeWrite, h.load)
	h.registerGoRoutes() // goapps_http.go
	return func() {
		unregister()
		h.probe.CloseIdleConnections()
		ctl.Close()
		t.Close()
	}, nil
}

type httpAPI struct {
	s     *api.Server
	ctl   *Controller
	nodes func(context.Context) ([]scheduler.Node, error)
	gcs   *gcs.Server  // the nodes' records: their proxies' addresses
	probe *http.Client // the proxies' health probes (status.go)
}

func (h *httpAPI) put(w http.ResponseWriter, r *http.Request) {
	who := api.Who(r.Context())
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, config.MaxConfigBytes))
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusRequestEntityTooLarge, "too_large", "the config is over %d bytes", config.MaxConfigBytes))
		return
	}
	nodes, err := h.nodes(r.Context())
	if err != nil {
		api.WriteError(w, fmt.Errorf("serve: list the cluster's nodes: %w", err))
		return
	}
	var totals []map[string]float64
	for _, n := range nodes {
		totals = append(totals, n.Total)
	}
	cfg, err := Check(body, totals)
	if err == nil {
		_, err = h.ctl.Resolve(cfg, totals) // Go applications: registered, their resources
	}
	if err == nil {
		err = h.ctl.Apply(r.Context(), cfg)
	}
	if err != nil {
		h.s.Audit().Record(r, who, "serve.deploy", "", "refused: "+err.Error())
		api.WriteError(w, httpError(err))
		return
	}
	names := ""
	for i, a := range cfg.Applications {
		if i > 0 {
			names += ", "
		}
		names += a.Name
	}
	h.s.Audit().Record(r, who, "serve.deploy", names, fmt.Sprintf("ok: %d applications", len(cfg.Applications)))
	api.WriteJSON(w, h.status(r.Context()))
}

func (h *httpAPI) get(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, h.status(r.Context()))
}

func (h *httpAPI) delete(w http.ResponseWriter, r *http.Request) {
	who := api.Who(r.Context())
	if err := h.ctl.Shutdown(r.Context()); err != nil {
		api.WriteError(w, httpError(err))
		return
	}
	h.s.Audit().Record(r, who, "serve.shutdown", "", "ok")
	api.WriteJSON(w, struct {
		Shutdown bool `json:"shutdown"`
	}{true})
}

func (h *httpAPI) load(w http.ResponseWriter, r *http.Request) {
	var rep routes.LoadReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, routes.MaxLoadReportBytes)).Decode(&rep); err != nil {
		api.WriteError(w, api.BadRequest("serve: load report: %v (at most %d bytes of routes.LoadReport JSON)", err, routes.MaxLoadReportBytes))
		return
	}
	if err := h.ctl.ReportLoad(time.Now(), rep); err != nil {
		api.WriteError(w, httpError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func nonNil(a []AppStatus) []AppStatus {
	if a == nil {
		return []AppStatus{}
	}
	return a
}

// httpError maps a controller error to the API's.
func httpError(err error) error {
	switch {
	case errors.Is(err, ErrInvalid):
		return api.BadRequest("%v", err)
	case errors.Is(err, ErrNotFound):
		return api.NotFound("%v", err)
	case errors.Is(err, ErrClosed):
		return api.Errorf(http.StatusServiceUnavailable, "unavailable", "%v", err)
	}
	return err
}
