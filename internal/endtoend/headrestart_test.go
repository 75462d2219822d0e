//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/gcs/storage"
	"github.com/raygo/raygo/internal/gcs/storage/storagetest"
	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// roleHRDriver is the driver of TestHeadRestartWithStorage: on "setup
// NODE" it makes, on that node, a detached named counter (called once), a
// named placement group and a long task; on "serve" (the head was
// restarted) it says how long until the cluster served it again (the
// counter found by name and called, a new actor created and called); on
// "check" it says what came back of each.
const roleHRDriver = "hr-driver"

type hrCounter struct{ n int }

var (
	HRCounter = ray.Actor0(func(context.Context) (*hrCounter, error) { return &hrCounter{}, nil }, ray.RegisterName("e2e.HRCounter"))
	HRInc     = ray.Method0(HRCounter, func(c *hrCounter, _ context.Context) (int, error) {
		c.n++
		return c.n, nil
	}, ray.RegisterName("Inc"))
)

func runHRDriver() int {
	return asDriver(func(ctx context.Context) int {
		in := bufio.NewScanner(os.Stdin)
		var long ray.ObjectRef[int]
		var pg *ray.PlacementGroupHandle
		for in.Scan() {
			f := strings.Fields(in.Text())
			switch {
			case len(f) == 2 && f[0] == "setup":
				on := ray.NodeAffinity(f[1], false)
				c := HRCounter.Options(ray.Name("hr-counter"), ray.Lifetime(ray.Detached), ray.NumCPUs(0), on).Remote(ctx)
				if n, err := HRInc.Remote(ctx, c).Get(ctx); err != nil || n != 1 {
					fmt.Println("counter:", n, err)
					return 1
				}
				var err error
				if pg, err = ray.PlacementGroup(ctx, []ray.Bundle{{"pr": 1}}, ray.PlacementPack, ray.Name("hr-group")); err == nil {
					err = pg.Ready(ctx)
				}
				if err != nil {
					fmt.Println("group:", err)
					return 1
				}
				long = HLSleep.Options(on).Remote(ctx, 6)
				fmt.Println("set")
			case len(f) == 1 && f[0] == "serve":
				start := time.Now()
				var n int
				var err error
				for time.Since(start) < time.Minute {
					sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					var c ray.ActorHandle[hrCounter]
					if c, err = ray.GetActor[hrCounter](sctx, "hr-counter"); err == nil {
						n, err = HRInc.Remote(sctx, c).Get(sctx)
					}
					if err == nil {
						fresh := HRCounter.Options(ray.NumCPUs(0)).Remote(sctx)
						_, err = HRInc.Remote(sctx, fresh).Get(sctx)
					}
					cancel()
					if err == nil {
						break
					}
				}
				fmt.Println("served", time.Since(start).Milliseconds(), n, err)
			case len(f) == 2 && f[0] == "create":
				c := HRCounter.Options(ray.Name("hr-once"), ray.Lifetime(ray.Detached), ray.NumCPUs(0), ray.NodeAffinity(f[1], false)).Remote(ctx)
				n1, err := HRInc.Remote(ctx, c).Get(ctx)
				var n2 int
				if err == nil {
					n2, err = HRInc.Remote(ctx, c).Get(ctx)
				}
				named, lerr := ray.ListNamedActors(ctx)
				fmt.Println("created", n1, n2, len(named), err, lerr)
			case len(f) == 1 && f[0] == "check":
				secs, err := long.Get(ctx)
				fmt.Println("long", secs, err)
				g, err := ray.GetPlacementGroup(ctx, "hr-group")
				if err == nil {
					err = g.Ready(ctx)
				}
				var sum int
				if err == nil {
					sum, err = ChaosSum.Options(ray.InPlacementGroup(g, 0), ray.Resources(map[string]float64{"pr": 1}), ray.NumCPUs(0)).Remote(ctx, []byte{1, 2, 3}).Get(ctx)
				}
				fmt.Println("group", g != nil && g.ID() == pg.ID(), sum, err)
				nodes, err := ray.Nodes(ctx)
				var alive []string
				for _, n := range nodes {
					if n.Alive {
						alive = append(alive, n.ID)
					}
				}
				slices.Sort(alive)
				fmt.Println("nodes", strings.Join(alive, ","), err)
			}
		}
		return 0
	})
}

// TestHeadRestartWithStorage: a head keeping its state in storage (a
// bbolt file; Redis) on one host, a node and a driver on another. The
// driver makes a detached named actor and a named placement group there
// and leaves a long task running. The head is killed (SIGKILL) and
// started again on the same address and storage: the node and the driver
// ride it out and reconnect (the node with its id, not stopped); the
// cluster serves again (the named actor found and called, keeping its
// state: it was not made again; a new actor made and called) within the
// target of 3 s of the new head being up; the running task finishes;
// the group is still there, with its bundle, and runs a task; the old
// head node is dead.
func TestHeadRestartWithStorage(t *testing.T) {
	for _, backend := range []string{"file", "redis"} {
		t.Run(backend, func(t *testing.T) { testHeadRestart(t, backend) })
	}
}

