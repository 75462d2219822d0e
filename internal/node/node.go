// Package node starts raygo's daemons inside one process: a head node
// (control store and node daemon) or a worker node (node daemon only).
// `raygo start` and the embedded cluster of ray.Init both use it.
package node

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/rpc"
)

// HeadConfig configures a head node.
type HeadConfig struct {
	// GCSAddress is where the control store listens ("127.0.0.1:0" picks a port).
	GCSAddress string
	// AdvertiseHost is the address the cluster is reached at when
	// GCSAddress listens on every interface; it is the node daemon's too
	// unless Raylet.AdvertiseHost says otherwise. See rpc.ListenOn.
	AdvertiseHost string
	GCS           gcs.Config
	Raylet        raylet.Config // GCSAddress and Token are filled in
	Token         string
}

// Head is a running head node.
type Head struct {
	gcs      *gcs.Server
	server   *grpc.Server
	pool     *rpc.Pool
	raylet   *raylet.Raylet
	address  string
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// StartHead starts the control store and the head's node daemon.
func StartHead(cfg HeadConfig) (*Head, error) {
	if cfg.GCSAddress == "" {
		cfg.GCSAddress = "127.0.0.1:0"
	}
	if !rpc.IsLoopback(cfg.GCSAddress) {
		slog.Warn("raygo: the control store listens beyond loopback without TLS; every call still needs the cluster token", "address", cfg.GCSAddress)
	}
	lis, err := rpc.ListenOn(cfg.GCSAddress, cfg.AdvertiseHost)
	if err != nil {
		return nil, err
	}
	if cfg.GCS.BinaryDir == "" && cfg.Raylet.SessionDir != "" {
		cfg.GCS.BinaryDir = filepath.Join(cfg.Raylet.SessionDir, "job-binaries")
	}
	h := &Head{pool: rpc.NewPool(cfg.Token), server: rpc.NewServer(cfg.Token), address: lis.Addr()}
	h.gcs = gcs.New(cfg.GCS, h.pool)
	pb.RegisterControlStoreServer(h.server, h.gcs)
	lis.Serve(h.server, &h.wg)
	rc := cfg.Raylet
	rc.GCSAddress, rc.Token = h.address, cfg.Token
	if rc.AdvertiseHost == "" {
		rc.AdvertiseHost = cfg.AdvertiseHost
	}
	h.raylet, err = raylet.Start(rc)
	if err != nil {
		h.Stop()
		return nil, fmt.Errorf("node: start node daemon: %w", err)
	}
	return h, nil
}

// GCSAddress is the control store's address: the cluster's address.
func (h *Head) GCSAddress() string { return h.address }

// Raylet is the head's node daemon.
func (h *Head) Raylet() *raylet.Raylet { return h.raylet }

// Stop stops the node daemon (and its workers), then the control store.
func (h *Head) Stop() {
	h.stopOnce.Do(func() {
		if h.raylet != nil {
			h.raylet.Stop()
		}
		h.gcs.Close()
		h.server.Stop()
		h.wg.Wait()
		h.pool.Close()
	})
}
