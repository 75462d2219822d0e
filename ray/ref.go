package ray

import (
	"context"
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker"
)

// ObjectRef is a future for a value of type T held in the cluster. The
// process that created it (by Remote or Put) owns the object; every other
// process that holds a copy borrows it. The object is freed when no copy
// remains anywhere: copies are tracked with the garbage collector, so an
// ObjectRef needs no Close.
//
// ObjectRefs can be passed to tasks (resolved to their values before the
// task runs) and nested inside values (passed as refs, borrowed).
type ObjectRef[T any] struct {
	h *coreworker.Ref // one word, so lists of refs stay small; Err set: submission failed
}

// AnyRef is implemented by every ObjectRef[T], whatever T: Cancel and
// Free take it.
type AnyRef interface {
	handle() (*coreworker.Ref, error)
}

// Arg is an argument of type T for RemoteArgs: an ObjectRef[T], whose
// value the task receives once it is ready (without a trip through the
// caller), or a plain value wrapped with Val. An ObjectRef of another
// type does not compile.
type Arg[T any] interface {
	toArg(fn string, i int) (coreworker.Arg, error)
	argOf(*T)
}

// Val wraps a plain value as an Arg, for RemoteArgs calls that mix values
// and refs: Add.RemoteArgs(ctx, ref, ray.Val(1)).
func Val[T any](v T) Arg[T] { return val[T]{v} }

type val[T any] struct{ v T }

func (v val[T]) argOf(*T) {}

func (v val[T]) toArg(fn string, i int) (coreworker.Arg, error) { return encodeArg(fn, i, v.v) }

func (r ObjectRef[T]) argOf(*T) {}

func (r ObjectRef[T]) toArg(fn string, i int) (coreworker.Arg, error) {
	h, err := r.handle()
	if err != nil {
		return coreworker.Arg{}, err
	}
	return coreworker.Arg{Ref: h}, nil
}

func (r ObjectRef[T]) handle() (*coreworker.Ref, error) {
	if r.h == nil {
		return nil, fmt.Errorf("%w: zero ObjectRef", ErrInvalidRequest)
	}
	if r.h.Err != nil {
		return nil, r.h.Err
	}
	return r.h, nil
}

// ID returns the object's id in hex ("" for a failed submission).
func (r ObjectRef[T]) ID() string {
	if r.h == nil || r.h.Err != nil {
		return ""
	}
	return r.h.ID.String()
}

// Err returns the error that prevented the call producing this ref from
// being submitted, if any. Get returns it too.
func (r ObjectRef[T]) Err() error {
	if r.h == nil {
		return nil
	}
	return r.h.Err
}

// Get waits for the object and returns its value, or the error of the
// task that produced it. The wait ends with ctx: a deadline turns into an
// error matching ErrTimeout and context.DeadlineExceeded.
func (r ObjectRef[T]) Get(ctx context.Context) (T, error) {
	vs, err := Get(ctx, r)
	if err != nil {
		var zero T
		return zero, err
	}
	return vs[0], nil
}

// EncodeMsgpack writes the ref inside a value (codec hook). A zero ref
// travels as a zero ref; a failed one fails the encoding with its error.
func (r ObjectRef[T]) EncodeMsgpack(enc *msgpack.Encoder) error {
	if r.h == nil {
		return enc.EncodeNil()
	}
	h, err := r.handle()
	if err != nil {
		return err
	}
	return codec.EncodeRef(enc, h.Wire())
}

// DecodeMsgpack reads a ref nested in a value, making this process a
// borrower (codec hook).
func (r *ObjectRef[T]) DecodeMsgpack(dec *msgpack.Decoder) error {
	w, err := codec.DecodeRef(dec)
	if err != nil {
		return err
	}
	if w.ID == nil {
		*r = ObjectRef[T]{}
		return nil
	}
	cw, err := current()
	if err != nil {
		return err
	}
	*r = ObjectRef[T]{h: cw.HandleFromWire(w)}
	return nil
}

// Get waits for every ref and returns their values in order. The first
// failed object's error is returned.
func Get[T any](ctx context.Context, refs ...ObjectRef[T]) ([]T, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	hs := make([]*coreworker.Ref, len(refs))
	for i, r := range refs {
		if hs[i], err = r.handle(); err != nil {
			return nil, err
		}
	}
	data, release, err := cw.Get(ctx, hs)
	defer release() // decoding copies; store bytes are pinned until then
	if err != nil {
		return nil, err
	}
	out := make([]T, len(refs))
	for i := range refs {
		if err := codec.Decode(data[i], &out[i]); err != nil {
			return nil, fmt.Errorf("ray: Get: object %s: %w", hs[i].ID, err)
		}
	}
	return out, nil
}

