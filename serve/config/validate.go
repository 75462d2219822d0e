package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"slices"
	"strings"

	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
)

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	envRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
)

// Validate checks c as written or after Defaults, and returns every
// problem found in one *Error (nil when there is none), each with its
// path and, for a config from Parse, its line. It checks what Ray Serve's
// schema checks (names and route prefixes unique, route prefix form,
// num_replicas against autoscaling_config, replica bounds, ranges of every
// number) and raygo's own rules: names of MaxNameLen letters, digits, '_',
// '-' and '.'; resource amounts above 1 whole, as for any raygo task;
// a Go application (import_path) or a command application whose every
// deployment has a command, not both; user_config and args
// JSON-compatible. It does not look at the cluster: see ValidateResources.
func (c *Config) Validate() error {
	col := &collector{lines: c.lines}
	switch c.ProxyLocation {
	case "", ProxyEveryNode, ProxyHeadOnly, ProxyDisabled:
	default:
		col.add(ErrInvalidValue, "proxy_location", "%q is not one of %s, %s, %s", c.ProxyLocation, ProxyEveryNode, ProxyHeadOnly, ProxyDisabled)
	}
	c.HTTPOptions.validate(col, "http_options")
	c.GRPCOptions.validate(col, "grpc_options")
	if len(c.GRPCOptions.GRPCServicerFunctions) > 0 && valueOr(c.GRPCOptions.Port, DefaultGRPCPort) == valueOr(c.HTTPOptions.Port, DefaultHTTPPort) {
		col.add(ErrConflict, "grpc_options.port", "%d is the HTTP port too", valueOr(c.GRPCOptions.Port, DefaultGRPCPort))
	}

	if c.Applications == nil {
		col.add(ErrInvalidValue, "applications", "missing (write applications: [] to run none)")
	}
	names := map[string]int{}
	routes := map[string]int{}
	for i := range c.Applications {
		a := &c.Applications[i]
		p := fmt.Sprintf("applications[%d]", i)
		a.validate(col, p)
		name := orDefault(a.Name, DefaultAppName)
		if j, dup := names[name]; dup {
			col.add(ErrDuplicate, join(p, "name"), "application name %q is taken by applications[%d]%s", name, j, defaultNote(a.Name == ""))
		} else {
			names[name] = i
		}
		route := normalizeRoute(orDefault(a.RoutePrefix, DefaultRoutePrefix))
		if j, dup := routes[route]; dup {
			col.add(ErrDuplicate, join(p, "route_prefix"), "route prefix %q is taken by applications[%d]%s", orDefault(a.RoutePrefix, DefaultRoutePrefix), j, defaultNote(a.RoutePrefix == ""))
		} else {
			routes[route] = i
		}
	}
	return col.err()
}

func defaultNote(isDefault bool) string {
	if isDefault {
		return " (it is the default; set one)"
	}
	return ""
}

// normalizeRoute makes "/a" and "/a/" the same route.
func normalizeRoute(p string) string {
	if t := strings.TrimRight(p, "/"); t != "" {
		return t
	}
	return "/"
}

func (h *HTTPOptions) validate(col *collector, p string) {
	if h.Host != "" {
		if _, _, err := net.SplitHostPort(h.Host); err == nil {
			col.add(ErrInvalidValue, join(p, "host"), "%q includes a port; set port on its own", h.Host)
		} else if net.ParseIP(h.Host) == nil && (len(h.Host) > 253 || !hostRE.MatchString(h.Host)) {
			col.add(ErrInvalidValue, join(p, "host"), "%q is neither an IP address nor a host name", h.Host)
		}
	}
	checkPort(col, join(p, "port"), h.Port)
	if h.RootPath != "" {
		checkPath(col, join(p, "root_path"), h.RootPath, false)
	}
	positive(col, join(p, "request_timeout_s"), h.RequestTimeoutS)
	if h.KeepAliveTimeoutS != nil && *h.KeepAliveTimeoutS < 1 {
		col.add(ErrInvalidValue, join(p, "keep_alive_timeout_s"), "must be at least 1, got %d", *h.KeepAliveTimeoutS)
	}
}

