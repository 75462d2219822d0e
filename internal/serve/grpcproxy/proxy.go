package grpcproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/router"
)

// Proxy is the gRPC ingress's data path: it forwards every call it
// serves, whatever its service and method, to a replica of the
// application the call names. It is safe for concurrent use. Create it
// with New, serve it with NewServer, give it routes with SetRoutes and
// stop it with Close.
type Proxy struct {
	opts       Options
	retryAfter time.Duration
	maxMsg     int
	dial       time.Duration
	logger     *slog.Logger
	upstream   []string // Options.UpstreamMetadata as key, value pairs
	ids        proxy.RequestIDs
	health     *health.Server

	table  atomic.Pointer[table] // nil until the first SetRoutes
	closed atomic.Bool
	pumpMu sync.Mutex     // orders pumps.Add after a Close against its Wait
	pumps  sync.WaitGroup // the client-to-replica goroutine of every call; Add under pumpMu, while not closed

	setMu sync.Mutex             // serialises SetRoutes and Close
	deps  map[depKey]*deployment // guarded by setMu
}

type depKey struct{ app, deployment string }

// table is one routing table, immutable once published.
type table struct {
	byApp map[string]*entry
	apps  []string // sorted
}

// entry is one application of a table: its ingress deployment.
type entry struct {
	app     string
	route   string // the application's HTTP route prefix, for Stats
	dep     *deployment
	timeout time.Duration
}

// deployment is the proxy's state for one deployment: its router and
// its replicas' connections. It lives across SetRoutes calls while the
// deployment is in the table.
type deployment struct {
	app, name string
	maxQueued int
	rt        *router.Router
	targets   atomic.Pointer[map[string]*target] // replica ID → connection
}

// target is one replica's connection. It is closed when the replica
// leaves the table and its last call has ended, or by Close.
type target struct {
	id, node, addr string
	cc             *grpc.ClientConn

	mu      sync.Mutex
	calls   int  // guarded by mu: calls using cc
	retired bool // guarded by mu: no new calls; cc closes at calls == 0
}

// begin counts a call on t; false once t is retired.
func (t *target) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retired {
		return false
	}
	t.calls++
	return true
}

// end uncounts a call, closing the connection after the last call of a
// retired target.
func (t *target) end() {
	t.mu.Lock()
	t.calls--
	last := t.retired && t.calls == 0
	t.mu.Unlock()
	if last {
		_ = t.cc.Close()
	}
}

// retire takes no new calls on t and closes its connection once idle
// (at once with force, ending calls in flight).
func (t *target) retire(force bool) {
	t.mu.Lock()
	already := t.retired
	t.retired = true
	idle := t.calls == 0
	t.mu.Unlock()
	if force || (!already && idle) {
		_ = t.cc.Close()
	}
}

// New returns a Proxy with no routing table: until the first SetRoutes,
// calls fail with codes.Unavailable and the health service answers
// NOT_SERVING.
func New(opts Options) (*Proxy, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Proxy{
		opts:       opts,
		retryAfter: opts.RetryAfter,
		maxMsg:     opts.MaxMessageBytes,
		dial:       opts.DialTimeout,
		logger:     opts.Logger,
		health:     health.NewServer(),
		deps:       make(map[depKey]*deployment),
	}
	if p.retryAfter == 0 {
		p.retryAfter = router.DefaultRetryAfter
	}
	if p.maxMsg == 0 {
		p.maxMsg = DefaultMaxMessageBytes
	}
	if p.dial == 0 {
		p.dial = DefaultDialTimeout
	}
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range opts.UpstreamMetadata {
			if !yield(k) {
				return
			}
		}
	}) {
		p.upstream = append(p.upstream, k, opts.UpstreamMetadata[k])
	}
	p.ids.Init()
	p.health.SetServingStatus("", healthgrpc.HealthCheckResponse_NOT_SERVING)
	return p, nil
}

