package autoscale

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestDefaultConfigsAreRays(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("DefaultConfig does not validate: %v", err)
	}
	want := Config{
		MinReplicas: 1, MaxReplicas: 1, TargetOngoingRequests: 2,
		MetricsInterval: 10 * time.Second, LookBackPeriod: 30 * time.Second,
		Aggregation: Mean, UpscaleDelay: 30 * time.Second, DownscaleDelay: 600 * time.Second,
		UpscalingFactor: 1, DownscalingFactor: 1,
	}
	if d != want {
		t.Errorf("DefaultConfig() = %+v, want %+v", d, want)
	}
	a := AutoConfig()
	if err := a.Validate(); err != nil {
		t.Fatalf("AutoConfig does not validate: %v", err)
	}
	if a.MinReplicas != 1 || a.MaxReplicas != 100 || a.TargetOngoingRequests != 2 {
		t.Errorf("AutoConfig() = %+v, want 1..100 replicas, target 2", a)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want []string // substrings of the error; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"scale to zero", func(c *Config) { c.MinReplicas, c.MaxReplicas = 0, 5 }, nil},
		{"zero delays", func(c *Config) {
			c.UpscaleDelay, c.DownscaleDelay, c.DownscaleToZeroDelay = 0, 0, ptr(time.Duration(0))
		}, nil},
		{"initial in range", func(c *Config) { c.MinReplicas, c.MaxReplicas, c.InitialReplicas = 1, 5, ptr(3) }, nil},
		{"fractional target", func(c *Config) { c.TargetOngoingRequests = 0.5 }, nil},
		{"min > max", func(c *Config) { c.MinReplicas, c.MaxReplicas = 3, 2 }, []string{"MinReplicas (3) is greater than MaxReplicas (2)"}},
		{"negative min", func(c *Config) { c.MinReplicas = -1 }, []string{"MinReplicas is -1"}},
		{"zero max", func(c *Config) { c.MinReplicas, c.MaxReplicas = 0, 0 }, []string{"MaxReplicas is 0, must be >= 1"}},
		{"initial below min", func(c *Config) { c.MinReplicas, c.MaxReplicas, c.InitialReplicas = 2, 5, ptr(1) }, []string{"InitialReplicas is 1, must lie in [MinReplicas, MaxReplicas] = [2, 5]"}},
		{"initial above max", func(c *Config) { c.MaxReplicas, c.InitialReplicas = 5, ptr(6) }, []string{"InitialReplicas is 6"}},
		{"zero target", func(c *Config) { c.TargetOngoingRequests = 0 }, []string{"TargetOngoingRequests is 0"}},
		{"negative target", func(c *Config) { c.TargetOngoingRequests = -2 }, []string{"TargetOngoingRequests is -2"}},
		{"NaN target", func(c *Config) { c.TargetOngoingRequests = math.NaN() }, []string{"TargetOngoingRequests is NaN"}},
		{"infinite target", func(c *Config) { c.TargetOngoingRequests = math.Inf(1) }, []string{"TargetOngoingRequests is +Inf"}},
		{"zero metrics interval", func(c *Config) { c.MetricsInterval = 0 }, []string{"MetricsInterval is 0s, must be > 0"}},
		{"zero look-back", func(c *Config) { c.LookBackPeriod = 0 }, []string{"LookBackPeriod is 0s"}},
		{"bad aggregation", func(c *Config) { c.Aggregation = "median" }, []string{`Aggregation is "median"`}},
		{"empty aggregation", func(c *Config) { c.Aggregation = "" }, []string{`Aggregation is ""`}},
		{"negative upscale delay", func(c *Config) { c.UpscaleDelay = -time.Second }, []string{"UpscaleDelay is -1s"}},
		{"negative downscale delay", func(c *Config) { c.DownscaleDelay = -time.Second }, []string{"DownscaleDelay is -1s"}},
		{"negative to-zero delay", func(c *Config) { c.DownscaleToZeroDelay = ptr(-time.Second) }, []string{"DownscaleToZeroDelay is -1s"}},
		{"zero upscaling factor", func(c *Config) { c.UpscalingFactor = 0 }, []string{"UpscalingFactor is 0"}},
		{"negative downscaling factor", func(c *Config) { c.DownscalingFactor = -1 }, []string{"DownscalingFactor is -1"}},
		{"zero Config reports every missing field", func(c *Config) { *c = Config{} }, []string{
			"MaxReplicas is 0", "TargetOngoingRequests is 0", "MetricsInterval is 0s",
			"LookBackPeriod is 0s", `Aggregation is ""`, "UpscalingFactor is 0", "DownscalingFactor is 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalidConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			if _, perr := NewPolicy(c); !errors.Is(perr, ErrInvalidConfig) {
				t.Errorf("NewPolicy() error = %v, want ErrInvalidConfig", perr)
			}
		})
	}
}

func TestClampAndInitialTarget(t *testing.T) {
	c := DefaultConfig()
	c.MinReplicas, c.MaxReplicas = 2, 5
	for _, tt := range []struct {
		initial       *int
		current, want int
	}{
		{nil, 0, 2}, // a new deployment starts at MinReplicas
		{nil, 3, 3},
		{nil, 9, 5},
		{ptr(4), 0, 4}, // InitialReplicas wins on (re)deploy
		{ptr(4), 2, 4},
	} {
		c.InitialReplicas = tt.initial
		if got := c.InitialTarget(tt.current); got != tt.want {
			t.Errorf("InitialTarget(%d) with InitialReplicas %v = %d, want %d", tt.current, tt.initial, got, tt.want)
		}
	}
	for in, want := range map[int]int{-1: 2, 0: 2, 2: 2, 4: 4, 5: 5, 6: 5} {
		if got := c.Clamp(in); got != want {
			t.Errorf("Clamp(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestStaleAfter(t *testing.T) {
	for _, tt := range []struct{ interval, want time.Duration }{
		{500 * time.Millisecond, 10 * time.Second},
		{5 * time.Second, 10 * time.Second},
		{10 * time.Second, 20 * time.Second}, // Ray's default interval
	} {
		c := DefaultConfig()
		c.MetricsInterval = tt.interval
		if got := c.StaleAfter(); got != tt.want {
			t.Errorf("StaleAfter() with MetricsInterval %v = %v, want %v", tt.interval, got, tt.want)
		}
	}
}
