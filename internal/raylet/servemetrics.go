package raylet

import (
	"google.golang.org/grpc/codes"
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
	// MetricServeGRPCRequests counts calls answered by this node's gRPC
	// proxy, by application, deployment and status code name (Ray:
	// ray_serve_num_grpc_requests); not by method, whose names are the
	// replicas' own and unbounded.
	MetricServeGRPCRequests = "raygo_serve_grpc_requests_total"
	// MetricServeGRPCLatency is a histogram of a call's time at this
	// node's gRPC proxy, in milliseconds (Ray:
	// ray_serve_grpc_request_latency_ms).
	MetricServeGRPCLatency = "raygo_serve_grpc_request_latency_ms"
)

// ServeLatencyBucketsMs are the latency histogram's upper bounds in
// milliseconds: Ray Serve's DEFAULT_LATENCY_BUCKET_MS, 1 ms to 10 min.
var ServeLatencyBucketsMs = []float64{1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000, 10000, 60000, 120000, 300000, 600000}

// ServeMethods are the values of the method label other than "OTHER",
// which stands for any other method a client sent (a client chooses the
// method: the label must not take whatever it sends).
var ServeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

// serveMetrics is the node's Serve proxy metrics: the proxy's Observer
// counts each request; the gauges read the proxy's Stats when gathered.
type serveMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	mu    sync.Mutex
	stats func() []proxy.DeploymentStats // guarded by mu; the proxy's Stats
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
	}
	if r.metrics != nil {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node_id": r.nodeID.String(), "NodeAddress": r.address}, r.metrics.reg)
		wrapped.MustRegister(m.requests, m.errors, m.latency, (*serveGauges)(m))
	}
	return m
}

// handler serves p, whose Observer m is; from now on the gauges read
// p's Stats.
func (m *serveMetrics) handler(p *proxy.Proxy) http.Handler {
	m.mu.Lock()
	m.stats = p.Stats
	m.mu.Unlock()
	return p
}

// RequestDone implements proxy.Observer: one request to the counters
// and the histogram.
func (m *serveMetrics) RequestDone(i proxy.RequestInfo) {
	code, method := strconv.Itoa(i.Code), serveMethod(i.Method)
	m.requests.WithLabelValues(i.App, i.Deployment, i.Route, method, code).Inc()
	if i.Code < 200 || i.Code > 299 {
		m.errors.WithLabelValues(i.App, i.Deployment, i.Route, method, code).Inc()
	}
	m.latency.WithLabelValues(i.App, i.Deployment, i.Route).Observe(float64(i.Took) / float64(time.Millisecond))
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

// serveGRPCMetrics is the node's gRPC proxy metrics, a
// grpcproxy.Observer.
type serveGRPCMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// newServeGRPCMetrics makes the gRPC proxy's metrics and registers them
// in r's registry with the node's labels.
func newServeGRPCMetrics(r *Raylet) *serveGRPCMetrics {
	m := &serveGRPCMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricServeGRPCRequests,
			Help: "Calls answered by this node's Serve gRPC proxy, by status code (Ray: ray_serve_num_grpc_requests)."},
			[]string{"application", "deployment", "status_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricServeGRPCLatency,
			Help:    "Time from a call's arrival at this node's Serve gRPC proxy to its status, in milliseconds (Ray: ray_serve_grpc_request_latency_ms).",
			Buckets: ServeLatencyBucketsMs},
			[]string{"application", "deployment"}),
	}
	if r.metrics != nil {
		wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node_id": r.nodeID.String(), "NodeAddress": r.address}, r.metrics.reg)
		wrapped.MustRegister(m.requests, m.latency)
	}
	return m
}

// CallDone implements grpcproxy.Observer.
func (m *serveGRPCMetrics) CallDone(app, deployment, _ string, code codes.Code, took time.Duration, _ string) {
	m.requests.WithLabelValues(app, deployment, code.String()).Inc()
	m.latency.WithLabelValues(app, deployment).Observe(float64(took) / float64(time.Millisecond))
}