// NewServer returns a grpc.Server that serves every method through the
// proxy (grpc.UnknownServiceHandler, messages passed through as bytes)
// except grpc.health.v1.Health, which the proxy answers itself for its
// own liveness: SERVING once it has a routing table, NOT_SERVING before
// and after Close. opts are added after the proxy's own (message size
// limits); do not pass another codec or unknown-service handler.
func (p *Proxy) NewServer(opts ...grpc.ServerOption) *grpc.Server {
	all := append([]grpc.ServerOption{
		grpc.UnknownServiceHandler(p.handle),
		grpc.ForceServerCodecV2(codec{}),
		grpc.MaxRecvMsgSize(p.maxMsg),
		grpc.MaxSendMsgSize(p.maxMsg),
	}, opts...)
	s := grpc.NewServer(all...)
	healthgrpc.RegisterHealthServer(s, p.health)
	return s
}

// SetRoutes replaces the routing table with routes, atomically: each
// call is routed by the table before or after, never a mix. routes is
// the HTTP proxy's table (internal/serve/proxy, as internal/serve/routes
// distributes it): each route names an application and its ingress
// deployment with its replicas; the route prefix plays no part in gRPC
// routing. A deployment that keeps its (App, Deployment) keeps its
// router, so its in-flight counts and queue survive; a replica left out
// or marked Draining gets no new calls while those in flight finish, and
// its connection closes after the last one.
//
// On an invalid table SetRoutes changes nothing and returns every
// problem, each wrapping ErrInvalid. After Close it returns ErrClosed.
func (p *Proxy) SetRoutes(routes []proxy.Route) error {
	addrs, err := validateRoutes(routes)
	if err != nil {
		return err
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	next := make(map[depKey]*deployment, len(routes))
	byApp := make(map[string]*entry, len(routes))
	var retired []*target
	for i, rt := range routes {
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
			return fmt.Errorf("grpcproxy: deployment %s/%s: %w", rt.App, rt.Deployment, err)
		}
		if d == nil {
			d = &deployment{app: rt.App, name: rt.Deployment, rt: rtr}
			empty := map[string]*target{}
			d.targets.Store(&empty)
		}
		d.maxQueued = maxQueued
		old := *d.targets.Load()
		final := make(map[string]*target, len(rt.Replicas))
		desc := make([]router.Replica, len(rt.Replicas))
		for j, r := range rt.Replicas {
			t := old[r.ID]
			if t == nil || t.addr != addrs[i][j] || t.node != r.Node {
				if t, err = p.newTarget(r.ID, r.Node, addrs[i][j]); err != nil {
					return fmt.Errorf("grpcproxy: deployment %s/%s: replica %s: %w", rt.App, rt.Deployment, r.ID, err)
				}
			}
			final[r.ID] = t
			desc[j] = router.Replica{ID: r.ID, NodeID: r.Node, Zone: r.Zone,
				MaxOngoingRequests: r.MaxOngoingRequests, State: r.State}
		}
		for id, t := range old {
			if final[id] != t {
				retired = append(retired, t)
			}
		}
		// Addresses first: a replica the router hands out is always
		// found; a lease on one just left out finds none and is routed
		// again.
		d.targets.Store(&final)
		if err := d.rt.Set(desc); err != nil {
			return fmt.Errorf("grpcproxy: deployment %s/%s: %w", rt.App, rt.Deployment, err)
		}
		next[k] = d
		timeout := rt.RequestTimeout
		if timeout == 0 {
			timeout = p.opts.RequestTimeout
		}
		byApp[rt.App] = &entry{app: rt.App, route: rt.Prefix, dep: d, timeout: timeout}
	}
	t := &table{byApp: byApp, apps: make([]string, 0, len(byApp))}
	for app := range byApp {
		t.apps = append(t.apps, app)
	}
	slices.Sort(t.apps)
	p.table.Store(t)

	for k, d := range p.deps {
		if next[k] != d {
			d.rt.Close()
			for _, t := range *d.targets.Load() {
				retired = append(retired, t)
			}
		}
	}
	p.deps = next
	for _, t := range retired {
		t.retire(false)
	}
	p.health.SetServingStatus("", healthgrpc.HealthCheckResponse_SERVING)
	return nil
}

