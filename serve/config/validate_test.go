package config

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateErrors: each config parses but Validate refuses it, with
// every listed problem (and no other).
func TestValidateErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  string
		want []string // one per problem, each part of one FieldError's text
		kind error
	}{
		{"duplicate application names", `
applications:
  - {name: a, route_prefix: /a, import_path: x.A}
  - {name: a, route_prefix: /b, import_path: x.B}
`, []string{`applications[1].name: application name "a" is taken by applications[0] (line 4)`}, ErrDuplicate},
		{"duplicate default names", `
applications:
  - {route_prefix: /a, import_path: x.A}
  - {route_prefix: /b, import_path: x.B}
`, []string{`application name "default" is taken by applications[0] (it is the default; set one)`}, ErrDuplicate},
		{"duplicate route prefixes, normalized", `
applications:
  - {name: a, route_prefix: /api, import_path: x.A}
  - {name: b, route_prefix: /api/, import_path: x.B}
`, []string{
			`applications[1].route_prefix: "/api/" must not end with "/"`,
			`applications[1].route_prefix: route prefix "/api/" is taken by applications[0] (line 4)`,
		}, ErrDuplicate},
		{"duplicate default route", `
applications:
  - {name: a, import_path: x.A}
  - {name: b, route_prefix: /, import_path: x.B}
`, []string{`route prefix "/" is taken by applications[0]`}, ErrDuplicate},
		{"route prefix form", `
applications:
  - {name: a, route_prefix: api, import_path: x.A}
  - {name: b, route_prefix: "/u/{id}", import_path: x.B}
  - {name: c, route_prefix: "/a b", import_path: x.C}
`, []string{`"api" must start with "/"`, `must not contain wildcards`, `must not contain spaces`}, ErrInvalidValue},
		{"duplicate deployment names", `
applications:
  - import_path: x.A
    deployments: [{name: D}, {name: E}, {name: D}]
`, []string{`applications[0].deployments[2].name: deployment name "D" is taken by deployments[0]`}, ErrDuplicate},
		{"num_replicas and autoscaling_config", `
applications:
  - import_path: x.A
    deployments:
      - name: D
        num_replicas: 2
        autoscaling_config: {max_replicas: 4}
`, []string{`applications[0].deployments[0].num_replicas: a fixed num_replicas and autoscaling_config are both set; write num_replicas: auto or leave it out to autoscale (line 6)`}, ErrConflict},
		{"min above max", `
applications:
  - import_path: x.A
    deployments:
      - {name: D, autoscaling_config: {min_replicas: 5, max_replicas: 3}}
      - {name: E, autoscaling_config: {min_replicas: 2}}
`, []string{
			`deployments[0].autoscaling_config.max_replicas: max_replicas (3) must be at least min_replicas (5)`,
			`deployments[1].autoscaling_config.max_replicas: max_replicas (1, the default) must be at least min_replicas (2)`,
		}, ErrInvalidValue},
		{"initial outside bounds", `
applications:
  - import_path: x.A
    deployments:
      - {name: D, num_replicas: auto, autoscaling_config: {min_replicas: 2, initial_replicas: 1}}
`, []string{`initial_replicas: 1 is outside min_replicas..max_replicas (2..100)`}, ErrInvalidValue},
		{"negative and zero values", `
applications:
  - import_path: x.A
    deployments:
      - name: D
        num_replicas: 0
        max_ongoing_requests: 0
        max_queued_requests: 0
        health_check_period_s: 0
        health_check_timeout_s: -1
        graceful_shutdown_timeout_s: -2
        graceful_shutdown_wait_loop_s: .inf
      - name: E
        autoscaling_config:
          min_replicas: -1
          max_replicas: 0
          target_ongoing_requests: 0
          upscale_delay_s: -1
          downscaling_factor: -0.5
          look_back_period_s: .nan
          aggregation_function: median
`, []string{
			`num_replicas: must be at least 1, got 0`,
			`max_ongoing_requests: must be at least 1, got 0 (line 7)`,
			`max_queued_requests: must be -1 (no limit) or at least 1, got 0`,
			`health_check_period_s: must be a finite number above 0, got 0`,
			`health_check_timeout_s: must be a finite number above 0, got -1`,
			`graceful_shutdown_timeout_s: must be a finite number at least 0, got -2`,
			`graceful_shutdown_wait_loop_s: must be a finite number at least 0, got +Inf`,
			`min_replicas: must be at least 0, got -1`,
			`autoscaling_config.max_replicas: must be at least 1, got 0`,
			`target_ongoing_requests: must be a finite number above 0`,
			`upscale_delay_s: must be a finite number at least 0`,
			`downscaling_factor: must be a finite number above 0`,
			`look_back_period_s: must be a finite number above 0, got NaN`,
			`aggregation_function: "median" is not one of mean, max, min`,
		}, ErrInvalidValue},
		{"fractional resources above 1", `
applications:
  - import_path: x.A
    deployments:
      - name: D
        ray_actor_options:
          num_cpus: 1.5
          num_gpus: -1
          resources: {TPU: 2.5, GPU: 1, bad name: 1}
`, []string{
			`ray_actor_options.num_cpus: CPU = 1.5: amounts above 1 must be whole numbers`,
			`ray_actor_options.num_gpus: GPU = -1 is negative`,
			`ray_actor_options.resources["TPU"]: TPU = 2.5: amounts above 1 must be whole numbers`,
			`ray_actor_options.resources["GPU"]: GPU has its own field: use num_gpus`,
			`ray_actor_options.resources["bad name"]: bad resource name "bad name"`,
		}, ErrInvalidValue},
		{"command in a Go application", `
applications:
  - import_path: x.A
    ingress: web
    deployments: [{name: web, command: [./server]}]
`, []string{
			`applications[0].ingress: only for a command application`,
			`applications[0].deployments[0].command: a command deployment belongs to an application without import_path`,
		}, ErrConflict},
		{"no command in a command application", `
applications:
  - name: a
    args: {k: v}
    deployments: [{name: web, port_env: PORT, health_path: /h}]
`, []string{
			`applications[0].args: args go to a Go application's builder`,
			`applications[0].deployments[0].command: required: an application without import_path runs programs`,
			`applications[0].deployments[0].port_env: only for a command deployment`,
			`applications[0].deployments[0].health_path: only for a command deployment`,
		}, ErrConflict},
		{"neither import_path nor deployments", "applications:\n  - name: empty\n", []string{`applications[0]: application "empty" has neither import_path (a Go application) nor deployments with a command (line 2)`}, ErrInvalidValue},
		{"command deployment fields", `
applications:
  - name: a
    ingress: nosuch
    deployments:
      - name: web
        command: [""]
        port_env: 1PORT
        health_path: healthz
        env: {RAYGO_SERVE_USER_CONFIG: "{}", "A=B": x}
`, []string{
			`ingress: "nosuch" is not one of the application's deployments`,
			`command[0]: the program to run is empty`,
			`port_env: "1PORT" is not an environment variable name`,
			`health_path: "healthz": want an HTTP path starting with "/"`,
			`env: env_vars name "A=B"`,
			`env: sets RAYGO_SERVE_USER_CONFIG, which the controller sets for each replica`,
		}, ErrInvalidValue},
		{"ports and proxy", `
proxy_location: Everywhere
http_options: {host: "127.0.0.1:8000", port: 70000, keep_alive_timeout_s: 0, root_path: /, request_timeout_s: 0}
grpc_options: {port: 0, grpc_servicer_functions: ["a b", x.G, x.G]}
applications: []
`, []string{
			`proxy_location: "Everywhere" is not one of EveryNode, HeadOnly, Disabled (line 2)`,
			`http_options.host: "127.0.0.1:8000" includes a port`,
			`http_options.port: 70000 is not a port (1 to 65535)`,
			`http_options.root_path: "/" is not a root path`,
			`http_options.request_timeout_s: must be a finite number above 0`,
			`http_options.keep_alive_timeout_s: must be at least 1, got 0`,
			`grpc_options.port: 0 is not a port`,
			`grpc_options.grpc_servicer_functions[0]: "a b": want a registered service name`,
			`grpc_options.grpc_servicer_functions[2]: "x.G" is listed at [1] too`,
		}, ErrInvalidValue},
		{"grpc port is the http port", `
http_options: {port: 9000}
grpc_options: {grpc_servicer_functions: [x.G]}
applications: []
`, []string{`grpc_options.port: 9000 is the HTTP port too`}, ErrConflict},
		{"names", `
applications:
  - name: "my app"
    import_path: "x A"
    deployments: [{name: ""}, {name: "` + strings.Repeat("d", MaxNameLen+1) + `"}]
`, []string{
			`application name "my app": want letters, digits`,
			`import_path: "x A": want the application's registered name`,
			`deployments[0].name: deployment name is required`,
			`bytes, more than the 64 allowed`,
		}, ErrInvalidValue},
		{"user_config not JSON", `
applications:
  - import_path: x.A
    deployments:
      - {name: D, user_config: {weights: {1: a}}}
      - {name: E, user_config: {x: .inf}}
`, []string{
			`deployments[0].user_config: not JSON-compatible`,
			`deployments[1].user_config: not JSON-compatible`,
		}, ErrInvalidValue},
		{"applications missing", "proxy_location: HeadOnly\n", []string{`applications: missing (write applications: [] to run none)`}, ErrInvalidValue},
		{"runtime_env", `
applications:
  - import_path: x.A
    runtime_env: {working_dir: "sha256:nothex", env_vars: {"": x}}
`, []string{`runtime_env.env_vars: env_vars name ""`, `runtime_env.working_dir:`}, ErrInvalidValue},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.src)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error is not %v:\n%v", tt.kind, err)
			}
			fes := fieldErrors(t, err)
			if len(fes) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(fes), len(tt.want), err)
			}
			for _, w := range tt.want {
				found := false
				for _, fe := range fes {
					found = found || strings.Contains(fe.Error(), w)
				}
				if !found {
					t.Errorf("no problem reads %q; got:\n%v", w, err)
				}
			}
		})
	}
}

