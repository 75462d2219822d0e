package errs

import (
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raygo/raygo/internal/pb"
)

// registry maps wire type names to user error types registered with
// ray.RegisterError (types) or RegisterSentinel (values).
var registry = struct {
	sync.RWMutex
	byName    map[string]reflect.Type
	byType    map[reflect.Type]string
	sentinels map[string]error
	sentName  map[error]string
}{byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}, sentinels: map[string]error{}, sentName: map[error]string{}}

// RegisterType records an error type under name so that errors of that
// type cross the wire with their fields (msgpack) and their type intact.
// typ must implement error (pointer or value type).
func RegisterType(name string, typ reflect.Type) {
	registry.Lock()
	defer registry.Unlock()
	registry.byName[name] = typ
	registry.byType[typ] = name
}

// RegisterSentinel records a sentinel error value under name so that
// errors.Is(err, sentinel) holds on the receiving side.
func RegisterSentinel(name string, err error) {
	registry.Lock()
	defer registry.Unlock()
	registry.sentinels[name] = err
	registry.sentName[err] = name
}

// encodeUser finds the first error in err's chain whose type or identity is
// registered and encodes it.
func encodeUser(err error) (name string, payload []byte) {
	registry.RLock()
	defer registry.RUnlock()
	for e := err; e != nil; e = errors.Unwrap(e) {
		if n, ok := sentinelName(e); ok {
			return "sentinel:" + n, nil
		}
		if n, ok := registry.byType[reflect.TypeOf(e)]; ok {
			b, merr := msgpack.Marshal(e)
			if merr == nil {
				return n, b
			}
		}
	}
	return "", nil
}

// sentinelName looks e up among registered sentinels. Errors of
// unhashable types (slices, maps, or structs holding them) are never
// sentinels; the lookup recovers from the panic hashing them raises.
func sentinelName(e error) (name string, ok bool) {
	if !reflect.TypeOf(e).Comparable() {
		return "", false
	}
	defer func() {
		if recover() != nil {
			name, ok = "", false
		}
	}()
	name, ok = registry.sentName[e]
	return name, ok
}

func decodeUser(name string, payload []byte, msg string) error {
	registry.RLock()
	defer registry.RUnlock()
	if len(name) > 9 && name[:9] == "sentinel:" {
		if s, ok := registry.sentinels[name[9:]]; ok {
			return s
		}
	}
	if t, ok := registry.byName[name]; ok {
		var v reflect.Value
		if t.Kind() == reflect.Pointer {
			v = reflect.New(t.Elem())
			if msgpack.Unmarshal(payload, v.Interface()) == nil {
				if e, ok := v.Interface().(error); ok {
					return e
				}
			}
		} else {
			v = reflect.New(t)
			if msgpack.Unmarshal(payload, v.Interface()) == nil {
				if e, ok := v.Elem().Interface().(error); ok {
					return e
				}
			}
		}
	}
	return &RemoteError{TypeName: name, Message: msg}
}

// FromAppError wraps a user function's returned error (or panic) as the
// wire form of a TaskError. The cause travels as a registered user type
// when err's chain holds one; otherwise, when the chain holds a raygo
// error (a failed Get inside the function), as that error's own ErrorInfo
// in cause, so callers still match it with errors.Is and errors.As; else
// only its type name and message survive (a *RemoteError).
func FromAppError(function string, err error, stack string, panicked bool, nodeID, workerID string, attempt int) *pb.ErrorInfo {
	info := &pb.ErrorInfo{Kind: KindTask, Message: err.Error(), Function: function, Stack: stack,
		NodeId: nodeID, WorkerId: workerID, Attempt: int32(attempt), Panic: panicked}
	setCause(info, err)
	return info
}

// setCause records cause in info: a registered user error as type_name
// and payload, a raygo error as cause (with its Go type's name in
// type_name, for RetryExceptions), anything else by type name alone.
func setCause(info *pb.ErrorInfo, cause error) {
	if re, ok := cause.(*RemoteError); ok {
		info.TypeName = re.TypeName
		return
	}
	if info.TypeName, info.Payload = encodeUser(cause); info.TypeName != "" {
		return
	}
	info.TypeName = fmt.Sprintf("%T", cause)
	var we wireError
	if errors.As(cause, &we) {
		info.Cause = we.toInfo()
	}
}

// wireError is implemented by every error type with a row in the table:
// toInfo gives its wire form, every field in a field of its own.
type wireError interface {
	error
	toInfo() *pb.ErrorInfo
}

