package scheduler

import "errors"

// ErrInfeasible is Decision.Err for an Infeasible decision: no alive node
// matching the request's labels has the total resources it asks for.
var ErrInfeasible = errors.New("scheduler: request is infeasible on every node")
