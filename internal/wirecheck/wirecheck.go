// Package wirecheck checks messages that come off the wire against the
// limits the runtime promises, before anything acts on them: id lengths,
// counts (arguments, returns, tasks per batch), resource amounts (finite,
// named as the API allows), nesting. A sender in this binary never breaks
// them; a check that fails means a bug or a hostile peer, and the receiver
// refuses the message with the error, an errs.Status of kind invalid
// (errors.Is(err, errs.ErrInvalidRequest)) that names what was wrong.
//
// Every message the daemons accept has a check (Message dispatches on the
// type): gRPC servers run it on every request and every streamed message
// (internal/rpc), and the framed receivers call theirs (the object store
// on StoreRequest, the core worker on TaskBatch: see TaskBatch). MaxBytes
// gives each message type's size limit, and Depth bounds nesting in
// encoded bytes before a decoder without a recursion limit sees them.
//
// Usage in a receive loop:
//
//	batch, err := stream.Recv()
//	...
//	if err := wirecheck.TaskBatch(batch); err != nil {
//		return err // the stream ends; the sender sees InvalidArgument
//	}
package wirecheck

import (
	"fmt"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Limits on what a message may hold. Each is far above what this binary
// sends; the point is that a bound exists.
const (
	// MaxArgs bounds one task's arguments.
	MaxArgs = 1 << 16
	// MaxReturns bounds one task's returns (ids.MaxReturns, 65,535): a
	// receiver makes an id per return.
	MaxReturns = ids.MaxReturns
	// MaxBatchTasks bounds the tasks in one TaskBatch (senders batch up to
	// 1,024).
	MaxBatchTasks = 1 << 14
	// MaxBatchReturns bounds the returns that one TaskBatch's tasks declare
	// together (a receiver derives 16-byte ids for all of them: 1M returns
	// is 40 MiB of ids and slice headers). A sender with more splits the
	// batch.
	MaxBatchReturns = 1 << 20
	// MaxNameBytes bounds names: functions, actors, namespaces, call
	// sites, display names, purposes, reasons, scheduling keys.
	MaxNameBytes = 4 << 10
	// MaxAddressBytes bounds a host:port address.
	MaxAddressBytes = 512
	// MaxResourceKinds bounds the resources named in one request.
	MaxResourceKinds = 256
	// MaxNodeResourceKinds bounds those of a node's totals: each
	// placement-group bundle on it adds two per resource it holds, and two
	// markers.
	MaxNodeResourceKinds = 1 << 16
	// MaxLabels bounds a node's labels; MaxLabelBytes each key and value.
	MaxLabels     = 256
	MaxLabelBytes = 1 << 10
	// MaxErrorDepth bounds an ErrorInfo's chain of causes.
	MaxErrorDepth = 64
	// MaxNested bounds the object refs nested in one value.
	MaxNested = 1 << 20
)

func bad(format string, a ...any) error {
	return errs.Invalidf("wire: "+format, a...)
}

// within prefixes a check's error with where it was found.
func within(where string, err error) error {
	return errs.Invalidf("%s: %v", where, err)
}

// id checks an id's length: empty or ids.Size bytes. Whether an id must
// be there is the receiver's business (it answers a clear error); what
// matters here is that nothing of another length gets through.
func id(what string, b []byte) error {
	if len(b) != 0 && len(b) != ids.Size {
		return bad("%s of %d bytes, want %d", what, len(b), ids.Size)
	}
	return nil
}

// needID checks an id that must be there: a task's, from which return
// ids are derived.
func needID(what string, b []byte) error {
	if len(b) != ids.Size {
		return bad("%s of %d bytes, want %d", what, len(b), ids.Size)
	}
	return nil
}

func idList(what string, list [][]byte) error {
	for i, b := range list {
		if len(b) != ids.Size {
			return bad("%s %d of %d bytes, want %d", what, i, len(b), ids.Size)
		}
	}
	return nil
}

func name(what, s string) error {
	if len(s) > MaxNameBytes {
		return bad("%s of %d bytes exceeds %d", what, len(s), MaxNameBytes)
	}
	return nil
}

// strategy checks a scheduling strategy and its options (Placement).
func strategy(v pb.SchedulingStrategy, o *pb.SchedulingOptions) error {
	if v == pb.SchedulingStrategy_SCHEDULING_STRATEGY_DEFAULT && o == nil {
		return nil // almost every task's
	}
	_, err := Placement(v, o, nil)
	return err
}

func address(what, s string) error {
	if len(s) > MaxAddressBytes {
		return bad("%s of %d bytes exceeds %d", what, len(s), MaxAddressBytes)
	}
	return nil
}

// Request checks a resource request (a task's, a lease's, an actor's,
// a pending demand) as the API does: resources.Validate.
func Request(r *pb.Resources) error {
	if len(r.GetAmounts()) > MaxResourceKinds {
		return bad("%d resources exceed %d", len(r.GetAmounts()), MaxResourceKinds)
	}
	if err := resources.Validate(r.GetAmounts()); err != nil {
		return bad("%v", err)
	}
	return nil
}

// Capacity checks a node's total resources: finite, at least zero, named
// as the API allows (resources.ValidateTotal: fractions allowed, as a
// cgroup quota's or a placement-group bundle's), at most
// MaxNodeResourceKinds of them.
func Capacity(r *pb.Resources) error {
	if len(r.GetAmounts()) > MaxNodeResourceKinds {
		return bad("%d resources exceed %d", len(r.GetAmounts()), MaxNodeResourceKinds)
	}
	if err := resources.ValidateTotal(r.GetAmounts()); err != nil {
		return bad("%v", err)
	}
	return nil
}

// Available checks a node's available resources, which go below zero
// while a node is oversubscribed and hold fractions of GPUs:
// resources.ValidateAmounts.
func Available(r *pb.Resources) error {
	if len(r.GetAmounts()) > MaxNodeResourceKinds {
		return bad("%d resources exceed %d", len(r.GetAmounts()), MaxNodeResourceKinds)
	}
	if err := resources.ValidateAmounts(r.GetAmounts()); err != nil {
		return bad("%v", err)
	}
	return nil
}

// ErrorInfo checks an error's chain of causes.
func ErrorInfo(e *pb.ErrorInfo) error {
	for depth := 0; e != nil; depth++ {
		if depth == MaxErrorDepth {
			return bad("error with more than %d causes", MaxErrorDepth)
		}
		e = e.GetCause()
	}
	return nil
}

// ObjectRef checks a ref's ids and owner address.
func ObjectRef(r *pb.ObjectRef) error {
	if err := id("object ref id", r.GetId()); err != nil {
		return err
	}
	if err := id("object ref owner id", r.GetOwnerId()); err != nil {
		return err
	}
	return address("object ref owner address", r.GetOwnerAddress())
}

// Value checks an encoded object: its nested refs, size and error.
func Value(v *pb.Value) error {
	if v.GetSize() < 0 {
		return bad("value of negative size %d", v.GetSize())
	}
	if err := address("store address", v.GetStoreAddress()); err != nil {
		return err
	}
	if len(v.GetNested()) > MaxNested {
		return bad("%d nested refs exceed %d", len(v.GetNested()), MaxNested)
	}
	for _, r := range v.GetNested() {
		if err := ObjectRef(r); err != nil {
			return err
		}
	}
	return ErrorInfo(v.GetError())
}

// TaskSpec checks one task as sent in a batch or alone (an actor's
// creation): ids, at most MaxArgs arguments, num_returns within [0,
// MaxReturns] and return ids that match it, a resource request the API
// would accept, and sane retry counts. Fields a batch's common carries may
// be empty here (see TaskBatch).
func TaskSpec(s *pb.TaskSpec) error {
	if s == nil {
		return bad("missing task spec")
	}
	if err := needID("task id", s.GetTaskId()); err != nil {
		return err
	}
	return specFields(s)
}

// specFields checks what a task and a batch's common share.
func specFields(s *pb.TaskSpec) error {
	for _, f := range []struct {
		what string
		b    []byte
	}{{"job id", s.GetJobId()}, {"owner id", s.GetOwnerId()}, {"actor id", s.GetActorId()}, {"caller id", s.GetCallerId()}} {
		if err := id(f.what, f.b); err != nil {
			return err
		}
	}
	if err := name("function", s.GetFunction()); err != nil {
		return err
	}
	if err := name("task name", s.GetName()); err != nil {
		return err
	}
	if err := strategy(s.GetStrategy(), s.GetScheduling()); err != nil {
		return err
	}
	if err := address("owner address", s.GetOwnerAddress()); err != nil {
		return err
	}
	if n := s.GetNumReturns(); n < 0 || n > MaxReturns {
		return bad("task %x: num_returns %d outside [0, %d]", s.GetTaskId(), n, MaxReturns)
	}
	if r := s.GetReturnIds(); len(r) != 0 {
		if len(r) != int(s.GetNumReturns()) {
			return bad("task %x: %d return ids for %d returns", s.GetTaskId(), len(r), s.GetNumReturns())
		}
		if err := idList("return id", r); err != nil {
			return err
		}
	}
	if len(s.GetArgs()) > MaxArgs {
		return bad("task %x: %d arguments exceed %d", s.GetTaskId(), len(s.GetArgs()), MaxArgs)
	}
	for i, a := range s.GetArgs() {
		switch k := a.GetKind().(type) {
		case *pb.Arg_Value:
			if err := Value(k.Value); err != nil {
				return within(fmt.Sprintf("argument %d", i), err)
			}
		case *pb.Arg_Ref:
			if err := ObjectRef(k.Ref); err != nil {
				return within(fmt.Sprintf("argument %d", i), err)
			}
		}
	}
	if s.Resources != nil {
		if err := Request(s.GetResources()); err != nil {
			return err
		}
	}
	if s.GetAttempt() < 0 || s.GetMaxRetries() < -1 || s.GetMaxConcurrency() < 0 {
		return bad("task %x: attempt %d, max_retries %d, max_concurrency %d", s.GetTaskId(), s.GetAttempt(), s.GetMaxRetries(), s.GetMaxConcurrency())
	}
	return nil
}

// TaskBatch checks a push stream's batch: at most MaxBatchTasks tasks,
// each a valid TaskSpec, whose returns total at most MaxBatchReturns, and
// a valid common. Call it on every batch received, before filling tasks
// from common (the core worker's pushTasks does).
func TaskBatch(b *pb.TaskBatch) error {
	if len(b.GetTasks()) > MaxBatchTasks {
		return bad("batch of %d tasks exceeds %d", len(b.GetTasks()), MaxBatchTasks)
	}
	if c := b.GetCommon(); c != nil {
		if err := specFields(c); err != nil {
			return within("batch common", err)
		}
	}
	total := 0
	for _, s := range b.GetTasks() {
		if err := TaskSpec(s); err != nil {
			return err
		}
		total += int(s.GetNumReturns())
	}
	if total > MaxBatchReturns {
		return bad("batch declares %d returns, more than %d", total, MaxBatchReturns)
	}
	return nil
}

// ReplyBatch checks replies from a worker: task ids, values, errors.
func ReplyBatch(b *pb.ReplyBatch) error {
	if len(b.GetReplies()) > MaxBatchTasks {
		return bad("batch of %d replies exceeds %d", len(b.GetReplies()), MaxBatchTasks)
	}
	if len(b.GetStolen()) > MaxBatchTasks {
		return bad("%d stolen tasks exceed %d", len(b.GetStolen()), MaxBatchTasks)
	}
	if err := idList("stolen task id", b.GetStolen()); err != nil {
		return err
	}
	for _, r := range b.GetReplies() {
		if err := needID("reply task id", r.GetTaskId()); err != nil {
			return err
		}
		if len(r.GetReturns()) > MaxReturns {
			return bad("reply with %d returns exceeds %d", len(r.GetReturns()), MaxReturns)
		}
		for _, v := range r.GetReturns() {
			if err := Value(v); err != nil {
				return err
			}
		}
		if err := ErrorInfo(r.GetError()); err != nil {
			return err
		}
	}
	return nil
}

// WatchObjectsReply checks values an owner sends a borrower: ids and
// values, at most MaxBatchTasks per message.
func WatchObjectsReply(r *pb.WatchObjectsReply) error {
	if len(r.GetValues()) > MaxBatchTasks {
		return bad("%d object values exceed %d", len(r.GetValues()), MaxBatchTasks)
	}
	for _, v := range r.GetValues() {
		if err := needID("object id", v.GetObjectId()); err != nil {
			return err
		}
		if err := Value(v.GetValue()); err != nil {
			return err
		}
	}
	return nil
}
