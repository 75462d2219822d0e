//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// roleHLDriver is the driver of TestHeadLossStopsTheCluster: on "submit
// NODE" it runs a short task on that node and leaves a long one running
// there; on "get" it waits for the long one and says what came back, then
// tries a Put.
const roleHLDriver = "hl-driver"

// HLSleep sleeps for secs seconds, or until cancelled.
var HLSleep = ray.Func1(func(ctx context.Context, secs int) (int, error) {
	select {
	case <-time.After(time.Duration(secs) * time.Second):
		return secs, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}, ray.RegisterName("e2e.HLSleep"))

func runHLDriver() int {
	return asDriver(func(ctx context.Context) int {
		in := bufio.NewScanner(os.Stdin)
		var long ray.ObjectRef[int]
		for in.Scan() {
			f := strings.Fields(in.Text())
			switch {
			case len(f) == 2 && f[0] == "submit":
				on := HLSleep.Options(ray.NodeAffinity(f[1], false))
				if _, err := on.Remote(ctx, 0).Get(ctx); err != nil {
					fmt.Println("short task:", err)
					return 1
				}
				long = on.Remote(ctx, 120)
				fmt.Println("submitted")
			case len(f) == 1 && f[0] == "get":
				gctx, cancel := context.WithTimeout(ctx, time.Minute)
				_, err := long.Get(gctx)
				cancel()
				fmt.Println("got", errors.Is(err, ray.ErrHeadLost), err)
				_, err = ray.Put(ctx, 7)
				fmt.Println("put", errors.Is(err, ray.ErrHeadLost), err)
			}
		}
		return 0
	})
}

// TestHeadLossStopsTheCluster: a head (control store and node) on one
// host, a node and a driver on another, a task running on that node.
// The head is killed (SIGKILL; it keeps no storage, so the cluster is
// gone): within the head timeout the driver's Get of the running task
// fails with a HeadLostError (instead of waiting out its deadline), a
// Put after it fails the same way, and the node stops its workers and
// exits saying the head is gone (instead of running on silently).
func TestHeadLossStopsTheCluster(t *testing.T) {
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "h1", "h2")
	h1, h2 := hosts[0], hosts[1]
	tok := ray.EnvToken + "=e2e-head-loss"
	head := startNH(t, h1, roleNHHead, tok)
	gcs := ray.EnvAddress + "=" + head.fields[0]
	node := startNH(t, h2, roleNHNode, tok, gcs)
	d := startDriverRole(t, h2, roleHLDriver, tok, gcs)
	d.Next("ready")
	d.Send("submit " + node.fields[0])
	d.Next("submitted")

	if err := head.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	d.Send("get")
	got := d.Next("got")
	gotAfter := time.Since(killed)
	if len(got) < 2 || got[0] != "true" || !strings.Contains(strings.Join(got, " "), "lost the cluster's head") {
		t.Fatalf("the driver's Get after the head was killed: %q, want a HeadLostError", got)
	}
	if put := d.Next("put"); len(put) < 1 || put[0] != "true" {
		t.Fatalf("a Put after the head was lost: %q, want a HeadLostError", put)
	}

	var said []string
	limit := time.After(30 * time.Second)
	for exited := false; !exited; {
		select {
		case line, ok := <-node.lines:
			if ok {
				said = append(said, line)
				continue
			}
			<-node.exited
			exited = true
		case <-limit:
			t.Fatalf("the node still runs 30 s after its head was killed (said %q)", said)
		}
	}
	stoppedAfter := time.Since(killed)
	var ee *exec.ExitError
	msg := strings.Join(said, "\n")
	if !errors.As(node.err, &ee) || ee.ExitCode() != exitDeclaredDead || !strings.Contains(msg, "head") || !strings.Contains(msg, "keeps no storage") {
		t.Fatalf("the node exited with %v saying %q; want it to stop saying its head is gone", node.err, msg)
	}
	t.Logf("head killed: the driver's Get failed after %s, the node stopped after %s (head timeout %s)",
		gotAfter.Round(time.Millisecond), stoppedAfter.Round(time.Millisecond), 5*time.Second)
	if gotAfter > 15*time.Second || stoppedAfter > 20*time.Second {
		t.Errorf("too slow: the driver gave up after %s, the node after %s", gotAfter, stoppedAfter)
	}
}
