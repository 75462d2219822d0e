package config

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Defaults that Defaults fills in. Where Ray Serve has the same setting
// the value is Ray's default, and the comment says so; where raygo
// differs the comment says why.
const (
	// DefaultHTTPHost is where proxies listen: loopback, so that a fresh
	// deployment is not exposed to the network until someone says so.
	// Ray's HTTPOptions (serve.start) default is 127.0.0.1 too; Ray's
	// config-file schema (HTTPOptionsSchema) defaults to 0.0.0.0 instead,
	// which raygo does not follow. Write host: 0.0.0.0 to listen on every
	// interface.
	DefaultHTTPHost = "127.0.0.1"
	// DefaultHTTPPort is Ray's default HTTP port.
	DefaultHTTPPort = 8000
	// DefaultKeepAliveTimeoutS is Ray's default idle keep-alive of proxy
	// connections (DEFAULT_UVICORN_KEEP_ALIVE_TIMEOUT_S), in seconds.
	DefaultKeepAliveTimeoutS = 90
	// DefaultGRPCPort is Ray's default gRPC proxy port. The gRPC proxy
	// runs only when grpc_servicer_functions names at least one service.
	DefaultGRPCPort = 9000

	// DefaultAppName is Ray's default application name
	// (SERVE_DEFAULT_APP_NAME).
	DefaultAppName = "default"
	// DefaultRoutePrefix is Ray's default route prefix.
	DefaultRoutePrefix = "/"

	// DefaultNumReplicas is Ray's default replica count of a deployment
	// that does not autoscale.
	DefaultNumReplicas = 1
	// DefaultMaxOngoingRequests is Ray's default limit of requests in
	// flight at one replica (DEFAULT_MAX_ONGOING_REQUESTS).
	DefaultMaxOngoingRequests = 5
	// DefaultMaxQueuedRequests is Ray's default: -1, no limit on requests
	// waiting for a replica at a caller.
	DefaultMaxQueuedRequests = -1
	// DefaultHealthCheckPeriodS is Ray's default time between health
	// checks of a replica (DEFAULT_HEALTH_CHECK_PERIOD_S).
	DefaultHealthCheckPeriodS = 10.0
	// DefaultHealthCheckTimeoutS is Ray's default time a health check may
	// take (DEFAULT_HEALTH_CHECK_TIMEOUT_S).
	DefaultHealthCheckTimeoutS = 30.0
	// DefaultGracefulShutdownWaitLoopS is Ray's default interval at which
	// a stopping replica checks whether its requests are done
	// (DEFAULT_GRACEFUL_SHUTDOWN_WAIT_LOOP_S).
	DefaultGracefulShutdownWaitLoopS = 2.0
	// DefaultGracefulShutdownTimeoutS is Ray's default time a stopping
	// replica gets before it is killed (DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_S).
	DefaultGracefulShutdownTimeoutS = 20.0
	// DefaultNumCPUs is what a replica reserves when ray_actor_options
	// does not say: one CPU, Ray Serve's default ("by default, each
	// replica reserves one CPU").
	DefaultNumCPUs = 1.0

	// DefaultPortEnv is the environment variable that tells a command
	// deployment's process the port to listen on.
	DefaultPortEnv = "PORT"
	// DefaultHealthPath is a command deployment's health_path when none
	// is given: empty, meaning the replica is healthy while its process
	// runs and accepts TCP connections on its port. Most programs serve
	// no health endpoint; set health_path to have the controller GET it
	// and require a 2xx answer instead.
	DefaultHealthPath = ""

	// Autoscaling defaults, Ray's AutoscalingConfig defaults.
	DefaultMinReplicas           = 1
	DefaultMaxReplicas           = 1   // with autoscaling_config
	DefaultAutoMaxReplicas       = 100 // with num_replicas: auto (Ray's AutoscalingConfig.default())
	DefaultTargetOngoingRequests = 2.0
	DefaultMetricsIntervalS      = 10.0
	DefaultLookBackPeriodS       = 30.0
	DefaultUpscaleDelayS         = 30.0
	DefaultDownscaleDelayS       = 600.0
	DefaultScalingFactor         = 1.0 // upscaling_factor and downscaling_factor (Ray's smoothing_factor default)
	DefaultAggregationFunction   = AggregateMean
)

