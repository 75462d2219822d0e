//go:build !linux && !darwin

package memmonitor

import "fmt"

func system() (Usage, error) { return Usage{}, ErrUnsupported }

func process(pid int) (ProcMem, error) {
	return ProcMem{}, fmt.Errorf("memmonitor: memory of pid %d: %w", pid, ErrUnsupported)
}

func nodeLimit() (Limit, error) { return Limit{}, ErrUnsupported }
