// Package errs defines the error types that cross process boundaries in
// raygo and converts them to and from the wire (pb.ErrorInfo) and gRPC
// statuses. The public ray package re-exports these types, so users test
// them with errors.Is and errors.As; nothing in raygo matches error
// strings.
//
// # One table
//
// Every error kind (pb.ErrorKind, aliased here as Kind) has one row in
// table.go: its gRPC status code, the sentinel its Go error matches, and
// how the Go error is rebuilt from an ErrorInfo. ToInfo, FromInfo, Code,
// Sentinel and FromCode read that table, and internal/rpc turns errors
// into statuses and back through them, so no other package decides what
// a kind means:
//
//	kind                     gRPC code           Go type                sentinel
//	TASK                     FailedPrecondition  *TaskError             ErrTaskFailed
//	WORKER_CRASHED           FailedPrecondition  *WorkerCrashedError    ErrWorkerCrashed
//	ACTOR_DIED               FailedPrecondition  *ActorDiedError        ErrActorDied
//	ACTOR_NOT_HERE           FailedPrecondition  *ActorDiedError        ErrActorDied
//	NODE_DIED                FailedPrecondition  *NodeDiedError         ErrNodeDied
//	CANCELLED                Canceled            *CancelledError        ErrTaskCancelled, context.Canceled
//	OBJECT_FREED/_LOST       FailedPrecondition  *ObjectError           ErrObjectFreed, ErrObjectLost
//	OWNER_DIED               FailedPrecondition  *ObjectError           ErrOwnerDied
//	NOT_REGISTERED           NotFound            *NotRegisteredError    ErrNotRegistered
//	BAD_ARGUMENT             InvalidArgument     *ArgumentError         ErrBadArgument
//	INFEASIBLE               ResourceExhausted   *InfeasibleError       ErrInfeasible
//	WORKER_STARTUP           FailedPrecondition  *WorkerStartupError    ErrWorkerStartup
//	OBJECT_STORE_FULL        ResourceExhausted   *ObjectStoreFullError  ErrObjectStoreFull
//	OBJECT_TOO_LARGE         ResourceExhausted   *ObjectStoreFullError  ErrObjectTooLarge
//	OUT_OF_MEMORY            FailedPrecondition  *OutOfMemoryError      ErrOutOfMemory
//	INVALID                  InvalidArgument     *Status                ErrInvalidRequest
//	NOT_FOUND                NotFound            *Status                ErrNotFound
//	ALREADY_EXISTS           AlreadyExists       *Status                ErrAlreadyExists
//	TIMEOUT                  DeadlineExceeded    *Status                ErrTimeout, context.DeadlineExceeded
//	UNAUTHENTICATED          Unauthenticated     *Status                ErrUnauthenticated
//	UNAVAILABLE              Unavailable         *Status                ErrUnavailable
//	SYSTEM (and unknown)     Internal            *Status                ErrSystem
//
// Every field of a Go error type has a field of its own in ErrorInfo
// (ActorDiedError.Name in actor_name, ArgumentError.Index in arg_index,
// WorkerStartupError.Stderr in stderr, …), so an error survives the trip
// whole. A TaskError's cause travels as a registered user type
// (RegisterType, RegisterSentinel), or, when it is itself a raygo error,
// as a nested ErrorInfo; anything else arrives as a *RemoteError.
//
// Context errors keep their identity across the wire: context.Canceled
// travels as CANCELLED and context.DeadlineExceeded as TIMEOUT, and the
// errors rebuilt from those kinds match them with errors.Is. A gRPC status
// with no ErrorInfo (made by gRPC itself) reads back by its code through
// FromCode: Canceled and DeadlineExceeded as the context errors,
// Unauthenticated and Unavailable as *Status errors of those kinds.
//
// Adding a kind: add it to ErrorKind in proto/raygo.proto, regenerate
// (scripts/genproto.sh), add its constant and a row in table.go; the
// tests fail until the round-trip table and the code table have a row
// for it too.
package errs
