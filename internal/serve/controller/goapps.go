package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/replicaset"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/serve/config"
)

// Go applications (docs/serve.md "Go deployments"): a program registers
// its applications (goapp.Registration: its job, whose binary holds the
// code, and each deployment's actor class and declared options); an
// application with import_path naming a registration runs that code,
// with the file's deployment options over the code's. Each replica is a
// detached actor of the deployment's class, created here through the
// control store on the node the replicaset chose (hard node affinity),
// in namespace goapp.ReplicaNamespace; it asks for its goapp.Init and
// reports its listener's address before its constructor returns.

// GoAppsKey is the KV key of the registered Go applications (a JSON
// object name → goapp.Registration).
const GoAppsKey = "go_apps"

// Limits of Go replicas.
const (
	// GoReplicaStartTimeout bounds a Go replica's start: placement and
	// its constructor (model loading included) until it is ALIVE.
	GoReplicaStartTimeout = 5 * time.Minute
	// goReplicaKillWait bounds the wait for a killed replica's actor to
	// be DEAD.
	goReplicaKillWait = 30 * time.Second
	// goReplicaCallTimeout bounds one control call to a replica (drain,
	// reconfigure).
	goReplicaCallTimeout = 10 * time.Second
	// MaxGoApps bounds the registered Go applications.
	MaxGoApps = 1000
)

// ActorAPI is the control store's actor service, through which the
// controller creates, watches and kills Go replicas (*gcs.Server).
type ActorAPI interface {
	CreateActor(ctx context.Context, req *pb.CreateActorRequest) (*pb.CreateActorReply, error)
	WaitActor(ctx context.Context, req *pb.WaitActorRequest) (*pb.WaitActorReply, error)
	KillActor(ctx context.Context, req *pb.KillActorRequest) (*pb.KillActorReply, error)
	ListActors(ctx context.Context, req *pb.ListActorsRequest) (*pb.ListActorsReply, error)
}

// reapReplicas kills the Go replica actors a previous controller left
// (a head restarted with storage keeps its detached actors): this one
// starts its own for the config it loads, so the old ones would only
// hold resources.
func (c *Controller) reapReplicas(ctx context.Context) error {
	if c.opts.Actors == nil {
		return nil
	}
	reply, err := c.opts.Actors.ListActors(ctx, &pb.ListActorsRequest{})
	if err != nil {
		return fmt.Errorf("serve controller: list actors: %w", err)
	}
	for _, a := range reply.GetActors() {
		if a.GetNamespace() != goapp.ReplicaNamespace || !strings.HasPrefix(a.GetName(), goapp.ReplicaPrefix) ||
			a.GetState() == pb.ActorState_ACTOR_STATE_DEAD {
			continue
		}
		c.log.Info("serve: stopping a replica of a previous controller", "actor", a.GetName())
		if _, err := c.opts.Actors.KillActor(ctx, &pb.KillActorRequest{ActorId: a.GetActorId(), NoRestart: true,
			Reason: "serve: a replica of a previous controller (the head restarted)"}); err != nil {
			c.log.Warn("serve: stop an old replica", "actor", a.GetName(), "err", err)
		}
	}
	return nil
}

// goReplica is a Go replica being started or running: what it is told,
// and where it said it listens.
type goReplica struct {
	init goapp.Init
	addr string
}

// Register records (or replaces) a Go application's registration and
// keeps it in the KV. It does not deploy it (Apply of a config naming it
// does); a running application of that name keeps its replicas until
// the next apply.
func (c *Controller) Register(ctx context.Context, reg goapp.Registration) error {
	if err := checkRegistration(reg); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	if _, ok := c.goApps[reg.Name]; !ok && len(c.goApps) >= MaxGoApps {
		c.mu.Unlock()
		return fmt.Errorf("%w: %d Go applications are registered, the most allowed (MaxGoApps)", ErrInvalid, MaxGoApps)
	}
	c.goApps[reg.Name] = reg
	b, err := json.Marshal(c.goApps)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if c.opts.KV != nil {
		if err := c.opts.KV.Put(ctx, GoAppsKey, b); err != nil {
			return fmt.Errorf("serve controller: keep the Go applications: %w", err)
		}
	}
	return nil
}

