//go:build !windows

package logs_test

import (
	"context"
	"os"
	"testing"

	"github.com/raygo/raygo/ray"
)

// TestMain lets this test binary be its own workers (the node daemon of
// the head a test starts runs tasks and actors in copies of it) and the
// driver program of cluster_test.go.
func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	if os.Getenv(envRole) == roleDriver {
		os.Exit(runDriver())
	}
	os.Exit(m.Run())
}
