package mcphost

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
)

// Replica supervision (docs/mcp-hosting.md).
const (
	// StartTimeout bounds a replica's start: its process starting and
	// answering initialize and a first ping (`npx -y` may download the
	// package first).
	StartTimeout = 2 * time.Minute
	// HealthPeriod is how often a ready replica is pinged; a ping that
	// fails (or takes longer than HealthPeriod) has it replaced.
	HealthPeriod = 5 * time.Second
	// placeRetry is how often a replica that no node can take now is
	// placed again.
	placeRetry = 500 * time.Millisecond
)

// errBusy: every node tried was busy or going; the slot waits and places
// the replica again.
var errBusy = errors.New("no node could start the replica now: waiting")

// slot is one of a hosted server's replicas: it starts a replica,
// watches it, and replaces it when it dies, for as long as the server is
// hosted (run). Its state is guarded by mu; the gateway reads the ready
// client session through current.
type slot struct {
	h     *hosted
	index int

	mu        sync.Mutex
	id        string // the replica now (or last) started
	node      string // its node's id
	pid       int
	logFile   string
	state     string
	message   string // why it is pending, or its last failure
	since     time.Time
	restarts  int
	failures  int // in a row
	cs        *mcp.ClientSession
	sessions  int // gateway sessions routed here
	inFlight  int
	readyAt   time.Time
	replaced  chan struct{} // closed when the ready replica goes
	lastStart time.Duration // how long its last start took
}

func (sl *slot) set(state, msg string) {
	sl.mu.Lock()
	sl.state, sl.message, sl.since = state, msg, time.Now()
	sl.mu.Unlock()
}

// current is the slot's ready client session and a channel closed when
// that replica goes (nil, nil when none is ready).
func (sl *slot) current() (*mcp.ClientSession, chan struct{}) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.state != StateReady {
		return nil, nil
	}
	return sl.cs, sl.replaced
}

// run keeps a replica running in the slot until ctx ends.
func (sl *slot) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := sl.once(ctx)
		if ctx.Err() != nil {
			return
		}
		sl.mu.Lock()
		if !sl.readyAt.IsZero() && time.Since(sl.readyAt) >= StableAfter {
			sl.failures = 0
		}
		sl.failures++
		sl.restarts++
		delay := restartDelay(sl.failures)
		sl.state, sl.message, sl.since, sl.cs, sl.readyAt = StateBackoff, err.Error(), time.Now(), nil, time.Time{}
		sl.mu.Unlock()
		sl.h.log.Warn("mcp: hosted replica failed", "replica", sl.id, "err", err, "restart_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// once places, starts and watches one replica; it returns why it ended.
func (sl *slot) once(ctx context.Context) error {
	h := sl.h
	began := time.Now()
	// Place: wait until a node can take it.
	var (
		proc *Process
		pctx context.Context
		stop context.CancelFunc
	)
	for proc == nil {
		nodes, err := h.m.launcher.Nodes(ctx)
		if err != nil {
			return fmt.Errorf("list the cluster's nodes: %w", err)
		}
		kind, order, msg := h.place(sl, nodes)
		if kind != placeOn {
			sl.set(StatePending, msg)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(placeRetry):
			}
			continue
		}
		if proc, pctx, stop, err = sl.launch(ctx, order); errors.Is(err, errBusy) {
			sl.set(StatePending, err.Error())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(placeRetry):
			}
		} else if err != nil {
			return err
		}
	}
	defer func() {
		stop()
		<-proc.Done
	}()

	// Connect: initialize, then a first ping.
	client := mcp.NewClient(&mcp.Implementation{Name: "raygo-mcp-gateway", Version: h.m.cfg.Version}, &mcp.ClientOptions{
		ProgressNotificationHandler: h.progress,
		Logger:                      h.sdkLog,
	})
	sctx, cancel := context.WithTimeout(pctx, StartTimeout)
	cs, err := client.Connect(sctx, &mcp.IOTransport{Reader: proc.Stdout, Writer: proc.Stdin}, nil)
	if err == nil {
		err = cs.Ping(sctx, nil)
		if err != nil {
			_ = cs.Close()
		}
	}
	cancel()
	if err != nil {
		return sl.ended(proc, fmt.Errorf("initialize: %w", err))
	}
	replaced := make(chan struct{})
	sl.mu.Lock()
	sl.cs, sl.replaced, sl.state, sl.message, sl.since, sl.readyAt = cs, replaced, StateReady, "", time.Now(), time.Now()
	sl.lastStart = time.Since(began)
	sl.mu.Unlock()
	h.replicaReady(cs.InitializeResult())
	defer close(replaced)
	defer cs.Close()

	// Watch: pings, the process's end, the slot's end.
	closed := make(chan struct{})
	go func() { _ = cs.Wait(); close(closed) }() // ends with cs.Close (deferred) at the latest
	tick := time.NewTicker(HealthPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-proc.Done:
			return sl.ended(proc, nil)
		case <-closed:
			return sl.ended(proc, errors.New("the MCP session with the replica closed"))
		case <-tick.C:
			hctx, cancel := context.WithTimeout(ctx, HealthPeriod)
			err := cs.Ping(hctx, nil)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("health check: ping: %w (the replica is stopped and replaced)", err)
			}
		}
	}
}

