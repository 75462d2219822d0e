package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/replicaset"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/serve/autoscale"
	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/router"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/serve/config"
)

// Namespace is the control store KV namespace where the controller keeps
// the applied config (key ConfigKey), so that a head restarted with
// storage runs the same applications again.
const (
	Namespace = "raygo/serve"
	ConfigKey = "config"
)

// Statuses of applications and deployments (Ray's ApplicationStatus and
// DeploymentStatus, the subset raygo reaches).
const (
	StatusDeploying = "DEPLOYING" // replicas starting, or a roll under way
	StatusRunning   = "RUNNING"   // every deployment has its target replicas ready
	StatusUnhealthy = "UNHEALTHY" // a replica failed and waits to be restarted
	StatusDeleting  = "DELETING"  // being shut down
)

// Limits of the reconcile loop.
const (
	// RollSurge is how many replicas of a new version a rolling update
	// starts beyond the target at a time (RollStep's surge).
	RollSurge = 1
	// rollTick is how often a rolling update looks at its replicas.
	rollTick = 100 * time.Millisecond
)

// Errors of the controller.
var (
	// ErrInvalid: the config is refused (the message lists every
	// problem).
	ErrInvalid = errors.New("serve controller: invalid config")
	// ErrNotFound: no application is deployed.
	ErrNotFound = errors.New("serve controller: no applications deployed")
	// ErrClosed: the controller is stopping.
	ErrClosed = errors.New("serve controller: closed")
)

// KV is where the applied config is kept (the control store's KV
// namespace on the head).
type KV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// Options configure a Controller.
type Options struct {
	// KV keeps the applied config; nil keeps nothing.
	KV KV
	// Launcher starts replicas (replicaset.NodeLauncher on the head).
	Launcher replicaset.Launcher
	// Table is the routing table every node's proxy follows.
	Table *routes.Table
	// ClusterAddress is passed to replicas (ReplicaStart.cluster_address).
	ClusterAddress string
	// Actors creates, watches and kills Go deployments' replicas (the
	// head's control store); nil refuses Go applications.
	Actors ActorAPI
	// UpstreamToken is the header value proxies send replicas
	// (raylet.ServeUpstreamToken): Go replicas are told it, and the
	// controller's own calls to them carry it.
	UpstreamToken string
	// Logger (nil: slog.Default).
	Logger *slog.Logger
}

// Controller runs the applied Serve config: a replicaset.Set per command
// deployment, the routing table from their ready replicas. Safe for
// concurrent use; applies are serialized.
type Controller struct {
	opts Options
	log  *slog.Logger
	stop *stopper.Stopper

	applyMu sync.Mutex // serializes Apply, Shutdown and Close

	mu         sync.Mutex
	applied    *config.Config                // guarded by mu; nil: nothing deployed (Resolved: Go applications expanded)
	file       *config.Config                // guarded by mu; applied as given (what the KV keeps)
	goApps     map[string]goapp.Registration // guarded by mu; registered Go applications by name
	goReplicas map[ids.ID]*goReplica         // guarded by mu; Go replicas starting or running, by actor id
	deps       map[depKey]*deployment        // guarded by mu
	ready      map[string]readyReplica       // guarded by mu; by replica ID
	gone       map[depKey]*deployment        // guarded by mu; deployments being deleted
	loads      map[string]nodeLoad           // guarded by mu; the latest load report by node
	closed     bool                          // guarded by mu

	routesMu sync.Mutex // orders table.Set calls

	replicaClient *http.Client // the controller's calls to Go replicas
}

type depKey struct{ app, dep string }

// readyReplica is a replica in the routing table.
type readyReplica struct {
	key      depKey
	node     string
	url      string
	draining bool // withdrawn: proxies send it nothing new
}

// deployment is one command deployment's running state.
type deployment struct {
	key     depKey
	app     config.Application // the application as applied (deployments included)
	dep     config.Deployment
	version string
	target  int
	set     *replicaset.Set   // the current version's
	old     []*replicaset.Set // an older version's, while a roll runs
	rolling context.CancelFunc
	message string
	// policy decides the target of an autoscaling deployment (nil
	// without autoscaling_config); decision is its last decision, shown
	// in the status; resizeGen counts resizes, so that a resize
	// superseded by a later one does not undo it.
	policy    *autoscale.Policy
	decision  string
	resizeGen uint64
}

