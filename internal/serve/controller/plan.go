// Package controller is Serve's controller: it turns an applied
// configuration (serve/config) into running replicas and the routing
// table every node's proxy follows (docs/serve.md).
//
// Its deciding core is pure and table-tested (plan.go): what an apply
// changes for each deployment (Plan), what a replica runs (CodeVersion:
// a change needs new replicas), and each step of a rolling update
// (RollStep).
//
// The Controller (controller.go) acts on them: one replicaset.Set per
// deployment version (Kind "serve", HTTPProbe on health_path), whose
// replicas are command processes started by node daemons, or, for a Go
// application (goapps.go), actors of the program's binary created
// through the control store; the set's OnReady and OnGone hooks rebuild
// the routing table
// (one proxy.Route per application, to its ingress deployment) and Set
// it on the head's routes.Table. Register (http.go) is the head feature
// that owns that table and serves PUT, GET and DELETE
// /api/serve/applications; `raygo serve deploy|status|shutdown` calls
// them:
//
//	ctl, _ := controller.New(controller.Options{KV: kv, Launcher: launcher, Table: table})
//	cfg, err := controller.Check(yamlBytes, nodeTotals) // every problem at once
//	err = ctl.Apply(ctx, cfg)                           // returns once under way
//	apps := ctl.Status()
//	err = ctl.Shutdown(ctx)
//
// Autoscaling (autoscaling.go): every node's proxy POSTs its load to
// POST /api/serve/load (routes.LoadReport); ReportLoad sums the fresh
// reports per deployment into its autoscale.Policy and a decision loop
// resizes the deployment to the policy's count every 0.1 s, except
// during a roll. The status shows the target and the last decision.
//
// Replicas leave routing before they stop: a replica to be removed (a
// smaller num_replicas, an old version in a roll, a deleted deployment)
// is first marked draining in the table (proxies send it nothing new and
// finish what it has), then given graceful_shutdown_wait_loop_s, then
// stopped with graceful_shutdown_timeout_s of grace. A roll starts new
// replicas (RollSurge beyond the target at a time) and stops an old one
// only for a new one that is ready, so the table always holds at least
// the target of ready replicas.
//
// Go applications (goapps.go): a program registers its code
// (Controller.Register, from serve.Run); Resolve turns an application
// naming it (import_path) into deployments with the file's options over
// the code's; an actorLauncher starts each replica as a detached actor on
// the node its set chose, answers its init and records its address,
// drains it before killing it; HandleTarget lists a deployment's ready
// replicas for handles.
package controller

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/raygo/raygo/serve/config"
)

// Change is what an apply does to a deployment.
type Change int

const (
	// Unchanged: nothing to do.
	Unchanged Change = iota
	// Create: a new deployment; start its replicas.
	Create
	// Update: only options applied to running replicas or to routing
	// change (replica count, MaxOngoingRequests, queue bound, autoscaling,
	// health checks, graceful shutdown, a Go deployment's user config):
	// no replica is replaced.
	Update
	// Roll: what the replicas run changed (CodeVersion): new replicas
	// replace the old ones step by step (RollStep), without dropping a
	// request.
	Roll
	// Delete: the deployment is gone from the config; drain and stop its
	// replicas.
	Delete
)

func (c Change) String() string {
	return [...]string{"unchanged", "create", "update", "roll", "delete"}[c]
}

// DeploymentPlan is what an apply does to one deployment, and why.
type DeploymentPlan struct {
	App, Deployment string
	Change          Change
	// Reasons name the fields that changed (for status messages and logs).
	Reasons []string
	// Version is the code version the deployment's replicas must run
	// after the apply ("" for Delete).
	Version string
}

// Plan compares the applied configuration old (nil: none) with next and
// says, for every deployment in either, what the apply does, ordered by
// application then deployment. Both must be validated with defaults
// filled (config.Config.Validate, Defaults).
func Plan(old, next *config.Config) []DeploymentPlan {
	type key struct{ app, dep string }
	type entry struct {
		app *config.Application
		dep *config.Deployment
	}
	index := func(c *config.Config) map[key]entry {
		m := map[key]entry{}
		if c == nil {
			return m
		}
		for i := range c.Applications {
			a := &c.Applications[i]
			for j := range a.Deployments {
				m[key{a.Name, a.Deployments[j].Name}] = entry{a, &a.Deployments[j]}
			}
		}
		return m
	}
	was, now := index(old), index(next)
	var out []DeploymentPlan
	for k, n := range now {
		p := DeploymentPlan{App: k.app, Deployment: k.dep, Version: CodeVersion(n.app, n.dep)}
		o, existed := was[k]
		switch {
		case !existed:
			p.Change = Create
		case CodeVersion(o.app, o.dep) != p.Version:
			p.Change, p.Reasons = Roll, codeChanges(o.app, o.dep, n.app, n.dep)
		default:
			if p.Reasons = optionChanges(o.dep, n.dep); len(p.Reasons) > 0 {
				p.Change = Update
			}
		}
		out = append(out, p)
	}
	for k := range was {
		if _, ok := now[k]; !ok {
			out = append(out, DeploymentPlan{App: k.app, Deployment: k.dep, Change: Delete})
		}
	}
	slices.SortFunc(out, func(a, b DeploymentPlan) int {
		return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Deployment, b.Deployment))
	})
	return out
}