// place decides where sl's replica goes and, when it goes somewhere,
// marks sl as starting there before another slot decides (so replicas
// started together spread).
func (h *hosted) place(sl *slot, nodes []scheduler.Node) (placeKind, []scheduler.Node, string) {
	h.placeMu.Lock()
	defer h.placeMu.Unlock()
	kind, order, msg := placeReplica(h.spec.ResourceSet(), nodes, h.replicasByNode(sl))
	if kind == placeOn {
		sl.mu.Lock()
		sl.node, sl.state, sl.message, sl.since = order[0].ID, StateStarting, "", time.Now()
		sl.mu.Unlock()
	}
	return kind, order, msg
}

// launch starts a replica on the first of order that takes it; the
// replica runs until stop is called.
func (sl *slot) launch(ctx context.Context, order []scheduler.Node) (*Process, context.Context, context.CancelFunc, error) {
	h := sl.h
	id := newReplicaID(sl.index)
	start := &pb.ReplicaStart{Kind: "mcp", Server: h.spec.Name, ReplicaId: id, Argv: h.spec.Command,
		RuntimeEnv: h.spec.RuntimeEnv().Proto(), Resources: h.spec.ResourceSet(), ClusterAddress: h.m.cfg.ClusterAddress}
	var lastErr error
	busy := 0
	for _, n := range order {
		pctx, stop := context.WithCancel(ctx)
		p, err := h.m.launcher.Start(pctx, n, start)
		if err != nil {
			stop()
			if errors.Is(err, errs.ErrUnavailable) || rpc.IsUnavailable(err) {
				busy++ // its resources were taken since the node reported, or it is going
			}
			lastErr = err
			continue
		}
		sl.mu.Lock()
		sl.id, sl.node, sl.pid, sl.logFile = id, n.ID, p.Pid, p.LogFile
		sl.state, sl.message, sl.since = StateStarting, "", time.Now()
		sl.mu.Unlock()
		return p, pctx, stop, nil
	}
	if busy == len(order) {
		return nil, nil, nil, fmt.Errorf("%w (%v)", errBusy, lastErr)
	}
	return nil, nil, nil, fmt.Errorf("start a replica: %w", lastErr)
}

// ended says how a replica ended: its process's end when known (waiting
// briefly for it), else why.
func (sl *slot) ended(proc *Process, why error) error {
	select {
	case <-proc.Done:
	case <-time.After(time.Second):
	}
	if err := proc.Err(); err != nil {
		if why != nil {
			return fmt.Errorf("%v: %w", why, err)
		}
		return err
	}
	if why == nil {
		why = errors.New("the replica ended")
	}
	return why
}

// status is the slot as ReplicaStatus.
func (sl *slot) status() ReplicaStatus {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	r := ReplicaStatus{Index: sl.index, ID: sl.id, State: sl.state, Message: sl.message, Since: sl.since,
		Restarts: sl.restarts, Pid: sl.pid, LogFile: sl.logFile, Sessions: sl.sessions, InFlight: sl.inFlight}
	if sl.node != "" {
		r.NodeID = sl.node
	}
	if sl.state == "" {
		r.State = StatePending
	}
	return r
}

// shortNode is a node id as messages show it.
func shortNode(id string) string { return ids.ShortString(id) }
