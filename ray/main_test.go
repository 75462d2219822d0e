//go:build !windows

package ray_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/ray"
)

// envCrashAtStart makes worker processes of this test binary exit before
// registering, to test the node's handling of broken worker binaries.
const envCrashAtStart = "RAYGO_TEST_CRASH_AT_START"

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		if os.Getenv(envCrashAtStart) == "1" {
			fmt.Fprintln(os.Stderr, "test worker: crashing at start on purpose")
			os.Exit(7)
		}
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	if os.Getenv(envEcho) != "" {
		os.Exit(runEchoServer())
	}
	if name := os.Getenv(envScript); name != "" {
		os.Exit(runScript(name))
	}
	if addr := os.Getenv(envDriverOf); addr != "" {
		os.Exit(runDriverProcess(addr))
	}
	os.Exit(m.Run())
}

// initCluster starts an embedded cluster for one test and shuts it down at
// the test's end, then checks that it left nothing behind: no session
// directory (logs, spill files) and no new files in /dev/shm.
func initCluster(t *testing.T, opts ...ray.InitOption) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	opts = append([]ray.InitOption{ray.LogWorkers(testing.Verbose())}, opts...)
	shm := shmEntries()
	if err := ray.Init(ctx, opts...); err != nil {
		cancel()
		t.Fatalf("Init: %v", err)
	}
	sess := ray.SessionDirForTest()
	t.Cleanup(func() {
		ray.Shutdown()
		cancel()
		if _, err := os.Stat(sess); sess != "" && !os.IsNotExist(err) {
			t.Errorf("session directory %s left after Shutdown", sess)
		}
		if n := shmEntries(); n > shm {
			t.Errorf("/dev/shm has %d entries after Shutdown, %d before", n, shm)
		}
	})
	return ctx
}

// testNodeConfig is a node daemon's config with cpus CPUs, a session
// directory of its own (removed at cleanup), and edit applied.
func testNodeConfig(t *testing.T, cpus float64, edit func(*raylet.Config)) raylet.Config {
	t.Helper()
	sess, err := session.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Remove() })
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir = resources.Set{resources.CPU: cpus}, string(sess)
	if edit != nil {
		edit(&rc)
	}
	return rc
}

// shmEntries counts raygo's files in /dev/shm (other programs' files come
// and go on their own).
func shmEntries() int {
	list, _ := os.ReadDir("/dev/shm")
	n := 0
	for _, e := range list {
		if strings.Contains(e.Name(), "raygo") {
			n++
		}
	}
	return n
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

func pidAlive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// startHead starts a standalone head node (as `raygo start --head` would)
// with the given CPUs and token; edit may adjust its node daemon's config.
func startHead(t *testing.T, cpus float64, token string, edit func(*raylet.Config)) *node.Head {
	t.Helper()
	rc := testNodeConfig(t, cpus, edit)
	head, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(head.Stop)
	return head
}
