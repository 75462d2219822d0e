package dashboard

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/stopper"
)

//go:embed web
var webFS embed.FS

// Limits and defaults of the head's time series.
const (
	// DefaultSampleInterval is how often the head samples the cluster.
	DefaultSampleInterval = 2 * time.Second
	// DefaultRetention is how far back the series reaches.
	DefaultRetention = time.Hour
	// MinSampleInterval and MaxSampleInterval bound SampleInterval.
	MinSampleInterval = 100 * time.Millisecond
	MaxSampleInterval = time.Minute
	// MaxSamples bounds the ring whatever the interval and retention.
	MaxSamples = 36000
	// DefaultStatsTimeout bounds each node's answer for its stats.
	DefaultStatsTimeout = time.Second
	// maxStatsNodes: the first this many alive nodes are asked for their
	// stats each round (the rest count as Partial); maxStatsCalls of
	// those calls run at once.
	maxStatsNodes = 512
	maxStatsCalls = 32
)

// EnvSampleInterval overrides Config.SampleInterval on the head (a Go
// duration from MinSampleInterval to MaxSampleInterval, such as "500ms").
const EnvSampleInterval = "RAYGO_DASHBOARD_SAMPLE_INTERVAL"

// Config configures the dashboard.
type Config struct {
	// SampleInterval is how often the time series samples the cluster.
	SampleInterval time.Duration
	// Retention is how much history the series keeps.
	Retention time.Duration
	// StatsTimeout bounds each node's answer in a sampling round.
	StatsTimeout time.Duration
}

// DefaultConfig is the dashboard's configuration: 2 s samples for an
// hour, with EnvSampleInterval applied when it is set.
func DefaultConfig() Config {
	return Config{SampleInterval: DefaultSampleInterval, Retention: DefaultRetention, StatsTimeout: DefaultStatsTimeout}
}

// Validate checks the limits.
func (c Config) Validate() error {
	if c.SampleInterval < MinSampleInterval || c.SampleInterval > MaxSampleInterval {
		return fmt.Errorf("dashboard: sample interval %v: want %v to %v", c.SampleInterval, MinSampleInterval, MaxSampleInterval)
	}
	if c.Retention < c.SampleInterval {
		return fmt.Errorf("dashboard: retention %v is shorter than the sample interval %v", c.Retention, c.SampleInterval)
	}
	if c.StatsTimeout <= 0 {
		return fmt.Errorf("dashboard: stats timeout %v: want more than 0", c.StatsTimeout)
	}
	return nil
}

// capacity is the ring's size: one retention's samples, at most
// MaxSamples.
func (c Config) capacity() int {
	return int(min(int64(c.Retention/c.SampleInterval)+1, MaxSamples))
}

// configFromEnv applies EnvSampleInterval to cfg.
func configFromEnv(cfg Config, getenv func(string) string) (Config, error) {
	if v := getenv(EnvSampleInterval); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return cfg, fmt.Errorf("dashboard: %s=%q: want a duration such as 2s", EnvSampleInterval, v)
		}
		cfg.SampleInterval = d
	}
	return cfg, cfg.Validate()
}

// Register is the dashboard's api.Feature with DefaultConfig (and
// EnvSampleInterval).
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	cfg, err := configFromEnv(DefaultConfig(), os.Getenv)
	if err != nil {
		return nil, err
	}
	return Feature(cfg)(s, c)
}

// Feature returns the dashboard's api.Feature with cfg: its pages and
// assets, and the time series sampled by one goroutine that the returned
// stop func ends.
func Feature(cfg Config) api.Feature {
	return func(s *api.Server, c *api.Cluster) (func(), error) {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		d, err := newDashboard(s, newSeries(&clusterSource{c: c}, cfg))
		if err != nil {
			return nil, err
		}
		d.routes()
		st := stopper.New()
		if err := st.Go("dashboard.series", d.series.Run); err != nil {
			return nil, err
		}
		return st.Stop, nil
	}
}

// asset is an embedded file ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

type dashboard struct {
	s      *api.Server
	series *Series
	assets map[string]asset // by path under web/
}

func newDashboard(s *api.Server, series *Series) (*dashboard, error) {
	d := &dashboard{s: s, series: series, assets: map[string]asset{}}
	err := fs.WalkDir(webFS, "web", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := webFS.ReadFile(p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if path.Ext(p) == ".js" {
			ct = "text/javascript; charset=utf-8"
		}
		sum := sha256.Sum256(b)
		d.assets[strings.TrimPrefix(p, "web/")] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dashboard: read the embedded assets: %w", err)
	}
	return d, nil
}

// Pages are the dashboard's page routes: each serves the same shell
// (index.html), whose script draws the page the path names.
var Pages = []string{"/{$}", "/jobs", "/jobs/{id}", "/cluster", "/actors", "/tasks", "/serve", "/logs", "/charts"}

// publicAssets are the files the login page needs; they carry nothing
// about the cluster.
var publicAssets = []string{"static/style.css", "static/login.js", "static/favicon.svg"}

func (d *dashboard) routes() {
	d.s.Handle("GET /login", api.ScopeNone, d.serveAsset("login.html"))
	for _, p := range publicAssets {
		d.s.Handle("GET /"+p, api.ScopeNone, d.serveAsset(p))
	}
	for _, p := range Pages {
		d.s.Handle("GET "+p, api.ScopeNone, d.page)
	}
	public := map[string]bool{"login.html": true, "index.html": true}
	for _, p := range publicAssets {
		public[p] = true
	}
	for p := range d.assets {
		if !public[p] {
			d.s.Handle("GET /"+p, api.ScopeRead, d.serveAsset(p))
		}
	}
	d.s.Handle("GET /api/dashboard/series", api.ScopeRead, d.handleSeries)
	d.s.Handle("GET /api/dashboard/nodes", api.ScopeRead, d.handleNodes)
}

// csp is the pages' Content-Security-Policy: nothing but this server's
// own scripts, styles and connections; no inline scripts; no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
}

