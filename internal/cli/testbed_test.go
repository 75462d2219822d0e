//go:build linux || darwin

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/testcluster"
)

func TestTestbedRejectsBadHosts(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for _, n := range []string{"0", "251", "lots"} {
		stderr.Reset()
		if code := run(context.Background(), []string{"testbed", "--hosts", n}, &stdout, &stderr); code != 2 {
			t.Errorf("testbed --hosts %s: exit %d (%s), want 2", n, code, stderr.String())
		}
	}
}

// The testbed lists its hosts with the way to run a command on each, and
// deletes them when interrupted.
func TestTestbedListsHostsUntilInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runTestbed(ctx, testcluster.Loopback, 2, &out) }()
	cancel() // it prints the hosts first, whenever the interrupt comes
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"2 hosts (loopback)", "host1", "host2", "Interrupt"} {
		if !strings.Contains(got, want) {
			t.Fatalf("testbed printed:\n%s\nwant %q in it", got, want)
		}
	}
}
