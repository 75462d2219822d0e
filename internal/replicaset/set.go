package replicaset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/stopper"
)

// Slot states, as `raygo mcp list` (and Serve's status) show them.
const (
	StatePending  = "PENDING"  // waiting for a node with its resources
	StateStarting = "STARTING" // process started, not yet ready
	StateReady    = "READY"    // ready and passing its health checks
	StateBackoff  = "BACKOFF"  // failed; waiting before its next start
	StateDraining = "DRAINING" // being stopped for good (Drain, Resize down)
)

// Kinds of replica (pb.ReplicaStart.kind).
const (
	KindMCP   = "mcp"   // stdin and stdout travel on the RunReplica stream
	KindServe = "serve" // listens on Process.HostPort
)

// Supervision defaults (docs/mcp-hosting.md), used where Config leaves
// a field zero.
const (
	// DefaultStartTimeout bounds a replica's start: its process starting
	// and its Probe's Ready (`npx -y` may download a package first).
	DefaultStartTimeout = 2 * time.Minute
	// DefaultHealthPeriod is how often a ready replica is checked; a
	// check that fails (or takes longer than the health timeout) has it
	// replaced. Ray Serve's health_check_period_s is 10 s and its
	// health_check_timeout_s 30 s; a Serve controller passes those.
	DefaultHealthPeriod = 5 * time.Second
	// MaxSlots bounds a set's size (New, Resize).
	MaxSlots = 1024
	// placeRetry is how often a replica that no node can take now is
	// placed again.
	placeRetry = 500 * time.Millisecond
	// endWait is how long a failed replica's end is waited for, so that
	// its exit status can be part of the failure's message.
	endWait = time.Second
)

// Errors of a Set.
var (
	ErrConfig = errors.New("replicaset: invalid config")
	ErrClosed = errors.New("replicaset: the set is closed")
	// errBusy: every node tried was busy or going; the slot waits and
	// places the replica again.
	errBusy = errors.New("no node could start the replica now: waiting")
)

// Probe decides when a started replica is ready and keeps checking it.
// It is shared by a set's slots and must be safe for concurrent use.
type Probe interface {
	// Ready returns once proc is ready to serve, with the connection its
	// health is checked over; ctx ends at the set's StartTimeout or when
	// the slot stops. An error has the replica stopped and replaced.
	Ready(ctx context.Context, proc *Process) (Conn, error)
}

// Conn is a ready replica as its Probe sees it. The slot calls Check
// every HealthPeriod, one call at a time, and Close once when the
// replica goes; Lost may be called from any goroutine.
type Conn interface {
	// Check returns an error when the replica is unhealthy: it is then
	// stopped and replaced.
	Check(ctx context.Context) error
	// Lost receives why the connection ended on its own (the replica is
	// then replaced); nil when it has no life of its own.
	Lost() <-chan error
	// Close releases the connection.
	Close() error
}

// Config configures a Set. Name, Kind, Start, Launcher and Probe are
// required; zero durations take the defaults above.
type Config struct {
	// Name is the hosted server's or deployment's (ReplicaStart.server).
	Name string
	// Kind is KindMCP or KindServe.
	Kind string
	// Start is the template of every replica's start; the set fills in
	// Server, Kind, Resources and a fresh ReplicaId for each start (it
	// is not modified).
	Start *pb.ReplicaStart
	// Resources each replica holds on its node.
	Resources resources.Set
	Launcher  Launcher
	Probe     Probe
	// HealthPeriod is the time between health checks of a ready replica.
	HealthPeriod time.Duration
	// HealthTimeout bounds one check (0: HealthPeriod).
	HealthTimeout time.Duration
	// StartTimeout bounds a start, from launch to Probe.Ready's return.
	StartTimeout time.Duration
	// Logger gets a warning for every failed replica (nil: slog.Default).
	Logger *slog.Logger
	// OnReady, when set, is called from the slot's goroutine when a
	// replica becomes ready, with its Conn, before the next health check.
	OnReady func(*Slot, Conn)
	// OnGone, when set, is called from the slot's goroutine once the
	// replica OnReady announced is no longer ready (it failed, or is
	// drained, or the set closes), after its Conn is closed. A replica
	// that was never ready has no OnGone.
	OnGone func(*Slot)
}

