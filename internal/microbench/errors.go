package microbench

import "errors"

var (
	// ErrInvalidConfig is wrapped by Config.Validate's errors.
	ErrInvalidConfig = errors.New("microbench: invalid configuration")
	// ErrNoMatch is returned by Select when the filter matches no
	// benchmark.
	ErrNoMatch = errors.New("microbench: no benchmark matches the filter")
	// ErrNotBuilt is the error of a benchmark whose feature raygo lacks.
	ErrNotBuilt = errors.New("microbench: not built")
)