// UserConfigEnv is the environment variable that carries a command
// deployment's user_config, as JSON, to its processes. A process cannot be
// reconfigured in place, so a new user_config restarts a command
// deployment's replicas, where a Go deployment's reconfigure method is
// called instead.
const UserConfigEnv = "RAYGO_SERVE_USER_CONFIG"

// Limits on a config, each checked with an error naming what was over.
const (
	// MaxConfigBytes bounds the YAML that Parse reads.
	MaxConfigBytes = 4 << 20
	// MaxYAMLNodes bounds the YAML nodes Parse visits, aliases expanded
	// (an alias bomb is refused rather than expanded).
	MaxYAMLNodes = 1_000_000
	// MaxNameLen bounds application and deployment names, which
	// become parts of actor names, metric labels and URLs. A name is
	// letters, digits, '_', '-' and '.', starting with a letter or digit.
	MaxNameLen = 64
	// MaxImportPathLen bounds import_path.
	MaxImportPathLen = 256
	// MaxRoutePrefixLen bounds route_prefix and root_path.
	MaxRoutePrefixLen = 1024
	// MaxNodesListed bounds the distinct node totals that an impossible
	// resources error lists.
	MaxNodesListed = 8
)

// ProxyLocation says where HTTP (and gRPC) proxies run, Ray's
// proxy_location.
type ProxyLocation string

// Proxy locations, Ray's values.
const (
	// ProxyEveryNode runs a proxy on every node that has a replica (Ray's
	// default).
	ProxyEveryNode ProxyLocation = "EveryNode"
	// ProxyHeadOnly runs one proxy, on the head node.
	ProxyHeadOnly ProxyLocation = "HeadOnly"
	// ProxyDisabled runs no proxy: applications are reached only through
	// handles.
	ProxyDisabled ProxyLocation = "Disabled"
)

// AggregationFunction combines a replica's metrics over the look-back
// window, Ray's aggregation_function.
type AggregationFunction string

// Aggregation functions, Ray's values.
const (
	AggregateMean AggregationFunction = "mean" // Ray's default
	AggregateMax  AggregationFunction = "max"
	AggregateMin  AggregationFunction = "min"
)

// Config is a Serve config file (Ray's ServeDeploySchema): where proxies
// run, how they listen, and the applications to run. Parse fills it as
// written: a field the file leaves out is nil or empty, so that a
// controller can tell what the file set; Defaults fills the rest.
//
// A Config is a plain value: not safe for concurrent mutation.
type Config struct {
	// ProxyLocation is where proxies run; default ProxyEveryNode.
	ProxyLocation ProxyLocation `yaml:"proxy_location,omitempty"`
	HTTPOptions   HTTPOptions   `yaml:"http_options,omitempty"`
	GRPCOptions   GRPCOptions   `yaml:"grpc_options,omitempty"`
	// Applications to run. Required in a file: an empty list means run
	// none (and so removes every running application on deploy).
	Applications []Application `yaml:"applications"`
	// Extensions holds top-level keys starting with "x-", which raygo
	// ignores: a place for YAML anchors shared by several deployments
	// (x-defaults: &defaults {...}, then <<: *defaults), as in Docker
	// Compose files. Any other unknown key is an error.
	Extensions map[string]any `yaml:",inline"`

	// lines maps a field's path to its line in the parsed YAML.
	lines map[string]int
}

