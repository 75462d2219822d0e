package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/serve/router"
)

// Proxy is the HTTP proxy's data path: an http.Handler that routes each
// request by path prefix to a deployment, chooses a replica with that
// deployment's router and forwards the request to it. It is safe for
// concurrent use. Create it with New, give it routes with SetRoutes and
// stop it with Close.
type Proxy struct {
	opts         Options
	transport    http.RoundTripper
	ownTransport *http.Transport // nil when Options.Transport was given
	conns        *conns          // with ownTransport: the direct path (conns.go)
	rp           *httputil.ReverseProxy
	ids          RequestIDs
	retryAfter   time.Duration
	logger       *slog.Logger
	upstream     http.Header // Options.UpstreamHeaders, keys canonical

	table  atomic.Pointer[table] // nil until the first SetRoutes
	closed atomic.Bool

	setMu sync.Mutex             // serialises SetRoutes and Close
	deps  map[depKey]*deployment // guarded by setMu
}

// table is one routing table, immutable once published.
type table struct {
	byPrefix   map[string]*routeEntry
	prefixes   []string // sorted
	routesJSON []byte   // the /-/routes body
}

// routeEntry is one route of a table.
type routeEntry struct {
	prefix      string
	prefixValue []string // X-Forwarded-Prefix's value, shared by its requests
	app         string
	dep         *deployment
	timeout     time.Duration
}

// deployment is the proxy's state for one deployment: its router and the
// addresses of its replicas. It lives across SetRoutes calls while the
// deployment is in the table.
type deployment struct {
	app, name string
	maxQueued int
	rt        *router.Router
	targets   atomic.Pointer[map[string]*target] // replica ID → address
}

// target is where one replica listens.
type target struct {
	id   string
	node string
	raw  string
	url  *url.URL
}

// New returns a Proxy with no routing table: until the first SetRoutes,
// every request is answered 404 and /-/healthz 503, as Ray's proxy does
// before it hears from the controller.
func New(opts Options) (*Proxy, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		opts:       opts,
		transport:  opts.Transport,
		retryAfter: opts.RetryAfter,
		logger:     opts.Logger,
		deps:       make(map[depKey]*deployment),
	}
	if p.retryAfter == 0 {
		p.retryAfter = router.DefaultRetryAfter
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	if p.transport == nil {
		p.ownTransport = &http.Transport{
			Proxy: nil, // replicas are reached directly, never through HTTP_PROXY
			DialContext: (&net.Dialer{
				Timeout:   DefaultDialTimeout,
				KeepAlive: 30 * time.Second,
			}).DialContext,
			MaxIdleConns:          0, // no total bound; per host below
			MaxIdleConnsPerHost:   DefaultMaxIdleConnsPerHost,
			IdleConnTimeout:       DefaultIdleConnTimeout,
			DisableCompression:    true, // pass bodies through as the replica encoded them
			ExpectContinueTimeout: time.Second,
		}
		p.transport = p.ownTransport
		p.conns = newConns()
	}
	p.upstream = make(http.Header, len(opts.UpstreamHeaders))
	for k, vs := range opts.UpstreamHeaders {
		p.upstream[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
	}
	p.ids.Init()
	// Protocol upgrades only (forward); every other request takes
	// roundTrip (upstream.go).
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      p.transport,
		ErrorHandler:   p.upstreamError,
		ModifyResponse: modifyResponse,
		BufferPool:     bufferPool{},
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	if opts.Logger != nil {
		p.rp.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)
	}
	return p, nil
}

