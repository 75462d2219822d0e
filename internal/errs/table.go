package errs

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/raygo/raygo/internal/pb"
)

// row is one line of the error table: a Kind, the gRPC code a status
// carrying it gets, the sentinel its Go error matches, and how the Go
// error is rebuilt from its wire form.
type row struct {
	kind Kind
	code codes.Code
	// sentinel is what errors.Is matches for this kind.
	sentinel error
	// std is a standard error the kind's Go error matches too
	// (context.Canceled, context.DeadlineExceeded); ToInfo maps it to
	// this kind, and a bare status with this code reads back as std.
	std error
	// build rebuilds the Go error from its wire form.
	build func(*pb.ErrorInfo) error
	// untyped, when set, is the wire form of an error that has no wire
	// type but matches sentinel or std (fmt.Errorf("%w: …", ErrNotFound)).
	// Without it such errors become KindSystem.
	untyped func(err error) *pb.ErrorInfo
	// bare: a gRPC status with this code and no ErrorInfo (one gRPC
	// itself or an interceptor made) reads as this kind. At most one row
	// per code.
	bare bool
}

// table is the one mapping of kind ↔ gRPC code ↔ Go type. ToInfo,
// FromInfo, Code, FromCode and the Is methods all read it. Order matters
// only for errors without a wire type: the first row whose sentinel or
// std they match decides their kind.
var table = []row{
	{kind: KindTask, code: codes.FailedPrecondition, sentinel: ErrTaskFailed, build: buildTask},
	{kind: KindWorkerCrashed, code: codes.FailedPrecondition, sentinel: ErrWorkerCrashed, build: func(i *pb.ErrorInfo) error {
		return &WorkerCrashedError{Function: i.Function, NodeID: i.NodeId, WorkerID: i.WorkerId, Attempts: int(i.Attempts), Reason: i.Reason}
	}},
	{kind: KindActorDied, code: codes.FailedPrecondition, sentinel: ErrActorDied, build: buildActorDied},
	{kind: KindActorNotHere, code: codes.FailedPrecondition, sentinel: ErrActorDied, build: buildActorDied},
	{kind: KindActorInterrupted, code: codes.FailedPrecondition, sentinel: ErrActorDied, build: buildActorDied},
	{kind: KindNodeDied, code: codes.FailedPrecondition, sentinel: ErrNodeDied, build: func(i *pb.ErrorInfo) error {
		return &NodeDiedError{Function: i.Function, NodeID: i.NodeId, NodeAddress: i.NodeAddress, Attempts: int(i.Attempts), Reason: i.Reason}
	}},
	{kind: KindHeadLost, code: codes.FailedPrecondition, sentinel: ErrHeadLost, build: func(i *pb.ErrorInfo) error {
		return &HeadLostError{Head: i.NodeAddress, Reason: i.Reason}
	}},
	{kind: KindPlacementGroupRemoved, code: codes.FailedPrecondition, sentinel: ErrPlacementGroupRemoved, build: func(i *pb.ErrorInfo) error {
		return &PlacementGroupRemovedError{Function: i.Function, GroupID: i.Detail, Name: i.Name}
	}},
	{kind: KindCancelled, code: codes.Canceled, sentinel: ErrTaskCancelled, std: context.Canceled, bare: true,
		build: func(i *pb.ErrorInfo) error {
			return &CancelledError{Function: i.Function, TaskID: i.TaskId, Reason: i.Reason}
		},
		untyped: func(err error) *pb.ErrorInfo { return &pb.ErrorInfo{Kind: KindCancelled, Reason: err.Error()} }},
	{kind: KindObjectFreed, code: codes.FailedPrecondition, sentinel: ErrObjectFreed, build: buildObject},
	{kind: KindObjectLost, code: codes.FailedPrecondition, sentinel: ErrObjectLost, build: buildObject},
	{kind: KindOwnerDied, code: codes.FailedPrecondition, sentinel: ErrOwnerDied, build: buildObject},
	{kind: KindNotRegistered, code: codes.NotFound, sentinel: ErrNotRegistered, build: func(i *pb.ErrorInfo) error {
		return &NotRegisteredError{Name: i.Name}
	}},
	{kind: KindBadArgument, code: codes.InvalidArgument, sentinel: ErrBadArgument, build: func(i *pb.ErrorInfo) error {
		return &ArgumentError{Function: i.Function, Index: int(i.ArgIndex), Detail: i.Detail}
	}},
	{kind: KindInfeasible, code: codes.ResourceExhausted, sentinel: ErrInfeasible, build: func(i *pb.ErrorInfo) error {
		return &InfeasibleError{Function: i.Function, Request: i.Request, Cluster: i.Cluster}
	}},
	{kind: KindWorkerStartup, code: codes.FailedPrecondition, sentinel: ErrWorkerStartup, build: func(i *pb.ErrorInfo) error {
		return &WorkerStartupError{Binary: i.Binary, ExitCode: int(i.ExitCode), Attempts: int(i.Attempts), Stderr: i.Stderr}
	}},
	{kind: KindObjectStoreFull, code: codes.ResourceExhausted, sentinel: ErrObjectStoreFull, build: buildStoreFull},
	{kind: KindObjectTooLarge, code: codes.ResourceExhausted, sentinel: ErrObjectTooLarge, build: buildStoreFull},
	{kind: KindOutOfMemory, code: codes.FailedPrecondition, sentinel: ErrOutOfMemory, build: func(i *pb.ErrorInfo) error {
		return &OutOfMemoryError{Function: i.Function, NodeID: i.NodeId, WorkerID: i.WorkerId, Attempts: int(i.Attempts), Message: i.Message}
	}},
	statusRow(KindInvalid, codes.InvalidArgument, ErrInvalidRequest),
	statusRow(KindNotFound, codes.NotFound, ErrNotFound),
	statusRow(KindAlreadyExists, codes.AlreadyExists, ErrAlreadyExists),
	{kind: KindTimeout, code: codes.DeadlineExceeded, sentinel: ErrTimeout, std: context.DeadlineExceeded, bare: true,
		build: buildStatus, untyped: untypedStatus(KindTimeout)},
	{kind: KindUnauthenticated, code: codes.Unauthenticated, sentinel: ErrUnauthenticated, bare: true,
		build: buildStatus, untyped: untypedStatus(KindUnauthenticated)},
	{kind: KindUnavailable, code: codes.Unavailable, sentinel: ErrUnavailable, bare: true,
		build: buildStatus, untyped: untypedStatus(KindUnavailable)},
	statusRow(KindSystem, codes.Internal, ErrSystem),
}

