package errs

import (
	"errors"
	"fmt"
)

// ErrNodeDied matches a NodeDiedError.
var ErrNodeDied = errors.New("raygo: node died")

// NodeDiedError reports a task whose node died (its node daemon could not
// be reached) while it ran, on every allowed attempt.
type NodeDiedError struct {
	NodeID   string
	Address  string
	Function string
	Attempts int
	Reason   string
}

func (e *NodeDiedError) Error() string {
	return fmt.Sprintf("raygo: node %s (%s) died while running %s, after %d attempt(s): %s",
		short(e.NodeID), e.Address, e.Function, e.Attempts, e.Reason)
}

// Is matches ErrNodeDied, and ErrWorkerCrashed: the worker died with its
// node.
func (e *NodeDiedError) Is(target error) bool { return target == ErrNodeDied || target == ErrWorkerCrashed }
