package raylet

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/internal/stopper"
)

// The node's Serve proxy (Config.ServePort ≥ 0): an internal/serve/proxy
// Proxy behind an http.Server on ServeHost:ServePort, preferring replicas
// on this node, whose routing table follows the head's
// (internal/serve/routes, GET /api/serve/routes on the head's HTTP API,
// found through the control store's GetClusterInfo and found again after
// a failed poll). It starts with the daemon and stops with it.
const (
	// DefaultServeHost is Config.ServeHost's default: Ray's
	// http_options.host (loopback; 0.0.0.0 serves every interface).
	DefaultServeHost = "127.0.0.1"

	// ServeTokenHeader is the header the Serve proxy sets on every
	// request it forwards to a replica, replacing any a client sent, with
	// ServeUpstreamToken's value: replicas refuse requests without it, so
	// that only proxies reach them.
	ServeTokenHeader = goapp.TokenHeader

	// serveReadHeaderTimeout bounds reading a client's request headers
	// (slow-loris clients); bodies and responses stream without a bound
	// beyond the route's request timeout.
	serveReadHeaderTimeout = 10 * time.Second
	// serveIdleTimeout closes a client's idle keep-alive connection.
	serveIdleTimeout = 2 * time.Minute
	// serveDrainTimeout is how long Stop lets requests in flight finish
	// before closing their connections.
	serveDrainTimeout = 2 * time.Second
	// clusterInfoTimeout bounds one GetClusterInfo call.
	clusterInfoTimeout = 5 * time.Second
	// ServeLoadReportPeriod is how often the proxy POSTs its load per
	// deployment (routes.LoadReport) to the head for autoscaling. Ray's
	// metrics_interval_s default is 10 s; one period for every deployment
	// keeps reports fresh for any metrics_interval_s (the head keeps a
	// report for max(2 × metrics_interval_s, 10 s)).
	ServeLoadReportPeriod = 1 * time.Second
	// serveLoadReportTimeout bounds one load report.
	serveLoadReportTimeout = 5 * time.Second
)

// ServeUpstreamToken is the value of ServeTokenHeader for a cluster: an
// HMAC of the cluster token, not the token itself, so that a replica
// (which may be any program: a command deployment) can check requests
// without holding a credential to the cluster. Every node computes the
// same value; whoever starts a replica hands it this value.
func ServeUpstreamToken(clusterToken string) string {
	m := hmac.New(sha256.New, []byte(clusterToken))
	m.Write([]byte("raygo serve upstream v1"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// serveProxy is the running proxy of a node daemon.
type serveProxy struct {
	p        *proxy.Proxy
	srv      *http.Server
	addr     string
	st       *stopper.Stopper // owns the server's and the follower's goroutines
	stopOnce sync.Once

	grpc *serveGRPC // the gRPC proxy fed the same tables (servegrpc.go); nil: none

	mu      sync.Mutex
	version uint64 // guarded by mu; the table version applied (0: none yet)
}

// startServeProxy starts the node's Serve proxy when the config asks for
// one; r.serve stays nil otherwise.
func (r *Raylet) startServeProxy() error {
	if r.cfg.ServePort < 0 {
		return nil
	}
	if r.cfg.ServePort > 65535 {
		return fmt.Errorf("raylet: ServePort %d: want -1 (no proxy), 0 (a free port) or a port up to 65535", r.cfg.ServePort)
	}
	host := r.cfg.ServeHost
	if host == "" {
		host = DefaultServeHost
	}
	log := r.log.With("subsystem", "serve-proxy")
	sm := newServeMetrics(r) // servemetrics.go
	p, err := proxy.New(proxy.Options{
		Observer:        sm,
		NodeID:          r.nodeID.String(),
		UpstreamHeaders: http.Header{ServeTokenHeader: {ServeUpstreamToken(r.cfg.Token)}},
		RetryIdempotent: true, // a GET or HEAD whose replica failed is tried once on another
		Logger:          log,
	})
	if err != nil {
		return fmt.Errorf("raylet: serve proxy: %w", err)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(r.cfg.ServePort)))
	if err != nil {
		p.Close()
		return fmt.Errorf("raylet: serve proxy: listen on %s port %d: %w", host, r.cfg.ServePort, err)
	}
	sp := &serveProxy{p: p, grpc: r.serveGRPC, addr: lis.Addr().String(), st: stopper.New(),
		srv: &http.Server{Handler: sm.handler(p), ReadHeaderTimeout: serveReadHeaderTimeout, IdleTimeout: serveIdleTimeout,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}}
	if err := sp.st.Go("serve-proxy-http", func(context.Context) {
		if err := sp.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve proxy stopped serving", "address", sp.addr, "err", err)
		}
	}); err != nil {
		lis.Close()
		p.Close()
		return err
	}
	lastErr := ""
	f := &routes.Follower{
		Token:   r.cfg.Token,
		Resolve: r.headAPIURL,
		OnError: func(err error) {
			// The same failure again (the head's API not up yet, the head
			// away) is logged once, then at debug level.
			level := slog.LevelWarn
			if err.Error() == lastErr {
				level = slog.LevelDebug
			}
			lastErr = err.Error()
			log.Log(context.Background(), level, "serve proxy: following the head's routing table", "err", err)
		},
	}
	if err := sp.st.Go("serve-proxy-routes", func(ctx context.Context) {
		_ = f.Run(ctx, func(version uint64, rs []proxy.Route) {
			lastErr = ""
			sp.grpc.setRoutes(version, rs)
			if err := p.SetRoutes(rs); err != nil {
				log.Error("serve proxy: refused the head's routing table", "version", version, "err", err)
				return
			}
			sp.mu.Lock()
			sp.version = version
			sp.mu.Unlock()
			log.Debug("serve proxy: routing table applied", "version", version, "routes", len(rs))
		})
	}); err != nil {
		sp.stop()
		return err
	}
	if err := sp.st.Go("serve-proxy-load", func(ctx context.Context) {
		sp.reportLoad(ctx, r.nodeID.String(), r.cfg.Token, r.headAPIURL, log)
	}); err != nil {
		sp.stop()
		return err
	}
	r.serve = sp
	log.Info("serve proxy listening", "address", sp.addr, "node", r.nodeID)
	return nil
}

// reportLoad POSTs the proxy's load per deployment to the head's
// routes.LoadPath every ServeLoadReportPeriod until ctx ends; nothing is
// sent while the proxy routes nothing or the head serves no API. A failed
// report is logged at debug level: the next one replaces it.
func (sp *serveProxy) reportLoad(ctx context.Context, node, token string, head func(context.Context) (string, error), log *slog.Logger) {
	client := &http.Client{Timeout: serveLoadReportTimeout}
	defer client.CloseIdleConnections()
	tick := time.NewTicker(ServeLoadReportPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		stats := sp.grpc.addLoad(sp.p.Stats())
		if len(stats) == 0 {
			continue
		}
		rep := routes.LoadReport{Node: node, Deployments: make([]routes.DeploymentLoad, 0, len(stats))}
		for _, s := range stats {
			rep.Deployments = append(rep.Deployments, routes.DeploymentLoad{App: s.App, Deployment: s.Deployment, InFlight: s.InFlight, Queued: s.Queued})
		}
		base, err := head(ctx)
		if err == nil && base != "" {
			err = routes.PostLoad(ctx, client, base, token, rep)
		}
		if err != nil && ctx.Err() == nil {
			log.Debug("serve proxy: load report", "err", err)
		}
	}
}

// headAPIURL asks the control store where the head's HTTP API is: "" when
// it serves none (yet: the head's own daemon starts before its API). A
// head listening on every interface is reached at the control store's
// host.
func (r *Raylet) headAPIURL(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, clusterInfoTimeout)
	defer cancel()
	info, err := r.gcs.GetClusterInfo(ctx, &pb.GetClusterInfoRequest{})
	if err != nil {
		return "", err
	}
	addr := info.GetApiAddress()
	if addr == "" {
		return "", nil
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			if gh, _, err := net.SplitHostPort(r.cfg.GCSAddress); err == nil {
				addr = net.JoinHostPort(gh, port)
			}
		}
	}
	return "http://" + addr, nil
}