func (g *GRPCOptions) validate(col *collector, p string) {
	checkPort(col, join(p, "port"), g.Port)
	seen := map[string]int{}
	for i, s := range g.GRPCServicerFunctions {
		sp := fmt.Sprintf("%s.grpc_servicer_functions[%d]", p, i)
		if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
			col.add(ErrInvalidValue, sp, "%q: want a registered service name without spaces", s)
		} else if j, dup := seen[s]; dup {
			col.add(ErrDuplicate, sp, "%q is listed at [%d] too", s, j)
		} else {
			seen[s] = i
		}
	}
	positive(col, join(p, "request_timeout_s"), g.RequestTimeoutS)
}

func checkPort(col *collector, p string, port *int) {
	if port != nil && (*port < 1 || *port > 65535) {
		col.add(ErrInvalidValue, p, "%d is not a port (1 to 65535)", *port)
	}
}

// checkPath applies Ray's route prefix rules: starts with "/", does not
// end with "/" (unless it is "/" and rootOK), no "{" or "}"; and raygo's:
// no spaces, '?' or '#', at most MaxRoutePrefixLen bytes.
func checkPath(col *collector, p, v string, rootOK bool) {
	switch {
	case !strings.HasPrefix(v, "/"):
		col.add(ErrInvalidValue, p, "%q must start with \"/\"", v)
	case v == "/" && !rootOK:
		col.add(ErrInvalidValue, p, `"/" is not a root path; leave it out`)
	case len(v) > 1 && strings.HasSuffix(v, "/"):
		col.add(ErrInvalidValue, p, "%q must not end with \"/\" (only \"/\" itself may)", v)
	case strings.ContainsAny(v, "{}"):
		col.add(ErrInvalidValue, p, "%q must not contain wildcards (\"{\" or \"}\")", v)
	case strings.ContainsAny(v, " \t\r\n?#"):
		col.add(ErrInvalidValue, p, "%q must not contain spaces, '?' or '#'", v)
	case len(v) > MaxRoutePrefixLen:
		col.add(ErrInvalidValue, p, "%d bytes long, more than the %d allowed", len(v), MaxRoutePrefixLen)
	}
}

func checkName(col *collector, p, what, v string) {
	switch {
	case v == "":
		col.add(ErrInvalidValue, p, "%s name is required", what)
	case len(v) > MaxNameLen:
		col.add(ErrInvalidValue, p, "%s name %q is %d bytes, more than the %d allowed", what, v, len(v), MaxNameLen)
	case !nameRE.MatchString(v):
		col.add(ErrInvalidValue, p, "%s name %q: want letters, digits, '_', '-' and '.', starting with a letter or digit", what, v)
	}
}

func (a *Application) validate(col *collector, p string) {
	if a.Name != "" {
		checkName(col, join(p, "name"), "application", a.Name)
	}
	if a.RoutePrefix != "" {
		checkPath(col, join(p, "route_prefix"), a.RoutePrefix, true)
	}
	goApp := a.ImportPath != ""
	if goApp {
		if len(a.ImportPath) > MaxImportPathLen || strings.ContainsAny(a.ImportPath, " \t\r\n") {
			col.add(ErrInvalidValue, join(p, "import_path"), "%q: want the application's registered name, without spaces, at most %d bytes", a.ImportPath, MaxImportPathLen)
		}
		if a.Ingress != "" {
			col.add(ErrConflict, join(p, "ingress"), "only for a command application; a Go application's code names its ingress")
		}
	} else {
		if len(a.Deployments) == 0 {
			col.add(ErrInvalidValue, p, "application %q has neither import_path (a Go application) nor deployments with a command", orDefault(a.Name, DefaultAppName))
		}
		if len(a.Args) > 0 {
			col.add(ErrConflict, join(p, "args"), "args go to a Go application's builder; this application has no import_path")
		}
		if a.Ingress != "" && !slices.ContainsFunc(a.Deployments, func(d Deployment) bool { return d.Name == a.Ingress }) {
			col.add(ErrInvalidValue, join(p, "ingress"), "%q is not one of the application's deployments", a.Ingress)
		}
	}
	checkJSON(col, join(p, "args"), a.Args)
	if err := (runtimeenv.Env{EnvVars: a.RuntimeEnv.EnvVars}).Validate(); err != nil {
		col.add(ErrInvalidValue, join(p, "runtime_env.env_vars"), "%s", trimKind(err, runtimeenv.ErrInvalid))
	}
	if wd := a.RuntimeEnv.WorkingDir; strings.HasPrefix(wd, runtimeenv.NamePrefix) {
		if _, err := runtimeenv.ParseName(wd); err != nil {
			col.add(ErrInvalidValue, join(p, "runtime_env.working_dir"), "%s", trimKind(err, runtimeenv.ErrInvalid))
		}
	} else if strings.ContainsRune(wd, 0) {
		col.add(ErrInvalidValue, join(p, "runtime_env.working_dir"), "contains a NUL byte")
	}

	seen := map[string]int{}
	for j := range a.Deployments {
		d := &a.Deployments[j]
		dp := fmt.Sprintf("%s.deployments[%d]", p, j)
		d.validate(col, dp, goApp)
		if d.Name == "" {
			continue
		}
		if k, dup := seen[d.Name]; dup {
			col.add(ErrDuplicate, join(dp, "name"), "deployment name %q is taken by deployments[%d] of this application", d.Name, k)
		} else {
			seen[d.Name] = j
		}
	}
}

