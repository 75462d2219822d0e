package raylet

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// readCPUTimes: darwin's per-CPU tick counters need the Mach host API
// (cgo), which raygo does not link, so the utilization is approximated
// by the 1-minute load average over the cores (vm.loadavg: three uint32
// fixed-point loads, then the scale as a long). It answers the reading
// with errLoadAverage.
func readCPUTimes() (cpuTimes, error) {
	b, err := unix.SysctlRaw("vm.loadavg")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("raylet: sysctl vm.loadavg: %w", err)
	}
	if len(b) < 24 {
		return cpuTimes{}, fmt.Errorf("raylet: sysctl vm.loadavg: %d bytes", len(b))
	}
	load := binary.LittleEndian.Uint32(b[0:4])
	scale := binary.LittleEndian.Uint64(b[16:24])
	if scale == 0 {
		return cpuTimes{}, fmt.Errorf("raylet: sysctl vm.loadavg: zero scale")
	}
	return cpuTimes{busy: uint64(load) * 1000 / scale / uint64(runtime.NumCPU()), total: 1000}, errLoadAverage
}