func (d *dashboard) serveAsset(name string) http.HandlerFunc {
	a, ok := d.assets[name]
	if !ok {
		panic("dashboard: no embedded asset " + name)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("ETag", a.etag)
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", a.ctype)
		_, _ = w.Write(a.body)
	}
}

// page serves the shell to a caller with a session (or token) and sends
// anyone else to /login, with the page to come back to.
func (d *dashboard) page(w http.ResponseWriter, r *http.Request) {
	if !d.authenticated(r) {
		http.Redirect(w, r, loginURL(r.URL), http.StatusSeeOther)
		return
	}
	d.serveAsset("index.html")(w, r)
}

// loginURL is /login with next= the page asked for.
func loginURL(u *url.URL) string {
	if u.Path == "/" || u.Path == "" {
		return "/login"
	}
	return "/login?next=" + url.QueryEscape(u.RequestURI())
}

// authenticated asks the server itself, through its own guard, whether
// r's credentials (session cookie or bearer token) are good: the page
// routes must redirect rather than answer 401 as API routes do.
func (d *dashboard) authenticated(r *http.Request) bool {
	q := r.Clone(r.Context())
	q.Method, q.Body, q.ContentLength = http.MethodGet, http.NoBody, 0
	q.URL = &url.URL{Path: "/api/whoami"}
	q.RequestURI = "/api/whoami"
	var sw statusWriter
	d.s.ServeHTTP(&sw, q)
	return sw.status == http.StatusOK
}

// statusWriter keeps only a response's status.
type statusWriter struct {
	h      http.Header
	status int
}

func (w *statusWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// SeriesReply is GET /api/dashboard/series's answer.
type SeriesReply struct {
	IntervalMs  int64    `json:"interval_ms"`
	RetentionMs int64    `json:"retention_ms"`
	Now         int64    `json:"now"`
	Samples     []Sample `json:"samples"`
}

func (d *dashboard) handleSeries(w http.ResponseWriter, r *http.Request) {
	since, err := parseSince(r.URL.Query().Get("since"))
	if err != nil {
		api.WriteError(w, api.BadRequest("%v", err))
		return
	}
	api.WriteJSON(w, SeriesReply{IntervalMs: d.series.interval.Milliseconds(), RetentionMs: d.series.retention.Milliseconds(),
		Now: time.Now().UnixMilli(), Samples: d.series.Since(since)})
}

// NodesReply is GET /api/dashboard/nodes's answer: the sampler's latest
// round, dead nodes included.
type NodesReply struct {
	T     int64      `json:"t"`
	Nodes []NodeStat `json:"nodes"`
}

func (d *dashboard) handleNodes(w http.ResponseWriter, r *http.Request) {
	nodes, at := d.series.Nodes()
	if nodes == nil {
		nodes = []NodeStat{}
	}
	api.WriteJSON(w, NodesReply{T: at, Nodes: nodes})
}

// clusterSource reads the cluster in the head's process: the control
// store directly, the head's node daemon directly, other node daemons by
// gRPC.
type clusterSource struct{ c *api.Cluster }

func (cs *clusterSource) nodes(ctx context.Context) ([]*pb.NodeInfo, error) {
	r, err := cs.c.GCS.GetNodes(ctx, &pb.GetNodesRequest{IncludeDead: true})
	if err != nil {
		return nil, err
	}
	return r.GetNodes(), nil
}

func (cs *clusterSource) stats(ctx context.Context, n *pb.NodeInfo) (*pb.NodeStatsReply, error) {
	req := &pb.NodeStatsRequest{}
	if h := cs.c.HeadNode; h != nil && string(h.NodeID().Bytes()) == string(n.GetNodeId()) {
		return h.NodeStats(ctx, req)
	}
	if cs.c.Pool == nil {
		return nil, fmt.Errorf("dashboard: no connection pool to reach node %s", n.GetAddress())
	}
	conn, err := cs.c.Pool.Get(n.GetAddress())
	if err != nil {
		return nil, err
	}
	return pb.NewNodeDaemonClient(conn).NodeStats(ctx, req)
}

func (cs *clusterSource) taskCounts(ctx context.Context) (map[string]int64, error) {
	return taskCounts(ctx, cs.c)
}

func (cs *clusterSource) headID() []byte {
	if cs.c.HeadNode == nil {
		return nil
	}
	return cs.c.HeadNode.NodeID().Bytes()
}
