// Package errs defines the error types that cross process boundaries in
// raygo and converts them to and from the wire (pb.ErrorInfo). The public
// ray package re-exports these types, so users test them with errors.Is and
// errors.As; nothing in raygo matches error strings.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels usable with errors.Is. Each typed error below matches its
// sentinel.
var (
	ErrTaskFailed      = errors.New("raygo: task failed")
	ErrWorkerCrashed   = errors.New("raygo: worker crashed")
	ErrActorDied       = errors.New("raygo: actor died")
	ErrTaskCancelled   = errors.New("raygo: task cancelled")
	ErrObjectFreed     = errors.New("raygo: object freed")
	ErrObjectLost      = errors.New("raygo: object lost")
	ErrOwnerDied       = errors.New("raygo: owner died")
	ErrNotRegistered   = errors.New("raygo: function not registered")
	ErrBadArgument     = errors.New("raygo: bad argument")
	ErrInfeasible      = errors.New("raygo: resource request infeasible")
	ErrWorkerStartup   = errors.New("raygo: worker failed to start")
	ErrInvalidRequest  = errors.New("raygo: invalid request")
	ErrUnauthenticated = errors.New("raygo: unauthenticated")
	ErrUnavailable     = errors.New("raygo: unavailable")
	ErrNotFound        = errors.New("raygo: not found")
	ErrAlreadyExists   = errors.New("raygo: already exists")
	ErrTimeout         = errors.New("raygo: timed out")
	ErrSystem          = errors.New("raygo: system error")
	ErrObjectStoreFull = errors.New("raygo: object store full")
	ErrObjectTooLarge  = errors.New("raygo: object too large")
	ErrOutOfMemory     = errors.New("raygo: out of memory")
)

// Kinds name each error type on the wire (pb.ErrorInfo.kind).
const (
	KindTask          = "task"
	KindWorkerCrashed = "worker_crashed"
	KindActorDied     = "actor_died"
	KindCancelled     = "cancelled"
	KindObjectFreed   = "object_freed"
	KindObjectLost    = "object_lost"
	KindOwnerDied     = "owner_died"
	KindNotRegistered = "not_registered"
	KindBadArgument   = "bad_argument"
	KindInfeasible    = "infeasible"
	KindWorkerStartup = "worker_startup"
	KindInvalid       = "invalid"
	KindNotFound      = "not_found"
	KindAlreadyExists = "already_exists"
	KindSystem        = "system"
	KindTimeout       = "timeout"
	// KindObjectStoreFull: an object did not fit in its node's store even
	// after spilling, within the put timeout.
	KindObjectStoreFull = "object_store_full"
	// KindObjectTooLarge: an object larger than its node's store and its
	// spill directory together.
	KindObjectTooLarge = "object_too_large"
	// KindOutOfMemory: the node's memory monitor killed the worker running
	// the task.
	KindOutOfMemory = "out_of_memory"
	// KindActorNotHere answers a call sent to a process that no longer
	// hosts the actor; callers reconnect through the control store. It
	// reaches users, if ever, as an ActorDiedError.
	KindActorNotHere = "actor_not_here"
)

// TaskError is a remote function's (or actor method's) own failure: the
// error it returned or the panic it raised. Cause is the user's error value
// when its type was registered with ray.RegisterError, otherwise a
// *RemoteError carrying the message.
type TaskError struct {
	Function string
	Message  string
	Stack    string // remote stack for panics, empty for returned errors
	NodeID   string
	WorkerID string
	Attempt  int
	Panic    bool
	Cause    error
}

func (e *TaskError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "raygo: task %s failed", e.Function)
	if e.Panic {
		b.WriteString(" (panic)")
	}
	fmt.Fprintf(&b, " on node %s worker %s: %s", short(e.NodeID), short(e.WorkerID), e.Message)
	if e.Stack != "" {
		b.WriteString("\nremote stack:\n")
		b.WriteString(e.Stack)
	}
	return b.String()
}
func (e *TaskError) Unwrap() error        { return e.Cause }
func (e *TaskError) Is(target error) bool { return target == ErrTaskFailed }

// RemoteError stands for a remote error whose Go type is not registered in
// this process: its type name and message survive, its identity does not.
type RemoteError struct {
	TypeName string
	Message  string
}

func (e *RemoteError) Error() string { return e.Message }

// WorkerCrashedError reports that the process running a task died (or its
// node did) on every allowed attempt.
type WorkerCrashedError struct {
	Function string
	NodeID   string
	WorkerID string
	Attempts int
	Reason   string
}

func (e *WorkerCrashedError) Error() string {
	return fmt.Sprintf("raygo: worker running %s crashed (node %s worker %s) after %d attempt(s): %s",
		e.Function, short(e.NodeID), short(e.WorkerID), e.Attempts, e.Reason)
}
func (e *WorkerCrashedError) Is(target error) bool { return target == ErrWorkerCrashed }

// ActorDiedError reports a call on an actor that is dead, or that died
// while the call ran and may not be retried.
type ActorDiedError struct {
	ActorID string
	Name    string
	Reason  string
}

func (e *ActorDiedError) Error() string {
	n := e.Name
	if n == "" {
		n = short(e.ActorID)
	}
	return fmt.Sprintf("raygo: actor %s died: %s", n, e.Reason)
}
func (e *ActorDiedError) Is(target error) bool { return target == ErrActorDied }

// CancelledError reports a task stopped by ray.Cancel. Cancelled tasks are
// never retried.
type CancelledError struct {
	Function string
	TaskID   string
}

