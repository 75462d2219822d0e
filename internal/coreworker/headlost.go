package coreworker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raygo/raygo/internal/coreworker/taskmgr"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// Losing the head.
//
// A driver watches its cluster's head through its driver session (the
// control store's DriverAlive stream, driversession.go). A head that
// keeps no storage takes its cluster with it: when the session has been
// down for Config.HeadTimeout, or the control store answers that it does
// not know the job (a new one started on the same address), the driver
// gives the head up (loseHead): every task it owns that has not finished
// fails with a *errs.HeadLostError, and so does every later call (Put,
// submissions), so that a program gets one clear error at once instead of
// Gets that wait out their deadlines. The nodes stop on their own the
// same way (raylet.Config.HeadTimeout).
//
// A head that keeps its state in storage (raygo start --head --storage)
// is waited for instead: it is restarted on the same address and takes
// the cluster over, and meanwhile calls to it that find it unreachable
// are tried again (headconn.go). Only when it has not come back within
// headReconnectTimeout (a minute) is it given up the same way.

// unusable is the error calls fail with once the process cannot work:
// its head is gone, or Close was called.
func (cw *CoreWorker) unusable() error {
	if lost := cw.headLost.Load(); lost != nil {
		return lost
	}
	if cw.isClosed() {
		return ErrClosed
	}
	return nil
}

// loseHead gives the head up (once): later calls fail with err, and so
// does every task this process owns that has not finished.
func (cw *CoreWorker) loseHead(err *errs.HeadLostError) {
	if !cw.headLost.CompareAndSwap(nil, err) {
		return
	}
	cw.cfg.Warn(err.Error() + "; every call of this process fails from now on (start a new cluster)")
	info := errs.ToInfo(err)
	for _, t := range cw.tasks.PendingTasks() {
		cw.tasks.Fail(t, taskmgr.Failure{Cause: taskmgr.CauseFatal, Info: info})
	}
}

// sessionDown decides, after the driver session ended with err, whether
// the head is lost: with storage, once the session has been down for
// headReconnectTimeout (the head restarts meanwhile); when the control store answers
// that the job is not running, if it does not know the job at all (a new
// control store); otherwise once the session has been down since
// lastAnswer for timeout.
func sessionDown(persistent bool, err error, jobUnknown func() bool, lastAnswer, now time.Time, timeout time.Duration, head string) *errs.HeadLostError {
	if persistent {
		if errors.Is(rpc.FromStatus(err), errs.ErrNotFound) || now.Sub(lastAnswer) < headReconnectTimeout {
			return nil // restarting from its storage: wait for it
		}
		return &errs.HeadLostError{Head: head, Reason: fmt.Sprintf("it keeps its state in storage, but did not come back within %s "+
			"(last error: %v)", headReconnectTimeout, err)}
	}
	if errors.Is(rpc.FromStatus(err), errs.ErrNotFound) {
		if jobUnknown() {
			return &errs.HeadLostError{Head: head, Reason: "it answers as a new control store that does not know this job " +
				"(it was started again, and keeps no storage, so the cluster's state is gone)"}
		}
		return nil
	}
	silent := errors.Is(err, errs.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
	if silent {
		timeout = max(timeout, silentHeadTimeout) // stopped or starved, not gone: outlive it, as a node does
	}
	if now.Sub(lastAnswer) >= timeout {
		return &errs.HeadLostError{Head: head, Reason: fmt.Sprintf("no answer for %s (the head is gone, or this process is cut off from it), "+
			"and it keeps no storage (last error: %v)", now.Sub(lastAnswer).Round(100*time.Millisecond), err)}
	}
	return nil
}

// headReconnectTimeout is how long a process waits for a head that
// keeps its state in storage to come back (restarted on the same
// address) before it gives it up, as a node does
// (raylet.HeadReconnectTimeout; Ray's gcs_rpc_server_reconnect_timeout_s).
// Calls to the control store that find it unreachable meanwhile are
// tried again (headconn.go).
const headReconnectTimeout = time.Minute

// silentHeadTimeout is how long a head that is reached but silent (its
// calls time out) may stay so before the driver gives it up, as a node's
// (raylet: silentHeadTimeout).
const silentHeadTimeout = time.Minute

// jobUnknown reports whether the control store answers that it has no
// record of job at all (not merely that it finished).
func (cw *CoreWorker) jobUnknown(ctx context.Context, job ids.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := cw.gcs.GetJob(ctx, &pb.GetJobRequest{JobId: job.Bytes()})
	return errors.Is(rpc.FromStatus(err), errs.ErrNotFound)
}