func (d *Deployment) validate(col *collector, p string, goApp bool) {
	checkName(col, join(p, "name"), "deployment", d.Name)
	if n := d.NumReplicas; n != nil && !n.Auto {
		if n.N < 1 {
			col.add(ErrInvalidValue, join(p, "num_replicas"), "must be at least 1, got %d (to scale to zero, autoscale with min_replicas: 0)", n.N)
		}
		if d.AutoscalingConfig != nil {
			col.add(ErrConflict, join(p, "num_replicas"), "a fixed num_replicas and autoscaling_config are both set; write num_replicas: auto or leave it out to autoscale")
		}
	}
	if d.AutoscalingConfig != nil {
		d.AutoscalingConfig.validate(col, join(p, "autoscaling_config"), d.NumReplicas != nil && d.NumReplicas.Auto)
	}
	atLeast(col, join(p, "max_ongoing_requests"), d.MaxOngoingRequests, 1)
	if q := d.MaxQueuedRequests; q != nil && *q != -1 && *q < 1 {
		col.add(ErrInvalidValue, join(p, "max_queued_requests"), "must be -1 (no limit) or at least 1, got %d", *q)
	}
	checkJSON(col, join(p, "user_config"), d.UserConfig)
	positive(col, join(p, "health_check_period_s"), d.HealthCheckPeriodS)
	positive(col, join(p, "health_check_timeout_s"), d.HealthCheckTimeoutS)
	nonNegative(col, join(p, "graceful_shutdown_wait_loop_s"), d.GracefulShutdownWaitLoopS)
	nonNegative(col, join(p, "graceful_shutdown_timeout_s"), d.GracefulShutdownTimeoutS)
	if o := d.RayActorOptions; o != nil {
		o.validate(col, join(p, "ray_actor_options"))
	}

	switch {
	case goApp && d.IsCommand():
		col.add(ErrConflict, join(p, "command"), "a command deployment belongs to an application without import_path; this one's deployments configure the Go application's own")
	case !goApp && !d.IsCommand():
		col.add(ErrInvalidValue, join(p, "command"), "required: an application without import_path runs programs (or set import_path for a Go application)")
	}
	if d.IsCommand() && strings.TrimSpace(d.Command[0]) == "" {
		col.add(ErrInvalidValue, join(p, "command[0]"), "the program to run is empty")
	}
	if !d.IsCommand() {
		for _, f := range []struct {
			name string
			set  bool
		}{{"port_env", d.PortEnv != ""}, {"health_path", d.HealthPath != ""}, {"env", len(d.Env) > 0}} {
			if f.set {
				col.add(ErrConflict, join(p, f.name), "only for a command deployment (one with command)")
			}
		}
		return
	}
	if d.PortEnv != "" && !envRE.MatchString(d.PortEnv) {
		col.add(ErrInvalidValue, join(p, "port_env"), "%q is not an environment variable name (letters, digits, '_', not starting with a digit)", d.PortEnv)
	}
	if d.HealthPath != "" && (!strings.HasPrefix(d.HealthPath, "/") || strings.ContainsAny(d.HealthPath, " \t\r\n#")) {
		col.add(ErrInvalidValue, join(p, "health_path"), "%q: want an HTTP path starting with \"/\"", d.HealthPath)
	}
	if err := (runtimeenv.Env{EnvVars: d.Env}).Validate(); err != nil {
		col.add(ErrInvalidValue, join(p, "env"), "%s", trimKind(err, runtimeenv.ErrInvalid))
	}
	for _, reserved := range []string{orDefault(d.PortEnv, DefaultPortEnv), UserConfigEnv} {
		if _, ok := d.Env[reserved]; ok {
			col.add(ErrConflict, join(p, "env"), "sets %s, which the controller sets for each replica", reserved)
		}
	}
}

