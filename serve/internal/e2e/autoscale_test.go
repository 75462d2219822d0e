//go:build !windows

package e2e_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
	"github.com/raygo/raygo/serve/config"
)

type sleeper struct{}

func ptr[T any](v T) *T { return &v }

// Sleeper scales from zero on the load its handles report.
var Sleeper = serve.NewDeployment("Sleeper", func(context.Context) (*sleeper, error) { return &sleeper{}, nil },
	serve.NumCPUs(0.1), serve.MaxOngoingRequests(2), serve.GracefulShutdown(0.2, 2),
	serve.Autoscaling(config.AutoscalingConfig{MinReplicas: ptr(0), MaxReplicas: ptr(4), TargetOngoingRequests: ptr(1.0),
		UpscaleDelayS: ptr(0.5), DownscaleDelayS: ptr(2.0), MetricsIntervalS: ptr(1.0), LookBackPeriodS: ptr(2.0)}))

var Sleep = serve.NewMethod1(Sleeper, "Sleep", func(_ *sleeper, ctx context.Context, d time.Duration) (bool, error) {
	select {
	case <-time.After(d):
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
})

// TestGoDeploymentAutoscales: a deployment at zero replicas gets one when
// a handle's call waits (cold start), more under a load step, and goes
// back to zero when idle — on the load handles report.
func TestGoDeploymentAutoscales(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	if err := serve.Run(ctx, serve.NewApplication("sleepers", nil, Sleeper)); err != nil {
		t.Fatal(err)
	}
	replicas := func() (ready int) {
		st, err := serve.GetStatus(ctx, "sleepers")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range st.Deployments[0].Replicas {
			if r.State == "READY" {
				ready++
			}
		}
		return ready
	}
	if n := replicas(); n != 0 {
		t.Fatalf("%d replicas at start, want 0 (min_replicas 0)", n)
	}
	h, err := serve.GetHandle(ctx, Sleeper, "sleepers")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	// Cold start: the first call waits in the handle's queue until a
	// replica is up.
	began := time.Now()
	if _, err := Sleep.Do(ctx, h, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	t.Logf("cold start: first call answered after %v", time.Since(began).Round(time.Millisecond))

	// A load step: 8 callers of 300 ms calls, target 1 per replica.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := Sleep.Do(ctx, h, 300*time.Millisecond); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	step := time.Now()
	for replicas() < 3 {
		if time.Since(step) > 60*time.Second {
			t.Fatalf("not scaled up to 3 replicas in a minute (now %d)", replicas())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("load step: 3 replicas ready %v after it", time.Since(step).Round(time.Millisecond))
	stop.Store(true)
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d calls failed under the load step", failed.Load())
	}
	idle := time.Now()
	for replicas() > 0 {
		if time.Since(idle) > 60*time.Second {
			t.Fatalf("not scaled back to zero in a minute (now %d)", replicas())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("idle: back to zero replicas %v after the load stopped", time.Since(idle).Round(time.Millisecond))
}
