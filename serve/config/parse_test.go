package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return c
}

func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	return e.Fields
}

func TestParseExample(t *testing.T) {
	data, err := os.ReadFile("testdata/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, string(data))
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(c.Applications) != 2 {
		t.Fatalf("got %d applications, want 2", len(c.Applications))
	}
	shop, sent := c.Applications[0], c.Applications[1]
	if shop.ImportPath != "shop.App" || shop.Args["currency"] != "EUR" {
		t.Errorf("shop = %+v", shop)
	}
	if got := shop.Deployments[0].NumReplicas; got == nil || *got != (NumReplicas{N: 2}) {
		t.Errorf("Cart num_replicas = %v, want 2", got)
	}
	if got := shop.Deployments[0].UserConfig["discount_percent"]; got != 15 {
		t.Errorf("Cart user_config.discount_percent = %v (%T), want 15", got, got)
	}
	rec := shop.Deployments[1]
	if *rec.AutoscalingConfig.MinReplicas != 0 || *rec.AutoscalingConfig.MaxReplicas != 8 || *rec.RayActorOptions.NumCPUs != 0.5 {
		t.Errorf("Recommender = %+v %+v", rec.AutoscalingConfig, rec.RayActorOptions)
	}
	api := sent.Deployments[0]
	if !api.IsCommand() || api.Command[0] != "sh" || !api.NumReplicas.Auto || *api.RayActorOptions.Memory != 2<<30 {
		t.Errorf("sentiment api = %+v", api)
	}
	if sent.RuntimeEnv.WorkingDir != "./sentiment" || sent.RuntimeEnv.EnvVars["MODEL"] == "" {
		t.Errorf("sentiment runtime_env = %+v", sent.RuntimeEnv)
	}
	if err := c.ValidateResources([]map[string]float64{{"CPU": 8, "GPU": 1, "memory": 16 << 30}}); err != nil {
		t.Errorf("ValidateResources: %v", err)
	}
}

// TestGoodConfigs parses and validates configs that must be accepted.
func TestGoodConfigs(t *testing.T) {
	for _, tt := range []struct {
		name  string
		src   string
		check func(t *testing.T, c *Config)
	}{
		{"python command app", `
applications:
  - name: hello
    route_prefix: /hello
    deployments:
      - name: web
        command: [python3, -m, http.server]
        port_env: PORT
        num_replicas: 3
        env: {PYTHONUNBUFFERED: "1"}
`, func(t *testing.T, c *Config) {
			d := c.Applications[0].Deployments[0]
			if !d.IsCommand() || d.NumReplicas.N != 3 || d.Env["PYTHONUNBUFFERED"] != "1" {
				t.Errorf("got %+v", d)
			}
		}},
		{"autoscaling", `
applications:
  - import_path: app.Main
    deployments:
      - name: Model
        autoscaling_config:
          min_replicas: 0
          initial_replicas: 2
          max_replicas: 10
          target_ongoing_requests: 1.5
          upscale_delay_s: 5
          downscale_delay_s: 60
          downscale_to_zero_delay_s: 120
          upscaling_factor: 2
          downscaling_factor: 0.5
          metrics_interval_s: 1
          look_back_period_s: 10
          aggregation_function: MAX
`, func(t *testing.T, c *Config) {
			a := c.Applications[0].Deployments[0].AutoscalingConfig
			if *a.InitialReplicas != 2 || *a.TargetOngoingRequests != 1.5 || *a.UpscalingFactor != 2 || a.AggregationFunction != "MAX" {
				t.Errorf("got %+v", a)
			}
		}},
		{"num_replicas auto with autoscaling_config", `
applications:
  - import_path: app.Main
    deployments:
      - {name: M, num_replicas: auto, autoscaling_config: {min_replicas: 2}}
`, func(t *testing.T, c *Config) {
			if d := c.Applications[0].Deployments[0]; !d.Autoscales() || !d.NumReplicas.Auto {
				t.Errorf("got %+v", d)
			}
		}},
		{"user_config of any shape", `
applications:
  - import_path: app.Main
    deployments:
      - name: M
        user_config:
          threshold: 0.25
          labels: [a, b]
          nested: {deep: {deeper: true}}
          empty: null
`, func(t *testing.T, c *Config) {
			u := c.Applications[0].Deployments[0].UserConfig
			if u["threshold"] != 0.25 || !reflect.DeepEqual(u["labels"], []any{"a", "b"}) {
				t.Errorf("got %#v", u)
			}
			js, err := c.Applications[0].Deployments[0].UserConfigJSON()
			if err != nil || !strings.Contains(string(js), `"deeper":true`) {
				t.Errorf("UserConfigJSON = %s, %v", js, err)
			}
		}},
		{"anchors and merge keys", `
x-base: &base
  max_ongoing_requests: 7
  health_check_period_s: 3
applications:
  - import_path: app.Main
    deployments:
      - <<: *base
        name: A
      - <<: *base
        name: B
        max_ongoing_requests: 9
`, nil},
		{"empty application list", "applications: []\n", func(t *testing.T, c *Config) {
			if c.Applications == nil || len(c.Applications) != 0 {
				t.Errorf("Applications = %#v", c.Applications)
			}
		}},
		{"null means unset", `
http_options:
  port: ~
applications:
  - import_path: app.Main
    deployments:
      - {name: M, max_ongoing_requests: null}
`, func(t *testing.T, c *Config) {
			if c.HTTPOptions.Port != nil || c.Applications[0].Deployments[0].MaxOngoingRequests != nil {
				t.Errorf("null was not left unset")
			}
		}},
		{"whole float for an integer", `
applications:
  - import_path: app.Main
    deployments:
      - {name: M, max_ongoing_requests: 4.0, ray_actor_options: {memory: 1e9}}
`, func(t *testing.T, c *Config) {
			d := c.Applications[0].Deployments[0]
			if *d.MaxOngoingRequests != 4 || *d.RayActorOptions.Memory != 1e9 {
				t.Errorf("got %d %d", *d.MaxOngoingRequests, *d.RayActorOptions.Memory)
			}
		}},
		{"grpc and proxy options", `
proxy_location: HeadOnly
http_options: {host: 0.0.0.0, port: 8080, root_path: /serve}
grpc_options: {port: 9001, grpc_servicer_functions: [pkg.Greeter], request_timeout_s: 5}
applications: []
`, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.src)
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
			// What Validate accepts, Defaults completes into a config
			// Validate still accepts.
			c.Defaults()
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate after Defaults: %v", err)
			}
		})
	}
}

