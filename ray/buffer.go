package ray

import (
	"context"
	"fmt"
	"runtime"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker"
)

// Buffer is a zero-copy view of a []byte or string object: Bytes aliases
// the node's shared-memory object store (for objects above the inline
// threshold; small objects are ordinary memory).
//
// Lifetime: the bytes stay valid until Release, and are read-only. The
// object stays pinned in the store meanwhile (never spilled or freed).
// Touching the bytes after Release, or writing them at any time, faults
// at once ("unexpected fault address"): each Buffer is mapped at an address
// the process never reuses, so a stale slice can never read another
// object. A Buffer that becomes unreachable is released by the garbage
// collector; call Release when done to unpin the object promptly.
//
// Plain Get returns ordinary Go memory (a copy), which the garbage
// collector manages; use GetBuffer when the copy matters.
type Buffer struct {
	b    *coreworker.Buffer
	data []byte
}

// Bytes returns the object's bytes; do not modify them.
func (b *Buffer) Bytes() []byte { return b.data }

// Len is len(b.Bytes()).
func (b *Buffer) Len() int { return len(b.data) }

// Release ends the view; it is safe to call more than once.
func (b *Buffer) Release() { b.b.Release() }

// GetBuffer waits for a []byte or string object and returns a zero-copy
// view of it (see Buffer for the lifetime rule).
func GetBuffer[T ~[]byte | ~string](ctx context.Context, ref ObjectRef[T]) (*Buffer, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	h, err := ref.handle()
	if err != nil {
		return nil, err
	}
	b, err := cw.GetBuffer(ctx, h)
	if err != nil {
		return nil, err
	}
	payload, ok := codec.RawPayload(b.Data)
	if !ok {
		b.Release()
		return nil, fmt.Errorf("%w: GetBuffer: object %s is not encoded as raw bytes", ErrInvalidRequest, h.ID)
	}
	return &Buffer{b: b, data: payload}, nil
}

// PutBuffer creates a []byte object of size bytes directly in the local
// node's object store: fill writes it in place (no intermediate copy,
// which matters for objects of many GiB), then the object is sealed and
// immutable. fill must not keep the slice; writing it after fill returns
// faults. An error from fill discards the object.
func PutBuffer(ctx context.Context, size int, fill func(b []byte) error) (ObjectRef[[]byte], error) {
	cw, err := current()
	if err != nil {
		return ObjectRef[[]byte]{}, err
	}
	if size < 0 {
		return ObjectRef[[]byte]{}, fmt.Errorf("%w: PutBuffer: negative size %d", ErrInvalidRequest, size)
	}
	h, err := cw.PutFill(ctx, int64(size)+1, func(dst []byte) error { return fill(codec.WriteRawHeader(dst)) }, caller(2))
	if err != nil {
		return ObjectRef[[]byte]{}, err
	}
	return ObjectRef[[]byte]{h: h}, nil
}

// callSite names the function that called the public API, for objects
// that go to the store (`raygo memory` shows it); small values skip the
// lookup.
func callSite(cw *coreworker.CoreWorker, parts [][]byte, skip int) string {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n <= cw.InlineThreshold() {
		return ""
	}
	return caller(skip + 1)
}

func caller(skip int) string {
	pc, file, line, ok := runtime.Caller(skip)
	if !ok {
		return ""
	}
	if f := runtime.FuncForPC(pc); f != nil {
		return fmt.Sprintf("%s (%s:%d)", f.Name(), shortFile(file), line)
	}
	return fmt.Sprintf("%s:%d", shortFile(file), line)
}

func shortFile(p string) string {
	slash := 0
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if slash++; slash == 2 {
				return p[i+1:]
			}
		}
	}
	return p
}