func (e *TaskError) toInfo() *pb.ErrorInfo {
	info := &pb.ErrorInfo{Kind: KindTask, Message: e.Message, Function: e.Function, Stack: e.Stack,
		NodeId: e.NodeID, WorkerId: e.WorkerID, Attempt: int32(e.Attempt), Panic: e.Panic}
	if e.Cause != nil {
		setCause(info, e.Cause)
	}
	return info
}

func (e *WorkerCrashedError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindWorkerCrashed, Function: e.Function, NodeId: e.NodeID, WorkerId: e.WorkerID,
		Attempts: int32(e.Attempts), Reason: e.Reason}
}

func (e *ActorDiedError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindActorDied, ActorId: e.ActorID, ActorName: e.Name, Reason: e.Reason, ActorDeath: e.Cause}
}

func (e *CancelledError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindCancelled, Function: e.Function, TaskId: e.TaskID, Reason: e.Reason}
}

func (e *ObjectError) toInfo() *pb.ErrorInfo {
	k := e.Kind
	if k != KindObjectFreed && k != KindOwnerDied {
		k = KindObjectLost // as Is reads any other kind
	}
	return &pb.ErrorInfo{Kind: k, ObjectId: e.ObjectID, Detail: e.Detail}
}

func (e *NotRegisteredError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindNotRegistered, Name: e.Name}
}

func (e *ArgumentError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindBadArgument, Function: e.Function, ArgIndex: int32(e.Index), Detail: e.Detail}
}

func (e *InfeasibleError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindInfeasible, Function: e.Function, Request: e.Request, Cluster: e.Cluster}
}

func (e *WorkerStartupError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindWorkerStartup, Binary: e.Binary, ExitCode: int32(e.ExitCode),
		Attempts: int32(e.Attempts), Stderr: e.Stderr}
}

func (e *ObjectStoreFullError) toInfo() *pb.ErrorInfo {
	k := e.Kind
	if k != KindObjectTooLarge {
		k = KindObjectStoreFull // as Is reads any other kind
	}
	return &pb.ErrorInfo{Kind: k, ObjectId: e.ObjectID, Message: e.Message}
}

func (e *OutOfMemoryError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindOutOfMemory, Function: e.Function, NodeId: e.NodeID, WorkerId: e.WorkerID,
		Attempts: int32(e.Attempts), Message: e.Message}
}

func (e *PlacementGroupRemovedError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindPlacementGroupRemoved, Function: e.Function, Detail: e.GroupID, Name: e.Name}
}

func (e *NodeDiedError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindNodeDied, Function: e.Function, NodeId: e.NodeID, NodeAddress: e.NodeAddress,
		Attempts: int32(e.Attempts), Reason: e.Reason}
}

func (e *HeadLostError) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: KindHeadLost, NodeAddress: e.Head, Reason: e.Reason}
}

func (e *Status) toInfo() *pb.ErrorInfo {
	return &pb.ErrorInfo{Kind: e.Kind, Message: e.Message}
}

// ToInfo converts any error to its wire form. The first raygo error in
// err's chain gives it (with every field); an error without one that
// matches a control-plane sentinel (fmt.Errorf("%w: …", ErrNotFound)) or a
// context error takes that kind with err's message; anything else becomes
// KindSystem.
func ToInfo(err error) *pb.ErrorInfo {
	if err == nil {
		return nil
	}
	var we wireError
	if errors.As(err, &we) {
		return we.toInfo()
	}
	for i := range table {
		r := &table[i]
		if r.untyped != nil && (errors.Is(err, r.sentinel) || (r.std != nil && errors.Is(err, r.std))) {
			return r.untyped(err)
		}
	}
	return &pb.ErrorInfo{Kind: KindSystem, Message: err.Error()}
}

// FromInfo rebuilds the typed Go error from its wire form, through the
// kind's row in the table. An ErrorInfo without a kind reads as
// KindSystem; a kind this binary does not know becomes a *Status that
// matches ErrSystem.
func FromInfo(info *pb.ErrorInfo) error {
	if info == nil {
		return nil
	}
	if info.Kind == pb.ErrorKind_ERROR_KIND_UNSPECIFIED {
		return &Status{Kind: KindSystem, Message: info.Message}
	}
	if r, ok := rowOf(info.Kind); ok {
		return r.build(info)
	}
	return &Status{Kind: info.Kind, Message: info.Message}
}