func checkRegistration(reg goapp.Registration) error {
	var problems []string
	if !goapp.ValidName(reg.Name) {
		problems = append(problems, fmt.Sprintf("application name %q: want letters, digits, '_', '-' and '.'", reg.Name))
	}
	if _, ok := ids.Parse(reg.JobID); !ok {
		problems = append(problems, fmt.Sprintf("job_id %q is not a job id", reg.JobID))
	}
	if len(reg.Deployments) == 0 {
		problems = append(problems, "no deployments")
	}
	names := map[string]bool{}
	for i, d := range reg.Deployments {
		if !goapp.ValidName(d.Name) || d.Class != goapp.ClassName(d.Name) {
			problems = append(problems, fmt.Sprintf("deployments[%d]: name %q with class %q: want a valid name and class %q", i, d.Name, d.Class, goapp.ClassName(d.Name)))
		}
		names[d.Name] = true
	}
	if reg.Ingress != "" && !names[reg.Ingress] {
		problems = append(problems, fmt.Sprintf("ingress %q is not one of the deployments", reg.Ingress))
	}
	if len(problems) > 0 {
		return fmt.Errorf("Go application %q: %s", reg.Name, strings.Join(problems, "; "))
	}
	// The declared options must make a valid application on their own.
	cfg := config.Config{Applications: []config.Application{{Name: reg.Name, ImportPath: reg.Name}}}
	for _, d := range reg.Deployments {
		dc := d.Config
		dc.Name = d.Name
		cfg.Applications[0].Deployments = append(cfg.Applications[0].Deployments, dc)
	}
	return cfg.Validate()
}

// loadGoApps reads the registrations kept in the KV.
func (c *Controller) loadGoApps(ctx context.Context) error {
	if c.opts.KV == nil {
		return nil
	}
	b, ok, err := c.opts.KV.Get(ctx, GoAppsKey)
	if err != nil || !ok {
		return err
	}
	m := map[string]goapp.Registration{}
	if err := json.Unmarshal(b, &m); err != nil {
		c.log.Warn("serve: the kept Go applications do not read; none registered", "err", err)
		return nil
	}
	c.mu.Lock()
	c.goApps = m
	c.mu.Unlock()
	return nil
}

// Resolve turns a checked config (Check) into the one the controller
// runs: every Go application's deployments are its registration's, with
// the file's options for them over the code's (config.Deployment.Overlay),
// defaults filled, its ingress the code's, and its import_path
// "name@job" (so that a program run again, a new job, rolls its
// replicas); then every replica's resources are checked against totals
// (nil: not checked). Errors wrap ErrInvalid and name every problem.
func (c *Controller) Resolve(cfg *config.Config, totals []map[string]float64) (*config.Config, error) {
	out := *cfg
	out.Applications = make([]config.Application, len(cfg.Applications))
	var problems []string
	c.mu.Lock()
	for i, a := range cfg.Applications {
		out.Applications[i] = a
		if a.ImportPath == "" {
			continue
		}
		reg, ok := c.goApps[a.ImportPath]
		if !ok {
			problems = append(problems, fmt.Sprintf("applications[%d] (%s): import_path %q names no registered Go application: run the program that defines it (serve.Run registers it)", i, a.Name, a.ImportPath))
			continue
		}
		file := map[string]config.Deployment{}
		for _, d := range a.Deployments {
			file[d.Name] = d
		}
		var deps []config.Deployment
		for _, gd := range reg.Deployments {
			d := gd.Config
			d.Name = gd.Name
			if o, ok := file[gd.Name]; ok {
				d.Overlay(&o)
				delete(file, gd.Name)
			}
			d.Defaults()
			deps = append(deps, d)
		}
		for name := range file {
			problems = append(problems, fmt.Sprintf("applications[%d] (%s): deployment %q is not one of Go application %s's (%s)", i, a.Name, name, reg.Name, deploymentNames(reg)))
		}
		o := &out.Applications[i]
		o.Deployments, o.Ingress, o.ImportPath = deps, reg.Ingress, reg.Name+"@"+reg.JobID
	}
	c.mu.Unlock()
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "\n"))
	}
	if totals != nil {
		if err := out.ValidateResources(totals); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return &out, nil
}

func deploymentNames(reg goapp.Registration) string {
	var s []string
	for _, d := range reg.Deployments {
		s = append(s, d.Name)
	}
	return strings.Join(s, ", ")
}

// goCode splits a resolved import_path into the registration's name and
// job.
func goCode(importPath string) (name, job string, ok bool) {
	name, job, ok = strings.Cut(importPath, "@")
	return name, job, ok && job != ""
}

// actorLauncher starts a Go deployment's replicas as actors.
type actorLauncher struct {
	c     *Controller
	key   depKey
	class string
	job   ids.ID
	env   *pb.RuntimeEnv
}

