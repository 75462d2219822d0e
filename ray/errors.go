package ray

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/raygo/raygo/internal/errs"
)

// Sentinel errors, for errors.Is. Each typed error below matches its
// sentinel: errors.Is(err, ray.ErrWorkerCrashed) holds for a
// *WorkerCrashedError.
var (
	ErrNotInitialized     = errors.New("ray: not initialized (call ray.Init first)")
	ErrAlreadyInitialized = errors.New("ray: already initialized (call ray.Shutdown before Init again)")
	ErrTaskFailed         = errs.ErrTaskFailed
	ErrWorkerCrashed      = errs.ErrWorkerCrashed
	ErrActorDied          = errs.ErrActorDied
	ErrTaskCancelled      = errs.ErrTaskCancelled
	ErrObjectFreed        = errs.ErrObjectFreed
	ErrObjectLost         = errs.ErrObjectLost
	ErrOwnerDied          = errs.ErrOwnerDied
	ErrNotRegistered      = errs.ErrNotRegistered
	ErrBadArgument        = errs.ErrBadArgument
	ErrInfeasible         = errs.ErrInfeasible
	ErrWorkerStartup      = errs.ErrWorkerStartup
	ErrInvalidRequest     = errs.ErrInvalidRequest
	ErrUnauthenticated    = errs.ErrUnauthenticated
	ErrUnavailable        = errs.ErrUnavailable
	ErrNotFound           = errs.ErrNotFound
	ErrAlreadyExists      = errs.ErrAlreadyExists
	ErrTimeout            = errs.ErrTimeout
	ErrObjectStoreFull    = errs.ErrObjectStoreFull
	ErrObjectTooLarge     = errs.ErrObjectTooLarge
	ErrOutOfMemory        = errs.ErrOutOfMemory
	ErrNodeDied           = errs.ErrNodeDied
	// ErrPlacementGroupRemoved: the task's placement group was removed.
	ErrPlacementGroupRemoved = errs.ErrPlacementGroupRemoved
	// ErrHeadLost: the cluster's head is gone (see HeadLostError).
	ErrHeadLost = errs.ErrHeadLost
)

// Typed errors, for errors.As.
type (
	// TaskError is a task's or actor method's own failure: the error it
	// returned or the panic it raised, with the function name, the remote
	// stack (for panics), and the node and worker it ran on. Unwrap gives
	// the user's error value when its type is registered with
	// RegisterError, else a *RemoteError.
	TaskError = errs.TaskError
	// RemoteError stands for a remote error whose type is not registered.
	RemoteError = errs.RemoteError
	// WorkerCrashedError: the task's worker died on every allowed attempt.
	WorkerCrashedError = errs.WorkerCrashedError
	// ActorDiedError: the actor is dead, or died during the call.
	ActorDiedError = errs.ActorDiedError
	// CancelledError: the task was cancelled. It matches ErrTaskCancelled
	// and context.Canceled.
	CancelledError = errs.CancelledError
	// ObjectError: the object was freed, lost, or its owner died.
	ObjectError = errs.ObjectError
	// NotRegisteredError: the worker binary does not register the name.
	NotRegisteredError = errs.NotRegisteredError
	// ArgumentError: arguments do not match the function's parameters.
	ArgumentError = errs.ArgumentError
	// InfeasibleError: no node can ever satisfy the resource request.
	InfeasibleError = errs.InfeasibleError
	// WorkerStartupError: the job's workers exit before registering.
	WorkerStartupError = errs.WorkerStartupError
	// ObjectStoreFullError: a node's object store could not take an
	// object (full after spilling and waiting, or larger than the store
	// and its spill directory); the message says what holds the memory.
	ObjectStoreFullError = errs.ObjectStoreFullError
	// OutOfMemoryError: the node's memory monitor killed the task's worker
	// on every allowed attempt (see OOMRetries).
	OutOfMemoryError = errs.OutOfMemoryError
	// NodeDiedError: the node running the task died, on every allowed
	// attempt; it names the node.
	NodeDiedError = errs.NodeDiedError
	// PlacementGroupRemovedError: the task was to run in a placement group
	// that was removed; it names the group.
	PlacementGroupRemovedError = errs.PlacementGroupRemovedError
	// HeadLostError: the cluster's head stopped answering for longer than
	// the head timeout, or came back without the cluster's state (it keeps
	// no storage); or, for a head that keeps its state in storage
	// (`raygo start --head --storage`), did not come back within a minute.
	// Every call of this process fails with it from then on.
	HeadLostError = errs.HeadLostError
)

// RegisterError makes errors of type E cross the wire with their type and
// fields intact (msgpack), so errors.As(err, &e) works on the caller's
// side. Register at package init, in every binary of the job (drivers and
// workers run the same binary, so once is enough). name must be stable;
// RetryExceptions refers to it. Like arguments, E must travel intact: a
// type with an unexported field panics here, naming it (see
// EncodingError).
func RegisterError[E error](name string) {
	if err := checkType(reflect.TypeFor[E]()); err != nil {
		panic(fmt.Sprintf("ray: RegisterError %q: %v", name, err))
	}
	errs.RegisterType(name, reflect.TypeFor[E]())
}

// RegisterSentinel makes a sentinel error value cross the wire so that
// errors.Is(err, sentinel) holds on the caller's side.
func RegisterSentinel(name string, sentinel error) {
	errs.RegisterSentinel(name, sentinel)
}