// HTTPOptions configures the HTTP proxies (Ray's HTTPOptionsSchema). They
// cannot change while Serve runs.
type HTTPOptions struct {
	// Host to listen on; default DefaultHTTPHost (loopback).
	Host string `yaml:"host,omitempty"`
	// Port to listen on, 1 to 65535; default DefaultHTTPPort.
	Port *int `yaml:"port,omitempty"`
	// RootPath is mounted before every route prefix ("/serve"); default
	// none. Same form as a route prefix.
	RootPath string `yaml:"root_path,omitempty"`
	// RequestTimeoutS bounds a request end to end, in seconds, above 0;
	// default none (Ray's default: no timeout).
	RequestTimeoutS *float64 `yaml:"request_timeout_s,omitempty"`
	// KeepAliveTimeoutS is how long an idle client connection stays
	// open, whole seconds, at least 1; default DefaultKeepAliveTimeoutS.
	KeepAliveTimeoutS *int `yaml:"keep_alive_timeout_s,omitempty"`
}

// GRPCOptions configures the gRPC proxies (Ray's gRPCOptionsSchema).
type GRPCOptions struct {
	// Port to listen on, 1 to 65535; default DefaultGRPCPort.
	Port *int `yaml:"port,omitempty"`
	// GRPCServicerFunctions names the gRPC services, as registered in the
	// user's binary, that the proxy serves. Empty (the default): no gRPC
	// proxy runs, as in Ray.
	GRPCServicerFunctions []string `yaml:"grpc_servicer_functions,omitempty"`
	// RequestTimeoutS bounds a call end to end, in seconds, above 0;
	// default none (Ray's default).
	RequestTimeoutS *float64 `yaml:"request_timeout_s,omitempty"`
}

// Application is one Serve application (Ray's ServeApplicationSchema).
// It is either a Go application, named by ImportPath and built by the
// user's binary, whose Deployments (optional) override options of the
// deployments the code declares; or a command application, without
// ImportPath, whose Deployments each run a program (Command).
type Application struct {
	// Name, unique in the config; default DefaultAppName.
	Name string `yaml:"name,omitempty"`
	// RoutePrefix routes HTTP requests under it to the application's
	// ingress deployment; default "/". It starts with "/", does not end
	// with "/" unless it is "/", holds no "{" or "}", and is unique in
	// the config. Ray's route_prefix: null (no HTTP route) is not
	// supported yet.
	RoutePrefix string `yaml:"route_prefix,omitempty"`
	// ImportPath names the application as registered in the user's Go
	// binary. Empty for a command application.
	ImportPath string `yaml:"import_path,omitempty"`
	// Ingress names the command deployment that receives the
	// application's HTTP traffic; default the first deployment. Only for
	// command applications (a Go application's code says its ingress).
	Ingress string `yaml:"ingress,omitempty"`
	// RuntimeEnv is where every replica of the application runs.
	RuntimeEnv RuntimeEnv `yaml:"runtime_env,omitempty"`
	// Args are passed to the Go application's builder (Ray's args).
	// Only with ImportPath. Any YAML mapping of JSON-compatible values.
	Args map[string]any `yaml:"args,omitempty"`
	// Deployments: option overrides for a Go application, the
	// deployments themselves for a command application.
	Deployments []Deployment `yaml:"deployments,omitempty"`
}

// RuntimeEnv is an application's runtime environment, the part of Ray's
// runtime_env that raygo has: environment variables and a working
// directory. WorkingDir is a local directory (relative to the config
// file; the CLI packages and uploads it) or a package name already
// uploaded ("sha256:<hex>").
type RuntimeEnv struct {
	EnvVars    map[string]string `yaml:"env_vars,omitempty"`
	WorkingDir string            `yaml:"working_dir,omitempty"`
}