// SetRoutes replaces the routing table with routes, atomically: each
// request is routed by the table before or after the call, never a mix.
// A deployment that keeps its (App, Deployment) keeps its router (a new
// MaxQueuedRequests is applied to it in place), so its in-flight counts
// and queue survive; its
// replica set is replaced (router.Router.Set): replicas left out or
// marked Draining get no new requests while those in flight finish.
// Requests waiting for a deployment that was removed are routed again by
// the new table.
//
// On an invalid table SetRoutes changes nothing and returns every
// problem, each wrapping ErrInvalid and naming the route and field.
// After Close it returns ErrClosed.
func (p *Proxy) SetRoutes(routes []Route) error {
	if err := validateRoutes(routes); err != nil {
		return err
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	next := make(map[depKey]*deployment, len(routes))
	byPrefix := make(map[string]*routeEntry, len(routes))
	finals := make(map[*deployment]map[string]*target, len(routes))
	for _, rt := range routes {
		k := depKey{rt.App, rt.Deployment}
		maxQueued := max(rt.MaxQueuedRequests, 0)
		d := p.deps[k]
		var cur *router.Router
		if d != nil {
			cur = d.rt
		}
		rtr, err := router.Keep(cur, router.Options{MaxQueuedRequests: maxQueued, LocalNode: p.opts.NodeID,
			LocalZone: p.opts.Zone, RetryAfter: p.retryAfter, Rand: p.opts.Rand})
		if err != nil {
			return fmt.Errorf("proxy: deployment %s/%s: %w", rt.App, rt.Deployment, err)
		}
		if d == nil {
			d = &deployment{app: rt.App, name: rt.Deployment, rt: rtr}
			empty := map[string]*target{}
			d.targets.Store(&empty)
		}
		d.maxQueued = maxQueued
		final, err := d.setReplicas(rt.Replicas)
		if err != nil {
			return err
		}
		finals[d] = final
		next[k] = d
		timeout := rt.RequestTimeout
		if timeout == 0 {
			timeout = p.opts.RequestTimeout
		}
		byPrefix[rt.Prefix] = &routeEntry{prefix: rt.Prefix, prefixValue: []string{rt.Prefix}, app: rt.App, dep: d, timeout: timeout}
	}
	t := &table{byPrefix: byPrefix, prefixes: sortedPrefixes(byPrefix)}
	apps := make(map[string]string, len(byPrefix))
	for pfx, e := range byPrefix {
		apps[pfx] = e.app
	}
	t.routesJSON, _ = json.Marshal(apps) // a map of strings always marshals
	p.table.Store(t)

	for k, d := range p.deps {
		if next[k] != d {
			d.rt.Close()
		}
	}
	p.deps = next
	// Only now drop the addresses of replicas left out: a lease on one
	// granted before its router heard of the change finds no address and
	// is routed again.
	for d, final := range finals {
		d.targets.Store(&final)
	}
	live := make(map[string]int) // replica address → its MaxOngoingRequests
	for _, rt := range routes {
		for _, r := range rt.Replicas {
			u, _ := parseReplicaURL(r.URL) // validated
			n := r.MaxOngoingRequests
			if n <= 0 {
				n = router.DefaultMaxOngoingRequests
			}
			live[u.Host] = max(live[u.Host], n)
		}
	}
	if p.conns != nil {
		p.conns.retain(live) // close kept-alive connections to replicas gone
	}
	return nil
}

// setReplicas publishes the addresses of reps next to the ones already
// known (so a lease granted just before the router hears of the change
// still finds its address), hands reps to the router, and returns the
// address map of reps alone, for the caller to publish once the new table
// is in place.
func (d *deployment) setReplicas(reps []Replica) (map[string]*target, error) {
	old := *d.targets.Load()
	union := make(map[string]*target, len(old)+len(reps))
	final := make(map[string]*target, len(reps))
	for id, t := range old {
		union[id] = t
	}
	desc := make([]router.Replica, len(reps))
	for i, r := range reps {
		t := old[r.ID]
		if t == nil || t.raw != r.URL || t.node != r.Node {
			u, _ := parseReplicaURL(r.URL) // validated
			t = &target{id: r.ID, node: r.Node, raw: r.URL, url: u}
		}
		union[r.ID], final[r.ID] = t, t
		desc[i] = router.Replica{ID: r.ID, NodeID: r.Node, Zone: r.Zone,
			MaxOngoingRequests: r.MaxOngoingRequests, State: r.State}
	}
	d.targets.Store(&union)
	if err := d.rt.Set(desc); err != nil {
		return nil, fmt.Errorf("proxy: deployment %s/%s: %w", d.app, d.name, err)
	}
	return final, nil
}

// DeploymentStats is one deployment's load at this proxy, for the
// autoscaler and metrics: InFlight+Queued is this proxy's share of the
// deployment's ongoing requests (what Ray's proxy reports), and Queued
// with Running == 0 asks for a scale-up from zero.
type DeploymentStats struct {
	App        string
	Deployment string
	Route      string
	router.Stats
}

// Stats returns every routed deployment's counts, ordered by route
// prefix. It is safe to call at any time; nil before the first SetRoutes.
func (p *Proxy) Stats() []DeploymentStats {
	t := p.table.Load()
	if t == nil {
		return nil
	}
	out := make([]DeploymentStats, 0, len(t.prefixes))
	for _, pfx := range t.prefixes {
		e := t.byPrefix[pfx]
		out = append(out, DeploymentStats{App: e.app, Deployment: e.dep.name, Route: pfx, Stats: e.dep.rt.Stats()})
	}
	return out
}

// Close stops routing: requests waiting for a replica get 503 and later
// requests get 503 "proxy is closed"; /-/healthz answers 503. Requests
// already forwarded run to their end (stop the http.Server that serves
// the Proxy to wait for them). Close closes the idle connections of the
// proxy's own transport. It starts no goroutine and is idempotent.
func (p *Proxy) Close() {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	for _, d := range p.deps {
		d.rt.Close()
	}
	if p.ownTransport != nil {
		p.ownTransport.CloseIdleConnections()
		p.conns.closeIdle()
	}
}

// serveSystem answers Ray's proxy endpoints: GET /-/healthz and
// GET /-/routes. It reports whether the path was one of them.
func (p *Proxy) serveSystem(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case "/-/healthz", "/-/routes":
	default:
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Error: fmt.Sprintf("%s %s: method not allowed", r.Method, r.URL.Path)})
		return true
	}
	t := p.table.Load()
	msg := ""
	switch {
	case p.closed.Load():
		msg = "proxy is closed"
	case t == nil:
		msg = "routing table not received yet"
	}
	if msg != "" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, msg)
		return true
	}
	if r.URL.Path == "/-/healthz" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(t.routesJSON)
	return true
}

// ErrorResponse is the JSON body of every response the proxy itself
// makes (404, 502, 503, 504).
type ErrorResponse struct {
	// Error says what happened, naming the deployment or replica.
	Error string `json:"error"`
	// App and Deployment name the deployment the request was routed to.
	App        string `json:"app,omitempty"`
	Deployment string `json:"deployment,omitempty"`
	// Replica names the replica that failed (502).
	Replica string `json:"replica,omitempty"`
	// MaxQueuedRequests is the queue bound that was reached (503).
	MaxQueuedRequests int `json:"max_queued_requests,omitempty"`
	// Routes lists the known route prefixes (404).
	Routes []string `json:"routes,omitempty"`
	// RequestID is the request's X-Request-Id.
	RequestID string `json:"request_id,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, body ErrorResponse) {
	b, _ := json.Marshal(body) // strings and ints always marshal
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// retryAfterSeconds rounds d up to whole seconds, at least 1, for a
// Retry-After header.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Sprint(s)
}

// routesList is the known prefixes, for a 404 body.
func (t *table) routesList() []string {
	if t == nil {
		return []string{}
	}
	return slices.Clone(t.prefixes)
}
