package raylet

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raygo/raygo/internal/serve/proxy"
)

// Serve proxy metrics.
//
// The node's Serve proxy (serveproxy.go) reports every request it routes
// to serveMetrics, a proxy.Observer, which counts it in the node's
// registry (metrics.go) with the node's labels; the head's GET /metrics
// merges every node's (internal/metrics). The gauges of requests in
// flight and queued per deployment are read from the proxy's Stats when
// the registry is gathered: nothing polls.
//
// Label values are bounded: application, deployment and route come from
// the routing table (route is the matched prefix, never the request's
// path, as Ray does), method is one of ServeMethods or "OTHER", and
// status_code is the three-digit status. A request that matched no route
// (404) is counted with application, deployment and route empty.

// Names of the Serve proxy's metrics (Ray's, with raygo_ in place of
// ray_ and Prometheus's _total on counters).
const (
	// MetricServeRequests counts requests answered, by application,
	// deployment, route, method and status code (Ray:
	// ray_serve_num_http_requests).
	MetricServeRequests = "raygo_serve_http_requests_total"
	// MetricServeLatency is a histogram of the time from a request's
	// arrival at the proxy to the end of its response, in milliseconds,
	// by application, deployment and route (Ray:
	// ray_serve_http_request_latency_ms).
	MetricServeLatency = "raygo_serve_http_request_latency_ms"
	// MetricServeErrors counts requests answered with a status outside
	// 2xx, by application, deployment, route, method and error_code
	// (Ray: ray_serve_num_http_error_requests).
	MetricServeErrors = "raygo_serve_http_errors_total"
	// MetricServeOngoing is the requests this proxy has forwarded to a
	// deployment's replicas and not yet seen answered, by application and
	// deployment (Ray: ray_serve_num_ongoing_http_requests, per
	// deployment here).
	MetricServeOngoing = "raygo_serve_ongoing_requests"
	// MetricServeQueued is the requests waiting at this proxy for a
	// replica of a deployment, by application and deployment (Ray:
	// ray_serve_deployment_queued_queries).
	MetricServeQueued = "raygo_serve_queued_requests"
)

// ServeLatencyBucketsMs are the latency histogram's upper bounds in
// milliseconds: Ray Serve's DEFAULT_LATENCY_BUCKET_MS, 1 ms to 10 min.
var ServeLatencyBucketsMs = []float64{1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 60000, 120000, 300000, 600000}

// ServeMethods are the values of the method label other than "OTHER",
// which stands for any other method a client sent (a client chooses the
// method: the label must not take whatever it sends).
var ServeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

// maxPendingServeObservations bounds the requests whose observation waits
// for its method (between the proxy's RequestDone and the end of the
// wrapping handler: microseconds, so at most about the requests in flight).
// Past it an observation is counted at once with method "UNKNOWN".
const maxPendingServeObservations = 1 << 16

// serveObservation is what the proxy's Observer hears of one request.
type serveObservation struct {
	app, dep, route string
	code            int
	took            time.Duration
}

// serveMetrics is the node's Serve proxy metrics. The proxy's Observer
// interface carries no method, so the handler that wraps the proxy
// (handler) supplies it: RequestDone keeps each observation under its
// request id until the handler, on the same goroutine once the proxy has
// returned, takes it back and counts it with the method. Two requests in
// flight at once with the same client-chosen X-Request-Id may swap their
// methods; their counts stay right.
type serveMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	stats    func() []proxy.DeploymentStats // the proxy's Stats, read when gathered

	mu      sync.Mutex
	pending map[string][]serveObservation // guarded by mu; by request id
}

var (
	descServeOngoing = prometheus.NewDesc(MetricServeOngoing,
		"Requests this node's Serve proxy has forwarded to a deployment's replicas and not yet seen answered (Ray: ray_serve_num_ongoing_http_requests).",
		[]string{"application", "deployment"}, nil)
	descServeQueued = prometheus.NewDesc(MetricServeQueued,
		"Requests waiting at this node's Serve proxy for a replica of a deployment (Ray: ray_serve_deployment_queued_queries).",
		[]string{"application", "deployment"}, nil)
)

