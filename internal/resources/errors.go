package resources

import "errors"

var (
	// ErrInvalidRequest reports a malformed resource request: a bad name, a
	// negative, non-finite or absurd amount, a fractional amount above 1, an
	// amount below 1/10,000, or a fraction of a byte.
	ErrInvalidRequest = errors.New("resources: invalid resource request")

	// ErrNotAllocated reports a Release of an Allocation that this
	// NodeResources does not hold: released already, from another node, or
	// the zero Allocation.
	ErrNotAllocated = errors.New("resources: allocation not held")

	// ErrNvidiaSMIOutput reports output of nvidia-smi that could not be parsed.
	ErrNvidiaSMIOutput = errors.New("resources: cannot parse nvidia-smi output")
)