// Nodes implements replicaset.Launcher.
func (l actorLauncher) Nodes(ctx context.Context) ([]scheduler.Node, error) {
	return l.c.opts.Launcher.Nodes(ctx)
}

// Start implements replicaset.Launcher: it creates the replica's actor
// on node and returns once the actor is ALIVE (its constructor ran and
// it listens) or failed.
func (l actorLauncher) Start(ctx context.Context, node scheduler.Node, start *pb.ReplicaStart) (*replicaset.Process, error) {
	c := l.c
	nodeID, ok := ids.Parse(node.ID)
	if !ok {
		return nil, fmt.Errorf("node id %q", node.ID)
	}
	host, _, err := net.SplitHostPort(node.Address)
	if err != nil {
		return nil, fmt.Errorf("node %s address %q: %w", node.ID, node.Address, err)
	}
	c.mu.Lock()
	d := c.deps[l.key]
	var dep config.Deployment
	if d != nil {
		dep = d.dep
	}
	c.mu.Unlock()
	if d == nil {
		return nil, fmt.Errorf("deployment %s/%s is gone", l.key.app, l.key.dep)
	}
	uc, err := dep.UserConfigJSON()
	if err != nil {
		return nil, err
	}
	aid := ids.New()
	name := goapp.ReplicaActorName(l.key.app, l.key.dep, start.GetReplicaId())
	init := goapp.Init{App: l.key.app, Deployment: l.key.dep, Replica: start.GetReplicaId(), Host: host,
		UpstreamToken: c.opts.UpstreamToken, MaxOngoingRequests: *dep.MaxOngoingRequests,
		DrainTimeoutMs: int64(*dep.GracefulShutdownTimeoutS * 1000)}
	if dep.UserConfig != nil {
		init.UserConfig = uc
	}
	c.mu.Lock()
	c.goReplicas[aid] = &goReplica{init: init}
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.goReplicas, aid)
		c.mu.Unlock()
	}
	spec := &pb.TaskSpec{TaskId: ids.New().Bytes(), JobId: l.job.Bytes(), Function: l.class, Name: name,
		Resources: &pb.Resources{Amounts: start.GetResources()}, ActorId: aid.Bytes(), ActorCreation: true,
		MaxConcurrency: int32(max(*dep.MaxOngoingRequests, 1)),
		Strategy:       pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY,
		Scheduling:     &pb.SchedulingOptions{NodeId: nodeID.Bytes()}, RuntimeEnv: l.env}
	_, err = c.opts.Actors.CreateActor(ctx, &pb.CreateActorRequest{Actor: &pb.ActorInfo{
		ActorId: aid.Bytes(), JobId: l.job.Bytes(), Name: name, Namespace: goapp.ReplicaNamespace, ClassName: l.class,
		Detached: true, OwnerId: ids.Nil.Bytes(), Creation: spec}})
	if err != nil {
		forget()
		return nil, fmt.Errorf("create replica actor %s: %w", name, err)
	}
	kill := func(reason string) {
		kctx, cancel := context.WithTimeout(context.Background(), goReplicaCallTimeout)
		defer cancel()
		_, _ = c.opts.Actors.KillActor(kctx, &pb.KillActorRequest{ActorId: aid.Bytes(), NoRestart: true, Reason: reason})
	}
	// Wait until ALIVE (or DEAD).
	sctx, cancel := context.WithTimeout(ctx, GoReplicaStartTimeout)
	info, err := waitActor(sctx, c.opts.Actors, aid, 0, func(st pb.ActorState) bool { return st == pb.ActorState_ACTOR_STATE_ALIVE })
	cancel()
	if err != nil {
		kill("serve: replica did not start")
		forget()
		return nil, fmt.Errorf("replica actor %s: %w", name, err)
	}
	if info.GetState() != pb.ActorState_ACTOR_STATE_ALIVE {
		forget()
		return nil, fmt.Errorf("replica actor %s did not start: %s", name, deathCause(info))
	}
	c.mu.Lock()
	addr := c.goReplicas[aid].addr
	c.mu.Unlock()
	if addr == "" {
		kill("serve: replica reported no address")
		forget()
		return nil, fmt.Errorf("replica actor %s is alive but did not report its address (is its binary's serve package the controller's version?)", name)
	}
	done := make(chan struct{})
	var endErr error
	err = c.stop.Go("serve.replica."+name, func(sctx context.Context) {
		defer close(done)
		defer forget()
		life, cancel := context.WithCancel(ctx) // the replica's, or the controller's end
		defer cancel()
		defer context.AfterFunc(sctx, cancel)()
		info, err := waitActor(life, c.opts.Actors, aid, info.GetVersion(), func(pb.ActorState) bool { return false })
		if err == nil { // DEAD on its own: crashed, its node died, or killed
			endErr = fmt.Errorf("replica actor %s died: %s", name, deathCause(info))
			return
		}
		// Stopped: drain it, then kill it; the controller closing (the
		// head stopping) kills at once.
		c.mu.Lock()
		closing := c.closed
		c.mu.Unlock()
		if sctx.Err() == nil && !closing {
			l.drain(addr, time.Duration(init.DrainTimeoutMs)*time.Millisecond)
		}
		kill("serve: replica stopped")
		wctx, cancel := context.WithTimeout(sctx, goReplicaKillWait)
		defer cancel()
		_, _ = waitActor(wctx, c.opts.Actors, aid, 0, func(pb.ActorState) bool { return false })
	})
	if err != nil {
		kill("serve: controller closing")
		forget()
		return nil, err
	}
	return &replicaset.Process{Pid: int(info.GetPid()), HostPort: addr, Done: done, Err: func() error { return endErr }}, nil
}