// byKind indexes table. It is filled by init rather than by its
// initializer because table's build functions reach it (a TaskError's
// cause is rebuilt through FromInfo).
var byKind map[Kind]*row

func init() {
	byKind = make(map[Kind]*row, len(table))
	for i := range table {
		byKind[table[i].kind] = &table[i]
	}
}

func rowOf(k Kind) (*row, bool) {
	r, ok := byKind[k]
	return r, ok
}

func statusRow(k Kind, c codes.Code, sentinel error) row {
	return row{kind: k, code: c, sentinel: sentinel, build: buildStatus, untyped: untypedStatus(k)}
}

func untypedStatus(k Kind) func(error) *pb.ErrorInfo {
	return func(err error) *pb.ErrorInfo { return &pb.ErrorInfo{Kind: k, Message: err.Error()} }
}

func buildStatus(i *pb.ErrorInfo) error { return &Status{Kind: i.Kind, Message: i.Message} }

func buildTask(i *pb.ErrorInfo) error {
	te := &TaskError{Function: i.Function, Message: i.Message, Stack: i.Stack, NodeID: i.NodeId,
		WorkerID: i.WorkerId, Attempt: int(i.Attempt), Panic: i.Panic}
	switch {
	case i.Cause != nil:
		te.Cause = FromInfo(i.Cause)
	case i.TypeName != "":
		te.Cause = decodeUser(i.TypeName, i.Payload, i.Message)
	}
	return te
}

func buildActorDied(i *pb.ErrorInfo) error {
	return &ActorDiedError{ActorID: i.ActorId, Name: i.ActorName, Reason: i.Reason, Cause: i.ActorDeath}
}

func buildObject(i *pb.ErrorInfo) error {
	return &ObjectError{ObjectID: i.ObjectId, Kind: i.Kind, Detail: i.Detail}
}

func buildStoreFull(i *pb.ErrorInfo) error {
	return &ObjectStoreFullError{Kind: i.Kind, ObjectID: i.ObjectId, Message: i.Message}
}

// Code is the gRPC status code for errors of kind k (codes.Internal for a
// kind without a row).
func Code(k Kind) codes.Code {
	if r, ok := rowOf(k); ok {
		return r.code
	}
	return codes.Internal
}

// Sentinel is the sentinel that errors of kind k match with errors.Is
// (ErrSystem for a kind without a row).
func Sentinel(k Kind) error {
	if r, ok := rowOf(k); ok {
		return r.sentinel
	}
	return ErrSystem
}

// FromCode reads a gRPC status that carries no ErrorInfo: one made by
// gRPC itself (an unreachable peer, a cancelled call) or by an
// interceptor (a wrong token). Canceled and DeadlineExceeded give
// context.Canceled and context.DeadlineExceeded; Unauthenticated and
// Unavailable give a *Status matching ErrUnauthenticated or
// ErrUnavailable, whose message is msg after the sentinel's. Other codes
// give nil: the caller keeps the status as it is.
func FromCode(c codes.Code, msg string) error {
	for i := range table {
		r := &table[i]
		if !r.bare || r.code != c {
			continue
		}
		if r.std != nil {
			return r.std
		}
		return r.build(&pb.ErrorInfo{Kind: r.kind, Message: r.sentinel.Error() + ": " + msg})
	}
	return nil
}

// KindName is k's short readable name, as error reports and the CLI print
// it: "task", "worker_crashed", "object_store_full".
func KindName(k Kind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "ERROR_KIND_"))
}
