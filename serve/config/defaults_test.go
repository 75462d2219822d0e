package config

import (
	"reflect"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestDefaults(t *testing.T) {
	c := mustParse(t, "applications: []\n")
	c.Defaults()
	if c.ProxyLocation != ProxyEveryNode || c.HTTPOptions.Host != "127.0.0.1" || *c.HTTPOptions.Port != 8000 ||
		*c.HTTPOptions.KeepAliveTimeoutS != 90 || c.HTTPOptions.RequestTimeoutS != nil || *c.GRPCOptions.Port != 9000 {
		t.Errorf("top-level defaults: %+v %+v %+v", c.ProxyLocation, c.HTTPOptions, c.GRPCOptions)
	}

	fixed := Deployment{
		NumReplicas: Replicas(1), MaxOngoingRequests: ptr(5), MaxQueuedRequests: ptr(-1),
		HealthCheckPeriodS: ptr(10.0), HealthCheckTimeoutS: ptr(30.0),
		GracefulShutdownWaitLoopS: ptr(2.0), GracefulShutdownTimeoutS: ptr(20.0),
		RayActorOptions: &RayActorOptions{NumCPUs: ptr(1.0), NumGPUs: ptr(0.0), Memory: ptr(int64(0))},
	}
	with := func(f func(d *Deployment)) Deployment {
		d := fixed
		o := *fixed.RayActorOptions
		d.RayActorOptions = &o
		f(&d)
		return d
	}
	rayAutoscaling := func(max int) *AutoscalingConfig {
		return &AutoscalingConfig{
			MinReplicas: ptr(1), InitialReplicas: ptr(1), MaxReplicas: ptr(max), TargetOngoingRequests: ptr(2.0),
			MetricsIntervalS: ptr(10.0), LookBackPeriodS: ptr(30.0), UpscaleDelayS: ptr(30.0), DownscaleDelayS: ptr(600.0),
			DownscaleToZeroDelayS: ptr(600.0), UpscalingFactor: ptr(1.0), DownscalingFactor: ptr(1.0), AggregationFunction: AggregateMean,
		}
	}
	for _, tt := range []struct {
		name string
		in   Deployment
		want Deployment
	}{
		{"nothing set: Ray's defaults", Deployment{}, fixed},
		{"fixed count kept", Deployment{NumReplicas: Replicas(4)}, with(func(d *Deployment) { d.NumReplicas = Replicas(4) })},
		{"auto: max 100", Deployment{NumReplicas: AutoReplicas()}, with(func(d *Deployment) {
			d.NumReplicas = AutoReplicas()
			d.AutoscalingConfig = rayAutoscaling(DefaultAutoMaxReplicas)
		})},
		{"autoscaling_config: max 1", Deployment{AutoscalingConfig: &AutoscalingConfig{}}, with(func(d *Deployment) {
			d.NumReplicas = nil
			d.AutoscalingConfig = rayAutoscaling(DefaultMaxReplicas)
		})},
		{"initial from min, zero delay from downscale delay, aggregation lowercased", Deployment{AutoscalingConfig: &AutoscalingConfig{
			MinReplicas: ptr(0), MaxReplicas: ptr(5), DownscaleDelayS: ptr(60.0), AggregationFunction: "MAX",
		}}, with(func(d *Deployment) {
			d.NumReplicas = nil
			a := rayAutoscaling(5)
			a.MinReplicas, a.InitialReplicas, a.DownscaleDelayS, a.DownscaleToZeroDelayS, a.AggregationFunction = ptr(0), ptr(0), ptr(60.0), ptr(60.0), AggregateMax
			d.AutoscalingConfig = a
		})},
		{"command: port env", Deployment{Command: []string{"x"}}, with(func(d *Deployment) {
			d.Command = []string{"x"}
			d.PortEnv = "PORT"
		})},
		{"resources kept", Deployment{RayActorOptions: &RayActorOptions{NumGPUs: ptr(0.5), Resources: map[string]float64{"TPU": 1}}}, with(func(d *Deployment) {
			d.RayActorOptions.NumGPUs = ptr(0.5)
			d.RayActorOptions.Resources = map[string]float64{"TPU": 1}
		})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.in
			d.Defaults()
			if !reflect.DeepEqual(d, tt.want) {
				t.Errorf("Defaults:\n got %s\nwant %s", dump(t, d), dump(t, tt.want))
			}
			d.Defaults()
			if !reflect.DeepEqual(d, tt.want) {
				t.Errorf("a second Defaults changed it: %s", dump(t, d))
			}
		})
	}

	a := Application{Deployments: []Deployment{{Name: "web", Command: []string{"x"}}, {Name: "worker", Command: []string{"y"}}}}
	a.Defaults()
	if a.Name != "default" || a.RoutePrefix != "/" || a.Ingress != "web" {
		t.Errorf("application defaults: %q %q %q", a.Name, a.RoutePrefix, a.Ingress)
	}
}

