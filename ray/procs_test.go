//go:build !windows

package ray_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/raygo/raygo/ray"
)

// Procs reports the Go scheduler's Ps in the actor's process.
var Procs = ray.Method0(Counter, func(c *counter, ctx context.Context) (int, error) { return runtime.GOMAXPROCS(0), nil }, ray.RegisterName("Procs"))

// TestSharedActorsUseTheCores: default actors (no CPU asked) share a worker
// process; with several of them it gets one P per actor, up to the
// machine's CPUs, instead of all of them running on one P.
func TestSharedActorsUseTheCores(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("needs 2 CPUs")
	}
	ctx := initCluster(t, ray.NumCPUs(2))
	const actors = 4
	var hs []ray.ActorHandle[counter]
	for range actors {
		h := Counter.Remote(ctx)
		if err := h.Err(); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	pids := map[int]bool{}
	for _, h := range hs {
		pid, err := ActorPid.Remote(ctx, h).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pids[pid] = true
	}
	if len(pids) != 1 {
		t.Skipf("the %d actors run in %d processes; this test is about a shared one", actors, len(pids))
	}
	got, err := Procs.Remote(ctx, hs[0]).Get(ctx)
	if want := min(actors, runtime.NumCPU()); err != nil || got != want {
		t.Fatalf("a process hosting %d actors has %d Ps (%v), want %d", actors, got, err, want)
	}
}