// Deployment configures one deployment (Ray's DeploymentSchema), plus, for
// a command deployment, the program its replicas run.
type Deployment struct {
	// Name, unique in its application.
	Name string `yaml:"name"`
	// NumReplicas is a fixed replica count (at least 1), or "auto" for
	// autoscaling with Ray's defaults (min 1, max 100, target 2 ongoing
	// requests) under whatever AutoscalingConfig sets. A count excludes
	// AutoscalingConfig. Default DefaultNumReplicas unless autoscaling.
	NumReplicas *NumReplicas `yaml:"num_replicas,omitempty"`
	// AutoscalingConfig makes the deployment autoscale.
	AutoscalingConfig *AutoscalingConfig `yaml:"autoscaling_config,omitempty"`
	// MaxOngoingRequests bounds requests in flight at one replica, at
	// least 1; default DefaultMaxOngoingRequests.
	MaxOngoingRequests *int `yaml:"max_ongoing_requests,omitempty"`
	// MaxQueuedRequests bounds requests waiting for a replica at one
	// caller (beyond it: 503 with Retry-After), -1 (no limit) or at
	// least 1; default DefaultMaxQueuedRequests.
	MaxQueuedRequests *int `yaml:"max_queued_requests,omitempty"`
	// UserConfig is passed to the deployment's reconfigure method (or,
	// for a command deployment, as JSON in UserConfigEnv); changing it
	// does not restart a Go deployment's replicas. Any YAML mapping of
	// JSON-compatible values.
	UserConfig map[string]any `yaml:"user_config,omitempty"`
	// RayActorOptions are the resources each replica reserves.
	RayActorOptions *RayActorOptions `yaml:"ray_actor_options,omitempty"`
	// HealthCheckPeriodS, above 0; default DefaultHealthCheckPeriodS.
	HealthCheckPeriodS *float64 `yaml:"health_check_period_s,omitempty"`
	// HealthCheckTimeoutS, above 0; default DefaultHealthCheckTimeoutS.
	HealthCheckTimeoutS *float64 `yaml:"health_check_timeout_s,omitempty"`
	// GracefulShutdownWaitLoopS, at least 0; default
	// DefaultGracefulShutdownWaitLoopS.
	GracefulShutdownWaitLoopS *float64 `yaml:"graceful_shutdown_wait_loop_s,omitempty"`
	// GracefulShutdownTimeoutS, at least 0; default
	// DefaultGracefulShutdownTimeoutS.
	GracefulShutdownTimeoutS *float64 `yaml:"graceful_shutdown_timeout_s,omitempty"`

	// Command is the argv of a command deployment's replicas: any program
	// that listens on the port named by PortEnv. Only in an application
	// without ImportPath, where it is required.
	Command []string `yaml:"command,omitempty"`
	// PortEnv names the environment variable that tells the process its
	// port; default DefaultPortEnv. Command deployments only.
	PortEnv string `yaml:"port_env,omitempty"`
	// HealthPath, if set, is an HTTP path the controller GETs to check a
	// replica (2xx is healthy); default DefaultHealthPath (none: a
	// running process that accepts connections is healthy). Command
	// deployments only.
	HealthPath string `yaml:"health_path,omitempty"`
	// Env adds environment variables to the process, over the
	// application's runtime_env.env_vars. Command deployments only.
	Env map[string]string `yaml:"env,omitempty"`
}

// IsCommand reports whether d runs a program (has a Command).
func (d *Deployment) IsCommand() bool { return len(d.Command) > 0 }

// Autoscales reports whether d autoscales: it has an AutoscalingConfig or
// num_replicas: auto.
func (d *Deployment) Autoscales() bool {
	return d.AutoscalingConfig != nil || d.NumReplicas != nil && d.NumReplicas.Auto
}

// RayActorOptions are what each replica reserves (Ray's
// RayActorOptionsSchema, less runtime_env, object_store_memory and
// accelerator_type). As for any raygo task or actor, an amount above 1
// must be whole: 0.5 CPU shares a CPU, 1.5 CPUs is an error.
type RayActorOptions struct {
	// NumCPUs; default DefaultNumCPUs.
	NumCPUs *float64 `yaml:"num_cpus,omitempty"`
	// NumGPUs; default 0.
	NumGPUs *float64 `yaml:"num_gpus,omitempty"`
	// Memory in whole bytes; default 0 (none reserved).
	Memory *int64 `yaml:"memory,omitempty"`
	// Resources are custom resources by name (not CPU, GPU or memory,
	// which have their own fields).
	Resources map[string]float64 `yaml:"resources,omitempty"`
}