// drain asks the replica to stop taking requests and finish those in
// flight, and waits until its listener closes (at most timeout).
func (l actorLauncher) drain(addr string, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), goReplicaCallTimeout)
	err := l.c.replicaCall(ctx, addr, goapp.DrainPath, nil)
	cancel()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		_ = conn.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaCall POSTs body to path on a Go replica with the upstream token.
func (c *Controller) replicaCall(ctx context.Context, addr, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(goapp.TokenHeader, c.opts.UpstreamToken)
	resp, err := c.replicaClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("POST %s on %s: %s: %s", path, addr, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// waitActor waits until the actor's state satisfies ok, or it is DEAD
// (returned without error either way), or ctx ends.
func waitActor(ctx context.Context, a ActorAPI, aid ids.ID, since uint64, ok func(pb.ActorState) bool) (*pb.ActorInfo, error) {
	for {
		reply, err := a.WaitActor(ctx, &pb.WaitActorRequest{ActorId: aid.Bytes(), SinceVersion: since, TimeoutMs: 30_000})
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		info := reply.GetActor()
		if info.GetState() == pb.ActorState_ACTOR_STATE_DEAD || ok(info.GetState()) {
			return info, nil
		}
		since = info.GetVersion()
	}
}

func deathCause(info *pb.ActorInfo) string {
	if info.GetDeathCause() == nil {
		return "no cause recorded"
	}
	return errs.FromInfo(info.GetDeathCause()).Error()
}

// goReplicaInit answers a starting replica's question.
func (c *Controller) goReplicaInit(aid ids.ID) (goapp.Init, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.goReplicas[aid]
	if !ok {
		return goapp.Init{}, false
	}
	return r.init, true
}

// goReplicaAddress records where a starting replica listens.
func (c *Controller) goReplicaAddress(aid ids.ID, addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.goReplicas[aid]
	if ok {
		r.addr = addr
	}
	return ok
}

// HandleTarget is what a handle to app/dep may call: its ready replicas
// that take new requests.
func (c *Controller) HandleTarget(app, dep string) (goapp.HandleTarget, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.deps[depKey{app, dep}]
	if d == nil {
		return goapp.HandleTarget{}, fmt.Errorf("%w: no deployment %s in application %s", ErrNotFound, dep, app)
	}
	if _, _, ok := goCode(d.app.ImportPath); !ok {
		return goapp.HandleTarget{}, fmt.Errorf("%w: %s/%s is a command deployment: call it over HTTP", ErrInvalid, app, dep)
	}
	t := goapp.HandleTarget{Replicas: []goapp.HandleReplica{}, MaxOngoingRequests: *d.dep.MaxOngoingRequests}
	for id, r := range c.ready {
		if r.key == d.key && !r.draining {
			t.Replicas = append(t.Replicas, goapp.HandleReplica{ID: id, ActorName: goapp.ReplicaActorName(app, dep, id), Node: r.node})
		}
	}
	return t, nil
}

// reconfigureLocked sends a Go deployment's new user config to its ready
// replicas, in the background; a replica that refuses it is logged and
// its deployment's message says so.
func (c *Controller) reconfigureLocked(d *deployment) {
	uc, err := d.dep.UserConfigJSON()
	if err != nil {
		d.message = err.Error()
		return
	}
	var addrs []string
	for _, r := range c.ready {
		if r.key == d.key {
			addrs = append(addrs, strings.TrimPrefix(r.url, "http://"))
		}
	}
	_ = c.stop.Go("serve.reconfigure."+d.key.app+"."+d.key.dep, func(ctx context.Context) {
		var failed []string
		for _, a := range addrs {
			cctx, cancel := context.WithTimeout(ctx, goReplicaCallTimeout)
			if err := c.replicaCall(cctx, a, goapp.ReconfigurePath, uc); err != nil {
				failed = append(failed, err.Error())
			}
			cancel()
		}
		if len(failed) > 0 {
			c.log.Warn("serve: reconfigure", "deployment", d.key.app+"/"+d.key.dep, "failed", failed)
			c.mu.Lock()
			d.message = "reconfigure failed on " + fmt.Sprint(len(failed)) + " replicas: " + failed[0]
			c.mu.Unlock()
		}
	})
}

// goSetConfigLocked makes a Go deployment's replicaset config from cfg,
// the one setConfig made for a command deployment; c.mu is held.
func (c *Controller) goSetConfigLocked(k depKey, a *config.Application, cfg replicaset.Config) (replicaset.Config, error) {
	name, job, _ := goCode(a.ImportPath)
	if _, ok := c.goApps[name]; !ok {
		return cfg, fmt.Errorf("%w: Go application %q is not registered", ErrInvalid, name)
	}
	jobID, ok := ids.Parse(job)
	if !ok {
		return cfg, fmt.Errorf("%w: Go application %q: job %q", ErrInvalid, name, job)
	}
	if c.opts.Actors == nil {
		return cfg, fmt.Errorf("%w: this controller has no control store to create Go replicas with", ErrInvalid)
	}
	var env *pb.RuntimeEnv
	if len(a.RuntimeEnv.EnvVars) > 0 || a.RuntimeEnv.WorkingDir != "" {
		env = runtimeenv.Env{EnvVars: a.RuntimeEnv.EnvVars, WorkingDir: a.RuntimeEnv.WorkingDir}.Proto()
	}
	cfg.Start = &pb.ReplicaStart{}
	cfg.Launcher = actorLauncher{c: c, key: k, class: goapp.ClassName(k.dep), job: jobID, env: env}
	cfg.Probe = replicaset.HTTPProbe{Path: goapp.HealthPath, Header: http.Header{goapp.TokenHeader: {c.opts.UpstreamToken}}}
	return cfg, nil
}

// ApplyApplication adds app to the applied config, or replaces the
// application of its name, leaving the others as they are (Ray's
// serve.run of one application), checking the result as Check and
// Resolve do (resources against totals). Errors wrap ErrInvalid.
func (c *Controller) ApplyApplication(ctx context.Context, app config.Application, totals []map[string]float64) (*config.Config, error) {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	next := config.Config{Applications: []config.Application{}}
	if c.file != nil {
		next = *c.file
		next.Applications = slices.Clone(c.file.Applications)
	}
	c.mu.Unlock()
	if i := slices.IndexFunc(next.Applications, func(a config.Application) bool { return a.Name == app.Name }); i >= 0 {
		next.Applications[i] = app
	} else {
		next.Applications = append(next.Applications, app)
	}
	return c.checkAndApplyLocked(ctx, &next, totals)
}

// DeleteApplication removes one application (its deployments drain and
// stop); ErrNotFound when none has that name.
func (c *Controller) DeleteApplication(ctx context.Context, name string) error {
	c.applyMu.Lock()
	defer c.applyMu.Unlock()
	c.mu.Lock()
	var next config.Config
	found := false
	if c.file != nil {
		next = *c.file
		next.Applications = slices.DeleteFunc(slices.Clone(c.file.Applications), func(a config.Application) bool {
			found = found || a.Name == name
			return a.Name == name
		})
	}
	c.mu.Unlock()
	if !found {
		return fmt.Errorf("%w: no application %q", ErrNotFound, name)
	}
	_, err := c.checkAndApplyLocked(ctx, &next, nil)
	return err
}

func (c *Controller) checkAndApplyLocked(ctx context.Context, next *config.Config, totals []map[string]float64) (*config.Config, error) {
	b, err := next.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cfg, err := Check(b, totals)
	if err != nil {
		return nil, err
	}
	if _, err := c.Resolve(cfg, totals); err != nil {
		return nil, err
	}
	return cfg, c.applyLocked(ctx, cfg, true)
}
