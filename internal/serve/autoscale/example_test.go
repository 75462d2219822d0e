package autoscale_test

import (
	"fmt"
	"time"

	"github.com/raygo/raygo/internal/serve/autoscale"
)

// A controller's loop for one deployment: observe the total ongoing
// requests, decide, apply.
func Example() {
	cfg := autoscale.AutoConfig() // 1..100 replicas, 2 ongoing requests per replica
	cfg.UpscaleDelay = 3 * time.Second
	p, err := autoscale.NewPolicy(cfg)
	if err != nil {
		panic(err)
	}

	start := time.Unix(0, 0)
	replicas := cfg.InitialTarget(0)
	for tick := range 8 {
		now := start.Add(time.Duration(tick) * time.Second)
		_ = p.Observe(now, 20) // 20 requests running or queued, from now on
		d := p.Evaluate(now, autoscale.Replicas{Running: replicas, Target: replicas})
		fmt.Printf("t=%ds load=%.0f replicas %d -> %d (%s)\n", tick, d.Load, replicas, d.Desired, d.Reason)
		replicas = d.Desired
	}
	// Output:
	// t=0s load=20 replicas 1 -> 1 (upscale-waiting)
	// t=1s load=20 replicas 1 -> 1 (upscale-waiting)
	// t=2s load=20 replicas 1 -> 1 (upscale-waiting)
	// t=3s load=20 replicas 1 -> 10 (upscale)
	// t=4s load=20 replicas 10 -> 10 (steady)
	// t=5s load=20 replicas 10 -> 10 (steady)
	// t=6s load=20 replicas 10 -> 10 (steady)
	// t=7s load=20 replicas 10 -> 10 (steady)
}

// DesiredReplicas is the bare formula: what a load asks for, before delays.
func ExampleDesiredReplicas() {
	cfg := autoscale.AutoConfig()
	fmt.Println(autoscale.DesiredReplicas(cfg, 17, autoscale.Replicas{Running: 4, Target: 4}))
	cfg.UpscalingFactor = 0.5 // move half way
	fmt.Println(autoscale.DesiredReplicas(cfg, 17, autoscale.Replicas{Running: 4, Target: 4}))
	// Output:
	// 9
	// 7
}
