package alloc

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrBadAlign reports an alignment passed to New that is not a power of
	// two of at least 8.
	ErrBadAlign = errors.New("alloc: alignment must be a power of two >= 8")

	// ErrBadSize reports a negative region size passed to New.
	ErrBadSize = errors.New("alloc: region size must not be negative")

	// ErrNotAllocated reports a Free of an offset that is not the start of
	// any block: outside the region, unaligned, or inside a block.
	ErrNotAllocated = errors.New("alloc: not the start of a live block")

	// ErrDoubleFree reports a Free of the start of a block that is already
	// free.
	ErrDoubleFree = errors.New("alloc: double free")
)

// Error describes a call that named an offset the allocator cannot act on.
// Err is ErrNotAllocated or ErrDoubleFree; errors.Is sees through Error to
// it. A call that returns an Error has changed nothing.
type Error struct {
	Op     string // the method called, e.g. "free"
	Offset int64  // the offset it was passed
	Err    error  // the sentinel classifying the failure
	Detail string // why, in words, e.g. "outside the region [0, 4096)"
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("alloc: %s at offset %d: %s", e.Op, e.Offset, strings.TrimPrefix(e.Err.Error(), "alloc: "))
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }
