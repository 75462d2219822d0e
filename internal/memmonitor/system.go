package memmonitor

import "fmt"

// System reads the machine's memory use the platform's way: Read("/") on
// Linux (cgroup limits included); on darwin, sysctl's hw.memsize for the
// total and kern.memorystatus_level (the percentage of memory the kernel
// counts as available) for the rest. Elsewhere its error wraps
// ErrUnsupported. Defined in system_linux.go, system_darwin.go and
// system_other.go.
func System() (Usage, error) { return system() }

// Process reads one process's memory the platform's way: ReadProc("/",
// pid) on Linux. Elsewhere (darwin included: its per-process figures need
// libproc, which raygo does not link) the error wraps ErrUnsupported.
func Process(pid int) (ProcMem, error) { return process(pid) }

// fromLevel makes darwin's reading: total bytes of which level percent
// are available.
func fromLevel(total uint64, level uint32) (Usage, error) {
	if total == 0 || level > 100 {
		return Usage{}, fmt.Errorf("%w: sysctl hw.memsize %d, kern.memorystatus_level %d", ErrMalformed, total, level)
	}
	avail := total * uint64(level) / 100
	return Usage{Used: int64(total - avail), Total: int64(total), Source: "sysctl kern.memorystatus_level"}, nil
}
