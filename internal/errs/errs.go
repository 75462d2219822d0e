package errs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
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
	ErrNodeDied        = errors.New("raygo: node died")
	// ErrPlacementGroupRemoved: a task or actor was to run in a placement
	// group that was removed.
	ErrPlacementGroupRemoved = errors.New("raygo: placement group removed")
	// ErrHeadLost: the cluster's head (its control store) is gone, and
	// the cluster with it.
	ErrHeadLost = errors.New("raygo: the cluster's head is gone")
)

// Kind names an error's Go type on the wire (pb.ErrorInfo.kind). The
// table in table.go maps each Kind to its gRPC code, sentinel and Go type.
type Kind = pb.ErrorKind

// The kinds. KindName gives each one's short readable name ("task",
// "worker_crashed", ...).
const (
	KindTask          = pb.ErrorKind_ERROR_KIND_TASK
	KindWorkerCrashed = pb.ErrorKind_ERROR_KIND_WORKER_CRASHED
	KindActorDied     = pb.ErrorKind_ERROR_KIND_ACTOR_DIED
	KindCancelled     = pb.ErrorKind_ERROR_KIND_CANCELLED
	KindObjectFreed   = pb.ErrorKind_ERROR_KIND_OBJECT_FREED
	KindObjectLost    = pb.ErrorKind_ERROR_KIND_OBJECT_LOST
	KindOwnerDied     = pb.ErrorKind_ERROR_KIND_OWNER_DIED
	KindNotRegistered = pb.ErrorKind_ERROR_KIND_NOT_REGISTERED
	KindBadArgument   = pb.ErrorKind_ERROR_KIND_BAD_ARGUMENT
	KindInfeasible    = pb.ErrorKind_ERROR_KIND_INFEASIBLE
	KindWorkerStartup = pb.ErrorKind_ERROR_KIND_WORKER_STARTUP
	KindInvalid       = pb.ErrorKind_ERROR_KIND_INVALID
	KindNotFound      = pb.ErrorKind_ERROR_KIND_NOT_FOUND
	KindAlreadyExists = pb.ErrorKind_ERROR_KIND_ALREADY_EXISTS
	// KindSystem is any error without a wire type of its own; an ErrorInfo
	// with no kind (or one this binary does not know) reads as KindSystem.
	KindSystem = pb.ErrorKind_ERROR_KIND_SYSTEM
	// KindTimeout: a deadline passed. Its error matches both ErrTimeout and
	// context.DeadlineExceeded.
	KindTimeout = pb.ErrorKind_ERROR_KIND_TIMEOUT
	// KindObjectStoreFull: an object did not fit in its node's store even
	// after spilling, within the put timeout.
	KindObjectStoreFull = pb.ErrorKind_ERROR_KIND_OBJECT_STORE_FULL
	// KindObjectTooLarge: an object larger than its node's store and its
	// spill directory together.
	KindObjectTooLarge = pb.ErrorKind_ERROR_KIND_OBJECT_TOO_LARGE
	// KindOutOfMemory: the node's memory monitor killed the worker running
	// the task.
	KindOutOfMemory = pb.ErrorKind_ERROR_KIND_OUT_OF_MEMORY
	// KindActorNotHere answers a call sent to a process that no longer
	// hosts the actor; callers reconnect through the control store. It
	// reaches users, if ever, as an ActorDiedError.
	KindActorNotHere = pb.ErrorKind_ERROR_KIND_ACTOR_NOT_HERE
	// KindActorInterrupted answers a call that was running when its actor
	// left the process (killed while sharing it with other actors): the
	// caller handles it as the death of the actor's process during the
	// call. It reaches users, if ever, as an ActorDiedError.
	KindActorInterrupted = pb.ErrorKind_ERROR_KIND_ACTOR_INTERRUPTED
	// KindNodeDied: the node running a task (its node daemon) died.
	KindNodeDied = pb.ErrorKind_ERROR_KIND_NODE_DIED
	// KindPlacementGroupRemoved: the task's placement group was removed.
	KindPlacementGroupRemoved = pb.ErrorKind_ERROR_KIND_PLACEMENT_GROUP_REMOVED
	// KindHeadLost: the cluster's head is gone.
	KindHeadLost = pb.ErrorKind_ERROR_KIND_HEAD_LOST
	// KindUnauthenticated: a missing or wrong cluster token.
	KindUnauthenticated = pb.ErrorKind_ERROR_KIND_UNAUTHENTICATED
	// KindUnavailable: the peer could not be reached or the connection
	// broke.
	KindUnavailable = pb.ErrorKind_ERROR_KIND_UNAVAILABLE
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
// while the call ran and may not be retried. Cause says why, when known;
// an actor that died because its owner did also matches ErrOwnerDied.
type ActorDiedError struct {
	ActorID string
	Name    string
	Reason  string
	Cause   ActorDeathCause
}

// ActorDeathCause says why an actor died.
type ActorDeathCause = pb.ActorDeathCause

// Actor death causes.
const (
	ActorProcessDied    = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_PROCESS_DIED
	ActorKilled         = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_KILLED
	ActorOwnerDied      = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_OWNER_DIED
	ActorOutOfScope     = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_OUT_OF_SCOPE
	ActorExited         = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_EXITED
	ActorNodeDied       = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_NODE_DIED
	ActorCreationFailed = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_CREATION_FAILED
	// ActorGroupRemoved: the placement group it ran in was removed.
	ActorGroupRemoved = pb.ActorDeathCause_ACTOR_DEATH_CAUSE_PLACEMENT_GROUP_REMOVED
)

func (e *ActorDiedError) Error() string {
	n := e.Name
	if n == "" {
		n = short(e.ActorID)
	}
	return fmt.Sprintf("raygo: actor %s died: %s", n, e.Reason)
}
func (e *ActorDiedError) Is(target error) bool {
	return target == ErrActorDied || (target == ErrOwnerDied && e.Cause == ActorOwnerDied)
}

// CancelledError reports a task stopped by ray.Cancel, or (Function and
// TaskID empty) work stopped because a context was cancelled. Cancelled
// tasks are never retried. It matches ErrTaskCancelled and
// context.Canceled.
type CancelledError struct {
	Function string
	TaskID   string
	Reason   string // optional: who or what cancelled
}

func (e *CancelledError) Error() string {
	s := "raygo: cancelled"
	if e.Function != "" || e.TaskID != "" {
		s = fmt.Sprintf("raygo: task %s (%s) was cancelled", e.Function, short(e.TaskID))
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}
func (e *CancelledError) Is(target error) bool {
	return target == ErrTaskCancelled || target == context.Canceled
}

// ObjectError reports an object that cannot be read: freed, lost with no
// way to rebuild it, or owned by a process that died.
type ObjectError struct {
	ObjectID string
	Kind     Kind // KindObjectFreed, KindObjectLost or KindOwnerDied
	Detail   string
}

func (e *ObjectError) Error() string {
	what := "was lost"
	switch e.Kind {
	case KindObjectFreed:
		what = "was freed"
	case KindOwnerDied:
		what = "is unavailable: its owner died"
	}
	s := fmt.Sprintf("raygo: object %s %s", short(e.ObjectID), what)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Is matches the sentinel of e.Kind; an ObjectError of any other kind
// counts as lost.
func (e *ObjectError) Is(target error) bool {
	switch e.Kind {
	case KindObjectFreed, KindOwnerDied:
		return target == Sentinel(e.Kind)
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
	Kind     Kind
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

// NodeDiedError reports a task whose node (its node daemon) died while
// the task ran, on every allowed attempt.
// PlacementGroupRemovedError reports that a task's placement group was
// removed before (or while) it could run there, as Ray's
// TaskPlacementGroupRemoved.
type PlacementGroupRemovedError struct {
	Function string
	GroupID  string
	Name     string // the group's name, if it had one
}

func (e *PlacementGroupRemovedError) Error() string {
	g := short(e.GroupID)
	if e.Name != "" {
		g = fmt.Sprintf("%q (%s)", e.Name, g)
	}
	if e.Function == "" {
		return fmt.Sprintf("raygo: placement group %s was removed", g)
	}
	return fmt.Sprintf("raygo: %s cannot run: its placement group %s was removed", e.Function, g)
}

func (e *PlacementGroupRemovedError) Is(target error) bool { return target == ErrPlacementGroupRemoved }

type NodeDiedError struct {
	Function    string
	NodeID      string
	NodeAddress string
	Attempts    int
	Reason      string
}

func (e *NodeDiedError) Error() string {
	s := fmt.Sprintf("raygo: node %s", short(e.NodeID))
	if e.NodeAddress != "" {
		s += " (" + e.NodeAddress + ")"
	}
	s += " died"
	if e.Function != "" {
		s += fmt.Sprintf(" while running %s (%d attempt(s))", e.Function, e.Attempts)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}
func (e *NodeDiedError) Is(target error) bool { return target == ErrNodeDied }

// HeadLostError: the cluster's head (its control store, at Head) is lost:
// it stopped answering for longer than the head timeout (it is gone, or
// this process is cut off from it), or answered as a stranger (started
// again without storage, so without the cluster's state), or, keeping its
// state in storage, did not come back within a minute. A head without
// storage takes its cluster with it: nodes stop their workers and exit,
// and a driver's calls fail with this error.
type HeadLostError struct {
	Head   string
	Reason string
}

func (e *HeadLostError) Error() string {
	s := "raygo: lost the cluster's head"
	if e.Head != "" {
		s += " at " + e.Head
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}
func (e *HeadLostError) Is(target error) bool { return target == ErrHeadLost }

// Status is a generic typed error for control-plane failures: invalid
// request, not found, already exists, timeout, unauthenticated,
// unavailable, system. It matches the sentinel of its Kind (and a timeout
// matches context.DeadlineExceeded too); a Kind without a row of its own
// in the table matches ErrSystem.
type Status struct {
	Kind    Kind
	Message string
}

func (e *Status) Error() string { return e.Message }
func (e *Status) Is(target error) bool {
	r, ok := rowOf(e.Kind)
	if !ok || r.sentinel == nil {
		return target == ErrSystem
	}
	return target == r.sentinel || (r.std != nil && target == r.std)
}

// Timeoutf returns a timeout error; it matches ErrTimeout and
// context.DeadlineExceeded.
func Timeoutf(format string, args ...any) error {
	return &Status{Kind: KindTimeout, Message: fmt.Sprintf(format, args...)}
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

// short prints an id the one way raygo prints short ids (ids.Short).
func short(id string) string { return ids.ShortString(id) }