// newTarget makes a replica's connection. It does no I/O: gRPC connects
// at the first call, and again after a failure (with backoff).
func (p *Proxy) newTarget(id, node, addr string) (*target, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithNoProxy(), // replicas are reached directly, never through HTTPS_PROXY
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: p.dial}),
		grpc.WithStatsHandler(trailerWatch{}),
		grpc.WithDefaultCallOptions(
			grpc.ForceCodecV2(codec{}),
			grpc.MaxCallRecvMsgSize(p.maxMsg),
			grpc.MaxCallSendMsgSize(p.maxMsg),
		),
	)
	if err != nil {
		return nil, err
	}
	return &target{id: id, node: node, addr: addr, cc: cc}, nil
}

// validateRoutes checks what the gRPC proxy uses of a routing table and
// returns each replica's host:port by route and replica index. Every
// problem is reported, each wrapping ErrInvalid and naming the route and
// field.
func validateRoutes(routes []proxy.Route) ([][]string, error) {
	var errs []error
	bad := func(i int, rt proxy.Route, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: routes[%d] (%s/%s): %s", ErrInvalid, i, rt.App, rt.Deployment, fmt.Sprintf(format, args...)))
	}
	apps := make(map[string]int, len(routes))
	addrs := make([][]string, len(routes))
	for i, rt := range routes {
		if rt.App == "" {
			bad(i, rt, "App is empty")
		} else if j, dup := apps[rt.App]; dup {
			bad(i, rt, "application %q also has routes[%d]: gRPC calls name an application, which must have one ingress deployment", rt.App, j)
		} else {
			apps[rt.App] = i
		}
		if rt.Deployment == "" {
			bad(i, rt, "Deployment is empty")
		}
		if rt.MaxQueuedRequests < router.Unbounded {
			bad(i, rt, "MaxQueuedRequests %d: must be -1 (unbounded), 0 (unbounded) or positive", rt.MaxQueuedRequests)
		}
		if rt.RequestTimeout < 0 {
			bad(i, rt, "RequestTimeout %s is negative", rt.RequestTimeout)
		}
		ids := make(map[string]struct{}, len(rt.Replicas))
		addrs[i] = make([]string, len(rt.Replicas))
		for j, rep := range rt.Replicas {
			if rep.ID == "" {
				bad(i, rt, "Replicas[%d]: empty ID", j)
			} else if _, dup := ids[rep.ID]; dup {
				bad(i, rt, "Replicas[%d]: replica %q listed twice", j, rep.ID)
			}
			ids[rep.ID] = struct{}{}
			addr, err := replicaAddr(rep.URL)
			if err != nil {
				bad(i, rt, "Replicas[%d] (%s): %v", j, rep.ID, err)
			}
			addrs[i][j] = addr
			if rep.MaxOngoingRequests < 0 {
				bad(i, rt, "Replicas[%d] (%s): MaxOngoingRequests %d is negative", j, rep.ID, rep.MaxOngoingRequests)
			}
			if rep.State < router.Running || rep.State > router.Unhealthy {
				bad(i, rt, "Replicas[%d] (%s): unknown State %d", j, rep.ID, int(rep.State))
			}
		}
	}
	return addrs, errors.Join(errs...)
}

