package metrics_test

import (
	"context"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/ray"
)

// square is the task the tests run on their clusters.
func square(_ context.Context, x int) (int, error) { return x * x, nil }

var Square = ray.Func1(square)

// TestMain fails the package's tests if any goroutine outlives them (the
// discovery writer, node scrapes). Run by a node daemon as a job's
// worker, the test binary serves tasks instead.
func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks; never returns
		os.Exit(1)
	}
	goleak.VerifyTestMain(m)
}