func (e *CancelledError) Error() string {
	return fmt.Sprintf("raygo: task %s (%s) was cancelled", e.Function, short(e.TaskID))
}
func (e *CancelledError) Is(target error) bool { return target == ErrTaskCancelled }

// ObjectError reports an object that cannot be read: freed, lost with no
// way to rebuild it, or owned by a process that died.
type ObjectError struct {
	ObjectID string
	Kind     string // KindObjectFreed, KindObjectLost or KindOwnerDied
	Detail   string
}

func (e *ObjectError) Error() string {
	what := map[string]string{KindObjectFreed: "was freed", KindObjectLost: "was lost", KindOwnerDied: "is unavailable: its owner died"}[e.Kind]
	s := fmt.Sprintf("raygo: object %s %s", short(e.ObjectID), what)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}
func (e *ObjectError) Is(target error) bool {
	switch e.Kind {
	case KindObjectFreed:
		return target == ErrObjectFreed
	case KindOwnerDied:
		return target == ErrOwnerDied
	}
	return target == ErrObjectLost
}

// NotRegisteredError reports a call of a function, actor type or method
// that the worker's binary does not register.
type NotRegisteredError struct{ Name string }

func (e *NotRegisteredError) Error() string {
	return fmt.Sprintf("raygo: %q is not registered in the worker binary (register it at package init with ray.Func/ray.Actor)", e.Name)
}
func (e *NotRegisteredError) Is(target error) bool { return target == ErrNotRegistered }

// ArgumentError reports arguments that do not decode into the function's
// parameter types.
type ArgumentError struct {
	Function string
	Index    int
	Detail   string
}

func (e *ArgumentError) Error() string {
	return fmt.Sprintf("raygo: %s: argument %d: %s", e.Function, e.Index, e.Detail)
}
func (e *ArgumentError) Is(target error) bool { return target == ErrBadArgument }

// InfeasibleError reports a resource request that no node in the cluster
// can ever satisfy.
type InfeasibleError struct {
	Function string
	Request  string
	Cluster  string
}

func (e *InfeasibleError) Error() string {
	return fmt.Sprintf("raygo: %s requests %s, which no node can satisfy (cluster totals: %s)", e.Function, e.Request, e.Cluster)
}
func (e *InfeasibleError) Is(target error) bool { return target == ErrInfeasible }

// WorkerStartupError reports that worker processes for a job exit before
// they register with their node daemon.
type WorkerStartupError struct {
	Binary   string
	ExitCode int
	Attempts int
	Stderr   string
}

func (e *WorkerStartupError) Error() string {
	s := fmt.Sprintf("raygo: worker binary %s exited with code %d before registering (%d attempts)", e.Binary, e.ExitCode, e.Attempts)
	if e.Stderr != "" {
		s += "; stderr tail:\n" + e.Stderr
	}
	return s
}
func (e *WorkerStartupError) Is(target error) bool { return target == ErrWorkerStartup }

// ObjectStoreFullError reports an object that a node's store could not
// take: full after spilling and waiting (Kind KindObjectStoreFull), or
// larger than the store and its spill directory (KindObjectTooLarge).
// Message states the store's size, what is pinned and by whom.
type ObjectStoreFullError struct {
	Kind     string
	ObjectID string
	Message  string
}

func (e *ObjectStoreFullError) Error() string { return e.Message }
func (e *ObjectStoreFullError) Is(target error) bool {
	if e.Kind == KindObjectTooLarge {
		return target == ErrObjectTooLarge
	}
	return target == ErrObjectStoreFull
}

// OutOfMemoryError reports a task whose worker the node's memory monitor
// killed, once its out-of-memory retries are spent. Message names the
// node's memory use and its top consumers.
type OutOfMemoryError struct {
	Function string
	NodeID   string
	WorkerID string
	Attempts int
	Message  string
}

func (e *OutOfMemoryError) Error() string {
	return fmt.Sprintf("raygo: task %s was killed by the memory monitor of node %s (worker %s) %d time(s): %s",
		e.Function, short(e.NodeID), short(e.WorkerID), e.Attempts, e.Message)
}
func (e *OutOfMemoryError) Is(target error) bool { return target == ErrOutOfMemory }

// Status is a generic typed error for control-plane failures
// (invalid request, not found, already exists, system).
type Status struct {
	Kind    string
	Message string
}

func (e *Status) Error() string { return e.Message }
func (e *Status) Is(target error) bool {
	switch e.Kind {
	case KindInvalid:
		return target == ErrInvalidRequest
	case KindNotFound:
		return target == ErrNotFound
	case KindAlreadyExists:
		return target == ErrAlreadyExists
	case KindTimeout:
		return target == ErrTimeout
	}
	return target == ErrSystem
}

// Invalidf returns an invalid-request error.
func Invalidf(format string, args ...any) error {
	return &Status{Kind: KindInvalid, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf returns a not-found error.
func NotFoundf(format string, args ...any) error {
	return &Status{Kind: KindNotFound, Message: fmt.Sprintf(format, args...)}
}

// AlreadyExistsf returns an already-exists error.
func AlreadyExistsf(format string, args ...any) error {
	return &Status{Kind: KindAlreadyExists, Message: fmt.Sprintf(format, args...)}
}

// Systemf returns an internal system error.
func Systemf(format string, args ...any) error {
	return &Status{Kind: KindSystem, Message: fmt.Sprintf(format, args...)}
}

func short(id string) string {
	if len(id) > 8 {
		return id[len(id)-8:]
	}
	if id == "" {
		return "?"
	}
	return id
}
