//go:build !windows

package endtoend

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// roleRBDriver is the driver of TestLostObjectsRebuilt (see there).
const roleRBDriver = "rb-driver"

// envRebuildBytes sizes the objects of TestLostObjectsRebuilt (default
// 8 MiB; 104857600 for the 100 MiB target, without -race); the nodes'
// stores hold eight of them.
const envRebuildBytes = "RAYGO_E2E_REBUILD_BYTES"

// envStoreBytes sizes an nh-head's or nh-node's store (default 32 MiB).
const envStoreBytes = "RAYGO_E2E_STORE_BYTES"

var (
	// RBMake makes n bytes from seed, the same every time it runs.
	RBMake = ray.Func2(func(_ context.Context, n int, seed byte) ([]byte, error) {
		return rbBytes(n, seed), nil
	}, ray.RegisterName("e2e.RBMake"))
	// RBFlip returns b with every byte's low bit flipped.
	RBFlip = ray.Func1(func(_ context.Context, b []byte) ([]byte, error) {
		out := make([]byte, len(b))
		for i, c := range b {
			out[i] = c ^ 1
		}
		return out, nil
	}, ray.RegisterName("e2e.RBFlip"))
)

// rbChain makes n bytes on a node and flips them twice there, returning
// only the last ref (the first two go out of scope at once).
func rbChain(ctx context.Context, on ray.StrategyOption, n int) ray.ObjectRef[[]byte] {
	x := RBMake.Options(on).Remote(ctx, n, 5)
	y := RBFlip.Options(on).RemoteArgs(ctx, x)
	return RBFlip.Options(on).RemoteArgs(ctx, y)
}

func rbBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// runRBDriver: on "make NODE" it runs RBMake on that node (soft
// affinity) and RBFlip on its result there too, waits until both are
// ready without reading them, and says "made"; on "get" it waits until
// that node is no longer alive, then reads both results (rebuilt, the
// node being gone: the first through a new task, a borrower) and says
// "by-task MS" and "got MS_AFTER_DEATH_SEEN OK".
func runRBDriver() int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	n := 8 << 20
	if v := os.Getenv(envRebuildBytes); v != "" {
		n, _ = strconv.Atoi(v)
	}
	fmt.Println("ready")
	var node string
	var made, flipped, twice ray.ObjectRef[[]byte]
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 2 && f[0] == "make":
			node = f[1]
			on := ray.NodeAffinity(node, true)
			made = RBMake.Options(on).Remote(ctx, n, 3)
			flipped = RBFlip.Options(on).RemoteArgs(ctx, made)
			// A chain whose first two objects go out of scope: only the
			// last one's lineage keeps them.
			twice = rbChain(ctx, on, n)
			if ready, _, err := ray.Wait(ctx, []ray.ObjectRef[[]byte]{made, flipped, twice}, 3, time.Minute); err != nil || len(ready) != 3 {
				fmt.Println("wait:", err)
				return 1
			}
			runtime.GC() // the chain's first two handles are unreachable: out of scope
			runtime.GC()
			fmt.Println("made")
		case len(f) == 1 && f[0] == "get":
			if err := waitNodeGone(ctx, node); err != nil {
				fmt.Println("nodes:", err)
				return 1
			}
			start := time.Now()
			gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			// A new task reads the lost object: its worker, a borrower,
			// has the driver (the owner) rebuild it.
			again, err := RBFlip.RemoteArgs(ctx, made).Get(gctx)
			if err != nil {
				fmt.Println("get through a task:", err)
				return 1
			}
			byTask := time.Since(start)
			// The owner reads the other lost object itself.
			got, err := flipped.Get(gctx)
			if err != nil {
				fmt.Println("get:", err)
				return 1
			}
			took := time.Since(start)
			want := rbBytes(n, 3)
			for i := range want {
				want[i] ^= 1
			}
			if !bytes.Equal(again, want) {
				fmt.Println("the task read a wrong rebuilt object")
				return 1
			}
			fmt.Println("by-task", byTask.Milliseconds())
			orig, err := made.Get(ctx)
			if err != nil {
				fmt.Println("get made:", err)
				return 1
			}
			// The chain's last object: rebuilding it rebuilds the two
			// before it, out of scope, first.
			back, err := twice.Get(gctx)
			if err != nil {
				fmt.Println("get the chain:", err)
				return 1
			}
			fmt.Println("got", took.Milliseconds(), bytes.Equal(got, want) && bytes.Equal(orig, rbBytes(n, 3)) && bytes.Equal(back, rbBytes(n, 5)))
		}
	}
	return 0
}

// TestLostObjectsRebuilt: a head on one host (the driver there too) and
// two nodes on two others. A task on node B makes an object and a second
// task on B transforms it; both live only in B's store. B is killed: once
// the control store has declared it dead, a new task reading the first
// object (its worker a borrower) gets it rebuilt by the driver, its
// owner; the driver's own Get of the second result rebuilds that one,
// running its task again on the surviving node; a third chain, of which
// the driver kept only the last ref, is rebuilt through its two
// out-of-scope objects; everything reads back byte for byte.
func TestLostObjectsRebuilt(t *testing.T) {
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "h1", "h2", "h3")
	tok := ray.EnvToken + "=e2e-rebuild"
	size := int64(8 << 20)
	if v := os.Getenv(envRebuildBytes); v != "" {
		size, _ = strconv.ParseInt(v, 10, 64)
	}
	store := envStoreBytes + "=" + strconv.FormatInt(8*size, 10)
	head := startNH(t, hosts[0], roleNHHead, tok, store)
	gcs := ray.EnvAddress + "=" + head.fields[0]
	b := startNH(t, hosts[1], roleNHNode, tok, gcs, store)
	startNH(t, hosts[2], roleNHNode, tok, gcs, store)
	env := []string{tok, gcs, envRebuildBytes + "=" + strconv.FormatInt(size, 10)}
	d := startDriverRole(t, hosts[0], roleRBDriver, env...)
	d.Next("ready")
	d.Send("make " + b.fields[0])
	d.Next("made")
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.Send("get")
	byTask := d.Next("by-task")
	got := d.Next("got")
	if len(got) != 2 || got[1] != "true" {
		t.Fatalf("the rebuilt objects: %q, want them equal to the originals", got)
	}
	t.Logf("a task read the first lost object %s ms after the node's death was seen (its owner rebuilt it); both were read %s ms after", byTask[0], got[0])
}

// waitNodeGone waits until the cluster no longer lists node as alive.
func waitNodeGone(ctx context.Context, node string) error {
	for {
		nodes, err := ray.Nodes(ctx)
		if err != nil {
			return err
		}
		alive := false
		for _, nd := range nodes {
			alive = alive || nd.ID == node && nd.Alive
		}
		if !alive {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
