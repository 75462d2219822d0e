package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/internal/taskevents"
)

// startReadyTimeout bounds how long `raygo start` waits for the detached
// node process to come up.
const startReadyTimeout = 10 * time.Second

// defaultGCSPort is the head's default port (Ray's GCS uses 6379).
const defaultGCSPort = 6380

// startOptions holds the flags of `raygo start`.
type startOptions struct {
	head              bool
	address           string
	token             string
	host              string
	nodeIP            string // --node-ip-address; filled in by validate for a --host that is every interface
	port              int
	nodeTimeout       time.Duration
	taskEventsMax     int
	numCPUs           float64
	numGPUs           int
	memory            int64
	resources         string
	labels            string
	labelMap          map[string]string // labels, parsed by validate
	objectStoreMemory int64
	spillDir          string
	prefault          bool
	memoryThreshold   float64
	block             bool
	storage           string // --storage: the control store's storage (head only)
	storageNamespace  string
	dashboardHost     string   // --dashboard-host: the HTTP API's and dashboard's interface
	dashboardPort     int      // --dashboard-port (0: a free one; -1: none)
	allowOrigins      []string // --dashboard-allow-origin
	metricsOpen       bool     // --metrics-open
	mcpMutations      bool     // --mcp-allow-mutations
	dashboardPortSet  bool     // --dashboard-port given: a taken port is an error
	servePort         int      // --serve-port: the node's Serve HTTP proxy (-1: none)
	serveHost         string   // --serve-host
	serveGRPCPort     int      // --serve-grpc-port: the node's Serve gRPC proxy (-1: none)

	// Hidden flags passed by a detaching `raygo start` to its child.
	sessionDir string // the session the parent chose; also marks the child
	gpuIDs     string // comma-separated GPU ids, resolved by the parent
}

// isChild reports whether this process was started by a detaching
// `raygo start`, which already printed warnings and chose the session.
func (o *startOptions) isChild() bool { return o.sessionDir != "" }

// minStoreBytes is the smallest object store a node accepts.
const minStoreBytes = 1 << 20

