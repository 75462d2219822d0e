package memmonitor

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func system() (Usage, error) {
	total, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return Usage{}, fmt.Errorf("memmonitor: sysctl hw.memsize: %w", err)
	}
	level, err := unix.SysctlUint32("kern.memorystatus_level")
	if err != nil {
		return Usage{}, fmt.Errorf("memmonitor: sysctl kern.memorystatus_level: %w", err)
	}
	return fromLevel(total, level)
}

func process(pid int) (ProcMem, error) {
	return ProcMem{}, fmt.Errorf("memmonitor: memory of pid %d: %w", pid, ErrUnsupported)
}
