package autoscale

import "errors"

// ErrInvalidConfig is wrapped by every error [Config.Validate] returns; the
// wrapping message names the field and the value that was wrong.
var ErrInvalidConfig = errors.New("autoscale: invalid config")

// ErrOutOfOrder is returned by [Policy.Observe] for an observation older
// than the newest one already recorded. The observation is dropped, as Ray
// drops a metrics report whose timestamp is not newer than the last one.
var ErrOutOfOrder = errors.New("autoscale: observation older than the newest one")

// ErrBadObservation is returned by [Policy.Observe] for a load that is
// negative, NaN or infinite. The observation is dropped.
var ErrBadObservation = errors.New("autoscale: observation is not a finite non-negative number")