// New returns a controller with nothing deployed; Load re-applies a kept
// config.
func New(opts Options) (*Controller, error) {
	if opts.Launcher == nil || opts.Table == nil {
		return nil, errors.New("serve controller: Options need a Launcher and a Table")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{opts: opts, log: log.With("component", "serve"), stop: stopper.New(),
		deps: map[depKey]*deployment{}, ready: map[string]readyReplica{}, gone: map[depKey]*deployment{},
		loads: map[string]nodeLoad{}, goApps: map[string]goapp.Registration{}, goReplicas: map[ids.ID]*goReplica{},
		replicaClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}
	if err := c.stop.Go("serve.autoscale", c.decideLoop); err != nil {
		return nil, err
	}
	return c, nil
}

// Load stops the Go replicas a previous controller left, then applies
// the config kept in the KV, if any (after a head restart).
func (c *Controller) Load(ctx context.Context) error {
	if err := c.reapReplicas(ctx); err != nil {
		return err
	}
	if c.opts.KV == nil {
		return nil
	}
	if err := c.loadGoApps(ctx); err != nil {
		return err
	}
	b, ok, err := c.opts.KV.Get(ctx, ConfigKey)
	if err != nil || !ok {
		return err
	}
	cfg, err := Check(b, nil)
	if err != nil {
		c.log.Warn("serve: the kept config no longer applies; nothing deployed", "err", err)
		return nil
	}
	if err := c.apply(ctx, cfg, false); err != nil {
		c.log.Warn("serve: the kept config no longer applies; nothing deployed", "err", err)
	}
	return nil
}

// Check parses, validates and defaults a config for this controller:
// every problem of the file at once, resources against the alive nodes'
// totals, and what the controller cannot run (a working_dir that is not
// an uploaded package). A Go application's code is checked when it is
// resolved (Controller.Resolve). Errors wrap ErrInvalid.
func Check(yaml []byte, totals []map[string]float64) (*config.Config, error) {
	cfg, err := config.Parse(yaml)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var problems []string
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	cfg.Defaults()
	if err := cfg.ValidateResources(totals); err != nil {
		problems = append(problems, err.Error())
	}
	for i, a := range cfg.Applications {
		if wd := a.RuntimeEnv.WorkingDir; wd != "" {
			if _, err := runtimeenv.ParseName(wd); err != nil {
				problems = append(problems, fmt.Sprintf("applications[%d] (%s): runtime_env.working_dir %q is not an uploaded package (sha256:…): `raygo serve deploy` uploads local directories (%v)", i, a.Name, wd, err))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "\n"))
	}
	return cfg, nil
}

// Apply makes cfg (from Check) the running config: it keeps it in the
// KV, then creates, updates, rolls and deletes deployments as Plan says.
// It returns once every change is under way; replicas start, and rolling
// updates proceed, in the background (Status shows them). An apply while
// a roll runs supersedes it: the roll stops where it is and the new
// apply's plan starts from the replicas running.
func (c *Controller) Apply(ctx context.Context, cfg *config.Config) error {
	return c.apply(ctx, cfg, true)
}

func (c *Controller) apply(ctx context.Context, file *config.Config, keep bool) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	return c.applyLocked(ctx, file, keep)
}

// applyLocked is apply with applyMu held.
func (c *Controller) applyLocked(ctx context.Context, file *config.Config, keep bool) error {
	cfg, err := c.Resolve(file, nil)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	old := c.applied
	c.mu.Unlock()
	if keep && c.opts.KV != nil {
		b, err := file.Marshal()
		if err != nil {
			return err
		}
		if err := c.opts.KV.Put(ctx, ConfigKey, b); err != nil {
			return fmt.Errorf("serve controller: keep the config: %w", err)
		}
	}
	apps := map[string]*config.Application{}
	for i := range cfg.Applications {
		apps[cfg.Applications[i].Name] = &cfg.Applications[i]
	}
	find := func(k depKey) (*config.Application, *config.Deployment) {
		a := apps[k.app]
		for j := range a.Deployments {
			if a.Deployments[j].Name == k.dep {
				return a, &a.Deployments[j]
			}
		}
		panic("controller: planned deployment not in config: " + k.app + "/" + k.dep)
	}
	var drains []*deployment
	c.mu.Lock()
	c.applied, c.file = cfg, file
	for _, p := range Plan(old, cfg) {
		k := depKey{p.App, p.Deployment}
		d := c.deps[k]
		switch {
		case p.Change == Delete:
			if d != nil {
				delete(c.deps, k)
				drains = append(drains, d)
			}
		case d == nil || p.Change == Create:
			a, dep := find(k)
			nd, err := c.newDeploymentLocked(k, a, dep, p.Version)
			if err != nil {
				c.mu.Unlock()
				return err
			}
			c.deps[k] = nd
		case p.Change == Update || p.Change == Unchanged:
			a, dep := find(k)
			d.app, d.dep = *a, *dep
			if t := c.setPolicyLocked(d, dep, false); t != d.target {
				d.target = t
				if d.rolling == nil {
					c.resizeLocked(d, d.set, t)
				}
			}
			d.message = messageOf(dep)
			if slices.Contains(p.Reasons, "UserConfig") && a.ImportPath != "" {
				c.reconfigureLocked(d)
			}
		case p.Change == Roll:
			a, dep := find(k)
			c.rollLocked(d, a, dep, p.Version, p.Reasons)
		}
	}
	c.mu.Unlock()
	for _, d := range drains {
		c.drainDeployment(d)
	}
	c.publish()
	return nil
}

