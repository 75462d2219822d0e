package memmonitor

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/testcluster"
)

// TestNodeLimitInCgroup runs this test binary in a real memory cgroup
// limited to 300 MiB (a simulated host's, testcluster.Host.LimitMemory)
// and checks that NodeLimit there reports the cgroup's limit, and here
// (where this machine sets no lower limit) none below the machine's.
func TestNodeLimitInCgroup(t *testing.T) {
	if err := testcluster.MemoryLimitAvailable(); err != nil {
		t.Skipf("no real cgroup to check against: %v", err)
	}
	here, err := NodeLimit()
	if err != nil {
		t.Fatal(err)
	}
	if here.Bytes <= 0 || here.Bytes > here.Machine {
		t.Fatalf("NodeLimit here = %+v: want 0 < Bytes ≤ Machine", here)
	}
	bed, err := testcluster.New(testcluster.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := bed.Close(); err != nil {
			t.Error(err)
		}
	})
	h, err := bed.AddHost("small")
	if err != nil {
		t.Fatal(err)
	}
	const limit = 300 * mib
	if err := h.LimitMemory(limit); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.Command(exe, "-test.run=^$")
	cmd.Env = append(cmd.Env, envPrintLimit+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child in the cgroup: %v\n%s", err, out)
	}
	var got Limit
	var cgroup string
	if _, err := fmt.Sscanf(string(out), "%d %d %s", &got.Bytes, &got.Machine, &cgroup); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	if got.Bytes != limit || cgroup != "true" || got.Machine != here.Machine || !strings.Contains(string(out), "cgroup v") {
		t.Fatalf("NodeLimit in a cgroup limited to %d: %s (want the limit, from a cgroup, and the machine's %d)", limit, out, here.Machine)
	}
	t.Logf("in the cgroup: %s", strings.TrimSpace(string(out)))
}
