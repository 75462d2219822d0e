//go:build !linux && !darwin

package raylet

import (
	"fmt"
	"runtime"
)

// readCPUTimes: no reading elsewhere; the utilization series is left out.
func readCPUTimes() (cpuTimes, error) {
	return cpuTimes{}, fmt.Errorf("raylet: CPU utilization is not read on %s", runtime.GOOS)
}
