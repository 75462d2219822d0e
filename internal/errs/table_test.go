package errs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/raygo/raygo/internal/pb"
)

func TestTableHasOneRowPerKind(t *testing.T) {
	seen := map[Kind]bool{}
	bare := map[codes.Code]Kind{}
	for _, r := range table {
		if seen[r.kind] {
			t.Errorf("kind %v has two rows", r.kind)
		}
		seen[r.kind] = true
		if r.sentinel == nil || r.build == nil {
			t.Errorf("kind %v: row lacks a sentinel or a build function", r.kind)
		}
		if r.bare {
			if k, dup := bare[r.code]; dup {
				t.Errorf("code %v is bare for both %v and %v", r.code, k, r.kind)
			}
			bare[r.code] = r.kind
		}
	}
	for v := range pb.ErrorKind_name {
		if k := Kind(v); k != pb.ErrorKind_ERROR_KIND_UNSPECIFIED && !seen[k] {
			t.Errorf("kind %v has no row in the table", k)
		}
	}
	if seen[pb.ErrorKind_ERROR_KIND_UNSPECIFIED] {
		t.Error("the unspecified kind has a row")
	}
}

func TestCodes(t *testing.T) {
	want := map[Kind]codes.Code{
		KindTask:                  codes.FailedPrecondition,
		KindWorkerCrashed:         codes.FailedPrecondition,
		KindActorDied:             codes.FailedPrecondition,
		KindActorNotHere:          codes.FailedPrecondition,
		KindActorInterrupted:      codes.FailedPrecondition,
		KindNodeDied:              codes.FailedPrecondition,
		KindPlacementGroupRemoved: codes.FailedPrecondition,
		KindHeadLost:              codes.FailedPrecondition,
		KindCancelled:             codes.Canceled,
		KindObjectFreed:           codes.FailedPrecondition,
		KindObjectLost:            codes.FailedPrecondition,
		KindOwnerDied:             codes.FailedPrecondition,
		KindNotRegistered:         codes.NotFound,
		KindBadArgument:           codes.InvalidArgument,
		KindInfeasible:            codes.ResourceExhausted,
		KindWorkerStartup:         codes.FailedPrecondition,
		KindObjectStoreFull:       codes.ResourceExhausted,
		KindObjectTooLarge:        codes.ResourceExhausted,
		KindOutOfMemory:           codes.FailedPrecondition,
		KindInvalid:               codes.InvalidArgument,
		KindNotFound:              codes.NotFound,
		KindAlreadyExists:         codes.AlreadyExists,
		KindTimeout:               codes.DeadlineExceeded,
		KindUnauthenticated:       codes.Unauthenticated,
		KindUnavailable:           codes.Unavailable,
		KindSystem:                codes.Internal,
		Kind(999):                 codes.Internal, // unknown kinds
	}
	for k, c := range want {
		if got := Code(k); got != c {
			t.Errorf("Code(%v) = %v, want %v", k, got, c)
		}
	}
	if len(want) != len(table)+1 {
		t.Errorf("want lists %d kinds, the table %d: add the new kind's code here", len(want)-1, len(table))
	}
}

// TestContextErrors: a context error keeps matching the context sentinel
// after a trip through the wire, as a typed error of the matching kind.
func TestContextErrors(t *testing.T) {
	tests := []struct {
		err      error
		kind     Kind
		code     codes.Code
		sentinel error
	}{
		{context.Canceled, KindCancelled, codes.Canceled, ErrTaskCancelled},
		{fmt.Errorf("get: %w", context.Canceled), KindCancelled, codes.Canceled, ErrTaskCancelled},
		{context.DeadlineExceeded, KindTimeout, codes.DeadlineExceeded, ErrTimeout},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), KindTimeout, codes.DeadlineExceeded, ErrTimeout},
	}
	for _, tt := range tests {
		info := ToInfo(tt.err)
		if info.GetKind() != tt.kind || Code(info.GetKind()) != tt.code {
			t.Errorf("ToInfo(%v) kind %v code %v, want %v %v", tt.err, info.GetKind(), Code(info.GetKind()), tt.kind, tt.code)
		}
		got := FromInfo(info)
		if !errors.Is(got, errors.Unwrap(tt.err)) && !errors.Is(got, tt.err) {
			t.Errorf("%v after the trip (%#v) no longer matches the context error", tt.err, got)
		}
		if !errors.Is(got, tt.sentinel) {
			t.Errorf("%v after the trip does not match %v", tt.err, tt.sentinel)
		}
		if want := tt.err.Error(); !errors.Is(got, ErrTaskCancelled) && got.Error() != want {
			t.Errorf("message %q, want %q", got.Error(), want)
		}
	}
	// The typed errors raygo makes for deadlines match the context's.
	if !errors.Is(Timeoutf("Get timed out"), context.DeadlineExceeded) {
		t.Error("a timeout Status does not match context.DeadlineExceeded")
	}
	if !errors.Is(&CancelledError{Function: "f"}, context.Canceled) {
		t.Error("a CancelledError does not match context.Canceled")
	}
}

