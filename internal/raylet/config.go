// Package raylet is the node daemon: it accounts the node's resources,
// grants worker leases (or points the caller at another node), runs the
// pool of worker processes started from each job's binary, hosts the
// node's object store, and reports to the control store.
//
// A node daemon lives under one node id, chosen at Start. When the control
// store declares it dead (silent past the node timeout) and it later gets
// through again, it kills its workers, refuses leases and closes Done: its
// owner stops it and exits, or starts a new daemon, which joins under a
// new id.
package raylet

import (
	"io"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/resources"
)

// Config configures one node daemon.
type Config struct {
	// NodeID identifies the node; zero picks a fresh one.
	NodeID ids.ID
	// ListenAddress is where the daemon serves gRPC (default 127.0.0.1:0).
	// Its workers listen on the same interface.
	ListenAddress string
	// AdvertiseHost is the address other nodes and processes reach this
	// node, and its workers, at (`raygo start --node-ip-address`). Empty:
	// ListenAddress's host, which then must be a specific address; a node
	// listening on every interface (0.0.0.0) must advertise one.
	AdvertiseHost string
	// GCSAddress is the control store's address.
	GCSAddress string
	// Token is the cluster token sent and required on every call.
	Token string
	// SessionDir holds logs and cached job binaries.
	SessionDir string
	// Resources are the node's totals (CPU, GPU, memory, custom).
	Resources resources.Set
	// GPUIDs name the node's GPUs, as CUDA_VISIBLE_DEVICES values; its
	// length must equal Resources["GPU"].
	GPUIDs []string
	// HostID names the machine the node runs on (reported to the control
	// store, so that nodes sharing a machine count its memory once);
	// empty: resources.DetectHost().
	HostID string
	// HostMemory is the machine's memory in bytes, reported with HostID;
	// 0 with an empty HostID: detected.
	HostMemory int64
	// Labels are matched by label selectors (scheduler.ValidateLabels: at
	// most 64, Kubernetes-style keys and values). The node adds its id as
	// scheduler.NodeIDLabel.
	Labels map[string]string
	// HeartbeatPeriod is how often the node reports to the control store.
	HeartbeatPeriod time.Duration
	// HeadTimeout: a node whose control store keeps no storage stops (its
	// workers killed, Done closed with a *errs.HeadLostError) once the
	// control store has not answered for this long, or at once when it
	// answers as a stranger (started again, without the cluster's state).
	// Zero takes the control store's own node timeout (5 s unless `raygo
	// start --head --node-timeout` says otherwise), so that a node cut
	// off gives its head up when the head gives the node up.
	HeadTimeout time.Duration
	// WorkerRegisterTimeout bounds the time from starting a worker process
	// to its registration.
	WorkerRegisterTimeout time.Duration
	// MaxStartupFailures is how many workers of a job may exit before
	// registering, in a row, before leases for the job fail.
	MaxStartupFailures int
	// IdleWorkerTimeout stops workers idle for this long.
	IdleWorkerTimeout time.Duration
	// MaxActorsPerProcess bounds how many actors that request no CPU and
	// no GPU share one worker process (1 gives every actor its own).
	MaxActorsPerProcess int
	// ObjectStoreBytes sizes the node's shared-memory object store; 0
	// picks objstore.DefaultCapacity (30% of memory, capped by what the
	// region's backing holds: /dev/shm on Linux).
	ObjectStoreBytes int64
	// SpillDir receives objects spilled from a full store, and objects
	// larger than the store (default: "spill" in the session directory).
	SpillDir string
	// PrefaultObjectStore populates the store's memory at start, in the
	// background, so first writes run at memory speed.
	PrefaultObjectStore bool
	// ObjectPutTimeout bounds how long a put waits for store space when
	// nothing can be spilled (default 10 s).
	ObjectPutTimeout time.Duration
	// MemoryUsageThreshold is the fraction of node memory above which the
	// memory monitor kills a worker (default 0.95; negative disables).
	MemoryUsageThreshold float64
	// MemoryMonitorInterval is how often the monitor reads memory use
	// (default 250 ms).
	MemoryMonitorInterval time.Duration
	// EchoWorkerOutput copies worker stdout/stderr, prefixed with
	// "(pid=… node=…)", to this process's stderr (the embedded cluster
	// sets it so a driver sees its workers' prints).
	EchoWorkerOutput bool
	// EchoTo receives the echoed output (default os.Stderr); lines are
	// written whole, one Write each.
	EchoTo io.Writer
	// LogRotateBytes is the size at which a worker's .out or .err log file
	// is rotated (renamed to .1, the older ones to .2 … and the oldest
	// beyond LogRotateBackups removed). 0: DefaultLogRotateBytes (64 MiB);
	// negative: never rotated.
	LogRotateBytes int64
	// LogRotateBackups is how many rotated files of each worker log are
	// kept. 0: DefaultLogRotateBackups (5); negative: none (the file
	// starts over).
	LogRotateBackups int
	// LifelineOnly starts workers without Linux's Pdeathsig, so that the
	// parent-death pipe alone ends them when this daemon dies, as on
	// platforms without Pdeathsig (for tests of that path).
	LifelineOnly bool
	// ServePort is the port of the node's Serve HTTP proxy
	// (serveproxy.go; `raygo start --serve-port`): -1 runs none (the
	// DefaultConfig value), 0 a free port, else that port (Ray's default
	// http_options.port is 8000).
	ServePort int
	// ServeHost is the interface the Serve proxy listens on; empty means
	// DefaultServeHost (Ray's default http_options.host).
	ServeHost string
	// ServeGRPCPort is the port of the node's Serve gRPC proxy
	// (servegrpc.go; `raygo start --serve-grpc-port`), on ServeHost
	// beside the HTTP proxy, which it needs: -1 runs none (the
	// DefaultConfig value), 0 a free port, else that port (Ray's
	// grpc_options.port default is 9000).
	ServeGRPCPort int
}

// DefaultHeadTimeout is the head timeout when neither Config.HeadTimeout
// nor the control store says one.
const DefaultHeadTimeout = 5 * time.Second

// DefaultConfig returns defaults for everything but the addresses, token
// and resources.
func DefaultConfig() Config {
	return Config{
		ListenAddress:         "127.0.0.1:0",
		HeartbeatPeriod:       500 * time.Millisecond,
		WorkerRegisterTimeout: 30 * time.Second,
		MaxStartupFailures:    3,
		IdleWorkerTimeout:     time.Minute,
		MaxActorsPerProcess:   1000,
		MemoryUsageThreshold:  0.95,
		MemoryMonitorInterval: 250 * time.Millisecond,
		ServePort:             -1,
		ServeHost:             DefaultServeHost,
		ServeGRPCPort:         -1,
	}
}
