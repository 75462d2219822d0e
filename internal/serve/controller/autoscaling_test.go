package controller

import (
	"errors"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/serve/autoscale"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/serve/config"
)

func TestSameConfig(t *testing.T) {
	one, two := 1, 2
	z1, z2 := time.Second, 2*time.Second
	base := autoscale.DefaultConfig()
	with := func(f func(*autoscale.Config)) autoscale.Config { c := base; f(&c); return c }
	for _, tc := range []struct {
		name string
		a, b autoscale.Config
		want bool
	}{
		{"equal", base, base, true},
		{"initial same value, other pointer", with(func(c *autoscale.Config) { c.InitialReplicas = &one }), with(func(c *autoscale.Config) { v := 1; c.InitialReplicas = &v }), true},
		{"initial differs", with(func(c *autoscale.Config) { c.InitialReplicas = &one }), with(func(c *autoscale.Config) { c.InitialReplicas = &two }), false},
		{"initial set and unset", with(func(c *autoscale.Config) { c.InitialReplicas = &one }), base, false},
		{"to-zero delay differs", with(func(c *autoscale.Config) { c.DownscaleToZeroDelay = &z1 }), with(func(c *autoscale.Config) { c.DownscaleToZeroDelay = &z2 }), false},
		{"max differs", base, with(func(c *autoscale.Config) { c.MaxReplicas = 5 }), false},
	} {
		if got := sameConfig(tc.a, tc.b); got != tc.want {
			t.Errorf("%s: sameConfig = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReportLoadSumsFreshNodes feeds reports from two nodes and checks
// the policy sees their sum, and only the fresh one's once the other is
// stale.
func TestReportLoadSumsFreshNodes(t *testing.T) {
	lookBack := 0.5
	ac := &config.AutoscalingConfig{LookBackPeriodS: &lookBack, AggregationFunction: config.AggregateMax}
	d := &config.Deployment{Name: "d", AutoscalingConfig: ac}
	d.Defaults()
	pc := policyConfig(d.AutoscalingConfig)
	pol, err := autoscale.NewPolicy(pc)
	if err != nil {
		t.Fatal(err)
	}
	c := &Controller{deps: map[depKey]*deployment{{"a", "d"}: {key: depKey{"a", "d"}, policy: pol}}, loads: map[string]nodeLoad{}}
	t0 := time.Unix(1000, 0)
	load := func(n, q int) []routes.DeploymentLoad {
		return []routes.DeploymentLoad{{App: "a", Deployment: "d", InFlight: n, Queued: q}, {App: "a", Deployment: "other", InFlight: 50}}
	}
	if err := c.ReportLoad(t0, routes.LoadReport{Node: "n1", Deployments: load(2, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportLoad(t0.Add(time.Millisecond), routes.LoadReport{Node: "n2", Deployments: load(4, 0)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := pol.Load(t0.Add(time.Millisecond)); got != 7 {
		t.Fatalf("load after two nodes' reports = %v, want 7 (3 + 4)", got)
	}
	late := t0.Add(pc.StaleAfter() + 2*time.Second)
	for _, at := range []time.Time{late.Add(-time.Second), late} {
		if err := c.ReportLoad(at, routes.LoadReport{Node: "n2", Deployments: load(1, 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := pol.Load(late); got != 1 {
		t.Fatalf("load with n1's report stale = %v, want 1", got)
	}
	for _, bad := range []routes.LoadReport{{}, {Node: "n1", Deployments: load(-1, 0)}} {
		if err := c.ReportLoad(late, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ReportLoad(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
}