// validate checks c and fills in its defaults.
func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: no Name", ErrConfig)
	case c.Kind != KindMCP && c.Kind != KindServe:
		return fmt.Errorf("%w: %s: Kind %q, want %q or %q", ErrConfig, c.Name, c.Kind, KindMCP, KindServe)
	case c.Start == nil:
		return fmt.Errorf("%w: %s: no Start template", ErrConfig, c.Name)
	case c.Launcher == nil:
		return fmt.Errorf("%w: %s: no Launcher", ErrConfig, c.Name)
	case c.Probe == nil:
		return fmt.Errorf("%w: %s: no Probe", ErrConfig, c.Name)
	case c.HealthPeriod < 0 || c.HealthTimeout < 0 || c.StartTimeout < 0:
		return fmt.Errorf("%w: %s: negative duration", ErrConfig, c.Name)
	}
	if c.HealthPeriod == 0 {
		c.HealthPeriod = DefaultHealthPeriod
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = c.HealthPeriod
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Set supervises the replica slots of one hosted server or deployment.
// Safe for concurrent use; Close stops every replica.
type Set struct {
	cfg  Config
	stop *stopper.Stopper

	resizeMu sync.Mutex // serializes Resize and Close
	placeMu  sync.Mutex // one slot places its replica at a time

	mu     sync.Mutex
	slots  []*Slot // guarded by mu; index i is Slot.Index i
	closed bool    // guarded by mu
}

// New starts a set of n slots.
func New(cfg Config, n int) (*Set, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if n < 0 || n > MaxSlots {
		return nil, fmt.Errorf("%w: %s: %d replicas, want 0 to %d", ErrConfig, cfg.Name, n, MaxSlots)
	}
	s := &Set{cfg: cfg, stop: stopper.New()}
	s.mu.Lock()
	for range n {
		s.addLocked()
	}
	s.mu.Unlock()
	return s, nil
}

// addLocked adds and starts a slot; s.mu is held.
func (s *Set) addLocked() {
	ctx, cancel := context.WithCancel(s.stop.Ctx())
	sl := &Slot{set: s, index: len(s.slots), cancel: cancel, done: make(chan struct{}), state: StatePending, since: time.Now()}
	s.slots = append(s.slots, sl)
	name := fmt.Sprintf("replicaset.%s.%s.%d", s.cfg.Kind, s.cfg.Name, sl.index)
	if err := s.stop.Go(name, func(context.Context) {
		defer close(sl.done)
		defer cancel()
		sl.run(ctx)
	}); err != nil {
		cancel()
		close(sl.done)
	}
}

// Slots are the set's slots now, by index (draining ones included until
// they are gone).
func (s *Set) Slots() []*Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Slot(nil), s.slots...)
}

// Statuses are the slots' statuses, by index.
func (s *Set) Statuses() []Status {
	out := []Status{}
	for _, sl := range s.Slots() {
		out = append(out, sl.Status())
	}
	return out
}

// Resize makes the set n slots: it adds slots, or drains the
// highest-index ones (concurrently) and removes them once drained. It
// returns when the removed slots are gone or ctx ends (they then go on
// draining, and a later Resize removes them).
// Resizes are serialized.
func (s *Set) Resize(ctx context.Context, n int) error {
	if n < 0 || n > MaxSlots {
		return fmt.Errorf("%w: %s: resize to %d replicas, want 0 to %d", ErrConfig, s.cfg.Name, n, MaxSlots)
	}
	s.resizeMu.Lock()
	defer s.resizeMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	for len(s.slots) < n {
		s.addLocked()
	}
	victims := append([]*Slot(nil), s.slots[n:]...)
	s.mu.Unlock()
	errc := make(chan error, len(victims))
	for _, sl := range victims {
		sl.withdraw()
	}
	var wg sync.WaitGroup
	for _, sl := range victims {
		wg.Add(1)
		go func() { // returns when the slot is gone or ctx ends
			defer wg.Done()
			errc <- sl.Drain(ctx)
		}()
	}
	wg.Wait()
	close(errc)
	var all []error
	for err := range errc {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	s.mu.Lock()
	if len(s.slots) > n {
		s.slots = s.slots[:n]
	}
	s.mu.Unlock()
	return nil
}

// Close stops every replica and waits for every slot's goroutine. It is
// safe to call more than once.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop.Stop()
}