func TestFromCode(t *testing.T) {
	tests := []struct {
		code codes.Code
		want error // nil: the status is kept
		msg  string
	}{
		{codes.Canceled, context.Canceled, "context canceled"},
		{codes.DeadlineExceeded, context.DeadlineExceeded, "context deadline exceeded"},
		{codes.Unauthenticated, ErrUnauthenticated, "raygo: unauthenticated: wrong token"},
		{codes.Unavailable, ErrUnavailable, "raygo: unavailable: wrong token"},
		{codes.Aborted, nil, ""},
		{codes.Internal, nil, ""},
		{codes.NotFound, nil, ""},
	}
	for _, tt := range tests {
		got := FromCode(tt.code, "wrong token")
		if tt.want == nil {
			if got != nil {
				t.Errorf("FromCode(%v) = %v, want nil", tt.code, got)
			}
			continue
		}
		if !errors.Is(got, tt.want) || got.Error() != tt.msg {
			t.Errorf("FromCode(%v) = %#v (%q), want %v (%q)", tt.code, got, got, tt.want, tt.msg)
		}
	}
}

// TestUntypedSentinels: an error that only wraps a control-plane sentinel
// keeps its kind and message; one that wraps the sentinel of a rich type
// (which it cannot fill) becomes a system error.
func TestUntypedSentinels(t *testing.T) {
	tests := []struct {
		err  error
		kind Kind
	}{
		{fmt.Errorf("%w: no such job", ErrNotFound), KindNotFound},
		{fmt.Errorf("%w: bad name", ErrInvalidRequest), KindInvalid},
		{fmt.Errorf("%w: dup", ErrAlreadyExists), KindAlreadyExists},
		{fmt.Errorf("%w: no token", ErrUnauthenticated), KindUnauthenticated},
		{fmt.Errorf("%w: refused", ErrUnavailable), KindUnavailable},
		{fmt.Errorf("%w: slow", ErrTimeout), KindTimeout},
		{fmt.Errorf("%w: stopped", ErrTaskCancelled), KindCancelled},
		{fmt.Errorf("%w: somehow", ErrActorDied), KindSystem},
		{errors.New("plain"), KindSystem},
	}
	for _, tt := range tests {
		info := ToInfo(tt.err)
		if info.GetKind() != tt.kind {
			t.Errorf("ToInfo(%v) kind = %v, want %v", tt.err, info.GetKind(), tt.kind)
			continue
		}
		got := FromInfo(info)
		if !errors.Is(got, Sentinel(tt.kind)) {
			t.Errorf("%v came back as %#v", tt.err, got)
		}
		if tt.kind != KindCancelled && got.Error() != tt.err.Error() {
			t.Errorf("message %q, want %q", got.Error(), tt.err.Error())
		}
	}
}

func TestKindName(t *testing.T) {
	for k, want := range map[Kind]string{
		KindTask: "task", KindWorkerCrashed: "worker_crashed", KindObjectStoreFull: "object_store_full",
		KindNodeDied: "node_died", KindActorNotHere: "actor_not_here",
	} {
		if got := KindName(k); got != want {
			t.Errorf("KindName(%v) = %q, want %q", k, got, want)
		}
	}
}

// TestKindlessRichErrors: an ObjectError or ObjectStoreFullError without a
// kind crosses as the kind its Is method reads it as.
func TestKindlessRichErrors(t *testing.T) {
	if got := FromInfo(ToInfo(&ObjectError{ObjectID: "o"})); !errors.Is(got, ErrObjectLost) {
		t.Errorf("kindless ObjectError came back as %#v", got)
	}
	if got := FromInfo(ToInfo(&ObjectStoreFullError{ObjectID: "o", Message: "m"})); !errors.Is(got, ErrObjectStoreFull) {
		t.Errorf("kindless ObjectStoreFullError came back as %#v", got)
	}
}
