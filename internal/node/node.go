// Package node starts raygo's daemons inside one process: a head node
// (control store and node daemon) or a worker node (node daemon only).
// `raygo start` and the embedded cluster of ray.Init both use it.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/gcs/storage"
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
	// Token is the cluster token; with a Storage that holds one already
	// (a restarted head), that one is kept instead (see Head.Token).
	Token string
	// Storage, when set, is where the control store keeps its state (a
	// bbolt file's path, or redis://host:port: storage.Open), so that a
	// head restarted on the same address and storage takes its cluster
	// over. StorageNamespace separates clusters sharing one Redis.
	Storage          string
	StorageNamespace string
	// API configures the HTTP API and dashboard (api.go).
	API APIConfig
	// Version is raygo's version, for GetClusterInfo.
	Version string
}

// Head is a running head node.
type Head struct {
	gcs      *gcs.Server
	store    storage.Store // nil without Storage
	token    string
	server   *grpc.Server
	pool     *rpc.Pool
	raylet   *raylet.Raylet
	address  string
	wg       sync.WaitGroup
	stopOnce sync.Once
	api      *api.Server
	apiStops []func()
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
	var store storage.Store
	if cfg.Storage != "" {
		ns := cfg.StorageNamespace
		if ns == "" {
			ns = DefaultStorageNamespace
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		store, err = storage.Open(ctx, cfg.Storage, ns)
		if err == nil {
			cfg.Token, err = gcs.LoadToken(ctx, store, cfg.Token)
		}
		cancel()
		if err != nil {
			if store != nil {
				_ = store.Close()
			}
			lis.Close()
			return nil, fmt.Errorf("node: control store storage %s: %w", cfg.Storage, err)
		}
		cfg.GCS.Storage = store
	}
	h := &Head{pool: rpc.NewPool(cfg.Token), server: rpc.NewServer(cfg.Token), address: lis.Addr(), store: store, token: cfg.Token}
	h.gcs, err = gcs.Open(cfg.GCS, h.pool)
	if err != nil {
		h.pool.Close()
		if store != nil {
			_ = store.Close()
		}
		lis.Close()
		return nil, err
	}
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
	if err := h.gcs.SetHeadNode(h.raylet.NodeID()); err != nil {
		h.Stop()
		return nil, fmt.Errorf("node: record the head node in storage: %w", err)
	}
	if err := h.startAPI(cfg); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

// DefaultStorageNamespace is the namespace of a cluster's state in a
// Redis storage when none is given.
const DefaultStorageNamespace = "default"

// Token is the cluster token: HeadConfig.Token, or the one a restarted
// head found in its storage.
func (h *Head) Token() string { return h.token }

// GCSAddress is the control store's address: the cluster's address.
func (h *Head) GCSAddress() string { return h.address }

// Raylet is the head's node daemon.
func (h *Head) Raylet() *raylet.Raylet { return h.raylet }

// Stop stops the node daemon (and its workers), then the control store.
func (h *Head) Stop() {
	h.stopOnce.Do(func() {
		h.stopAPI()
		if h.raylet != nil {
			h.raylet.Stop()
		}
		h.gcs.Close()
		h.server.Stop()
		h.wg.Wait()
		h.pool.Close()
		if h.store != nil {
			_ = h.store.Close()
		}
	})
}