// place decides where sl's replica goes and, when it goes somewhere,
// marks sl as starting there before another slot decides (so replicas
// started together spread).
func (s *Set) place(sl *Slot, nodes []scheduler.Node) (placeKind, []scheduler.Node, string) {
	s.placeMu.Lock()
	defer s.placeMu.Unlock()
	kind, order, msg := placeReplica(s.cfg.Resources, nodes, s.replicasByNode(sl))
	if kind == placeOn {
		sl.mu.Lock()
		if !sl.draining {
			sl.node, sl.state, sl.message, sl.since = order[0].ID, StateStarting, "", time.Now()
		}
		sl.mu.Unlock()
	}
	return kind, order, msg
}

// replicasByNode counts the other slots' replicas (starting or ready) by
// node.
func (s *Set) replicasByNode(except *Slot) map[string]int {
	out := map[string]int{}
	for _, sl := range s.Slots() {
		if sl == except {
			continue
		}
		sl.mu.Lock()
		if sl.node != "" && (sl.state == StateReady || sl.state == StateStarting) {
			out[sl.node]++
		}
		sl.mu.Unlock()
	}
	return out
}

// Status is a slot as status listings show it.
type Status struct {
	Index    int
	ID       string // the replica now (or last) started
	State    string
	Message  string // why it is pending or draining, or its last failure
	Since    time.Time
	NodeID   string
	Pid      int
	LogFile  string
	HostPort string // serve replicas: where it listens
	Restarts int
	// LastStart is how long its last start took, placement to ready.
	LastStart time.Duration
}

// Slot is one replica of a set: it places a replica, starts it, waits
// for its Probe's Ready, checks it every HealthPeriod, and replaces it
// when it dies or fails a check (at once the first time, then with
// backoff), until it is drained or the set closes.
type Slot struct {
	set    *Set
	index  int
	cancel context.CancelFunc // stops the slot
	done   chan struct{}      // closed when its goroutine has returned

	mu        sync.Mutex
	id        string
	node      string
	pid       int
	logFile   string
	hostPort  string
	state     string
	message   string
	since     time.Time
	restarts  int
	failures  int // in a row
	readyAt   time.Time
	lastStart time.Duration
	conn      Conn          // the ready replica's; nil when none is ready
	gone      chan struct{} // closed when the ready replica goes
	draining  bool
}

// Index is the slot's place in its set (0, 1, …).
func (sl *Slot) Index() int { return sl.index }

// Current is the slot's ready replica's Conn and a channel closed when
// that replica goes (nil, nil when none is ready).
func (sl *Slot) Current() (Conn, <-chan struct{}) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.conn == nil || sl.state != StateReady {
		return nil, nil
	}
	return sl.conn, sl.gone
}

// Status is the slot's status now.
func (sl *Slot) Status() Status {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return Status{Index: sl.index, ID: sl.id, State: sl.state, Message: sl.message, Since: sl.since, NodeID: sl.node,
		Pid: sl.pid, LogFile: sl.logFile, HostPort: sl.hostPort, Restarts: sl.restarts, LastStart: sl.lastStart}
}

// withdraw marks the slot draining: it starts nothing more.
func (sl *Slot) withdraw() {
	sl.mu.Lock()
	if !sl.draining {
		sl.draining = true
		sl.state, sl.message, sl.since = StateDraining, "stopping for good", time.Now()
	}
	sl.mu.Unlock()
}

// Drain stops the slot for good: it starts nothing more, its ready
// replica is withdrawn (OnGone) and stopped (the node daemon gives it
// ReplicaStart.stop_grace_ms to finish what it is doing), and Drain
// returns once the slot's goroutine has returned, or with ctx's error.
// A drained slot stays in its set until Resize removes it.
func (sl *Slot) Drain(ctx context.Context) error {
	sl.withdraw()
	sl.cancel()
	select {
	case <-sl.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replicaset: %s: drain replica slot %d: %w", sl.set.cfg.Name, sl.index, ctx.Err())
	}
}

// setState records a state, unless the slot is draining.
func (sl *Slot) setState(state, msg string) {
	sl.mu.Lock()
	if !sl.draining {
		sl.state, sl.message, sl.since = state, msg, time.Now()
	}
	sl.mu.Unlock()
}

// run keeps a replica running in the slot until ctx ends.
func (sl *Slot) run(ctx context.Context) {
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
		sl.readyAt = time.Time{}
		id := sl.id
		sl.mu.Unlock()
		sl.setState(StateBackoff, err.Error())
		sl.set.cfg.Logger.Warn(sl.set.cfg.Kind+": replica failed", "replica", id, "err", err, "restart_in", delay)
		if !stopper.Sleep(ctx, delay) {
			return
		}
	}
}

