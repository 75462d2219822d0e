package memmonitor

import (
	"errors"
	"fmt"
	"runtime"
)

var (
	// ErrInvalidConfig is wrapped by the errors of Config.Validate and New.
	ErrInvalidConfig = errors.New("memmonitor: invalid configuration")
	// ErrMalformed is wrapped by the errors of Read and ReadProc when a
	// file they read exists but does not parse; the message names the file.
	ErrMalformed = errors.New("memmonitor: malformed")
	// ErrNoReading is returned by Monitor.Last before the monitor has read
	// memory once (always, when its Interval is negative).
	ErrNoReading = errors.New("memmonitor: no reading yet")
	// ErrUnsupported is wrapped by the errors of System and Process where
	// the platform gives raygo no such figures (Process off Linux; both
	// off Linux and darwin). It wraps errors.ErrUnsupported.
	ErrUnsupported = fmt.Errorf("memmonitor: not available on %s: %w", runtime.GOOS, errors.ErrUnsupported)
)
