package raylet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/serve/grpcproxy"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/stopper"
)

// The node's Serve gRPC proxy (Config.ServeGRPCPort ≥ 0; `raygo start
// --serve-grpc-port`): an internal/serve/grpcproxy Proxy behind a
// grpc.Server on ServeHost:ServeGRPCPort, beside the HTTP proxy
// (serveproxy.go) and fed the same routing tables by the HTTP proxy's
// follower, so that both route to the same replicas of the same
// applications (as Ray's proxy actor runs its gRPC proxy beside the HTTP
// one). Calls name their application in the "application" metadata;
// replicas get ServeUpstreamToken in the x-raygo-token metadata. Its
// load is added to the HTTP proxy's load reports for autoscaling.

// ServeTokenMetadata is the metadata key the gRPC proxy sets on every
// call it forwards to a replica, replacing any a client sent: the gRPC
// form of ServeTokenHeader, with the same ServeUpstreamToken value.
const ServeTokenMetadata = "x-raygo-token"

// serveGRPCDrainTimeout is how long Stop lets calls in flight finish
// before closing their connections.
const serveGRPCDrainTimeout = 2 * time.Second

// serveGRPC is the running gRPC proxy of a node daemon.
type serveGRPC struct {
	p        *grpcproxy.Proxy
	srv      *grpc.Server
	addr     string
	st       *stopper.Stopper // owns the server's goroutine
	stopOnce sync.Once
	log      *slog.Logger
}

// startServeGRPC starts the node's Serve gRPC proxy when the config asks
// for one; r.serveGRPC stays nil otherwise. It runs before the HTTP
// proxy starts following the head's table, so that it gets every table.
func (r *Raylet) startServeGRPC() error {
	if r.cfg.ServeGRPCPort < 0 {
		return nil
	}
	if r.cfg.ServeGRPCPort > 65535 {
		return fmt.Errorf("raylet: ServeGRPCPort %d: want -1 (no gRPC proxy), 0 (a free port) or a port up to 65535", r.cfg.ServeGRPCPort)
	}
	if r.cfg.ServePort < 0 {
		return fmt.Errorf("raylet: ServeGRPCPort %d needs the Serve HTTP proxy too (ServePort is -1; `raygo start --serve-port`): the gRPC proxy follows the routing table through it", r.cfg.ServeGRPCPort)
	}
	host := r.cfg.ServeHost
	if host == "" {
		host = DefaultServeHost
	}
	log := r.log.With("subsystem", "serve-grpc-proxy")
	p, err := grpcproxy.New(grpcproxy.Options{
		Observer:         newServeGRPCMetrics(r), // servemetrics.go
		NodeID:           r.nodeID.String(),
		UpstreamMetadata: map[string]string{ServeTokenMetadata: ServeUpstreamToken(r.cfg.Token)},
		Logger:           log,
	})
	if err != nil {
		return fmt.Errorf("raylet: serve gRPC proxy: %w", err)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(r.cfg.ServeGRPCPort)))
	if err != nil {
		p.Close()
		return fmt.Errorf("raylet: serve gRPC proxy: listen on %s port %d: %w", host, r.cfg.ServeGRPCPort, err)
	}
	sg := &serveGRPC{p: p, srv: p.NewServer(), addr: lis.Addr().String(), st: stopper.New(), log: log}
	if err := sg.st.Go("serve-grpc-proxy", func(context.Context) {
		if err := sg.srv.Serve(lis); err != nil {
			log.Error("serve gRPC proxy stopped serving", "address", sg.addr, "err", err)
		}
	}); err != nil {
		lis.Close()
		p.Close()
		return err
	}
	r.serveGRPC = sg
	log.Info("serve gRPC proxy listening", "address", sg.addr, "node", r.nodeID)
	return nil
}

// setRoutes hands the gRPC proxy a table the HTTP proxy's follower
// received. It does nothing without a gRPC proxy.
func (sg *serveGRPC) setRoutes(version uint64, rs []proxy.Route) {
	if sg == nil {
		return
	}
	if err := sg.p.SetRoutes(rs); err != nil {
		sg.log.Error("serve gRPC proxy: refused the head's routing table", "version", version, "err", err)
	}
}

// addLoad adds the gRPC proxy's load per deployment to the HTTP proxy's
// stats, for the load report (the head keeps one report per node).
func (sg *serveGRPC) addLoad(stats []proxy.DeploymentStats) []proxy.DeploymentStats {
	if sg == nil {
		return stats
	}
	return mergeServeLoad(stats, sg.p.Stats())
}

// mergeServeLoad sums b's in-flight and queued counts into a's entry of
// the same deployment, appending deployments a lacks. Only the counts
// are summed: the rest of an entry is a's, or b's for one a lacks.
func mergeServeLoad(a, b []proxy.DeploymentStats) []proxy.DeploymentStats {
	if len(b) == 0 {
		return a
	}
	out := make([]proxy.DeploymentStats, 0, len(a)+len(b))
	at := make(map[[2]string]int, len(a)+len(b))
	for _, list := range [][]proxy.DeploymentStats{a, b} {
		for _, s := range list {
			k := [2]string{s.App, s.Deployment}
			if i, ok := at[k]; ok {
				out[i].InFlight += s.InFlight
				out[i].Queued += s.Queued
				continue
			}
			at[k] = len(out)
			out = append(out, s)
		}
	}
	return out
}

// stop shuts the gRPC proxy down: no new calls, calls in flight get
// serveGRPCDrainTimeout to finish, then the rest are ended and the
// replica connections closed. It is idempotent.
func (sg *serveGRPC) stop() {
	sg.stopOnce.Do(func() {
		done := make(chan struct{})
		if err := sg.st.Go("serve-grpc-drain", func(context.Context) {
			sg.srv.GracefulStop()
			close(done)
		}); err != nil {
			sg.srv.Stop()
			close(done)
		}
		select {
		case <-done:
		case <-time.After(serveGRPCDrainTimeout):
			sg.srv.Stop()
			<-done
		}
		sg.st.Stop()
		sg.p.Close()
	})
}

// stopServeGRPC stops the node's Serve gRPC proxy, if it runs.
func (r *Raylet) stopServeGRPC() {
	if r.serveGRPC != nil {
		r.serveGRPC.stop()
	}
}

// ServeGRPCAddress is the host:port the node's Serve gRPC proxy listens
// on, "" when it runs none (Config.ServeGRPCPort -1).
func (r *Raylet) ServeGRPCAddress() string {
	if r.serveGRPC == nil {
		return ""
	}
	return r.serveGRPC.addr
}
