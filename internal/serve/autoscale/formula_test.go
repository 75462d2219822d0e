package autoscale

import "testing"

func TestDesiredReplicas(t *testing.T) {
	base := DefaultConfig()
	base.MinReplicas, base.MaxReplicas = 0, 100
	with := func(edit func(*Config)) Config { c := base; edit(&c); return c }
	tenth := 0.1 // a variable, so 3*tenth is float64 arithmetic: 0.30000000000000004
	damped := with(func(c *Config) { c.UpscalingFactor, c.DownscalingFactor = 0.5, 0.5 })

	tests := []struct {
		name string
		cfg  Config
		load float64
		r    Replicas
		want int
	}{
		// load / target ratios with factor 1: desired = ceil(load / 2).
		{"at target", base, 8, Replicas{4, 4}, 4},
		{"twice the target", base, 16, Replicas{4, 4}, 8},
		{"half the target", base, 4, Replicas{4, 4}, 2},
		{"just above target rounds up", base, 8.2, Replicas{4, 4}, 5},
		{"just below target", base, 7.9, Replicas{4, 4}, 4},
		{"fraction of a replica", base, 0.1, Replicas{3, 3}, 1},
		{"no load", base, 0, Replicas{3, 3}, 0},
		{"running count does not change the ratio", base, 16, Replicas{2, 4}, 8},
		{"fractional target", with(func(c *Config) { c.TargetOngoingRequests = 0.5 }), 3, Replicas{1, 1}, 6},
		{"float noise does not add a replica", with(func(c *Config) { c.TargetOngoingRequests = 0.1 }), 3 * tenth, Replicas{1, 1}, 3}, // 3.0000000000000004
		{"float noise the other way", with(func(c *Config) { c.TargetOngoingRequests = 0.2 }), 0.6, Replicas{1, 1}, 3},                // 2.9999999999999996

		// Smoothing: the step is multiplied by the factor, then rounded up.
		{"damped upscale", damped, 16, Replicas{4, 4}, 6},           // 4 + 0.5*(8-4)
		{"damped upscale rounds up", damped, 10, Replicas{4, 4}, 5}, // 4 + 0.5*(5-4) = 4.5
		{"damped downscale", damped, 4, Replicas{8, 8}, 5},          // 8 + 0.5*(2-8)
		{"damped downscale still moves by one", with(func(c *Config) { c.DownscalingFactor = 0.1 }), 14, Replicas{8, 8}, 7},
		{"amplified upscale", with(func(c *Config) { c.UpscalingFactor = 2 }), 12, Replicas{4, 4}, 8}, // 4 + 2*(6-4)
		{"amplified downscale floors at zero", with(func(c *Config) { c.DownscalingFactor = 3 }), 2, Replicas{4, 4}, 0},
		{"upscale factor leaves downscale alone", with(func(c *Config) { c.UpscalingFactor = 0.1 }), 4, Replicas{8, 8}, 2},

		// Clamps.
		{"clamped to max", with(func(c *Config) { c.MaxReplicas = 5 }), 100, Replicas{4, 4}, 5},
		{"clamped to min", with(func(c *Config) { c.MinReplicas = 3 }), 0, Replicas{4, 4}, 3},
		{"huge load stays in bounds", base, 1e300, Replicas{1, 1}, 100},

		// Nothing running.
		{"cold start", base, 5, Replicas{0, 0}, 1},
		{"cold start with amplified upscaling", with(func(c *Config) { c.UpscalingFactor = 3 }), 0.5, Replicas{0, 0}, 3},
		{"cold start keeps a larger target", base, 5, Replicas{0, 4}, 4},
		{"cold start respects min", with(func(c *Config) { c.MinReplicas = 2 }), 5, Replicas{0, 0}, 2},
		{"starting replicas keep their target", base, 0, Replicas{0, 3}, 3},
		{"idle at zero stays at zero", base, 0, Replicas{0, 0}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := DesiredReplicas(tt.cfg, tt.load, tt.r); got != tt.want {
				t.Errorf("DesiredReplicas(load %v, %+v) = %d, want %d", tt.load, tt.r, got, tt.want)
			}
		})
	}
}
