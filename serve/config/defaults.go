package config

import "strings"

// Defaults fills every setting c leaves unset with its default (the
// Default* constants: Ray's defaults, except DefaultHTTPHost), so that
// after it every pointer field of c is set and every deployment either
// has a fixed NumReplicas or an AutoscalingConfig with every field set.
// It changes nothing c sets, and keeps num_replicas: auto as written.
// Call it after Validate: on an invalid config it fills what it can and
// leaves the rest for Validate to report.
//
// For a Go application, whose code declares options of its own, a
// controller overlays the file's deployment options on the code's
// (Deployment.Overlay) before filling defaults, so that a default never
// hides a value the code set.
func (c *Config) Defaults() {
	if c.ProxyLocation == "" {
		c.ProxyLocation = ProxyEveryNode
	}
	h := &c.HTTPOptions
	if h.Host == "" {
		h.Host = DefaultHTTPHost
	}
	setDefault(&h.Port, DefaultHTTPPort)
	setDefault(&h.KeepAliveTimeoutS, DefaultKeepAliveTimeoutS)
	setDefault(&c.GRPCOptions.Port, DefaultGRPCPort)
	if c.Applications == nil {
		c.Applications = []Application{}
	}
	for i := range c.Applications {
		c.Applications[i].Defaults()
	}
}

// Defaults fills a's unset settings and its deployments' (see
// Config.Defaults): name DefaultAppName, route prefix "/", and for a
// command application the ingress, its first deployment. A Go
// application's deployments are left as they are: they override the
// code's options (Overlay), whose result gets the defaults.
func (a *Application) Defaults() {
	if a.Name == "" {
		a.Name = DefaultAppName
	}
	if a.RoutePrefix == "" {
		a.RoutePrefix = DefaultRoutePrefix
	}
	if a.ImportPath == "" && a.Ingress == "" && len(a.Deployments) > 0 {
		a.Ingress = a.Deployments[0].Name
	}
	if a.ImportPath != "" {
		// A Go application's deployments here are overrides of the
		// code's options (Overlay): an unset field keeps the code's
		// value, so defaults are filled after overlaying.
		return
	}
	for i := range a.Deployments {
		a.Deployments[i].Defaults()
	}
}

// Defaults fills d's unset settings (see Config.Defaults). A deployment
// with num_replicas: auto gets Ray's autoscaling defaults for it (max
// DefaultAutoMaxReplicas); one with an autoscaling_config gets the rest
// of Ray's AutoscalingConfig defaults; any other gets DefaultNumReplicas.
func (d *Deployment) Defaults() {
	auto := d.NumReplicas != nil && d.NumReplicas.Auto
	switch {
	case auto || d.AutoscalingConfig != nil && d.NumReplicas == nil:
		if d.AutoscalingConfig == nil {
			d.AutoscalingConfig = &AutoscalingConfig{}
		}
		d.AutoscalingConfig.defaults(auto)
	case d.NumReplicas == nil:
		d.NumReplicas = Replicas(DefaultNumReplicas)
	}
	setDefault(&d.MaxOngoingRequests, DefaultMaxOngoingRequests)
	setDefault(&d.MaxQueuedRequests, DefaultMaxQueuedRequests)
	setDefault(&d.HealthCheckPeriodS, DefaultHealthCheckPeriodS)
	setDefault(&d.HealthCheckTimeoutS, DefaultHealthCheckTimeoutS)
	setDefault(&d.GracefulShutdownWaitLoopS, DefaultGracefulShutdownWaitLoopS)
	setDefault(&d.GracefulShutdownTimeoutS, DefaultGracefulShutdownTimeoutS)
	if d.RayActorOptions == nil {
		d.RayActorOptions = &RayActorOptions{}
	}
	o := d.RayActorOptions
	setDefault(&o.NumCPUs, DefaultNumCPUs)
	setDefault(&o.NumGPUs, 0)
	setDefault(&o.Memory, 0)
	if d.IsCommand() && d.PortEnv == "" {
		d.PortEnv = DefaultPortEnv
	}
}

// defaults fills Ray's AutoscalingConfig defaults; auto is num_replicas:
// auto, whose max_replicas default is DefaultAutoMaxReplicas.
func (a *AutoscalingConfig) defaults(auto bool) {
	setDefault(&a.MinReplicas, DefaultMinReplicas)
	if auto {
		setDefault(&a.MaxReplicas, DefaultAutoMaxReplicas)
	} else {
		setDefault(&a.MaxReplicas, DefaultMaxReplicas)
	}
	setDefault(&a.InitialReplicas, *a.MinReplicas)
	setDefault(&a.TargetOngoingRequests, DefaultTargetOngoingRequests)
	setDefault(&a.MetricsIntervalS, DefaultMetricsIntervalS)
	setDefault(&a.LookBackPeriodS, DefaultLookBackPeriodS)
	setDefault(&a.UpscaleDelayS, DefaultUpscaleDelayS)
	setDefault(&a.DownscaleDelayS, DefaultDownscaleDelayS)
	setDefault(&a.DownscaleToZeroDelayS, *a.DownscaleDelayS)
	setDefault(&a.UpscalingFactor, DefaultScalingFactor)
	setDefault(&a.DownscalingFactor, DefaultScalingFactor)
	a.AggregationFunction = AggregationFunction(strings.ToLower(string(a.AggregationFunction)))
	if a.AggregationFunction == "" {
		a.AggregationFunction = DefaultAggregationFunction
	}
}

// Overlay sets on d every option that o sets, the rule for a config
// file's deployment options (o) over those a Go application's code
// declares (d): what the file sets wins, the rest keeps the code's value.
// As in Ray, a value replaces whole: a file's ray_actor_options,
// autoscaling_config or user_config replaces the code's rather than
// merging with it. A file's fixed num_replicas turns the code's
// autoscaling off, and a file's autoscaling_config (without
// num_replicas) turns the code's fixed count off. d's Name is kept.
// Command-deployment fields are not overlaid (a Go application has none).
func (d *Deployment) Overlay(o *Deployment) {
	if o.NumReplicas != nil {
		n := *o.NumReplicas
		d.NumReplicas = &n
		if !n.Auto && o.AutoscalingConfig == nil {
			d.AutoscalingConfig = nil
		}
	}
	if o.AutoscalingConfig != nil {
		a := *o.AutoscalingConfig
		d.AutoscalingConfig = &a
		if o.NumReplicas == nil && d.NumReplicas != nil && !d.NumReplicas.Auto {
			d.NumReplicas = nil
		}
	}
	overlay(&d.MaxOngoingRequests, o.MaxOngoingRequests)
	overlay(&d.MaxQueuedRequests, o.MaxQueuedRequests)
	if o.UserConfig != nil {
		d.UserConfig = o.UserConfig
	}
	if o.RayActorOptions != nil {
		r := *o.RayActorOptions
		d.RayActorOptions = &r
	}
	overlay(&d.HealthCheckPeriodS, o.HealthCheckPeriodS)
	overlay(&d.HealthCheckTimeoutS, o.HealthCheckTimeoutS)
	overlay(&d.GracefulShutdownWaitLoopS, o.GracefulShutdownWaitLoopS)
	overlay(&d.GracefulShutdownTimeoutS, o.GracefulShutdownTimeoutS)
}

func setDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

func overlay[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}