func (a *AutoscalingConfig) validate(col *collector, p string, auto bool) {
	atLeast(col, join(p, "min_replicas"), a.MinReplicas, 0)
	atLeast(col, join(p, "max_replicas"), a.MaxReplicas, 1)
	atLeast(col, join(p, "initial_replicas"), a.InitialReplicas, 0)
	lo, hi := valueOr(a.MinReplicas, DefaultMinReplicas), valueOr(a.MaxReplicas, DefaultMaxReplicas)
	if auto && a.MaxReplicas == nil {
		hi = DefaultAutoMaxReplicas
	}
	if hi < lo {
		col.add(ErrInvalidValue, join(p, "max_replicas"), "max_replicas (%d%s) must be at least min_replicas (%d%s)", hi, defaulted(a.MaxReplicas == nil), lo, defaulted(a.MinReplicas == nil))
	}
	if a.InitialReplicas != nil && (*a.InitialReplicas < lo || *a.InitialReplicas > hi) {
		col.add(ErrInvalidValue, join(p, "initial_replicas"), "%d is outside min_replicas..max_replicas (%d..%d)", *a.InitialReplicas, lo, hi)
	}
	positive(col, join(p, "target_ongoing_requests"), a.TargetOngoingRequests)
	positive(col, join(p, "metrics_interval_s"), a.MetricsIntervalS)
	positive(col, join(p, "look_back_period_s"), a.LookBackPeriodS)
	nonNegative(col, join(p, "upscale_delay_s"), a.UpscaleDelayS)
	nonNegative(col, join(p, "downscale_delay_s"), a.DownscaleDelayS)
	nonNegative(col, join(p, "downscale_to_zero_delay_s"), a.DownscaleToZeroDelayS)
	positive(col, join(p, "upscaling_factor"), a.UpscalingFactor)
	positive(col, join(p, "downscaling_factor"), a.DownscalingFactor)
	switch AggregationFunction(strings.ToLower(string(a.AggregationFunction))) {
	case "", AggregateMean, AggregateMax, AggregateMin:
	default:
		col.add(ErrInvalidValue, join(p, "aggregation_function"), "%q is not one of mean, max, min", a.AggregationFunction)
	}
}

func defaulted(isDefault bool) string {
	if isDefault {
		return ", the default"
	}
	return ""
}

func (o *RayActorOptions) validate(col *collector, p string) {
	amount := func(field, name string, v float64) {
		if err := resources.Validate(resources.Set{name: v}); err != nil {
			col.add(ErrInvalidValue, join(p, field), "%s", trimKind(err, resources.ErrInvalidRequest))
		}
	}
	if o.NumCPUs != nil {
		amount("num_cpus", resources.CPU, *o.NumCPUs)
	}
	if o.NumGPUs != nil {
		amount("num_gpus", resources.GPU, *o.NumGPUs)
	}
	if o.Memory != nil {
		amount("memory", resources.Memory, float64(*o.Memory))
	}
	for _, name := range slices.Sorted(maps.Keys(o.Resources)) {
		rp := fmt.Sprintf("%s.resources[%q]", p, name)
		own := ""
		for field, builtin := range map[string]string{"num_cpus": resources.CPU, "num_gpus": resources.GPU, "memory": resources.Memory} {
			if strings.EqualFold(name, builtin) {
				own = field
			}
		}
		if own != "" {
			col.add(ErrInvalidValue, rp, "%s has its own field: use %s", name, own)
			continue
		}
		amount(fmt.Sprintf("resources[%q]", name), name, o.Resources[name])
	}
}