// newStartCmd builds `raygo start`.
func newStartCmd() *cobra.Command {
	o := &startOptions{}
	cmd := &cobra.Command{
		Use:   "start (--head | --address HOST:PORT)",
		Short: "Start a head node or join a node to a cluster",
		Long: `Start a raygo node on this machine.

With --head it starts a new cluster: the control store and a node daemon. It
creates a session directory holding the cluster address and a fresh cluster
token (mode 0600), and points session_latest at it so that programs, 'raygo
status' and 'raygo stop' on this machine find the cluster.

With --address it joins an existing cluster as a worker node. The token comes
from --token, else RAYGO_TOKEN, else the local session when its address
matches.

The node runs in a background process logging to <session>/logs/ unless
--block keeps it in the foreground. Resources are detected (CPUs and memory
from the cgroup or the machine, GPUs with nvidia-smi) unless given by flags.`,
		Example: `  raygo start --head --num-cpus 8 --resources '{"TPU": 4}'
  raygo start --address 10.0.0.1:6380 --num-gpus 2
  raygo start --head --block`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStart(cmd.Context(), o, cmd.Flags(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

// addFlags registers the flags of `raygo start` on fs, bound to o.
func (o *startOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.head, "head", false, "start a new cluster's head node")
	fs.StringVar(&o.address, "address", "", "join the cluster whose head is at `HOST:PORT`")
	fs.StringVar(&o.token, "token", "", "cluster token to join with (default $RAYGO_TOKEN, else the local session's)")
	fs.StringVar(&o.host, "host", "127.0.0.1", "interface to listen on (0.0.0.0: every interface); other than loopback, traffic is not encrypted (default: --node-ip-address when given)")
	fs.StringVar(&o.nodeIP, "node-ip-address", "", "this machine's `IP` as other machines reach it: advertised for the node, its workers and drivers (default: the --host address; for --host 0.0.0.0, the address of the route to the head, or of this machine's default route)")
	fs.IntVar(&o.port, "port", defaultGCSPort, "head only: control store port (0 picks a free one)")
	fs.DurationVar(&o.nodeTimeout, "node-timeout", gcs.DefaultNodeTimeout, "head only: a node silent this long is dead (its heartbeats come every 500ms)")
	fs.IntVar(&o.taskEventsMax, "task-events-max", taskevents.DefaultMaxTasks, "head only: task attempts whose events the head keeps for the state API and timeline, `N` in 1..10000000 (the oldest finished go first)")
	fs.Float64Var(&o.numCPUs, "num-cpus", 0, "CPUs to offer (default: detected)")
	fs.IntVar(&o.numGPUs, "num-gpus", 0, "GPUs to offer, as ids 0..N-1 (default: detected)")
	fs.Int64Var(&o.memory, "memory", 0, "memory to offer, in `bytes` (default: detected)")
	fs.StringVar(&o.resources, "resources", "", `custom resources as a JSON object, e.g. '{"TPU": 4}'`)
	fs.StringVar(&o.labels, "labels", "", "node labels for label selectors, as `k=v,k2=v2` (keys and values as Kubernetes labels; raygo.io/ is reserved)")
	fs.Int64Var(&o.objectStoreMemory, "object-store-memory", 0, "shared-memory object store capacity in `bytes` (default: 30% of memory, capped by /dev/shm)")
	fs.StringVar(&o.spillDir, "spill-dir", "", "`directory` for objects spilled from a full store (default: the session's spill/)")
	fs.BoolVar(&o.prefault, "object-store-prefault", true, "populate the object store's first 1 GiB in the background at start, so first writes run at memory speed")
	fs.Float64Var(&o.memoryThreshold, "memory-usage-threshold", raylet.DefaultConfig().MemoryUsageThreshold, "fraction of node memory above which the memory monitor kills a worker (-1 disables)")
	fs.BoolVar(&o.block, "block", false, "run in the foreground until interrupted")
	fs.StringVar(&o.storage, "storage", "", "head only: keep the control store's state in `PATH` (a bbolt file) or redis://[:PASSWORD@]HOST:PORT[/DB], so that a head restarted with the same --storage and --port takes its cluster over (default: none; the cluster ends with its head)")
	fs.StringVar(&o.storageNamespace, "storage-namespace", node.DefaultStorageNamespace, "head only: the cluster's namespace in a Redis --storage shared by several clusters")
	fs.StringVar(&o.dashboardHost, "dashboard-host", "127.0.0.1", "head only: interface the HTTP API and dashboard listen on (other than loopback, traffic is not encrypted; every request still needs a token)")
	fs.IntVar(&o.dashboardPort, "dashboard-port", api.DefaultPort, "head only: port of the HTTP API and dashboard (0 picks a free one, -1 serves none); when the default is taken, a free one is used")
	fs.StringArrayVar(&o.allowOrigins, "dashboard-allow-origin", nil, "head only: a web `ORIGIN` (https://host:port) besides the dashboard's own that may call the HTTP API from a browser (repeatable)")
	fs.BoolVar(&o.metricsOpen, "metrics-open", false, "head only: serve /metrics without a token (everything else still needs one)")
	fs.BoolVar(&o.mcpMutations, "mcp-allow-mutations", false, "head only: offer /mcp's tools that change the cluster (submit, stop, delete jobs, kill actors); they still need a write token")
	fs.IntVar(&o.servePort, "serve-port", -1, "port of this node's Serve HTTP proxy, e.g. 8000 (0 picks a free one; -1 runs none)")
	fs.StringVar(&o.serveHost, "serve-host", raylet.DefaultServeHost, "interface the Serve HTTP proxy listens on (0.0.0.0: every interface)")
	fs.IntVar(&o.serveGRPCPort, "serve-grpc-port", -1, "port of this node's Serve gRPC proxy on --serve-host, e.g. 9000 (0 picks a free one; -1 runs none); needs --serve-port")
	fs.StringVar(&o.sessionDir, "session-dir", "", "session directory chosen by a detaching parent")
	fs.StringVar(&o.gpuIDs, "gpu-ids", "", "GPU ids resolved by a detaching parent")
	_ = fs.MarkHidden("session-dir")
	_ = fs.MarkHidden("gpu-ids")
}

// validate checks flag combinations; errors are usage errors.
func (o *startOptions) validate(fs *pflag.FlagSet) error {
	switch {
	case o.head && o.address != "":
		return usageErrorf("--head and --address cannot be used together")
	case !o.head && o.address == "":
		return usageErrorf("start needs --head (to start a new cluster) or --address HOST:PORT (to join one)")
	case o.head && o.token != "":
		return usageErrorf("--token is for joining a cluster with --address; a head makes a new token")
	case !o.head && changed(fs, "port"):
		return usageErrorf("--port is for --head; a joining node picks a free port")
	case o.port < 0 || o.port > 65535:
		return usageErrorf("--port must be in 0..65535, got %d", o.port)
	case !o.head && changed(fs, "node-timeout"):
		return usageErrorf("--node-timeout is for --head: the control store decides when a node is dead")
	case o.nodeTimeout < time.Second || o.nodeTimeout > time.Hour:
		return usageErrorf("--node-timeout must be between 1s and 1h (heartbeats come every 500ms), got %s", o.nodeTimeout)
	case !o.head && changed(fs, "task-events-max"):
		return usageErrorf("--task-events-max is for --head: the head keeps the task events")
	case o.taskEventsMax < 1 || o.taskEventsMax > maxTaskEventsFlag:
		return usageErrorf("--task-events-max must be between 1 and %d (each attempt kept takes about 300 bytes), got %d", maxTaskEventsFlag, o.taskEventsMax)
	case o.host == "":
		return usageErrorf("--host must not be empty")
	case !o.head && (changed(fs, "storage") || changed(fs, "storage-namespace")):
		return usageErrorf("--storage is for --head: the control store keeps the cluster's state")
	case !o.head && (changed(fs, "dashboard-host") || changed(fs, "dashboard-port") || changed(fs, "dashboard-allow-origin") || changed(fs, "metrics-open") || changed(fs, "mcp-allow-mutations")):
		return usageErrorf("--dashboard-*, --metrics-open and --mcp-allow-mutations are for --head: the head serves the HTTP API and dashboard")
	case o.dashboardPort < -1 || o.dashboardPort > 65535:
		return usageErrorf("--dashboard-port must be in 0..65535 (or -1 for none), got %d", o.dashboardPort)
	case o.servePort < -1 || o.servePort > 65535:
		return usageErrorf("--serve-port must be in 0..65535 (or -1 for none), got %d", o.servePort)
	case o.serveGRPCPort < -1 || o.serveGRPCPort > 65535:
		return usageErrorf("--serve-grpc-port must be in 0..65535 (or -1 for none), got %d", o.serveGRPCPort)
	case o.serveGRPCPort >= 0 && o.servePort < 0:
		return usageErrorf("--serve-grpc-port needs --serve-port too: the gRPC proxy runs beside the HTTP proxy")
	case o.serveHost == "":
		return usageErrorf("--serve-host must not be empty")
	case o.storage != "" && o.head && o.port == 0:
		return usageErrorf("--storage needs a fixed --port: nodes and drivers reconnect to a restarted head on the same address")
	}
	o.dashboardPortSet = changed(fs, "dashboard-port")
	if o.storage != "" && !strings.Contains(o.storage, "://") {
		abs, err := filepath.Abs(o.storage)
		if err != nil {
			return usageErrorf("--storage %q: %v", o.storage, err)
		}
		o.storage = abs
	} else if o.storage != "" && !strings.HasPrefix(o.storage, "redis://") && !strings.HasPrefix(o.storage, "rediss://") {
		return usageErrorf("--storage %q: want a file path or redis://HOST:PORT", o.storage)
	}
	if !o.head {
		if _, _, err := net.SplitHostPort(o.address); err != nil {
			return usageErrorf("--address %q: want HOST:PORT", o.address)
		}
	}
	if err := o.resolveNodeIP(fs); err != nil {
		return err
	}
	labels, err := scheduler.ParseLabels(o.labels)
	if err != nil {
		return usageErrorf("--labels: %v", err)
	}
	o.labelMap = labels
	return nil
}

// resolveNodeIP checks --node-ip-address, listens there when --host is not
// given, and finds the address to advertise for a --host of every
// interface (where nobody can dial what is listened on).
func (o *startOptions) resolveNodeIP(fs *pflag.FlagSet) error {
	if o.nodeIP != "" {
		if ip := net.ParseIP(o.nodeIP); ip == nil || ip.IsUnspecified() {
			return usageErrorf("--node-ip-address %q: want this machine's IP address as other machines reach it", o.nodeIP)
		}
		if !changed(fs, "host") {
			o.host = o.nodeIP
		}
		return nil
	}
	if ip := net.ParseIP(strings.Trim(o.host, "[]")); ip == nil || !ip.IsUnspecified() {
		return nil // a specific address: it is advertised as it is
	}
	ip, err := detectNodeIP(o.head, o.address)
	if err != nil {
		return usageErrorf("--host %s listens on every interface, and %v; pass --node-ip-address with the address other machines reach this one at", o.host, err)
	}
	o.nodeIP = ip
	return nil
}

// detectNodeIP is the address this machine is reached at: that of its
// route to the head (a joining node), else of its default route, else its
// first non-loopback interface address.
func detectNodeIP(head bool, headAddr string) (string, error) {
	if !head {
		if ip, err := rpc.RoutableIP(headAddr); err == nil {
			return ip, nil
		}
	}
	// A documentation-only address (RFC 5737): the route lookup sends nothing.
	if ip, err := rpc.RoutableIP("192.0.2.1:9"); err == nil && !net.ParseIP(ip).IsLoopback() {
		return ip, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String(), nil
		}
	}
	return "", errors.New("this machine has no routable address")
}

// nodePlan is a node's resolved configuration.
type nodePlan struct {
	total      resources.Set // everything the node offers
	custom     resources.Set // the custom part of total
	gpuIDs     []string
	storeBytes int64
	warnings   []string
}

// planNode resolves the node's resources from the flags (isSet tells which
// were given) and, for what they leave out, from detect, which it calls
// only when needed. Errors are usage errors naming the flag.
func planNode(o *startOptions, isSet func(string) bool, detect func() resources.Detected) (nodePlan, error) {
	var p nodePlan
	if isSet("num-cpus") && (math.IsNaN(o.numCPUs) || math.IsInf(o.numCPUs, 0) || o.numCPUs < 0) {
		return p, usageErrorf("--num-cpus must be a number ≥ 0, got %v", o.numCPUs)
	}
	if isSet("num-gpus") && o.numGPUs < 0 {
		return p, usageErrorf("--num-gpus must be ≥ 0, got %d", o.numGPUs)
	}
	if isSet("memory") && o.memory < 0 {
		return p, usageErrorf("--memory must be ≥ 0 bytes, got %d", o.memory)
	}
	if isSet("object-store-memory") && o.objectStoreMemory < minStoreBytes {
		return p, usageErrorf("--object-store-memory must be ≥ %d bytes (1 MiB), got %d", minStoreBytes, o.objectStoreMemory)
	}
	if t := o.memoryThreshold; t != -1 && !(t > 0 && t <= 1) {
		return p, usageErrorf("--memory-usage-threshold must be in (0, 1], or -1 to disable, got %v", t)
	}
	custom, err := resources.ParseJSON(o.resources)
	if err != nil {
		return p, usageErrorf("invalid --resources: %w", err)
	}
	var gpuIDs []string
	if isSet("gpu-ids") {
		for _, id := range strings.Split(o.gpuIDs, ",") {
			if id = strings.TrimSpace(id); id != "" {
				gpuIDs = append(gpuIDs, id)
			}
		}
		if isSet("num-gpus") && len(gpuIDs) != o.numGPUs {
			return p, usageErrorf("--gpu-ids names %d GPUs but --num-gpus is %d", len(gpuIDs), o.numGPUs)
		}
	}

	var det resources.Detected
	if !isSet("num-cpus") || !isSet("memory") || (!isSet("num-gpus") && !isSet("gpu-ids")) {
		det = detect()
		for _, w := range det.Warnings {
			p.warnings = append(p.warnings, w.Error())
		}
	}
	cpus, mem := det.CPUs, det.MemoryBytes
	if isSet("num-cpus") {
		cpus = o.numCPUs
	}
	if isSet("memory") {
		mem = o.memory
	}
	switch {
	case isSet("gpu-ids"):
	case isSet("num-gpus"):
		for i := range o.numGPUs {
			gpuIDs = append(gpuIDs, strconv.Itoa(i))
		}
	default:
		for _, g := range det.GPUs {
			gpuIDs = append(gpuIDs, strconv.Itoa(g.Index))
		}
	}

	total := custom.Clone()
	total[resources.CPU] = cpus
	total[resources.GPU] = float64(len(gpuIDs))
	if mem > 0 {
		total[resources.Memory] = float64(mem)
	}
	if err := resources.ValidateTotal(total); err != nil {
		return p, usageErrorf("invalid node resources: %w", err)
	}
	p.total, p.custom, p.gpuIDs, p.storeBytes = total, custom, gpuIDs, o.objectStoreMemory
	if p.storeBytes == 0 {
		if p.storeBytes, err = objstore.DefaultCapacity(); err != nil {
			return p, usageErrorf("%v", err)
		}
	}
	return p, nil
}

// shareStore sizes the object store of a node joining a cluster that
// already has nodes on this machine: the machine's budget (plan.storeBytes,
// objstore.DefaultCapacity: 30% of its memory, capped by /dev/shm) less
// what those nodes' stores hold, but at least an eighth of the budget (and
// minStoreBytes), so that several nodes on one machine do not each claim
// 30% of it. A note saying so joins plan.warnings.
func shareStore(plan *nodePlan, host string, peers []*pb.NodeInfo) {
	budget := plan.storeBytes
	var held int64
	n := 0
	for _, p := range peers {
		if p.GetState() == nodeAlive && p.GetHostId() == host && host != "" {
			held += p.GetObjectStoreCapacity()
			n++
		}
	}
	if n == 0 {
		return
	}
	share := max(budget-held, budget/8, minStoreBytes) &^ (objstore.PageSize - 1)
	if share >= budget {
		return
	}
	plan.storeBytes = share
	plan.warnings = append(plan.warnings, fmt.Sprintf(
		"object store sized to %s: %s on this machine already hold %s of its %s default budget (pass --object-store-memory to choose)",
		humanBytes(float64(share)), plural(int64(n), "other node"), humanBytes(float64(held)), humanBytes(float64(budget))))
}

// runStart implements `raygo start`.
func runStart(ctx context.Context, o *startOptions, fs *pflag.FlagSet, stdout, stderr io.Writer) error {
	if err := o.validate(fs); err != nil {
		return err
	}
	if err := raylet.Supported(); err != nil {
		return fmt.Errorf("raygo start: %w", err)
	}
	if _, err := taskevents.RateFromEnv(); err != nil { // the node's workers would each fail on it
		return fmt.Errorf("raygo start: %w", err)
	}
	plan, err := planNode(o, func(name string) bool { return changed(fs, name) }, resources.Detect)
	if err != nil {
		return err
	}
	var cluster clusterRef
	if !o.head {
		cluster.address, cluster.addressFrom = o.address, "--address"
		if cluster.token, cluster.tokenFrom, err = resolveToken(o.token, o.address); err != nil {
			return err
		}
		// Fail here, on the user's terminal, rather than in a detached log.
		peers, err := getNodes(ctx, cluster, false)
		if err != nil {
			return err
		}
		if !changed(fs, "object-store-memory") && !o.isChild() {
			shareStore(&plan, resources.DetectHost().ID, peers)
		}
	}
	if !o.isChild() {
		printStartWarnings(stderr, o, plan)
	}
	// In the foreground, a signal stops the node; while detaching, it kills
	// the half-started child.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if !o.block {
		return startDetached(ctx, o, plan, cluster, stdout)
	}
	if o.head {
		return runHead(ctx, stop, o, plan, stdout)
	}
	return runWorkerNode(ctx, stop, o, plan, cluster, stdout)
}

// printStartWarnings prints what the user should know before the node starts.
func printStartWarnings(w io.Writer, o *startOptions, plan nodePlan) {
	for _, msg := range plan.warnings {
		fmt.Fprintf(w, "raygo: warning: %s\n", msg)
	}
	listen := net.JoinHostPort(o.host, "0")
	if !rpc.IsLoopback(listen) {
		fmt.Fprintf(w, "raygo: warning: listening on %s, beyond loopback: cluster traffic is not encrypted (every call still needs the cluster token)\n", o.host)
	}
	if !o.head && !rpc.IsLoopback(o.address) && rpc.IsLoopback(listen) {
		fmt.Fprintf(w, "raygo: warning: this node listens on %s only, so nodes on other machines cannot reach it; pass --node-ip-address with this machine's address\n", o.host)
	}
	if o.head || !isLocalSession(o.address) {
		if d, err := session.Latest(); err == nil && len(liveNodes(d)) > 0 {
			fmt.Fprintf(w, "raygo: warning: a raygo cluster is already running on this machine (session %s); `raygo status` and `raygo stop` will address the new one first\n", d)
		}
	}
}

// localSession returns session_latest when it belongs to the cluster at
// addr, so that a node joining a cluster started on this machine shares the
// head's session (and `raygo stop` stops both).
func localSession(addr string) (session.Dir, bool) {
	d, err := session.Latest()
	if err != nil {
		return "", false
	}
	if a, err := d.ReadFile(addressFile); err != nil || !sameAddress(a, addr) {
		return "", false
	}
	return d, true
}

func isLocalSession(addr string) bool {
	_, ok := localSession(addr)
	return ok
}

// startDetached re-executes raygo as `raygo start ... --block` in a new
// process session with its output in <session>/logs/, waits until the child
// records its pid in the session (it does so once its node is up), and
// prints how to use the cluster. A child that exits or stalls first fails
// the start with the tail of its log.
func startDetached(ctx context.Context, o *startOptions, plan nodePlan, cluster clusterRef, stdout io.Writer) error {
	var (
		sess    session.Dir
		created bool
		logName = "head.log"
		err     error
	)
	if !o.head {
		logName = fmt.Sprintf("node_%d.log", os.Getpid())
		sess, _ = localSession(o.address)
	}
	if sess == "" {
		if sess, err = session.New(); err != nil {
			return err
		}
		created = true
	}
	cleanup := func() {
		if created {
			_ = sess.Remove()
		}
	}
	if err := os.MkdirAll(sess.Path(logsDir), 0o700); err != nil {
		cleanup()
		return fmt.Errorf("create log directory: %w", err)
	}
	logPath := sess.Path(logsDir, logName)
	exe, err := os.Executable()
	if err != nil {
		cleanup()
		return fmt.Errorf("find own executable: %w", err)
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		cleanup()
		return fmt.Errorf("open log: %w", err)
	}
	child := exec.Command(exe, childArgs(o, plan, sess)...)
	child.Stdout, child.Stderr = logFile, logFile
	child.Env = os.Environ()
	if !o.head {
		// Through the environment, not argv, where any local user could read it.
		child.Env = append(child.Env, envToken+"="+cluster.token)
	}
	// A session of its own: the node outlives this terminal and its signals.
	proc.Detach(child)
	err = child.Start()
	logFile.Close()
	if err != nil {
		cleanup()
		return fmt.Errorf("start node process: %w", err)
	}
	pid := child.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	fail := func(format string, a ...any) error {
		msg := fmt.Sprintf(format, a...)
		tail := logTail(logPath, 20)
		cleanup()
		return fmt.Errorf("%s; last lines of %s:\n%s", msg, logPath, tail)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(startReadyTimeout)
	defer deadline.Stop()
	for !hasPID(sess, pid) {
		select {
		case err := <-exited:
			return fail("the node process exited during startup (%v)", err)
		case <-deadline.C:
			_ = child.Process.Kill()
			<-exited
			return fail("the node process did not come up within %s and was killed", startReadyTimeout)
		case <-ctx.Done():
			_ = child.Process.Kill()
			<-exited
			cleanup()
			return errors.New("interrupted; the node process was killed")
		case <-tick.C:
		}
	}

	if o.head {
		addr, err := sess.ReadFile(addressFile)
		if err != nil {
			return fmt.Errorf("read cluster address: %w", err)
		}
		printHeadInfo(stdout, o, addr, sess, pid, logPath, plan)
		return nil
	}
	printNodeInfo(stdout, o.address, sess, pid, logPath, plan, !created)
	return nil
}

// childArgs are the arguments of the detached child: the parent's choices,
// fully resolved, plus --block. The token is not among them (see
// startDetached).
func childArgs(o *startOptions, plan nodePlan, sess session.Dir) []string {
	args := []string{"start", "--block", "--session-dir=" + string(sess), "--host=" + o.host,
		"--serve-port=" + strconv.Itoa(o.servePort), "--serve-host=" + o.serveHost, "--serve-grpc-port=" + strconv.Itoa(o.serveGRPCPort)}
	if o.nodeIP != "" {
		args = append(args, "--node-ip-address="+o.nodeIP)
	}
	if o.head {
		args = append(args, "--head", "--port="+strconv.Itoa(o.port), "--node-timeout="+o.nodeTimeout.String(),
			"--task-events-max="+strconv.Itoa(o.taskEventsMax))
		if o.storage != "" {
			args = append(args, "--storage="+o.storage, "--storage-namespace="+o.storageNamespace)
		}
		args = append(args, "--dashboard-host="+o.dashboardHost)
		if o.dashboardPortSet {
			args = append(args, "--dashboard-port="+strconv.Itoa(o.dashboardPort))
		}
		for _, a := range o.allowOrigins {
			args = append(args, "--dashboard-allow-origin="+a)
		}
		if o.metricsOpen {
			args = append(args, "--metrics-open")
		}
		if o.mcpMutations {
			args = append(args, "--mcp-allow-mutations")
		}
	} else {
		args = append(args, "--address="+o.address)
	}
	args = append(args,
		"--num-cpus="+strconv.FormatFloat(plan.total[resources.CPU], 'g', -1, 64),
		"--num-gpus="+strconv.Itoa(len(plan.gpuIDs)),
		"--memory="+strconv.FormatInt(int64(plan.total[resources.Memory]), 10),
		"--object-store-memory="+strconv.FormatInt(plan.storeBytes, 10),
		"--object-store-prefault="+strconv.FormatBool(o.prefault),
		"--memory-usage-threshold="+strconv.FormatFloat(o.memoryThreshold, 'g', -1, 64),
	)
	if o.spillDir != "" {
		args = append(args, "--spill-dir="+o.spillDir)
	}
	if o.labels != "" {
		args = append(args, "--labels="+o.labels)
	}
	if len(plan.gpuIDs) > 0 {
		args = append(args, "--gpu-ids="+strings.Join(plan.gpuIDs, ","))
	}
	if len(plan.custom) > 0 {
		b, _ := json.Marshal(plan.custom) // a map of string to finite float64 always encodes
		args = append(args, "--resources="+string(b))
	}
	return args
}

// rayletConfig is the node daemon's configuration for plan.
func rayletConfig(o *startOptions, plan nodePlan, sess session.Dir) raylet.Config {
	rc := raylet.DefaultConfig()
	rc.Resources = plan.total
	rc.GPUIDs = plan.gpuIDs
	rc.SessionDir = string(sess)
	rc.ListenAddress = net.JoinHostPort(o.host, "0")
	rc.AdvertiseHost = o.nodeIP
	rc.ObjectStoreBytes = plan.storeBytes
	rc.SpillDir = o.spillDir
	rc.PrefaultObjectStore = o.prefault
	rc.MemoryUsageThreshold = o.memoryThreshold
	rc.Labels = o.labelMap
	rc.ServePort, rc.ServeHost = o.servePort, o.serveHost
	rc.ServeGRPCPort = o.serveGRPCPort
	return rc
}

// runHead runs a head node in the foreground until ctx is done (a signal),
// then stops it, killing its workers, and removes the session's address
// file; `raygo stop` removes the rest. stopSignals restores the default
// signal handling, so that a second Ctrl-C kills at once.
func runHead(ctx context.Context, stopSignals func(), o *startOptions, plan nodePlan, stdout io.Writer) error {
	sess, created, err := openSession(o.sessionDir)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		if created {
			_ = sess.Remove()
		}
		return err
	}
	if err := os.MkdirAll(sess.Path(logsDir), 0o700); err != nil {
		return fail(fmt.Errorf("create log directory: %w", err))
	}
	hc := node.HeadConfig{
		GCSAddress:    net.JoinHostPort(o.host, strconv.Itoa(o.port)),
		AdvertiseHost: o.nodeIP,
		GCS:           headGCSConfig(o),
		Raylet:        rayletConfig(o, plan, sess),
		Token:         session.NewToken(),
		Storage:       o.storage, StorageNamespace: o.storageNamespace,
		API: node.APIConfig{Disabled: o.dashboardPort < 0, Address: net.JoinHostPort(o.dashboardHost, strconv.Itoa(o.dashboardPort)),
			AllowedOrigins: o.allowOrigins, MetricsOpen: o.metricsOpen, MCPAllowMutations: o.mcpMutations},
		Version: Version,
	}
	head, err := node.StartHead(hc)
	if err != nil && o.dashboardPort == api.DefaultPort && !o.dashboardPortSet && errors.Is(err, syscall.EADDRINUSE) {
		// The default port is taken (another cluster's dashboard): use a
		// free one rather than fail; the URL printed says which.
		fmt.Fprintf(stdout, "raygo: warning: port %d is taken; the dashboard gets a free port\n", api.DefaultPort)
		hc.API.Address = net.JoinHostPort(o.dashboardHost, "0")
		head, err = node.StartHead(hc)
	}
	if err != nil {
		return fail(fmt.Errorf("start head node: %w", err))
	}
	// The token a restarted head found in its storage, else the new one.
	if err := sess.WriteFile(tokenFile, head.Token()); err != nil {
		head.Stop()
		return fail(fmt.Errorf("write token file: %w", err))
	}
	addr := head.GCSAddress()
	// In this order: the pid is what a detaching parent waits for, and
	// session_latest must never point at a session without an address.
	err = sess.WriteFile(addressFile, addr)
	if err == nil && head.APIURL() != "" {
		err = sess.WriteFile(apiAddressFile, head.APIURL())
	}
	if err == nil {
		err = sess.MarkLatest()
	}
	if err == nil {
		err = addPID(sess, os.Getpid())
	}
	if err != nil {
		head.Stop()
		return fail(fmt.Errorf("record the head in %s: %w", sess, err))
	}
	printHeadInfo(stdout, o, addr, sess, os.Getpid(), "", plan)
	fmt.Fprintf(stdout, "\nRunning in the foreground (node %s); stop with Ctrl-C or `raygo stop`.\n", head.Raylet().NodeID().Short())

	<-ctx.Done()
	stopSignals()
	fmt.Fprintln(stdout, "Stopping the head node...")
	head.Stop()
	_ = os.Remove(sess.Path(addressFile))
	_ = removePID(sess, os.Getpid())
	fmt.Fprintln(stdout, "Stopped.")
	return nil
}

// runWorkerNode runs a node daemon that joins the cluster in the
// foreground until ctx is done, then stops it. It shares the head's session
// when the head runs on this machine; otherwise it has its own, holding the
// cluster's address and token for local programs and `raygo stop`.
func runWorkerNode(ctx context.Context, stopSignals func(), o *startOptions, plan nodePlan, cluster clusterRef, stdout io.Writer) error {
	sess, created := session.Dir(o.sessionDir), false
	if sess == "" {
		sess, _ = localSession(o.address)
	}
	if sess == "" {
		var err error
		if sess, err = session.New(); err != nil {
			return err
		}
		created = true
	}
	fail := func(err error) error {
		if created {
			_ = sess.Remove()
		}
		return err
	}
	addr, _ := sess.ReadFile(addressFile)
	own := addr == "" || !sameAddress(addr, o.address) // not the session of a local head
	if err := os.MkdirAll(sess.Path(logsDir), 0o700); err != nil {
		return fail(fmt.Errorf("create log directory: %w", err))
	}
	if own {
		if err := errors.Join(sess.WriteFile(tokenFile, cluster.token), sess.WriteFile(addressFile, o.address)); err != nil {
			return fail(fmt.Errorf("write session files: %w", err))
		}
	}
	rc := rayletConfig(o, plan, sess)
	rc.GCSAddress, rc.Token = o.address, cluster.token
	r, err := raylet.Start(rc)
	if err != nil {
		if own {
			_ = os.Remove(sess.Path(addressFile))
		}
		return fail(fmt.Errorf("start node: %w", err))
	}
	if own {
		err = sess.MarkLatest()
	}
	if err == nil {
		err = addPID(sess, os.Getpid())
	}
	if err != nil {
		r.Stop()
		return fail(fmt.Errorf("record the node in %s: %w", sess, err))
	}
	printNodeInfo(stdout, o.address, sess, os.Getpid(), "", plan, !own)
	fmt.Fprintf(stdout, "\nRunning in the foreground (node %s at %s); stop with Ctrl-C or `raygo stop`.\n", r.NodeID().Short(), r.Address())

	select {
	case <-ctx.Done():
	case <-r.Done(): // declared dead by the control store, or its head is gone: it has stopped its workers
	}
	stopSignals()
	dead := r.Err()
	if dead == nil {
		fmt.Fprintln(stdout, "Stopping the node...")
	}
	r.Stop()
	if own {
		_ = os.Remove(sess.Path(addressFile))
	}
	_ = removePID(sess, os.Getpid())
	if errors.Is(dead, errs.ErrHeadLost) {
		return fmt.Errorf("node %s stopped its workers and exits: %w (start a head again, then this node with `raygo start --address`)", r.NodeID().Short(), dead)
	}
	if dead != nil {
		// As Ray's raylet does, exit rather than carry on under an id the
		// cluster has written off; a new start joins under a new id.
		return fmt.Errorf("node %s stopped its workers and exits: %w (run `raygo start --address %s` again to rejoin as a new node)", r.NodeID().Short(), dead, o.address)
	}
	fmt.Fprintln(stdout, "Stopped.")
	return nil
}

// openSession returns the session at dir, or a new one when dir is empty
// (created reports which).
func openSession(dir string) (d session.Dir, created bool, err error) {
	if dir == "" {
		d, err = session.New()
		return d, err == nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return "", false, fmt.Errorf("session directory %s: not a directory", dir)
	}
	return session.Dir(dir), false, nil
}

// printHeadInfo tells the user where the new cluster is and how to use it.
// logPath is empty for a foreground head.
func printHeadInfo(w io.Writer, o *startOptions, addr string, sess session.Dir, pid int, logPath string, plan nodePlan) {
	fmt.Fprintf(w, "Started a raygo head node (pid %d).\n\n", pid)
	fmt.Fprintf(w, "  Cluster address:  %s\n", addr)
	fmt.Fprintf(w, "  Token file:       %s (mode 0600)\n", sess.Path(tokenFile))
	if url, err := sess.ReadFile(apiAddressFile); err == nil && url != "" {
		fmt.Fprintf(w, "  Dashboard:        %s (log in with the token: raygo token)\n", url)
	}
	fmt.Fprintf(w, "  Session:          %s\n", sess)
	if logPath != "" {
		fmt.Fprintf(w, "  Log:              %s\n", logPath)
	}
	fmt.Fprintf(w, "  Resources:        %v\n", plan.total)
	fmt.Fprintf(w, "\nRun a Go program on this cluster (on this machine it finds the token through\n%s):\n", session.LatestLink())
	fmt.Fprintf(w, "  RAYGO_ADDRESS=%s go run ./yourprogram\n", addr)
	if rpc.IsLoopback(addr) {
		fmt.Fprintf(w, "\nTo add nodes on other machines, restart with --node-ip-address set to this machine's IP\n(or --host 0.0.0.0 to listen on every interface).\n")
	} else {
		fmt.Fprintf(w, "\nAdd a node from another machine:\n")
		fmt.Fprintf(w, "  RAYGO_TOKEN=<contents of the token file> raygo start --address %s\n", addr)
	}
	fmt.Fprintf(w, "\nSee the cluster:  raygo status\n")
	fmt.Fprintf(w, "Stop it:          raygo stop\n")
}

// printNodeInfo tells the user that a node joined the cluster at addr.
// shared reports whether the node joined the session of a head on this
// machine, so that `raygo stop` stops both.
func printNodeInfo(w io.Writer, addr string, sess session.Dir, pid int, logPath string, plan nodePlan, shared bool) {
	fmt.Fprintf(w, "Started a raygo node (pid %d) in the cluster at %s.\n\n", pid, addr)
	fmt.Fprintf(w, "  Session:    %s\n", sess)
	if logPath != "" {
		fmt.Fprintf(w, "  Log:        %s\n", logPath)
	}
	fmt.Fprintf(w, "  Resources:  %v\n", plan.total)
	fmt.Fprintf(w, "\nSee the cluster:  raygo status --address %s\n", addr)
	if shared {
		fmt.Fprintf(w, "Stop it:          raygo stop (stops the local head too)\n")
	} else {
		fmt.Fprintf(w, "Stop this node:   raygo stop\n")
	}
}

// headGCSConfig is the control store's config for the head's flags.
func headGCSConfig(o *startOptions) gcs.Config {
	c := gcs.DefaultConfig()
	c.NodeTimeout = o.nodeTimeout
	c.MaxTaskEvents = o.taskEventsMax
	return c
}

// maxTaskEventsFlag bounds --task-events-max: ten million attempts take
// about 3 GiB of the head's memory.
const maxTaskEventsFlag = 10_000_000
