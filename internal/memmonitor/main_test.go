package memmonitor

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// envPrintLimit makes the test binary print NodeLimit and exit: the
// child that TestNodeLimitInCgroup starts in a memory cgroup.
const envPrintLimit = "RAYGO_MEMMONITOR_PRINT_LIMIT"

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) {
	if os.Getenv(envPrintLimit) == "1" {
		l, err := NodeLimit()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Printf("%d %d %t %s\n", l.Bytes, l.Machine, l.Cgroup, l.Source)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
