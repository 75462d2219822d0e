package router

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrClosed is returned by Acquire once the Router is closed, and to
	// requests that were waiting when it closed.
	ErrClosed = errors.New("router: closed")

	// ErrNoReplicas is joined with the context's error when Acquire gave up
	// while the deployment had no running replica at all (none, or every
	// one draining or unhealthy): a deployment scaled to zero, or one
	// whose replicas are not up yet. A proxy answers it with 503 "no
	// replicas" rather than a plain timeout. Test with errors.Is; the
	// context's error matches too.
	ErrNoReplicas = errors.New("router: deployment has no running replicas")

	// ErrBackPressure matches every *BackPressureError with errors.Is.
	ErrBackPressure = errors.New("router: back pressure")

	// ErrUnknownReplica is returned by ReportQueueLen for a replica id the
	// Router does not hold.
	ErrUnknownReplica = errors.New("router: unknown replica")

	// ErrInvalid is wrapped by every error that rejects a Replica or
	// Options value; the message names the field and the value.
	ErrInvalid = errors.New("router: invalid argument")
)

// BackPressureError is returned by Acquire when every replica is at its
// MaxOngoingRequests and the wait queue already holds MaxQueuedRequests
// requests (Ray's BackPressureError). A proxy answers it with HTTP 503 and
// a Retry-After header of RetryAfter, rounded up to whole seconds.
type BackPressureError struct {
	// Queued is the number of requests waiting when this one was refused.
	Queued int
	// MaxQueued is the Router's MaxQueuedRequests.
	MaxQueued int
	// RetryAfter is the Router's suggested wait before retrying
	// (Options.RetryAfter).
	RetryAfter time.Duration
}

// Error implements error.
func (e *BackPressureError) Error() string {
	return fmt.Sprintf("router: back pressure: %d requests already queued (max_queued_requests=%d); retry after %s",
		e.Queued, e.MaxQueued, e.RetryAfter)
}

// Is reports whether target is ErrBackPressure.
func (e *BackPressureError) Is(target error) bool { return target == ErrBackPressure }