func testHeadRestart(t *testing.T, backend string) {
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "h1", "h2")
	h1, h2 := hosts[0], hosts[1]
	storage := filepath.Join(t.TempDir(), "gcs.db")
	if backend == "redis" {
		storage = startRedisOn(t, h1)
	}
	const port = "6390"
	tok := ray.EnvToken + "=e2e-head-restart"
	headEnv := []string{tok, envStorage + "=" + storage, envHeadPort + "=" + port}
	head := startNH(t, h1, roleNHHead, headEnv...)
	oldHead := head.fields[1]
	gcs := ray.EnvAddress + "=" + head.fields[0]
	node := startNH(t, h2, roleNHNode, tok, gcs, envExtraResources+"=pr=2")
	nodeID := node.fields[0]
	d := startDriverRole(t, h2, roleHRDriver, tok, gcs)
	d.Next("ready")
	d.Send("setup " + nodeID)
	d.Next("set")

	if err := head.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-head.exited
	time.Sleep(2 * time.Second) // down for a while: calls fail meanwhile
	head = startNH(t, h1, roleNHHead, headEnv...)
	if head.fields[0] != strings.TrimPrefix(gcs, ray.EnvAddress+"=") {
		t.Fatalf("restarted head on %s, want the same address %s", head.fields[0], gcs)
	}
	d.Send("serve")
	served := d.Next("served")
	ms, _ := strconv.Atoi(served[0])
	if len(served) < 3 || served[1] != "2" || served[2] != "<nil>" {
		t.Fatalf("after the restart: %q; want the named counter found with its state (2) and a new actor made", served)
	}
	d.Send("check")
	if long := d.Next("long"); len(long) < 2 || long[0] != "6" || long[1] != "<nil>" {
		t.Fatalf("the task running across the restart: %q, want 6", long)
	}
	if g := d.Next("group"); len(g) < 3 || g[0] != "true" || g[1] != "6" || g[2] != "<nil>" {
		t.Fatalf("the placement group after the restart: %q, want it there, running a task", g)
	}
	nodes := d.Next("nodes")
	if len(nodes) < 1 || !strings.Contains(nodes[0], nodeID) || strings.Contains(nodes[0], oldHead) || !strings.Contains(nodes[0], head.fields[1]) {
		t.Fatalf("alive nodes after the restart: %q; want %s (rejoined) and the new head %s, not the old head %s", nodes, nodeID, head.fields[1], oldHead)
	}
	select {
	case <-node.exited:
		t.Fatalf("the node exited across the head's restart: %v", node.err)
	default:
	}
	t.Logf("%s storage: serving again %d ms after the new head was up (target 3 s)", backend, ms)
}

// startRedisOn runs a redis-server on host h until the test ends and
// returns its URL.
func startRedisOn(t *testing.T, h *testcluster.Host) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		storagetest.StartRedis(t) // skips, or fails where Redis is required
	}
	addr := net.JoinHostPort(h.IP, "6391")
	// Not loopback: Redis's protected mode would refuse the head.
	cmd := h.Command("redis-server", "--bind", h.IP, "--port", "6391", "--protected-mode", "no", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := "redis://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := storage.OpenRedis(context.Background(), url, "probe")
		if err == nil {
			st.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not come up: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestHeadDiesBeforeAnswering: the head keeps an actor's creation in
// storage and dies before answering it (the fault point at
// CreateActor's reply exits the process); started again, it answers the
// driver's retried call with the actor it kept: the driver's program
// goes on as if nothing happened, with one actor (not two), created once.
func TestHeadDiesBeforeAnswering(t *testing.T) {
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "h1", "h2")
	h1, h2 := hosts[0], hosts[1]
	tok := ray.EnvToken + "=e2e-head-dies"
	headEnv := []string{tok, envStorage + "=" + filepath.Join(t.TempDir(), "gcs.db"), envHeadPort + "=6390"}
	head := startNH(t, h1, roleNHHead, append(headEnv, "RAYGO_FAULTS=rpc/raygo.v1.ControlStore/CreateActor/reply=exit(9)")...)
	gcs := ray.EnvAddress + "=" + head.fields[0]
	node := startNH(t, h2, roleNHNode, tok, gcs)
	d := startDriverRole(t, h2, roleHRDriver, tok, gcs)
	d.Next("ready")
	d.Send("create " + node.fields[0])
	select {
	case <-head.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the head did not die at the fault point")
	}
	head = startNH(t, h1, roleNHHead, headEnv...)
	got := d.Next("created")
	if len(got) < 5 || got[0] != "1" || got[1] != "2" || got[2] != "1" || got[3] != "<nil>" || got[4] != "<nil>" {
		t.Fatalf("after the head died before answering the creation: %q; want calls answered 1 and 2 by one named actor", got)
	}
}
