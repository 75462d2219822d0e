//go:build !windows

package endtoend

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/ray"
)

// spillFiles lists the files in a store's spill directory.
func spillFiles(t *testing.T, head *node.Head) map[string]bool {
	t.Helper()
	dir := head.Raylet().Store().SpillPath()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		out[filepath.Join(dir, e.Name())] = true
	}
	return out
}

// storeHolds reports which of the objects (hex ids) the head's store holds.
func storeHolds(t *testing.T, head *node.Head, hexIDs []string) []bool {
	t.Helper()
	out := make([]bool, len(hexIDs))
	for i, h := range hexIDs {
		id, ok := ids.Parse(h)
		if !ok {
			t.Fatalf("bad object id %q", h)
		}
		out[i] = head.Raylet().Store().Contains(id)
	}
	return out
}

// driverObjects starts a driver of head that puts n objects of 50 MiB (on
// a 128 MiB store, so some spill) and a detached actor holding one of its
// own; it returns the driver and the ids of the driver's objects and the
// actor's.
func driverObjects(t *testing.T, head *node.Head, token string, n, size int, shutdown bool) (cmd interface{ Signal(os.Signal) error }, driverIDs []string, keptID string, wait func()) {
	t.Helper()
	env := []string{envRole + "=" + roleDriver, ray.EnvAddress + "=" + head.GCSAddress(), ray.EnvToken + "=" + token,
		envPuts + "=" + strconv.Itoa(n), envObjectBytes + "=" + strconv.Itoa(size)}
	if shutdown {
		env = append(env, envShutdown+"=1")
	}
	c, words := child(t, env...)
	if len(words) != 2+n || words[0] != "ready" {
		t.Fatalf("driver said %q", words)
	}
	return c.Process, words[2:], words[1], func() { _ = c.Wait() }
}

// TestKilledDriverObjectsFreed: a driver puts 4 × 50 MiB (three with Put,
// one with PutBuffer) on a 128 MiB store, so some are spilled, and is
// SIGKILLed. Every one of its objects and spill files must go; the object
// its detached actor's process owns must stay.
func TestKilledDriverObjectsFreed(t *testing.T) {
	privateRoot(t)
	const token = "e2e-token"
	head := startHead(t, token)
	before := spillFiles(t, head)
	proc, mine, kept, wait := driverObjects(t, head, token, 4, 50<<20, false)
	for i, held := range storeHolds(t, head, mine) {
		if !held {
			t.Fatalf("object %d (%s) is not in the store before the kill", i, mine[i])
		}
	}
	if len(spillFiles(t, head)) <= len(before) {
		t.Fatal("nothing was spilled: the test does not exercise spill files")
	}
	if err := proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	wait()
	took := eventually(t, 10*time.Second, "the killed driver's objects to be freed", func() bool {
		for _, held := range storeHolds(t, head, mine) {
			if held {
				return false
			}
		}
		return true
	})
	for _, id := range mine {
		for f := range spillFiles(t, head) {
			if strings.HasPrefix(filepath.Base(f), id) {
				t.Fatalf("spill file %s of the killed driver's object remains", f)
			}
		}
	}
	t.Logf("objects freed %v after the kill (%v after the driver was reaped)", time.Since(killed).Round(time.Millisecond), took.Round(time.Millisecond))
	if !storeHolds(t, head, []string{kept})[0] {
		t.Fatal("the detached actor's own object was freed with its job")
	}

	// The detached actor still reads its object.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token(token)); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	k, err := ray.GetActor[keeper](ctx, "keeper")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := HeldSize.Remote(ctx, k).Get(ctx); err != nil || n != keptBytes {
		t.Fatalf("detached actor's object after its job ended: %d bytes, %v", n, err)
	}
	_ = ray.Kill(ctx, k)
}

// TestShutdownDriverObjectsFreed: the same with a driver that shuts down
// (smaller objects: the path is the same).
func TestShutdownDriverObjectsFreed(t *testing.T) {
	privateRoot(t)
	const token = "e2e-token"
	head := startHead(t, token)
	_, mine, kept, wait := driverObjects(t, head, token, 4, 8<<20, true)
	wait()
	eventually(t, 10*time.Second, "the finished driver's objects to be freed", func() bool {
		for _, held := range storeHolds(t, head, mine) {
			if held {
				return false
			}
		}
		return true
	})
	if !storeHolds(t, head, []string{kept})[0] {
		t.Fatal("the detached actor's own object was freed with its job")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token(token)); err != nil {
		t.Fatal(err)
	}
	defer ray.Shutdown()
	if k, err := ray.GetActor[keeper](ctx, "keeper"); err == nil {
		_ = ray.Kill(ctx, k)
	}
}