// Put stores v in the cluster, owned by this process, and returns a ref
// to it. Values up to the inline threshold stay in this process; larger
// ones go to the local node's object store. A value whose type cannot
// travel intact (a struct with unexported fields; see EncodingError) is
// refused with an *EncodingError.
func Put[T any](ctx context.Context, v T) (ObjectRef[T], error) {
	if err := checkTypeOf(v); err != nil {
		return ObjectRef[T]{}, err
	}
	cw, err := current()
	if err != nil {
		return ObjectRef[T]{}, err
	}
	parts, nested, err := codec.EncodeParts(v)
	if err != nil {
		return ObjectRef[T]{}, fmt.Errorf("ray: Put: %w", err)
	}
	h, err := cw.Put(ctx, parts, nested, callSite(cw, parts, 2))
	if err != nil {
		return ObjectRef[T]{}, err
	}
	return ObjectRef[T]{h: h}, nil
}

// Wait returns, in input order, the refs that are ready (at most
// numReturns of them) and those that are not, once numReturns are ready
// or timeout has passed (a negative timeout waits without limit). Like
// Ray's ray.wait, it does not fail on objects whose tasks failed: they
// count as ready.
//
// notReady may share storage with refs: when the ready refs are the first
// ones, it is the rest of refs (capacity capped, so appending to it
// copies). The loop `_, rest, err = ray.Wait(ctx, rest, 1, -1)` then costs
// no allocation per call; copy notReady before changing refs in place.
func Wait[T any](ctx context.Context, refs []ObjectRef[T], numReturns int, timeout time.Duration) (ready, notReady []ObjectRef[T], err error) {
	if numReturns < 0 || numReturns > len(refs) {
		return nil, nil, fmt.Errorf("%w: Wait: numReturns %d is outside [0, %d]", ErrInvalidRequest, numReturns, len(refs))
	}
	cw, err := current()
	if err != nil {
		return nil, nil, err
	}
	for _, r := range refs {
		if _, err := r.handle(); err != nil {
			return nil, nil, err
		}
	}
	flags, err := cw.WaitFunc(ctx, len(refs), func(i int) *coreworker.Ref { return refs[i].h }, numReturns, timeout) // also refuses duplicates
	if err != nil {
		return nil, nil, err
	}
	// notReady is most of refs. When the ready ones all come first (the
	// usual case when tasks finish in order) it is the rest of refs itself;
	// otherwise it is copied in runs between the ready ones.
	ready = make([]ObjectRef[T], 0, numReturns)
	lead := 0
	for lead < len(flags) && flags[lead] {
		lead++
	}
	rest := 0
	for _, ok := range flags[lead:] {
		if ok {
			rest++
		}
	}
	if rest == 0 {
		ready = append(ready, refs[:lead]...)
		return ready, refs[lead:len(refs):len(refs)], nil
	}
	notReady = make([]ObjectRef[T], 0, len(refs))
	start := 0
	for i, ok := range flags {
		if ok {
			notReady = append(notReady, refs[start:i]...)
			ready = append(ready, refs[i])
			start = i + 1
		}
	}
	notReady = append(notReady, refs[start:]...)
	return ready, notReady, nil
}

// Cancel stops the task that produces ref: a queued task never runs, a
// running one sees its context cancelled, and with Force its worker
// process is killed. Get on the ref then fails with ErrTaskCancelled.
// The tasks the cancelled task submitted are cancelled too, unless
// Recursive(false) is given. Cancelled tasks are never retried;
// cancelling a finished task does nothing. A ref this process does not
// own is cancelled through its owner.
func Cancel(ctx context.Context, ref AnyRef, opts ...CancelOption) error {
	o := collect(opts, CancelOption.applyCancel)
	cw, err := current()
	if err != nil {
		return err
	}
	h, err := ref.handle()
	if err != nil {
		return err
	}
	return cw.Cancel(ctx, h, o.force, !o.noRecursive)
}

// Free deletes objects owned by this process now, even while refs to them
// remain: a later Get fails with ErrObjectFreed.
func Free(refs ...AnyRef) error {
	cw, err := current()
	if err != nil {
		return err
	}
	hs := make([]*coreworker.Ref, 0, len(refs))
	for _, r := range refs {
		h, err := r.handle()
		if err != nil {
			return err
		}
		hs = append(hs, h)
	}
	cw.Free(hs)
	return nil
}

// FailedRef returns a ref whose Get returns err, for libraries that
// submit calls on their caller's behalf (a Serve handle) and fail before
// a call is submitted: their callers see one error convention, as with
// Remote.
func FailedRef[T any](err error) ObjectRef[T] { return failed[T](err) }