// TestParseErrors covers what Parse itself refuses: unknown fields, wrong
// types, duplicate keys, bad YAML.
func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		src  string
		kind error
		want []string // each must be the text of one FieldError, or a part of it
	}{
		{"unknown field with suggestion and line", `applications:
  - name: shop
    import_path: shop.App
    deployments:
      - name: Cart
        num_replicas: 2
      - name: Recommender
        num_replica: 3
`, ErrUnknownField, []string{`applications[0].deployments[1]: unknown field "num_replica" (line 8); did you mean num_replicas?`}},
		{"unknown top-level field", "aplications: []\n", ErrUnknownField, []string{`unknown field "aplications" (line 1); did you mean applications?`}},
		{"anchor under an unknown key", "base: &b {x: 1}\napplications: []\n", ErrUnknownField, []string{`unknown field "base" (line 1); to keep YAML anchors here, name the key x-base`}},
		{"unknown with no near field", "applications: []\nfrobnicate: 1\n", ErrUnknownField, []string{`unknown field "frobnicate" (line 2)`}},
		{"Ray's old name", `
applications:
  - import_path: a.B
    deployments: [{name: X, max_concurrent_queries: 3}]
`, ErrUnknownField, []string{`unknown field "max_concurrent_queries" (line 4); Ray renamed it: use max_ongoing_requests`}},
		{"Ray field raygo lacks", "logging_config: {}\napplications: []\n", ErrUnknownField, []string{`unknown field "logging_config" (line 1); not supported by raygo`}},
		{"host on an application", "applications:\n  - {import_path: a.B, host: 0.0.0.0}\n", ErrUnknownField, []string{`set host in the top-level http_options`}},
		{"num_replicas word", `
applications:
  - import_path: a.B
    deployments: [{name: X, num_replicas: three}]
`, ErrType, []string{`applications[0].deployments[0].num_replicas: want a whole number or "auto", got "three" (line 4)`}},
		{"fraction for an integer", `
applications:
  - import_path: a.B
    deployments:
      - name: X
        max_ongoing_requests: 2.5
`, ErrType, []string{`applications[0].deployments[0].max_ongoing_requests: want a whole number, got 2.5 (line 6)`}},
		{"string for a list", `
applications:
  - deployments:
      - name: X
        command: python3 server.py
`, ErrType, []string{`applications[0].deployments[0].command: want a list, got "python3 server.py" (line 5)`}},
		{"list for a number", "http_options:\n  port: [1]\napplications: []\n", ErrType, []string{`http_options.port: want a whole number, got a list (line 2)`}},
		{"word for a number", "http_options:\n  request_timeout_s: soon\napplications: []\n", ErrType, []string{`http_options.request_timeout_s: want a number, got "soon" (line 2)`}},
		{"mapping for user_config list", `
applications:
  - import_path: a.B
    deployments: [{name: X, user_config: [1, 2]}]
`, ErrType, []string{`user_config: want a mapping, got a list (line 4)`}},
		{"resource amount word", `
applications:
  - import_path: a.B
    deployments: [{name: X, ray_actor_options: {resources: {TPU: many}}}]
`, ErrType, []string{`ray_actor_options.resources["TPU"]: want a number, got "many"`}},
		{"not a mapping", "- a\n- b\n", ErrType, []string{`want a mapping, got a list (line 1)`}},
		{"duplicate key", "applications: []\nproxy_location: HeadOnly\nproxy_location: Disabled\n", ErrDuplicate, []string{`proxy_location: given twice (first on line 2) (line 3)`}},
		{"duplicate env key", `
applications:
  - deployments:
      - name: X
        command: [x]
        env: {A: "1", A: "2"}
`, ErrDuplicate, []string{`key "A" given twice`}},
		{"route_prefix null", "applications:\n  - {import_path: a.B, route_prefix: null}\n", ErrInvalidValue, []string{`route_prefix: null (an application without an HTTP route) is not supported by raygo yet`}},
		{"empty", "# nothing\n", ErrSyntax, []string{"the config is empty"}},
		{"two documents", "applications: []\n---\napplications: []\n", ErrSyntax, []string{"more than one YAML document"}},
		{"bad YAML", "applications:\n  - name: a\n   bad: indent\n", ErrSyntax, []string{"did not find expected"}},
		{"every problem at once", `
applications:
  - import_path: a.B
    deployment: []
    deployments:
      - name: X
        num_replicas: 1.5
        helth_check_period_s: 3
`, ErrUnknownField, []string{
			`applications[0]: unknown field "deployment" (line 4); did you mean deployments?`,
			`applications[0].deployments[0].num_replicas: want a whole number or "auto", got 1.5 (line 7)`,
			`applications[0].deployments[0]: unknown field "helth_check_period_s" (line 8); did you mean health_check_period_s?`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", c)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
			fes := fieldErrors(t, err)
			if len(tt.want) > 1 && len(fes) != len(tt.want) {
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

func TestParseLimits(t *testing.T) {
	t.Run("size", func(t *testing.T) {
		big := "applications: []\n#" + strings.Repeat("x", MaxConfigBytes)
		if _, err := Parse([]byte(big)); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "bytes, more than") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("alias cycle", func(t *testing.T) {
		_, err := Parse([]byte("x-a: &a {b: *a}\napplications: []\n"))
		if err == nil || !strings.Contains(err.Error(), "alias *a is inside its own anchor") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("merge cycle", func(t *testing.T) {
		_, err := Parse([]byte("applications:\n  - &app {<<: *app, import_path: a.B}\n"))
		if err == nil {
			t.Fatal("Parse accepted a mapping that merges itself")
		}
	})
	t.Run("alias bomb", func(t *testing.T) {
		// Nine levels of ten aliases expand to 10^9 nodes.
		var b strings.Builder
		b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i < 10; i++ {
			b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
			for j := 0; j < 10; j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("*a" + string(rune('0'+i-1)))
			}
			b.WriteString("]\n")
		}
		b.WriteString("applications:\n  - import_path: a.B\n    args: {bomb: *a9}\n")
		start := time.Now()
		_, err := Parse([]byte(b.String()))
		if err == nil || !strings.Contains(err.Error(), "YAML nodes") {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("refusing the bomb took %v", d)
		}
	})
}

func TestRoundTrip(t *testing.T) {
	data, err := os.ReadFile("testdata/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, withDefaults := range []bool{false, true} {
		c := mustParse(t, string(data))
		if withDefaults {
			c.Defaults()
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back := mustParse(t, string(out))
		if err := back.Validate(); err != nil {
			t.Fatalf("Validate of marshalled config: %v\n%s", err, out)
		}
		c.lines, back.lines = nil, nil
		if !reflect.DeepEqual(c, back) {
			t.Errorf("defaults=%v: round trip changed the config:\n%s", withDefaults, out)
		}
		again, err := back.Marshal()
		if err != nil || string(again) != string(out) {
			t.Errorf("defaults=%v: second Marshal differs:\n%s\n---\n%s", withDefaults, out, again)
		}
	}
}

func TestClosest(t *testing.T) {
	fields := []string{"health_check_period_s", "health_check_timeout_s", "max_ongoing_requests", "name", "num_replicas", "user_config"}
	for _, tt := range []struct{ in, want string }{
		{"num_replica", "num_replicas"},
		{"NUM_REPLICAS", "num_replicas"},
		{"nmae", "name"},
		{"userconfig", "user_config"},
		{"max_ongoing", "max_ongoing_requests"},
		{"replicas", "num_replicas"},
		{"health_check_timeout", "health_check_timeout_s"},
		{"zzz", ""},
		{"completely_unrelated_field", ""},
	} {
		if got := closest(tt.in, fields); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/app.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("applications: []\n"))
	f.Add([]byte("applications:\n  - deployments: [{name: a, command: [x], num_replicas: auto}]\n"))
	f.Add([]byte("a: &a {b: *a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Fields) == 0 {
				t.Fatalf("Parse error %v is not a non-empty *Error", err)
			}
			return
		}
		_ = c.Validate()
		_ = c.ValidateResources([]map[string]float64{{"CPU": 4}})
		c.Defaults()
		out, err := c.Marshal()
		if err != nil {
			return // e.g. a user_config yaml cannot write back
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("Parse(Marshal(c)) failed: %v\n%s", err, out)
		}
	})
}

func BenchmarkParseValidate(b *testing.B) {
	data, err := os.ReadFile("testdata/app.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
		c.Defaults()
	}
}