// messageOf is the status message of a deployment at rest: none (an
// autoscaling deployment shows its policy's last decision instead).
func messageOf(*config.Deployment) string { return "" }

// setConfig is a deployment version's replicaset config.
func (c *Controller) setConfig(k depKey, a *config.Application, d *config.Deployment) (replicaset.Config, error) {
	env := maps.Clone(a.RuntimeEnv.EnvVars)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, d.Env)
	uc, err := d.UserConfigJSON()
	if err != nil {
		return replicaset.Config{}, err
	}
	if d.UserConfig != nil {
		env[config.UserConfigEnv] = string(uc)
	}
	start := &pb.ReplicaStart{Argv: d.Command, PortEnv: d.PortEnv, ClusterAddress: c.opts.ClusterAddress,
		RuntimeEnv:  runtimeenv.Env{EnvVars: env, WorkingDir: a.RuntimeEnv.WorkingDir}.Proto(),
		StopGraceMs: int64(*d.GracefulShutdownTimeoutS * 1000)}
	cfg := replicaset.Config{
		Name: k.app + "." + k.dep, Kind: replicaset.KindServe, Start: start,
		Resources:     resources.Set(d.ReplicaResources()),
		Launcher:      c.opts.Launcher,
		Probe:         replicaset.HTTPProbe{Path: d.HealthPath},
		HealthPeriod:  seconds(*d.HealthCheckPeriodS),
		HealthTimeout: seconds(*d.HealthCheckTimeoutS),
		Logger:        c.log,
	}
	if a.ImportPath != "" {
		return c.goSetConfigLocked(k, a, cfg)
	}
	return cfg, nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// newSetLocked starts a set of n replicas of a deployment version whose
// ready replicas join the routing table.
func (c *Controller) newSetLocked(k depKey, a *config.Application, d *config.Deployment, n int) (*replicaset.Set, error) {
	cfg, err := c.setConfig(k, a, d)
	if err != nil {
		return nil, err
	}
	cfg.OnReady = func(sl *replicaset.Slot, _ replicaset.Conn) {
		st := sl.Status()
		c.mu.Lock()
		c.ready[st.ID] = readyReplica{key: k, node: st.NodeID, url: "http://" + st.HostPort}
		c.mu.Unlock()
		c.publish()
	}
	cfg.OnGone = func(sl *replicaset.Slot) {
		c.mu.Lock()
		delete(c.ready, sl.Status().ID)
		c.mu.Unlock()
		c.publish()
	}
	set, err := replicaset.New(cfg, n)
	if err != nil {
		return nil, fmt.Errorf("serve controller: %s/%s: %w", k.app, k.dep, err)
	}
	return set, nil
}

func (c *Controller) newDeploymentLocked(k depKey, a *config.Application, dep *config.Deployment, version string) (*deployment, error) {
	d := &deployment{key: k, app: *a, dep: *dep, version: version, message: messageOf(dep)}
	d.target = c.setPolicyLocked(d, dep, true)
	set, err := c.newSetLocked(k, a, dep, d.target)
	if err != nil {
		return nil, err
	}
	d.set = set
	return d, nil
}

