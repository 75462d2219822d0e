package raylet_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/raylet"
)

// TestMain fails the package's tests if any goroutine outlives them. Run
// by a node daemon as a job's worker, the test binary is a fake worker
// instead (fakeworker_test.go).
func TestMain(m *testing.M) {
	if os.Getenv(raylet.EnvWorker) == "1" {
		os.Exit(runFakeWorker())
	}
	goleak.VerifyTestMain(m)
}
