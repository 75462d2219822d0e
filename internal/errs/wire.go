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
// wire form of a TaskError.
func FromAppError(function string, err error, stack string, panicked bool, nodeID, workerID string, attempt int) *pb.ErrorInfo {
	name, payload := encodeUser(err)
	if name == "" {
		name = fmt.Sprintf("%T", err)
	}
	return &pb.ErrorInfo{Kind: KindTask, Message: err.Error(), Function: function, Stack: stack,
		NodeId: nodeID, WorkerId: workerID, TypeName: name, Payload: payload, Attempt: int32(attempt),
		Panic: panicked}
}

// ToInfo converts any error to its wire form. Errors without a wire type
// become KindSystem.
func ToInfo(err error) *pb.ErrorInfo {
	if err == nil {
		return nil
	}
	var (
		te *TaskError
		wc *WorkerCrashedError
		ad *ActorDiedError
		ce *CancelledError
		oe *ObjectError
		nr *NotRegisteredError
		ae *ArgumentError
		ie *InfeasibleError
		ws *WorkerStartupError
		sf *ObjectStoreFullError
		om *OutOfMemoryError
		st *Status
	)
	switch {
	case errors.As(err, &te):
		info := &pb.ErrorInfo{Kind: KindTask, Message: te.Message, Function: te.Function, Stack: te.Stack,
			NodeId: te.NodeID, WorkerId: te.WorkerID, Attempt: int32(te.Attempt), Panic: te.Panic}
		if te.Cause != nil {
			if re, ok := te.Cause.(*RemoteError); ok {
				info.TypeName = re.TypeName
			} else if info.TypeName, info.Payload = encodeUser(te.Cause); info.TypeName == "" {
				info.TypeName = fmt.Sprintf("%T", te.Cause)
			}
		}
		return info
	case errors.As(err, &wc):
		return &pb.ErrorInfo{Kind: KindWorkerCrashed, Function: wc.Function, NodeId: wc.NodeID, WorkerId: wc.WorkerID, Attempt: int32(wc.Attempts), Message: wc.Reason}
	case errors.As(err, &ad):
		return &pb.ErrorInfo{Kind: KindActorDied, ActorId: ad.ActorID, Function: ad.Name, Message: ad.Reason}
	case errors.As(err, &ce):
		return &pb.ErrorInfo{Kind: KindCancelled, Function: ce.Function, TaskId: ce.TaskID}
	case errors.As(err, &oe):
		return &pb.ErrorInfo{Kind: oe.Kind, ObjectId: oe.ObjectID, Message: oe.Detail}
	case errors.As(err, &nr):
		return &pb.ErrorInfo{Kind: KindNotRegistered, Function: nr.Name}
	case errors.As(err, &ae):
		return &pb.ErrorInfo{Kind: KindBadArgument, Function: ae.Function, Attempt: int32(ae.Index), Message: ae.Detail}
	case errors.As(err, &ie):
		return &pb.ErrorInfo{Kind: KindInfeasible, Function: ie.Function, Request: ie.Request, Message: ie.Cluster}
	case errors.As(err, &ws):
		return &pb.ErrorInfo{Kind: KindWorkerStartup, Function: ws.Binary, Attempt: int32(ws.Attempts), Stack: ws.Stderr, ExitCode: int32(ws.ExitCode)}
	case errors.As(err, &sf):
		return &pb.ErrorInfo{Kind: sf.Kind, ObjectId: sf.ObjectID, Message: sf.Message}
	case errors.As(err, &om):
		return &pb.ErrorInfo{Kind: KindOutOfMemory, Function: om.Function, NodeId: om.NodeID, WorkerId: om.WorkerID, Attempt: int32(om.Attempts), Message: om.Message}
	case errors.As(err, &st):
		return &pb.ErrorInfo{Kind: st.Kind, Message: st.Message}
	}
	return &pb.ErrorInfo{Kind: KindSystem, Message: err.Error()}
}

// FromInfo rebuilds the typed Go error from its wire form.
func FromInfo(info *pb.ErrorInfo) error {
	if info == nil {
		return nil
	}
	switch info.Kind {
	case KindTask:
		te := &TaskError{Function: info.Function, Message: info.Message, Stack: info.Stack, NodeID: info.NodeId,
			WorkerID: info.WorkerId, Attempt: int(info.Attempt), Panic: info.Panic}
		if info.TypeName != "" {
			te.Cause = decodeUser(info.TypeName, info.Payload, info.Message)
		}
		return te
	case KindWorkerCrashed:
		return &WorkerCrashedError{Function: info.Function, NodeID: info.NodeId, WorkerID: info.WorkerId, Attempts: int(info.Attempt), Reason: info.Message}
	case KindActorDied, KindActorNotHere:
		return &ActorDiedError{ActorID: info.ActorId, Name: info.Function, Reason: info.Message}
	case KindCancelled:
		return &CancelledError{Function: info.Function, TaskID: info.TaskId}
	case KindObjectFreed, KindObjectLost, KindOwnerDied:
		return &ObjectError{ObjectID: info.ObjectId, Kind: info.Kind, Detail: info.Message}
	case KindNotRegistered:
		return &NotRegisteredError{Name: info.Function}
	case KindBadArgument:
		return &ArgumentError{Function: info.Function, Index: int(info.Attempt), Detail: info.Message}
	case KindInfeasible:
		return &InfeasibleError{Function: info.Function, Request: info.Request, Cluster: info.Message}
	case KindObjectStoreFull, KindObjectTooLarge:
		return &ObjectStoreFullError{Kind: info.Kind, ObjectID: info.ObjectId, Message: info.Message}
	case KindOutOfMemory:
		return &OutOfMemoryError{Function: info.Function, NodeID: info.NodeId, WorkerID: info.WorkerId, Attempts: int(info.Attempt), Message: info.Message}
	case KindWorkerStartup:
		return &WorkerStartupError{Binary: info.Function, Attempts: int(info.Attempt), Stderr: info.Stack, ExitCode: int(info.ExitCode)}
	}
	return &Status{Kind: info.Kind, Message: info.Message}
}