// resizeLocked resizes set to n in the background: replicas beyond n are
// withdrawn from the routing table first (proxies stop sending them new
// requests), given graceful_shutdown_wait_loop_s to finish what they
// have, then drained. A later resize of d supersedes this one: one still
// waiting does not resize, and replicas it withdrew below the later
// count serve again.
func (c *Controller) resizeLocked(d *deployment, set *replicaset.Set, n int) {
	wait := seconds(*d.dep.GracefulShutdownWaitLoopS)
	d.resizeGen++
	gen := d.resizeGen
	current := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return d.resizeGen == gen
	}
	restored := false
	for _, sl := range set.Slots()[:min(n, len(set.Slots()))] {
		id := sl.Status().ID
		if r, ok := c.ready[id]; ok && r.draining {
			r.draining = false
			c.ready[id] = r
			restored = true
		}
	}
	_ = c.stop.Go("serve.resize."+d.key.app+"."+d.key.dep, func(ctx context.Context) {
		if restored {
			c.publish()
		}
		c.shrink(ctx, set, n, wait, current)
	})
}

// shrink withdraws set's slots from index n up, waits, and resizes it to
// n (growing it when n is larger); current, when not nil, is asked after
// the wait whether the resize still stands.
func (c *Controller) shrink(ctx context.Context, set *replicaset.Set, n int, wait time.Duration, current func() bool) {
	if c.withdraw(set, n) {
		c.publish()
		if !stopper.Sleep(ctx, wait) {
			return
		}
	}
	if current != nil && !current() {
		return
	}
	if err := set.Resize(ctx, n); err != nil && ctx.Err() == nil {
		c.log.Warn("serve: resize", "err", err)
	}
}

// withdraw marks the ready replicas of set's slots from index n up as
// draining in the routing table; it reports whether any was.
func (c *Controller) withdraw(set *replicaset.Set, n int) bool {
	slots := set.Slots()
	c.mu.Lock()
	defer c.mu.Unlock()
	any := false
	for _, sl := range slots[min(n, len(slots)):] {
		id := sl.Status().ID
		if r, ok := c.ready[id]; ok && !r.draining {
			r.draining = true
			c.ready[id] = r
			any = true
		}
	}
	return any
}

// rollLocked starts (or restarts, superseding one under way) a rolling
// update of d to a new version.
func (c *Controller) rollLocked(d *deployment, a *config.Application, dep *config.Deployment, version string, reasons []string) {
	if d.rolling != nil {
		d.rolling()
	}
	set, err := c.newSetLocked(d.key, a, dep, 0)
	if err != nil {
		d.message = err.Error()
		return
	}
	if d.set != nil {
		d.old = append(d.old, d.set)
	}
	d.app, d.dep, d.version, d.set = *a, *dep, version, set
	d.target = c.setPolicyLocked(d, dep, false)
	d.message = "rolling update: " + strings.Join(reasons, ", ") + " changed"
	rctx, cancel := context.WithCancel(context.Background())
	d.rolling = cancel
	wait, olds := seconds(*dep.GracefulShutdownWaitLoopS), slices.Clone(d.old)
	err = c.stop.Go("serve.roll."+d.key.app+"."+d.key.dep, func(sctx context.Context) {
		stopAfter := context.AfterFunc(sctx, cancel)
		defer stopAfter()
		c.roll(rctx, d, set, olds, wait)
	})
	if err != nil {
		cancel()
	}
}

