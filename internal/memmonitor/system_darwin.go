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

// nodeLimit: darwin has no cgroups; a node may use the machine's memory.
func nodeLimit() (Limit, error) {
	total, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return Limit{}, fmt.Errorf("memmonitor: sysctl hw.memsize: %w", err)
	}
	return Limit{Bytes: int64(total), Machine: int64(total), Source: "sysctl hw.memsize"}, nil
}