// AutoscalingConfig is Ray's autoscaling_config. Every field is optional;
// Defaults fills Ray's defaults.
type AutoscalingConfig struct {
	// MinReplicas, at least 0 (0 allows scaling to zero); default
	// DefaultMinReplicas.
	MinReplicas *int `yaml:"min_replicas,omitempty"`
	// InitialReplicas is the count a new deployment starts at, between
	// MinReplicas and MaxReplicas; default MinReplicas (Ray starts at
	// min_replicas when initial_replicas is unset).
	InitialReplicas *int `yaml:"initial_replicas,omitempty"`
	// MaxReplicas, at least 1 and at least MinReplicas; default
	// DefaultMaxReplicas, or DefaultAutoMaxReplicas with num_replicas:
	// auto.
	MaxReplicas *int `yaml:"max_replicas,omitempty"`
	// TargetOngoingRequests per replica, above 0; default
	// DefaultTargetOngoingRequests.
	TargetOngoingRequests *float64 `yaml:"target_ongoing_requests,omitempty"`
	// MetricsIntervalS is how often replicas report, above 0; default
	// DefaultMetricsIntervalS.
	MetricsIntervalS *float64 `yaml:"metrics_interval_s,omitempty"`
	// LookBackPeriodS is the window metrics are aggregated over, above 0;
	// default DefaultLookBackPeriodS.
	LookBackPeriodS *float64 `yaml:"look_back_period_s,omitempty"`
	// UpscaleDelayS, at least 0; default DefaultUpscaleDelayS.
	UpscaleDelayS *float64 `yaml:"upscale_delay_s,omitempty"`
	// DownscaleDelayS, at least 0; default DefaultDownscaleDelayS.
	DownscaleDelayS *float64 `yaml:"downscale_delay_s,omitempty"`
	// DownscaleToZeroDelayS is the delay before going from 1 replica to
	// 0, at least 0; default DownscaleDelayS.
	DownscaleToZeroDelayS *float64 `yaml:"downscale_to_zero_delay_s,omitempty"`
	// UpscalingFactor multiplies each upscaling step, above 0; default
	// DefaultScalingFactor.
	UpscalingFactor *float64 `yaml:"upscaling_factor,omitempty"`
	// DownscalingFactor multiplies each downscaling step, above 0;
	// default DefaultScalingFactor.
	DownscalingFactor *float64 `yaml:"downscaling_factor,omitempty"`
	// AggregationFunction is mean, max or min (any case); default
	// DefaultAggregationFunction.
	AggregationFunction AggregationFunction `yaml:"aggregation_function,omitempty"`
}

// NumReplicas is num_replicas: a whole number, or "auto".
type NumReplicas struct {
	N    int  // the count, when not Auto
	Auto bool // num_replicas: auto
}

// Replicas returns a fixed count of n replicas.
func Replicas(n int) *NumReplicas { return &NumReplicas{N: n} }

// AutoReplicas returns num_replicas: auto.
func AutoReplicas() *NumReplicas { return &NumReplicas{Auto: true} }

// String is "auto" or the count.
func (n NumReplicas) String() string {
	if n.Auto {
		return "auto"
	}
	return strconv.Itoa(n.N)
}

// MarshalYAML writes "auto" or the count.
func (n NumReplicas) MarshalYAML() (any, error) {
	if n.Auto {
		return "auto", nil
	}
	return n.N, nil
}

// UnmarshalYAML reads a whole number or "auto".
func (n *NumReplicas) UnmarshalYAML(v *yaml.Node) error {
	if v.Kind == yaml.ScalarNode {
		switch v.ShortTag() {
		case "!!str":
			if v.Value == "auto" {
				*n = NumReplicas{Auto: true}
				return nil
			}
		case "!!int":
			i, err := strconv.Atoi(v.Value)
			if err == nil {
				*n = NumReplicas{N: i}
				return nil
			}
		}
	}
	return fmt.Errorf(`want a whole number or "auto", got %s`, describe(v))
}
