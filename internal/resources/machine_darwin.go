package resources

import "golang.org/x/sys/unix"

// machineMemory is sysctl hw.memsize.
func machineMemory() int64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return int64(n)
}
