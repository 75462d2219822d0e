//go:build !windows

package endtoend

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// roleARDriver is the driver of TestLostActorResultsRebuilt (see there).
const roleARDriver = "ar-driver"

// arBytes is the size of the rebuilt actor result: well above the inline
// threshold, so it lives in its node's shared-memory store.
const arBytes = 20 << 20

// A maker actor: Make returns n bytes from seed (the same every time it
// runs), Node the node it runs on.
type arMaker struct{}

var (
	ARMaker = ray.Actor0(func(context.Context) (*arMaker, error) { return &arMaker{}, nil }, ray.RegisterName("e2e.ARMaker"))
	ARMake  = ray.Method2(ARMaker, func(_ *arMaker, _ context.Context, n int, seed byte) ([]byte, error) {
		return rbBytes(n, seed), nil
	}, ray.RegisterName("Make"))
	ARNode = ray.Method0(ARMaker, func(_ *arMaker, ctx context.Context) (string, error) {
		tc, _ := ray.CurrentTask(ctx)
		return tc.NodeID, nil
	}, ray.RegisterName("Node"))
)

// runARDriver: on "make NODE" it creates two maker actors on that node
// (soft affinity), both with MaxRestarts(1): "retried" with
// MaxTaskRetries(1), "once" with MaxTaskRetries(0); each makes an object
// in that node's store, and once both are ready (not read) it says
// "made". On "get" it waits until the node is no longer alive, then
// reads both: "retried"'s is rebuilt by calling Make again on the
// restarted actor ("got MS EQUAL NODE_DIFFERS"); "once"'s fails
// ("once-lost IS_OBJECT_LOST NAMES_MAXTASKRETRIES ERROR").
func runARDriver() int {
	return asDriver(func(ctx context.Context) int {
		var (
			node            string
			retried, once   ray.ActorHandle[arMaker]
			rebuilt, atMost ray.ObjectRef[[]byte]
		)
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			f := strings.Fields(in.Text())
			switch {
			case len(f) == 2 && f[0] == "make":
				node = f[1]
				on := ray.NodeAffinity(node, true)
				retried = ARMaker.Options(on, ray.MaxRestarts(1), ray.MaxTaskRetries(1)).Remote(ctx)
				once = ARMaker.Options(on, ray.MaxRestarts(1), ray.MaxTaskRetries(0)).Remote(ctx)
				for _, a := range []ray.ActorHandle[arMaker]{retried, once} {
					if at, err := ARNode.Remote(ctx, a).Get(ctx); err != nil || at != node {
						fmt.Println("actor placed on", at, "not", node, err)
						return 1
					}
				}
				rebuilt = ARMake.Remote(ctx, retried, arBytes, 7)
				atMost = ARMake.Remote(ctx, once, 1<<20, 9)
				if ready, _, err := ray.Wait(ctx, []ray.ObjectRef[[]byte]{rebuilt, atMost}, 2, time.Minute); err != nil || len(ready) != 2 {
					fmt.Println("wait:", err)
					return 1
				}
				fmt.Println("made")
			case len(f) == 1 && f[0] == "get":
				if err := waitNodeGone(ctx, node); err != nil {
					fmt.Println("nodes:", err)
					return 1
				}
				start := time.Now()
				gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				got, err := rebuilt.Get(gctx)
				if err != nil {
					fmt.Println("get the actor's result:", err)
					return 1
				}
				took := time.Since(start)
				now, err := ARNode.Remote(gctx, retried).Get(gctx)
				if err != nil {
					fmt.Println("the restarted actor:", err)
					return 1
				}
				fmt.Println("got", took.Milliseconds(), bytes.Equal(got, rbBytes(arBytes, 7)), now != node)
				_, err = atMost.Get(gctx)
				fmt.Println("once-lost", errors.Is(err, ray.ErrObjectLost), strings.Contains(fmt.Sprint(err), "MaxTaskRetries(0)"), err)
			}
		}
		return 0
	})
}

// TestLostActorResultsRebuilt: a head on one host (the driver there too)
// and two nodes on two others. Two actors with MaxRestarts(1) run on
// node B, and a method of each returns an object that lives only in B's
// store (20 MiB and 1 MiB). B is killed: once the control store has
// declared it dead and the actors restarted elsewhere, the driver's Get
// of the result of the actor with MaxTaskRetries(1) rebuilds it by
// calling the method again on the restarted actor, and it reads back
// byte for byte; the result of the actor with MaxTaskRetries(0) (calls
// at most once) is ObjectLost, saying why.
func TestLostActorResultsRebuilt(t *testing.T) {
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "h1", "h2", "h3")
	tok := ray.EnvToken + "=e2e-actor-rebuild"
	head := startNH(t, hosts[0], roleNHHead, tok)
	gcs := ray.EnvAddress + "=" + head.fields[0]
	b := startNH(t, hosts[1], roleNHNode, tok, gcs)
	startNH(t, hosts[2], roleNHNode, tok, gcs)
	d := startDriverRole(t, hosts[0], roleARDriver, tok, gcs)
	d.Next("ready")
	d.Send("make " + b.fields[0])
	d.Next("made")
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.Send("get")
	got := d.Next("got")
	if len(got) != 3 || got[1] != "true" || got[2] != "true" {
		t.Fatalf("the rebuilt actor result: %q, want it equal to the original (true) and made on another node (true)", got)
	}
	lost := d.Next("once-lost")
	if len(lost) < 2 || lost[0] != "true" || lost[1] != "true" {
		t.Fatalf("the result of an at-most-once actor call: %q, want ObjectLost naming MaxTaskRetries(0)", lost)
	}
	t.Logf("the lost actor result was rebuilt and read %s ms after the node's death was seen; the at-most-once one: %s",
		got[0], strings.Join(lost[2:], " "))
}