func dump(t *testing.T, d Deployment) string {
	c := Config{Applications: []Application{{Deployments: []Deployment{d}}}}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return "\n" + string(b)
}

func TestOverlay(t *testing.T) {
	code := Deployment{
		Name: "Model", NumReplicas: Replicas(2), MaxOngoingRequests: ptr(8),
		RayActorOptions: &RayActorOptions{NumGPUs: ptr(1.0), NumCPUs: ptr(2.0)},
		UserConfig:      map[string]any{"a": 1},
	}
	codeAuto := Deployment{Name: "Model", AutoscalingConfig: &AutoscalingConfig{MaxReplicas: ptr(9)}}
	for _, tt := range []struct {
		name       string
		code, file Deployment
		check      func(t *testing.T, d Deployment)
	}{
		{"file sets nothing", code, Deployment{Name: "Model"}, func(t *testing.T, d Deployment) {
			if !reflect.DeepEqual(d, code) {
				t.Errorf("got %+v", d)
			}
		}},
		{"file wins field by field", code, Deployment{Name: "Model", MaxOngoingRequests: ptr(3), HealthCheckPeriodS: ptr(1.0)}, func(t *testing.T, d Deployment) {
			if *d.MaxOngoingRequests != 3 || *d.HealthCheckPeriodS != 1 || d.NumReplicas.N != 2 || *d.RayActorOptions.NumGPUs != 1 {
				t.Errorf("got %+v", d)
			}
		}},
		{"ray_actor_options replace whole", code, Deployment{RayActorOptions: &RayActorOptions{NumCPUs: ptr(0.5)}}, func(t *testing.T, d Deployment) {
			if d.RayActorOptions.NumGPUs != nil || *d.RayActorOptions.NumCPUs != 0.5 || d.Name != "Model" {
				t.Errorf("got %+v", d.RayActorOptions)
			}
		}},
		{"file autoscaling turns the code's count off", code, Deployment{AutoscalingConfig: &AutoscalingConfig{MaxReplicas: ptr(4)}}, func(t *testing.T, d Deployment) {
			if d.NumReplicas != nil || *d.AutoscalingConfig.MaxReplicas != 4 {
				t.Errorf("got %+v", d)
			}
		}},
		{"file count turns the code's autoscaling off", codeAuto, Deployment{NumReplicas: Replicas(3)}, func(t *testing.T, d Deployment) {
			if d.AutoscalingConfig != nil || d.NumReplicas.N != 3 {
				t.Errorf("got %+v", d)
			}
		}},
		{"file auto keeps the code's autoscaling", codeAuto, Deployment{NumReplicas: AutoReplicas()}, func(t *testing.T, d Deployment) {
			if d.AutoscalingConfig == nil || !d.NumReplicas.Auto {
				t.Errorf("got %+v", d)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.code
			d.Overlay(&tt.file)
			tt.check(t, d)
			d.Defaults()
			c := Config{Applications: []Application{{ImportPath: "x.A", Deployments: []Deployment{d}}}}
			if err := c.Validate(); err != nil {
				t.Errorf("overlaid and defaulted deployment is invalid: %v", err)
			}
		})
	}
}
