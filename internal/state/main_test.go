//go:build !windows

package state_test

import (
	"context"
	"os"
	"testing"

	"github.com/raygo/raygo/ray"
)

// TestMain lets this test binary be its own workers: the node daemon of
// the head a test starts runs tasks and actors in copies of it.
func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	os.Exit(m.Run())
}