// stop shuts the proxy down: no new connections, requests in flight get
// serveDrainTimeout to finish, then the follower stops and the proxy's
// connections to replicas close. It is idempotent.
func (sp *serveProxy) stop() {
	sp.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), serveDrainTimeout)
		_ = sp.srv.Shutdown(ctx)
		cancel()
		_ = sp.srv.Close()
		sp.st.Stop()
		sp.p.Close()
	})
}

// stopServeProxy stops the node's Serve proxy, if it runs.
func (r *Raylet) stopServeProxy() {
	if r.serve != nil {
		r.serve.stop()
	}
}

// ServeProxyAddress is the host:port the node's Serve proxy listens on,
// "" when it runs none (Config.ServePort -1).
func (r *Raylet) ServeProxyAddress() string {
	if r.serve == nil {
		return ""
	}
	return r.serve.addr
}

// serveAdvertisedAddress is the host:port other hosts reach the node's
// Serve proxy at (NodeInfo.serve_address): its listening address, with
// the node's advertised host in place of an unspecified one (0.0.0.0,
// ::); "" when it runs none.
func (r *Raylet) serveAdvertisedAddress() string {
	if r.serve == nil {
		return ""
	}
	return r.advertised(r.serve.addr)
}

// serveGRPCAdvertisedAddress is serveAdvertisedAddress for the gRPC
// proxy (NodeInfo.serve_grpc_address).
func (r *Raylet) serveGRPCAdvertisedAddress() string {
	if r.serveGRPC == nil {
		return ""
	}
	return r.advertised(r.serveGRPC.addr)
}

// advertised is addr as other hosts reach it: the node's host in place
// of an unspecified one (0.0.0.0, ::).
func (r *Raylet) advertised(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if nh, _, err := net.SplitHostPort(r.address); err == nil {
			return net.JoinHostPort(nh, port)
		}
	}
	return addr
}

// ServeRoutesVersion is the version of the head's routing table the
// node's Serve proxy last applied: 0 before the first, or without a
// proxy.
func (r *Raylet) ServeRoutesVersion() uint64 {
	if r.serve == nil {
		return 0
	}
	r.serve.mu.Lock()
	defer r.serve.mu.Unlock()
	return r.serve.version
}