// roll runs RollStep until only the new set serves.
func (c *Controller) roll(ctx context.Context, d *deployment, set *replicaset.Set, olds []*replicaset.Set, wait time.Duration) {
	tick := time.NewTicker(rollTick)
	defer tick.Stop()
	for ctx.Err() == nil {
		c.mu.Lock()
		target := d.target // an Update during the roll may change it
		c.mu.Unlock()
		oldRunning := 0
		for _, o := range olds {
			oldRunning += len(o.Slots())
		}
		newReady, newSlots := 0, len(set.Slots())
		for _, st := range set.Statuses() {
			if st.State == replicaset.StateReady {
				newReady++
			}
		}
		startNew, stopOld := RollStep(target, oldRunning, newReady, newSlots-newReady, RollSurge)
		if startNew == 0 && stopOld == 0 && oldRunning == 0 {
			break
		}
		if startNew > 0 {
			if err := set.Resize(ctx, newSlots+startNew); err != nil {
				return
			}
		}
		// Stop old replicas from the last old set backwards.
		for i := len(olds) - 1; i >= 0 && stopOld > 0; i-- {
			n := len(olds[i].Slots())
			k := min(n, stopOld)
			stopOld -= k
			c.shrink(ctx, olds[i], n-k, wait, nil)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	if ctx.Err() != nil {
		return
	}
	for _, o := range olds {
		o.Close()
	}
	c.mu.Lock()
	if c.deps[d.key] == d && d.set == set {
		d.old, d.rolling = nil, nil
		d.message = messageOf(&d.dep)
	}
	c.mu.Unlock()
	c.publish()
}

// drainDeployment withdraws d from routing, waits, and closes its sets,
// in the background.
func (c *Controller) drainDeployment(d *deployment) {
	c.mu.Lock()
	if d.rolling != nil {
		d.rolling()
	}
	sets := append(slices.Clone(d.old), d.set)
	c.gone[d.key] = d
	for id, r := range c.ready {
		if r.key == d.key {
			r.draining = true
			c.ready[id] = r
		}
	}
	c.mu.Unlock()
	wait := seconds(*d.dep.GracefulShutdownWaitLoopS)
	err := c.stop.Go("serve.delete."+d.key.app+"."+d.key.dep, func(ctx context.Context) {
		stopper.Sleep(ctx, wait)
		for _, s := range sets {
			s.Close()
		}
		c.mu.Lock()
		if c.gone[d.key] == d {
			delete(c.gone, d.key)
		}
		c.mu.Unlock()
	})
	if err != nil {
		for _, s := range sets {
			s.Close()
		}
	}
}

// Shutdown deletes every application (Ray's `serve shutdown`) and forgets
// the kept config. ErrNotFound when nothing is deployed.
func (c *Controller) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	none := c.applied == nil
	c.mu.Unlock()
	if none {
		return ErrNotFound
	}
	if err := c.apply(ctx, &config.Config{Applications: []config.Application{}}, false); err != nil {
		return err
	}
	c.mu.Lock()
	c.applied, c.file = nil, nil
	c.mu.Unlock()
	if c.opts.KV != nil {
		if err := c.opts.KV.Delete(ctx, ConfigKey); err != nil {
			return fmt.Errorf("serve controller: forget the config: %w", err)
		}
	}
	return nil
}

// Close stops every replica and the controller's goroutines; the kept
// config stays for the next head.
func (c *Controller) Close() {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	c.closed = true
	var sets []*replicaset.Set
	for _, d := range c.deps {
		sets = append(sets, d.old...)
		sets = append(sets, d.set)
	}
	c.mu.Unlock()
	// The replicas first (a Go replica's watcher, on the stopper, kills
	// its actor when its slot ends: c.closed skips the drain), then the
	// controller's own goroutines.
	for _, s := range sets {
		s.Close()
	}
	c.stop.Stop()
}

// Routes is the routing table the applied config and the ready replicas
// make: one route per application, to its ingress deployment, with its
// ready replicas (draining ones marked so).
func (c *Controller) Routes() []proxy.Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routesLocked()
}

func (c *Controller) routesLocked() []proxy.Route {
	if c.applied == nil {
		return []proxy.Route{}
	}
	var timeout time.Duration
	if t := c.applied.HTTPOptions.RequestTimeoutS; t != nil {
		timeout = seconds(*t)
	}
	out := []proxy.Route{}
	for _, a := range c.applied.Applications {
		d := c.deps[depKey{a.Name, a.Ingress}]
		if d == nil {
			continue
		}
		rt := proxy.Route{Prefix: a.RoutePrefix, App: a.Name, Deployment: a.Ingress, MaxQueuedRequests: *d.dep.MaxQueuedRequests,
			RequestTimeout: timeout, Replicas: []proxy.Replica{}}
		for _, id := range slices.Sorted(maps.Keys(c.ready)) {
			r := c.ready[id]
			if r.key != d.key {
				continue
			}
			state := router.Running
			if r.draining {
				state = router.Draining
			}
			rt.Replicas = append(rt.Replicas, proxy.Replica{ID: id, Node: r.node, URL: r.url, MaxOngoingRequests: *d.dep.MaxOngoingRequests, State: state})
		}
		out = append(out, rt)
	}
	return out
}

// publish sets the routing table from the controller's state.
func (c *Controller) publish() {
	c.routesMu.Lock()
	defer c.routesMu.Unlock()
	rts := c.Routes()
	if _, err := c.opts.Table.Set(rts); err != nil && !errors.Is(err, routes.ErrClosed) {
		c.log.Error("serve: routing table refused", "err", err)
	}
}
