package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve/config"
)

// Reconfigurable is implemented by a deployment's value that takes a
// user config (Ray's reconfigure method): called once after the
// constructor when the deployment has a user_config, and again on every
// replica, in place, when an apply changes only the user config.
// userConfig is the config's JSON. An error fails the replica's start
// (it is replaced), or the apply's reconfigure (the replica is replaced).
type Reconfigurable interface {
	Reconfigure(ctx context.Context, userConfig json.RawMessage) error
}

// HealthChecker is implemented by a value that can say it is unhealthy
// (Ray's check_health): called every health_check_period_s within
// health_check_timeout_s; an error (or a timeout) replaces the replica.
type HealthChecker interface {
	CheckHealth(ctx context.Context) error
}

// GRPCService is implemented by a value that serves gRPC: its replica
// makes a grpc.Server, lets RegisterGRPC register the value's services
// on it, and serves them on its listener (cleartext HTTP/2) beside the
// HTTP handler, so that the gRPC proxies of the nodes (`raygo start
// --serve-grpc-port`) route calls to it by the "application" metadata,
// as Ray's gRPC ingress does for grpc_servicer_functions.
type GRPCService interface {
	RegisterGRPC(s *grpc.Server)
}

// Shutdowner is implemented by a value that releases what it holds when
// its replica stops (after the requests in flight, or the drain
// timeout).
type Shutdowner interface {
	Shutdown(ctx context.Context) error
}

// Deployment is a Go deployment: a type whose values serve requests,
// HTTP ones when *T is an http.Handler, and typed method calls through
// handles (Method0, Method1). Its replicas are actors of the program's
// binary, created by the Serve controller on the nodes it picks. Make
// one with NewDeployment at package initialization, like a ray.Actor0
// class: every process of the program registers the same deployments.
type Deployment[T any] struct {
	name  string
	ctor  func(context.Context) (*T, error)
	cfg   config.Deployment
	http  bool
	class *ray.ActorClass0[replica[T]]
}

// Option sets a deployment option, as the code declares it; an
// application's config file (raygo serve deploy) overrides it.
type Option func(*config.Deployment)

// NumReplicas fixes the replica count (default 1).
func NumReplicas(n int) Option {
	return func(d *config.Deployment) { d.NumReplicas = config.Replicas(n) }
}

// Autoscaling scales the deployment with Ray's policy between min and max
// replicas (see config.AutoscalingConfig for every knob and its default).
func Autoscaling(a config.AutoscalingConfig) Option {
	return func(d *config.Deployment) { d.AutoscalingConfig = &a; d.NumReplicas = nil }
}

// MaxOngoingRequests bounds the requests each replica serves at once
// (default 5, Ray's).
func MaxOngoingRequests(n int) Option {
	return func(d *config.Deployment) { d.MaxOngoingRequests = &n }
}

// MaxQueuedRequests bounds the requests waiting for a replica at each
// proxy and handle (default -1: no bound).
func MaxQueuedRequests(n int) Option {
	return func(d *config.Deployment) { d.MaxQueuedRequests = &n }
}

// NumCPUs is what each replica reserves (default 1).
func NumCPUs(n float64) Option {
	return func(d *config.Deployment) { actorOptions(d).NumCPUs = &n }
}

// NumGPUs is what each replica reserves (default 0).
func NumGPUs(n float64) Option {
	return func(d *config.Deployment) { actorOptions(d).NumGPUs = &n }
}

// Resources are custom resources each replica reserves.
func Resources(r map[string]float64) Option {
	return func(d *config.Deployment) { actorOptions(d).Resources = r }
}

// UserConfig is passed to the value's Reconfigure (JSON-compatible
// values only).
func UserConfig(c map[string]any) Option {
	return func(d *config.Deployment) { d.UserConfig = c }
}

// HealthCheck sets health_check_period_s and health_check_timeout_s
// (defaults 10 s and 30 s, Ray's).
func HealthCheck(periodS, timeoutS float64) Option {
	return func(d *config.Deployment) { d.HealthCheckPeriodS, d.HealthCheckTimeoutS = &periodS, &timeoutS }
}

// GracefulShutdown sets graceful_shutdown_wait_loop_s (how long a
// replica being removed keeps finishing requests after proxies stop
// sending it new ones) and graceful_shutdown_timeout_s (the drain
// timeout: then its value's Shutdown runs and it stops) (defaults 2 s
// and 20 s, Ray's).
func GracefulShutdown(waitLoopS, timeoutS float64) Option {
	return func(d *config.Deployment) {
		d.GracefulShutdownWaitLoopS, d.GracefulShutdownTimeoutS = &waitLoopS, &timeoutS
	}
}

func actorOptions(d *config.Deployment) *config.RayActorOptions {
	if d.RayActorOptions == nil {
		d.RayActorOptions = &config.RayActorOptions{}
	}
	return d.RayActorOptions
}

// NewDeployment registers a Go deployment named name (letters, digits,
// '_', '-', '.'; unique in the program): ctor makes each replica's value.
// Call it at package initialization. It panics on a bad name or an option
// the config would refuse, naming it, as ray.Actor0 does for a bad
// registration.
func NewDeployment[T any](name string, ctor func(context.Context) (*T, error), opts ...Option) *Deployment[T] {
	if !goapp.ValidName(name) {
		panic(fmt.Sprintf("serve: NewDeployment(%q): want letters, digits, '_', '-' and '.', starting with a letter or digit, at most %d bytes", name, config.MaxNameLen))
	}
	if ctor == nil {
		panic(fmt.Sprintf("serve: NewDeployment(%q): nil constructor", name))
	}
	d := &Deployment[T]{name: name, ctor: ctor, cfg: config.Deployment{Name: name}}
	for _, o := range opts {
		o(&d.cfg)
	}
	check := config.Config{Applications: []config.Application{{Name: "check", ImportPath: "check", Deployments: []config.Deployment{d.cfg}}}}
	if err := check.Validate(); err != nil {
		panic(fmt.Sprintf("serve: NewDeployment(%q): %v", name, err))
	}
	_, d.http = any((*T)(nil)).(http.Handler)
	d.class = ray.Actor0(func(ctx context.Context) (*replica[T], error) { return startReplica(ctx, d) },
		ray.RegisterName(goapp.ClassName(name)))
	return d
}

// Name is the deployment's name.
func (d *Deployment[T]) Name() string { return d.name }

func (d *Deployment[T]) deploymentName() string { return d.name }

func (d *Deployment[T]) registration() goapp.Deployment {
	return goapp.Deployment{Name: d.name, Class: d.class.Name(), HTTP: d.http, Config: d.cfg}
}

// Deployer is a deployment of any type, as an Application lists it.
type Deployer interface {
	deploymentName() string
	registration() goapp.Deployment
}
