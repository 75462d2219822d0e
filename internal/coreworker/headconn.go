package coreworker

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/errs"
)

// headConn is the connection to the control store as the core worker
// calls it: a unary call that finds the head unreachable (refused, reset:
// the head is restarting) is tried again, with a backoff of up to
// headRetryMax, until the head answers, the call's context ends, this
// process gives the head up (HeadLostError: a head without storage that
// is gone, or one with storage that did not come back within
// headReconnectTimeout) or closes, so that a head restarted from its
// storage is ridden out, as Ray's GCS client does. Calls that reached the
// head and failed there, or timed out, are not tried again. Streams pass
// through: their users reopen them (driversession.go, groupops).
//
// The control store's calls are idempotent for this: creating an actor or
// a placement group again by the same id answers with the one created,
// registering a job again by its driver finds it, and the rest set or
// read state.
type headConn struct {
	grpc.ClientConnInterface
	cw *CoreWorker
}

// headRetryMax bounds the wait between tries of a call to a head that
// cannot be reached.
const headRetryMax = 500 * time.Millisecond

func (h headConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	backoff := 20 * time.Millisecond
	var giveUp time.Time
	for {
		err := h.ClientConnInterface.Invoke(ctx, method, args, reply, opts...)
		if err == nil || !headUnreachable(err) || ctx.Err() != nil {
			return err
		}
		if bad := h.cw.unusable(); bad != nil {
			return bad
		}
		now := time.Now()
		if giveUp.IsZero() {
			giveUp = now.Add(headReconnectTimeout)
		} else if now.After(giveUp) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		case <-h.cw.stop.Ctx().Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, headRetryMax)
	}
}

// headUnreachable reports whether a call's error says the control store
// could not be reached at all (as opposed to answering, or timing out).
func headUnreachable(err error) bool {
	return errors.Is(err, errs.ErrUnavailable) && !errors.Is(err, errs.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded)
}