// once places, starts and watches one replica; it returns why it ended.
func (sl *Slot) once(ctx context.Context) error {
	s := sl.set
	began := time.Now()
	var (
		proc *Process
		pctx context.Context
		stop context.CancelFunc
	)
	for proc == nil { // place: wait until a node can take it
		nodes, err := s.cfg.Launcher.Nodes(ctx)
		if err != nil {
			return fmt.Errorf("list the cluster's nodes: %w", err)
		}
		kind, order, msg := s.place(sl, nodes)
		if kind != placeOn {
			sl.setState(StatePending, msg)
			if !stopper.Sleep(ctx, placeRetry) {
				return ctx.Err()
			}
			continue
		}
		if proc, pctx, stop, err = sl.launch(ctx, order); errors.Is(err, errBusy) {
			sl.setState(StatePending, err.Error())
			if !stopper.Sleep(ctx, placeRetry) {
				return ctx.Err()
			}
		} else if err != nil {
			return err
		}
	}
	defer func() {
		stop()
		<-proc.Done
	}()

	rctx, cancel := context.WithTimeout(pctx, s.cfg.StartTimeout)
	conn, err := s.cfg.Probe.Ready(rctx, proc)
	cancel()
	if err != nil {
		return sl.ended(proc, err)
	}
	gone := make(chan struct{})
	sl.mu.Lock()
	if sl.draining || ctx.Err() != nil {
		sl.mu.Unlock()
		_ = conn.Close()
		return ctx.Err()
	}
	sl.conn, sl.gone, sl.state, sl.message, sl.since, sl.readyAt = conn, gone, StateReady, "", time.Now(), time.Now()
	sl.lastStart = time.Since(began)
	sl.mu.Unlock()
	if s.cfg.OnReady != nil {
		s.cfg.OnReady(sl, conn)
	}
	defer func() {
		sl.mu.Lock()
		sl.conn, sl.gone = nil, nil
		sl.mu.Unlock()
		_ = conn.Close()
		close(gone)
		if s.cfg.OnGone != nil {
			s.cfg.OnGone(sl)
		}
	}()

	// Watch: health checks, the process's end, the connection's, the
	// slot's.
	tick := time.NewTicker(s.cfg.HealthPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-proc.Done:
			return sl.ended(proc, nil)
		case why := <-conn.Lost():
			return sl.ended(proc, why)
		case <-tick.C:
			hctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
			err := conn.Check(hctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("health check: %w (the replica is stopped and replaced)", err)
			}
		}
	}
}

// launch starts a replica on the first of order that takes it; the
// replica runs until stop is called.
func (sl *Slot) launch(ctx context.Context, order []scheduler.Node) (*Process, context.Context, context.CancelFunc, error) {
	s := sl.set
	id := newReplicaID(sl.index)
	start := proto.Clone(s.cfg.Start).(*pb.ReplicaStart)
	start.Server, start.Kind, start.ReplicaId, start.Resources = s.cfg.Name, s.cfg.Kind, id, s.cfg.Resources
	var lastErr error
	busy := 0
	for _, n := range order {
		pctx, stop := context.WithCancel(ctx)
		p, err := s.cfg.Launcher.Start(pctx, n, start)
		if err != nil {
			stop()
			if errors.Is(err, errs.ErrUnavailable) || rpc.IsUnavailable(err) {
				busy++ // its resources were taken since the node reported, or it is going
			}
			lastErr = err
			continue
		}
		sl.mu.Lock()
		sl.id, sl.node, sl.pid, sl.logFile, sl.hostPort = id, n.ID, p.Pid, p.LogFile, p.HostPort
		if !sl.draining {
			sl.state, sl.message, sl.since = StateStarting, "", time.Now()
		}
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
func (sl *Slot) ended(proc *Process, why error) error {
	t := time.NewTimer(endWait)
	defer t.Stop()
	select {
	case <-proc.Done:
	case <-t.C:
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

// newReplicaID names a replica of slot i: "<i>-<6 hex>", fresh for each
// start, so a replaced replica's log file is its own.
func newReplicaID(i int) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%d-%s", i, hex.EncodeToString(b[:]))
}