// replicaAddr is the host:port of a replica's "http://host:port" URL:
// the gRPC proxy speaks cleartext HTTP/2 (h2c) to the same listener.
func replicaAddr(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("URL %q: %v", s, err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("URL %q: scheme must be http (the gRPC proxy reaches replicas over cleartext HTTP/2)", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("URL %q: want http://host:port, without path, query or user", s)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return "", fmt.Errorf("URL %q: want http://host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("URL %q: port %q is not in 1..65535", s, port)
	}
	return u.Host, nil
}

// pick returns the entry a call is for: the application named in its
// metadata (vals, the values of MetadataApplication), or the only one
// when none is named. The error says which applications exist.
func (t *table) pick(vals []string) (*entry, error) {
	if t == nil {
		return nil, errNoTable
	}
	name := ""
	if len(vals) > 0 {
		name = vals[0]
	}
	if name != "" {
		if e := t.byApp[name]; e != nil {
			return e, nil
		}
		return nil, &noAppError{name: name, apps: t.apps}
	}
	if len(t.apps) == 1 {
		return t.byApp[t.apps[0]], nil
	}
	return nil, &noAppError{apps: t.apps}
}

var errNoTable = errors.New("grpcproxy: routing table not received yet")

// noAppError is a call that names no application the table has, or
// names none while the table does not have exactly one.
type noAppError struct {
	name string   // the application asked for; "" when none was
	apps []string // the applications known, sorted
}

func (e *noAppError) Error() string {
	known := "no applications are deployed"
	if len(e.apps) > 0 {
		known = "applications: " + strings.Join(e.apps, ", ")
	}
	if e.name != "" {
		return fmt.Sprintf("application %q not found (%s)", e.name, known)
	}
	if len(e.apps) == 0 {
		return known
	}
	return fmt.Sprintf("set the %q metadata to name the application (%s)", MetadataApplication, known)
}

// Stats returns every routed deployment's counts, ordered by
// application, for the autoscaler (InFlight+Queued is this proxy's share
// of a deployment's ongoing requests) and metrics. Route is the
// application's HTTP route prefix. nil before the first SetRoutes.
func (p *Proxy) Stats() []proxy.DeploymentStats {
	t := p.table.Load()
	if t == nil {
		return nil
	}
	out := make([]proxy.DeploymentStats, 0, len(t.apps))
	for _, app := range t.apps {
		e := t.byApp[app]
		out = append(out, proxy.DeploymentStats{App: e.app, Deployment: e.dep.name, Route: e.route, Stats: e.dep.rt.Stats()})
	}
	return out
}

// Close stops routing and ends the calls in flight: waiting calls and
// later calls fail with codes.Unavailable, every replica connection is
// closed (calls on them end with codes.Unavailable), the health service
// answers NOT_SERVING. It then waits for the goroutines the proxy started
// for its calls, which end once their grpc.Server streams do: stop the
// server first (GracefulStop with a bound, then Stop) so none is left
// waiting on a client. Close is idempotent.
func (p *Proxy) Close() {
	p.setMu.Lock()
	if !p.closed.Swap(true) {
		p.health.Shutdown()
		for _, d := range p.deps {
			d.rt.Close()
			for _, t := range *d.targets.Load() {
				t.retire(true)
			}
		}
	}
	p.setMu.Unlock()
	p.pumpMu.Lock() // a call starting its pump now sees closed
	p.pumpMu.Unlock()
	p.pumps.Wait()
}

// trailerWatch is the replica connections' stats handler: it notes that
// the replica sent its trailers (the call's status), so that the proxy
// tells a status the replica returned, which it passes on unchanged,
// from a replica that failed (connection refused or lost, not a gRPC
// server), which it answers with codes.Unavailable naming the replica.
type trailerWatch struct{}

type callStateKey struct{}

// callState is one upstream call's state seen by trailerWatch.
type callState struct {
	trailers atomic.Bool
}

func (trailerWatch) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (trailerWatch) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.InTrailer); ok {
		if cs, ok := ctx.Value(callStateKey{}).(*callState); ok {
			cs.trailers.Store(true)
		}
	}
}
func (trailerWatch) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (trailerWatch) HandleConn(context.Context, stats.ConnStats)                       {}

// validRequestID reports whether a client's x-request-id is kept: 1 to
// MaxRequestIDLen characters, each printable ASCII other than space.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}