// TestValidateBuiltInGo: a Config built in Go (no lines) validates the
// same, with paths and no line numbers.
func TestValidateBuiltInGo(t *testing.T) {
	c := &Config{Applications: []Application{{
		ImportPath:  "x.A",
		Deployments: []Deployment{{Name: "D", NumReplicas: Replicas(0)}},
	}}}
	err := c.Validate()
	fes := fieldErrors(t, err)
	if len(fes) != 1 || fes[0].Error() != "applications[0].deployments[0].num_replicas: must be at least 1, got 0 (to scale to zero, autoscale with min_replicas: 0)" {
		t.Fatalf("got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "serve config: applications[0]") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestValidateResources(t *testing.T) {
	src := `
applications:
  - import_path: x.A
    deployments:
      - {name: small}
      - {name: zero, ray_actor_options: {num_cpus: 0}}
      - {name: gpu2, ray_actor_options: {num_gpus: 2}}
      - {name: split, ray_actor_options: {num_gpus: 1, resources: {TPU: 1}}}
      - {name: big, ray_actor_options: {memory: 68719476736}}
`
	c := mustParse(t, src)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	nodes := []map[string]float64{
		{"CPU": 8, "GPU": 1, "memory": 32 << 30},
		{"CPU": 8, "GPU": 1, "memory": 32 << 30},
		{"CPU": 4, "TPU": 4, "memory": 16 << 30},
	}
	err := c.ValidateResources(nodes)
	if !errors.Is(err, ErrImpossibleResources) {
		t.Fatalf("err = %v", err)
	}
	fes := fieldErrors(t, err)
	want := []string{
		`applications[0].deployments[2]: impossible resources: a replica of "gpu2" (application "default") needs {CPU: 1, GPU: 2}, which no node can ever hold (GPU: the most any node has is GPU: 1); nodes' totals: {CPU: 8, GPU: 1, memory: 32.0GiB} on 2 nodes, {CPU: 4, TPU: 4, memory: 16.0GiB} on 1 node (line 7)`,
		`applications[0].deployments[3]: impossible resources: a replica of "split" (application "default") needs {CPU: 1, GPU: 1, TPU: 1}, which no node can ever hold (each resource exists somewhere, but no node has all of them)`,
		`applications[0].deployments[4]: impossible resources: a replica of "big" (application "default") needs {CPU: 1, memory: 64.0GiB}`,
	}
	if len(fes) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(fes), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(fes[i].Error(), w) {
			t.Errorf("problem %d:\n got %s\nwant %s", i, fes[i].Error(), w)
		}
	}
	if err := c.ValidateResources(nil); err != nil {
		t.Errorf("with no nodes: %v", err)
	}
	if err := c.ValidateResources([]map[string]float64{{"CPU": 1, "GPU": 2, "TPU": 1, "memory": 64 << 30}}); err != nil {
		t.Errorf("with a node that holds everything: %v", err)
	}
}

func TestListTotalsLimit(t *testing.T) {
	var nodes []map[string]float64
	for i := range MaxNodesListed + 3 {
		nodes = append(nodes, map[string]float64{"CPU": float64(i + 1)})
	}
	got := listTotals(nodes)
	if !strings.HasSuffix(got, "and 3 more") || strings.Count(got, " on 1 node") != MaxNodesListed {
		t.Errorf("listTotals = %s", got)
	}
}