// codeInputs is what a replica runs: everything whose change needs a new
// process. A command deployment's user config reaches it in its
// environment, so it is code for it; a Go deployment's goes to its
// reconfigure method, so it is not.
type codeInputs struct {
	ImportPath string
	Args       map[string]any
	Command    []string
	PortEnv    string
	HealthPath string
	Env        map[string]string // the application's runtime env's, with the deployment's over it
	WorkingDir string
	Resources  *config.RayActorOptions
	UserConfig map[string]any `json:",omitempty"` // command deployments only
}

func inputsOf(a *config.Application, d *config.Deployment) codeInputs {
	env := maps.Clone(a.RuntimeEnv.EnvVars)
	if env == nil && len(d.Env) > 0 {
		env = map[string]string{}
	}
	maps.Copy(env, d.Env)
	in := codeInputs{ImportPath: a.ImportPath, Args: a.Args, Command: d.Command, PortEnv: d.PortEnv, HealthPath: d.HealthPath,
		Env: env, WorkingDir: a.RuntimeEnv.WorkingDir, Resources: d.RayActorOptions}
	if d.IsCommand() {
		in.UserConfig = d.UserConfig
	}
	return in
}

// CodeVersion is a short hash of what a deployment's replicas run (its
// command or Go application, arguments, environment, working dir,
// resources, and a command deployment's user config): replicas of
// different versions are different programs.
func CodeVersion(a *config.Application, d *config.Deployment) string {
	b, err := json.Marshal(inputsOf(a, d)) // maps marshal with sorted keys
	if err != nil {
		panic(fmt.Sprintf("controller: code version of %s/%s: %v", a.Name, d.Name, err)) // validated configs marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// codeChanges names the code inputs that differ.
func codeChanges(oa *config.Application, od *config.Deployment, na *config.Application, nd *config.Deployment) []string {
	return fieldDiff(inputsOf(oa, od), inputsOf(na, nd))
}

// options are what an Update applies to running replicas or routing.
type options struct {
	NumReplicas               *config.NumReplicas
	AutoscalingConfig         *config.AutoscalingConfig
	MaxOngoingRequests        *int
	MaxQueuedRequests         *int
	HealthCheckPeriodS        *float64
	HealthCheckTimeoutS       *float64
	GracefulShutdownWaitLoopS *float64
	GracefulShutdownTimeoutS  *float64
	UserConfig                map[string]any // Go deployments (reconfigure)
}

func optionsOf(d *config.Deployment) options {
	o := options{NumReplicas: d.NumReplicas, AutoscalingConfig: d.AutoscalingConfig, MaxOngoingRequests: d.MaxOngoingRequests,
		MaxQueuedRequests: d.MaxQueuedRequests, HealthCheckPeriodS: d.HealthCheckPeriodS, HealthCheckTimeoutS: d.HealthCheckTimeoutS,
		GracefulShutdownWaitLoopS: d.GracefulShutdownWaitLoopS, GracefulShutdownTimeoutS: d.GracefulShutdownTimeoutS}
	if !d.IsCommand() {
		o.UserConfig = d.UserConfig
	}
	return o
}

func optionChanges(od, nd *config.Deployment) []string {
	return fieldDiff(optionsOf(od), optionsOf(nd))
}

// fieldDiff names the fields of two structs of one type that differ
// (compared as JSON, so equal maps in another order are equal).
func fieldDiff[T any](a, b T) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		ja, _ := json.Marshal(va.Field(i).Interface())
		jb, _ := json.Marshal(vb.Field(i).Interface())
		if string(ja) != string(jb) {
			out = append(out, f.Name)
		}
	}
	return out
}

// RollStep is one step of a rolling update toward target replicas of the
// new version, keeping at least target replicas able to serve at every
// moment (so no request is dropped): given the old version's running
// replicas, and the new version's ready and starting ones, it says how
// many new replicas to start now and how many old ones to drain and stop.
// New replicas are started at most surge at a time beyond target (at
// least 1); an old replica is stopped only for a new one that is ready.
// The update is done when it returns 0, 0 with oldRunning 0.
func RollStep(target, oldRunning, newReady, newStarting, surge int) (startNew, stopOld int) {
	surge = max(surge, 1)
	serving := oldRunning + newReady
	// Stop old replicas the ready new ones make unneeded.
	stopOld = min(oldRunning, max(serving-target, 0))
	if newReady >= target {
		stopOld = oldRunning // the new version serves on its own
	}
	// Start new ones: as many as the new version still lacks, at most
	// surge beyond what serves after the stops.
	lack := target - newReady - newStarting
	room := target + surge - (serving - stopOld) - newStarting
	startNew = max(min(lack, room), 0)
	return startNew, stopOld
}
