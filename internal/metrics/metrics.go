package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/raylet"
)

// Limits of a scrape.
const (
	// NodeScrapeTimeout bounds each node daemon's answer to
	// NodeDaemon.Metrics within a scrape.
	NodeScrapeTimeout = time.Second
	// MaxParallelNodeScrapes bounds the node daemons asked at once.
	MaxParallelNodeScrapes = 64
	// MaxScrapesInFlight bounds concurrent /metrics requests; more are
	// answered 503.
	MaxScrapesInFlight = 4
	// ScrapeTimeout bounds a whole scrape; past it the request is
	// answered 503.
	ScrapeTimeout = 10 * time.Second
	// headReadTimeout bounds the control store reads of a scrape (they
	// are in process and take microseconds).
	headReadTimeout = time.Second
)

// Head is the head's metrics: its registry and how it reaches the nodes.
type Head struct {
	c       *api.Cluster
	reg     *prometheus.Registry
	nodes   *nodeGatherer
	started prometheus.Histogram
	log     *slog.Logger
}

// New makes the head's registry for cluster c. It reads nothing until
// scraped.
func New(c *api.Cluster) (*Head, error) {
	h := &Head{c: c, reg: prometheus.NewRegistry(), log: slog.Default().With("component", "metrics")}
	errCount := prometheus.NewCounter(prometheus.CounterOpts{
		Name: MetricNodeScrapeErrors,
		Help: "Node daemons that failed to answer NodeDaemon.Metrics within a scrape (left out of that scrape).",
	})
	h.started = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    MetricSubmissionToStart,
		Help:    "Time from a task's submission to the start of its execution, in seconds, from the task-event store.",
		Buckets: raylet.PlacementBuckets,
	})
	h.nodes = &nodeGatherer{c: c, errors: errCount, timeout: NodeScrapeTimeout, log: h.log}
	for _, col := range []prometheus.Collector{errCount, h.started, &clusterCollector{c: c},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := h.reg.Register(col); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	if te := c.GCS.TaskEvents(); te != nil {
		te.OnStart(func(d time.Duration) { h.started.Observe(d.Seconds()) })
	}
	return h, nil
}

// Gatherer is what a scrape gathers: every alive node's metrics, then the
// head's. Node failures are counted, never returned.
func (h *Head) Gatherer(ctx context.Context) prometheus.Gatherer {
	return prometheus.Gatherers{h.nodes.withContext(ctx), h.reg}
}

// ServeHTTP serves a scrape.
func (h *Head) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(h.Gatherer(r.Context()), promhttp.HandlerOpts{
		ErrorLog:      promLogger{h.log},
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       ScrapeTimeout,
	}).ServeHTTP(w, r)
}

// promLogger adapts slog for promhttp.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("metrics: scrape", "err", fmt.Sprint(v...)) }

// Register is the head's metrics feature: GET /metrics, and the
// service-discovery file in the session directory once the API listens.
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	h, err := New(c)
	if err != nil {
		return nil, err
	}
	c.Metrics = h.reg // for the features registered after this one
	limit := make(chan struct{}, MaxScrapesInFlight)
	s.Handle("GET /metrics", s.MetricsScope(), func(w http.ResponseWriter, r *http.Request) {
		select {
		case limit <- struct{}{}:
			defer func() { <-limit }()
		default:
			api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, "busy", "metrics: %d scrapes in flight already", MaxScrapesInFlight))
			return
		}
		h.ServeHTTP(w, r)
	})
	if c.SessionDir == "" {
		return nil, nil
	}
	d := startDiscovery(filepath.Join(c.SessionDir, DiscoveryFile), s.Addr, Labels(c), h.log)
	return d.stop, nil
}