// ValidateResources checks that one replica of each deployment fits on at
// least one node, given each node's total resources ("CPU", "GPU",
// "memory" in bytes, custom names, as raygo nodes report them). A replica
// that no node can ever hold is reported, naming the deployment, what it
// needs and the nodes' totals (at most MaxNodesListed distinct ones); all
// such deployments are reported in one *Error of kind
// ErrImpossibleResources. It checks the config's own view of each
// replica (ReplicaResources): for a Go application, whose code may set
// resources the file does not, check again once the code's options are
// merged. With no nodes there is nothing to check against, and it
// returns nil.
func (c *Config) ValidateResources(totals []map[string]float64) error {
	if len(totals) == 0 {
		return nil
	}
	col := &collector{lines: c.lines}
	for i := range c.Applications {
		a := &c.Applications[i]
		for j := range a.Deployments {
			d := &a.Deployments[j]
			need := resources.Set(d.ReplicaResources())
			if slices.ContainsFunc(totals, func(t map[string]float64) bool { return need.Fits(t) }) {
				continue
			}
			col.errs = append(col.errs, &FieldError{
				Path: fmt.Sprintf("applications[%d].deployments[%d]", i, j),
				Line: lineOf(c.lines, fmt.Sprintf("applications[%d].deployments[%d].name", i, j)),
				Msg:  fmt.Sprintf("impossible resources: a replica of %q (application %q) needs %s, which no node can ever hold%s; nodes' totals: %s", d.Name, orDefault(a.Name, DefaultAppName), need, shortfall(need, totals), listTotals(totals)),
				Kind: ErrImpossibleResources,
			})
		}
	}
	return col.err()
}

// ReplicaResources is what one replica of d reserves: num_cpus (default
// DefaultNumCPUs), num_gpus, memory and custom resources, the amounts
// that are not zero.
func (d *Deployment) ReplicaResources() map[string]float64 {
	out := map[string]float64{resources.CPU: DefaultNumCPUs}
	o := d.RayActorOptions
	if o == nil {
		return out
	}
	if o.NumCPUs != nil {
		out[resources.CPU] = *o.NumCPUs
	}
	if o.NumGPUs != nil {
		out[resources.GPU] = *o.NumGPUs
	}
	if o.Memory != nil {
		out[resources.Memory] = float64(*o.Memory)
	}
	for k, v := range o.Resources {
		out[k] = v
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// shortfall names the resources that exceed every node's total, if any
// does (otherwise each fits somewhere, but no node has them all).
func shortfall(need resources.Set, totals []map[string]float64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(need)) {
		most := math.Inf(-1)
		for _, t := range totals {
			most = math.Max(most, t[k])
		}
		if !(resources.Set{k: need[k]}).Fits(resources.Set{k: most}) {
			parts = append(parts, fmt.Sprintf("%s: the most any node has is %s", k, strings.Trim(resources.Set{k: most}.String(), "{}")))
		}
	}
	if len(parts) == 0 {
		return " (each resource exists somewhere, but no node has all of them)"
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// listTotals lists distinct node totals with how many nodes have each,
// at most MaxNodesListed of them.
func listTotals(totals []map[string]float64) string {
	var order []string
	count := map[string]int{}
	for _, t := range totals {
		s := resources.Set(t).String()
		if count[s] == 0 {
			order = append(order, s)
		}
		count[s]++
	}
	var parts []string
	for i, s := range order {
		if i == MaxNodesListed {
			parts = append(parts, fmt.Sprintf("and %d more", len(order)-i))
			break
		}
		n := "node"
		if count[s] > 1 {
			n = "nodes"
		}
		parts = append(parts, fmt.Sprintf("%s on %d %s", s, count[s], n))
	}
	return strings.Join(parts, ", ")
}

func checkJSON(col *collector, p string, v map[string]any) {
	if v == nil {
		return
	}
	if _, err := json.Marshal(v); err != nil {
		col.add(ErrInvalidValue, p, "not JSON-compatible (mapping keys must be strings, numbers finite): %v", err)
	}
}

func positive(col *collector, p string, v *float64) {
	if v != nil && (!(*v > 0) || math.IsInf(*v, 0)) {
		col.add(ErrInvalidValue, p, "must be a finite number above 0, got %v", *v)
	}
}

func nonNegative(col *collector, p string, v *float64) {
	if v != nil && (!(*v >= 0) || math.IsInf(*v, 0)) {
		col.add(ErrInvalidValue, p, "must be a finite number at least 0, got %v", *v)
	}
}

func atLeast(col *collector, p string, v *int, lo int) {
	if v != nil && *v < lo {
		col.add(ErrInvalidValue, p, "must be at least %d, got %d", lo, *v)
	}
}

func valueOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// trimKind drops a wrapped sentinel's text from err's message.
func trimKind(err, kind error) string {
	return strings.TrimPrefix(strings.TrimPrefix(err.Error(), kind.Error()), ": ")
}

// ValidName reports whether s is a valid application or deployment
// name: letters, digits, '_', '-' and '.', starting with a letter or
// digit, at most MaxNameLen bytes.
func ValidName(s string) bool { return len(s) <= MaxNameLen && nameRE.MatchString(s) }
