//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/ray"
)

// envExtraResources gives an nh-node more resources: "name=amount,…".
const envExtraResources = "RAYGO_E2E_RESOURCES"

func extraResources(into resources.Set, spec string) error {
	for _, kv := range strings.Split(spec, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			return fmt.Errorf("%q: want name=amount", kv)
		}
		into[k] = n
	}
	return nil
}

// roleFSDriver is the driver of TestFateSharing (see there).
const roleFSDriver = "fs-driver"

// The tasks and actor of the fate-sharing test: a parent on node A that
// starts a child task (and an actor) on node B and then waits for ever.
var (
	FSChild = ray.Func0(func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, ray.RegisterName("e2e.FSChild"))
	FSActor  = ray.Actor0(func(context.Context) (*fsActor, error) { return &fsActor{}, nil }, ray.RegisterName("e2e.FSActor"))
	FSPing   = ray.Method0(FSActor, func(*fsActor, context.Context) (int, error) { return 1, nil }, ray.RegisterName("Ping"))
	FSParent = ray.Func1(func(ctx context.Context, withActor bool) (int, error) {
		child := FSChild.Options(ray.Resources(map[string]float64{"cb": 1}), ray.NumCPUs(0)).Remote(ctx)
		if withActor {
			a := FSActor.Options(ray.Resources(map[string]float64{"ca": 1}), ray.NumCPUs(0)).Remote(ctx)
			if _, err := FSPing.Remote(ctx, a).Get(ctx); err != nil {
				return 0, err
			}
		}
		return child.Get(ctx) // for ever: the child waits for its cancel
	}, ray.RegisterName("e2e.FSParent"))
)

type fsActor struct{}

// runFSDriver: on "owner-killed" it runs a parent whose child holds "cb",
// then kills the parent's process (a forced, non-recursive cancel) and
// says how long "cb" took to come back; "actor-on" NODE (two lines) makes
// a named actor there, and "actor-check" calls it, then waits until its
// name is free and takes it again; on "owner-node" it runs a parent
// with a child task and a child actor, says "holding" once both hold
// their resources ("cb", "ca"), and then how long they took to come back
// (the test kills the parent's node meanwhile).
func runFSDriver() int {
	return asDriver(func(ctx context.Context) int {
		waitFor := func(what string, cond func(map[string]float64) bool) bool {
			deadline := time.Now().Add(40 * time.Second)
			for time.Now().Before(deadline) {
				if avail, err := ray.AvailableResources(ctx); err == nil && cond(avail) {
					return true
				}
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Println("stuck", what)
			return false
		}
		var victim ray.ActorHandle[fsActor]
		parentOpts := []ray.TaskOption{ray.Resources(map[string]float64{"pa": 1}), ray.NumCPUs(0), ray.MaxRetries(0)}
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			switch in.Text() {
			case "owner-killed":
				parent := FSParent.Options(parentOpts...).Remote(ctx, false)
				if !waitFor("child holding cb", func(a map[string]float64) bool { return a["cb"] == 0 }) {
					return 1
				}
				if err := ray.Cancel(ctx, parent, ray.Force(), ray.Recursive(false)); err != nil {
					fmt.Println("cancel:", err)
					return 1
				}
				start := time.Now()
				if !waitFor("cb back after its owner was killed", func(a map[string]float64) bool { return a["cb"] == 1 }) {
					return 1
				}
				fmt.Println("freed", time.Since(start).Milliseconds())
			case "actor-on":
				// A named actor pinned to node B (the next line's field).
				if !in.Scan() {
					return 1
				}
				victim = FSActor.Options(ray.Name("victim"), ray.NodeAffinity(in.Text(), false), ray.NumCPUs(0)).Remote(ctx)
				if _, err := FSPing.Remote(ctx, victim).Get(ctx); err != nil {
					fmt.Println("actor:", err)
					return 1
				}
				fmt.Println("actor-ready")
			case "actor-check":
				start := time.Now()
				_, err := FSPing.Remote(ctx, victim).Get(ctx)
				fmt.Println("call-err", errors.Is(err, ray.ErrActorDied), strings.Contains(fmt.Sprint(err), "node"), err)
				for {
					_, err := ray.GetActor[fsActor](ctx, "victim")
					if errors.Is(err, ray.ErrNotFound) {
						break
					}
					if time.Since(start) > 30*time.Second {
						fmt.Println("stuck name still taken:", err)
						return 1
					}
					time.Sleep(50 * time.Millisecond)
				}
				freed := time.Since(start)
				again := FSActor.Options(ray.Name("victim"), ray.NumCPUs(0)).Remote(ctx)
				if _, err := FSPing.Remote(ctx, again).Get(ctx); err != nil {
					fmt.Println("recreate:", err)
					return 1
				}
				fmt.Println("name-free", freed.Milliseconds())
			case "owner-node":
				FSParent.Options(parentOpts...).Remote(ctx, true)
				if !waitFor("child task and actor holding cb and ca", func(a map[string]float64) bool { return a["cb"] == 0 && a["ca"] == 0 }) {
					return 1
				}
				fmt.Println("holding")
				start := time.Now()
				if !waitFor("cb and ca back after the owner's node died", func(a map[string]float64) bool { return a["cb"] == 1 && a["ca"] == 1 }) {
					return 1
				}
				fmt.Println("freed", time.Since(start).Milliseconds())
			}
		}
		return 0
	})
}

// TestFateSharing: a parent task on node A (host h2) starts a child task
// on node B (host h3), which holds B's custom resource "cb". When the
// parent's process is killed (a forced cancel that does not recurse), the
// child is stopped and "cb" comes back, as Ray's fate sharing does (its
// worker leased by a process that no longer exists). Then a parent with
// a child task and a child actor ("ca") on B: when the parent's whole
// node is killed, both are stopped and their resources come back once
// the node is declared dead. Last, a named actor pinned to node B: when B
// is killed, a call to it fails with an ActorDiedError that names the
// node's death, and its name is free again (a new actor takes it) once
// B is declared dead.
func TestFateSharing(t *testing.T) {
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "h1", "h2", "h3")
	tok := ray.EnvToken + "=e2e-fate-sharing"
	head := startNH(t, hosts[0], roleNHHead, tok)
	gcs := ray.EnvAddress + "=" + head.fields[0]
	a := startNH(t, hosts[1], roleNHNode, tok, gcs, envExtraResources+"=pa=1")
	b := startNH(t, hosts[2], roleNHNode, tok, gcs, envExtraResources+"=cb=1,ca=1")
	d := startDriverRole(t, hosts[0], roleFSDriver, tok, gcs)
	d.Next("ready")

	d.Send("owner-killed")
	freed := d.Next("freed")
	t.Logf("the child's resource came back %s ms after its owner's process was killed", freed[0])

	d.Send("owner-node")
	d.Next("holding")
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	freed = d.Next("freed")
	t.Logf("the child task's and actor's resources came back %s ms after the owner's node was killed (node timeout 5 s)", freed[0])

	// A named actor whose node dies: its calls fail saying so, and its
	// name is free again once the node is declared dead.
	d.Send("actor-on")
	d.Send(b.fields[0])
	d.Next("actor-ready")
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-b.exited // the call goes to an actor whose process is gone
	d.Send("actor-check")
	if got := d.Next("call-err"); len(got) < 2 || got[0] != "true" || got[1] != "true" {
		t.Fatalf("a call to an actor whose node died: %q, want an ActorDiedError naming the node", got)
	}
	d.Next("name-free")
	t.Logf("the dead actor's name was free %s after its node was killed", time.Since(killed).Round(time.Millisecond))
}
