//go:build !windows

package mcpserver_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

type Pinger struct{}

func NewPinger(context.Context) (*Pinger, error)   { return &Pinger{}, nil }
func (p *Pinger) Pid(context.Context) (int, error) { return os.Getpid(), nil }

var (
	PingerActor = ray.Actor0(NewPinger)
	PingerPid   = ray.Method0(PingerActor, (*Pinger).Pid)
)

// TestKillActorThroughMCP: kill_actor, with a write token and confirm,
// kills a real actor: its process is gone, its calls fail with the
// actor's death, and list_actors shows it DEAD.
func TestKillActorThroughMCP(t *testing.T) {
	c := startCluster(t, true)
	ctx := ctxFor(t, 2*time.Minute)
	if err := ray.Init(ctx, ray.Address(c.head.GCSAddress()), ray.Token(clusterToken), ray.LogWorkers(false)); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	a := PingerActor.Remote(ctx)
	pid, err := PingerPid.Remote(ctx, a).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs := c.inMemory(t, c.write, true)
	if res := call(t, cs, "kill_actor", map[string]any{"actor_id": a.ID()[:8]}, nil); !res.IsError {
		t.Fatal("kill_actor without confirm: not refused")
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the actor's process is gone after a refused kill: %v", err)
	}
	var out struct {
		Killed  bool   `json:"killed"`
		ActorID string `json:"actor_id"`
	}
	if res := call(t, cs, "kill_actor", map[string]any{"actor_id": a.ID()[:8], "confirm": true}, &out); res.IsError || !out.Killed {
		t.Fatalf("kill_actor: %+v %+v", res.Content, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the actor's process %d still runs after kill_actor", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := PingerPid.Remote(ctx, a).Get(ctx); !errors.Is(err, ray.ErrActorDied) {
		t.Errorf("a call after the kill: %v, want the actor's death", err)
	}
	var list listOut
	call(t, cs, "list_actors", map[string]any{"filters": []string{"state=DEAD"}}, &list)
	if len(list.Rows) != 1 || list.Rows[0]["actor_id"] != a.ID() {
		t.Errorf("list_actors state=DEAD: %+v", list.Rows)
	}
}