// newServeMetrics makes the proxy's metrics and registers them in r's
// registry with the node's labels.
func newServeMetrics(r *Raylet) *serveMetrics {
	m := &serveMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricServeRequests,
			Help: "Requests answered by this node's Serve proxy, by route prefix, method and status (Ray: ray_serve_num_http_requests)."},
			[]string{"application", "deployment", "route", "method", "status_code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricServeErrors,
			Help: "Requests answered by this node's Serve proxy with a status outside 2xx; 499: the client left (Ray: ray_serve_num_http_error_requests)."},
			[]string{"application", "deployment", "route", "method", "error_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricServeLatency,
			Help:    "Time from a request's arrival at this node's Serve proxy to the end of its response, in milliseconds (Ray: ray_serve_http_request_latency_ms).",
			Buckets: ServeLatencyBucketsMs},
			[]string{"application", "deployment", "route"}),
		pending: map[string][]serveObservation{},
	}
	if r.metrics != nil {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node_id": r.nodeID.String(), "NodeAddress": r.address}, r.metrics.reg)
		wrapped.MustRegister(m.requests, m.errors, m.latency, (*serveGauges)(m))
	}
	return m
}

// handler wraps p, whose Observer m is: it counts, with its method,
// each request p observed; and from now on the gauges read p's Stats.
func (m *serveMetrics) handler(p *proxy.Proxy) http.Handler {
	m.mu.Lock()
	m.stats = p.Stats
	m.mu.Unlock()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Deferred: the proxy re-panics (http.ErrAbortHandler) when it
		// cuts a response off, after observing it.
		defer m.done(w, r.Method)
		p.ServeHTTP(w, r)
	})
}

// done counts the observation the proxy made of the request whose
// response is w, if it made one (it makes none for /-/healthz and
// /-/routes).
func (m *serveMetrics) done(w http.ResponseWriter, method string) {
	id := w.Header().Get(proxy.HeaderRequestID)
	if id == "" {
		return
	}
	m.mu.Lock()
	obs, ok := m.pending[id]
	var o serveObservation
	if ok {
		o = obs[0]
		if len(obs) == 1 {
			delete(m.pending, id)
		} else {
			m.pending[id] = obs[1:]
		}
	}
	m.mu.Unlock()
	if ok {
		m.count(o, serveMethod(method))
	}
}

// RequestDone implements proxy.Observer: it keeps the observation for
// the wrapping handler, which adds the method.
func (m *serveMetrics) RequestDone(app, deployment, route string, code int, took time.Duration, requestID string) {
	o := serveObservation{app: app, dep: deployment, route: route, code: code, took: took}
	m.mu.Lock()
	if len(m.pending) >= maxPendingServeObservations {
		m.mu.Unlock()
		m.count(o, "UNKNOWN")
		return
	}
	m.pending[requestID] = append(m.pending[requestID], o)
	m.mu.Unlock()
}

// count adds one request to the counters and the histogram.
func (m *serveMetrics) count(o serveObservation, method string) {
	code := strconv.Itoa(o.code)
	m.requests.WithLabelValues(o.app, o.dep, o.route, method, code).Inc()
	if o.code < 200 || o.code > 299 {
		m.errors.WithLabelValues(o.app, o.dep, o.route, method, code).Inc()
	}
	m.latency.WithLabelValues(o.app, o.dep, o.route).Observe(float64(o.took) / float64(time.Millisecond))
}

// serveMethod is method's label value: itself when it is one of
// ServeMethods, else "OTHER".
func serveMethod(method string) string {
	for _, s := range ServeMethods {
		if method == s {
			return s
		}
	}
	return "OTHER"
}

// serveGauges collects the per-deployment gauges from the proxy's Stats
// when the registry is gathered.
type serveGauges serveMetrics

func (g *serveGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- descServeOngoing
	ch <- descServeQueued
}

func (g *serveGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	stats := g.stats
	g.mu.Unlock()
	if stats == nil {
		return
	}
	for _, s := range stats() {
		ch <- prometheus.MustNewConstMetric(descServeOngoing, prometheus.GaugeValue, float64(s.InFlight), s.App, s.Deployment)
		ch <- prometheus.MustNewConstMetric(descServeQueued, prometheus.GaugeValue, float64(s.Queued), s.App, s.Deployment)
	}
}
