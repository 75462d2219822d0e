package taskmgr

import (
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// Cause says why an attempt failed.
type Cause uint8

const (
	// CauseApp: the function returned an error or panicked (Info is the
	// worker's ErrorInfo), or the worker refused the task with a system
	// error (not registered, bad arguments, ...), which is never retried.
	CauseApp Cause = iota
	// CauseWorkerDied: the worker (or its node) died, or its connection
	// broke, while the task was in flight. Info describes it.
	CauseWorkerDied
	// CauseOOM: the node's memory monitor killed the worker. Info carries
	// the node's report.
	CauseOOM
	// CauseActorDied: the actor's process died while the call was in
	// flight. Info is the error to report if it is not retried.
	CauseActorDied
	// CauseCancelled: the task was cancelled.
	CauseCancelled
	// CauseDependency: an argument resolved to an error (Info).
	CauseDependency
	// CauseFatal: the task can never run (Info says why: the actor is
	// dead, the request is infeasible and the job asked to fail fast, ...).
	CauseFatal
)

// Failure is one failed attempt.
type Failure struct {
	Cause Cause
	Info  *pb.ErrorInfo
}

// State is what Decide needs to know of a task's history.
type State struct {
	RetriesLeft int // -1: no limit
	OOMLeft     int // -1: no limit
	OOMKills    int // out-of-memory kills so far
	Cancelled   bool
	Attempt     int
}

// Action is what to do with a failed attempt.
type Action uint8

const (
	// Fail ends the task with Decision.Err (nil: the Manager builds it).
	Fail Action = iota
	// Retry resubmits the task after Decision.Delay.
	Retry
	// Done: the task finished (Complete only).
	Done
	// Ignore: the task had already finished; nothing to do.
	Ignore
)

// Decision is Decide's answer.
type Decision struct {
	Action Action
	Delay  time.Duration
	Err    *pb.ErrorInfo
}

// Decide is the retry policy, a pure function of the task's policy, its
// state and the failure:
//
//   - a cancelled task is never retried;
//   - a system failure (worker, node or actor process died) is retried
//     while retries are left;
//   - an out-of-memory kill is retried on its own counter, after a pause
//     growing with each kill;
//   - an application error is retried only with RetryExceptions (and a
//     matching type, if types are listed), within the same retries;
//   - errors the worker reports itself (unregistered function, bad
//     arguments), failed arguments and fatal causes are never retried.
func Decide(p Policy, st State, f Failure, cfg Config) Decision {
	if st.Cancelled || f.Cause == CauseCancelled {
		return Decision{Action: Fail}
	}
	switch f.Cause {
	case CauseWorkerDied, CauseActorDied:
		if st.RetriesLeft != 0 {
			return Decision{Action: Retry}
		}
		return Decision{Action: Fail, Err: f.Info}
	case CauseOOM:
		if st.OOMLeft != 0 {
			return Decision{Action: Retry, Delay: min(time.Duration(st.OOMKills+1)*cfg.OOMBackoff, cfg.MaxOOMBackoff)}
		}
		return Decision{Action: Fail}
	case CauseApp:
		if f.Info.GetKind() == errs.KindUnavailable && st.RetriesLeft != 0 {
			// The worker answered, but could not do the task for want of
			// a peer it could not reach (its caller, behind a partition):
			// a system failure, retried as a worker's death is.
			return Decision{Action: Retry}
		}
		if f.Info.GetKind() == errs.KindTask && p.RetryExceptions && st.RetriesLeft != 0 && retryableType(p.RetryTypes, f.Info.GetTypeName()) {
			return Decision{Action: Retry}
		}
		return Decision{Action: Fail, Err: f.Info}
	case CauseDependency:
		return Decision{Action: Fail}
	}
	return Decision{Action: Fail, Err: f.Info}
}

// retryableType reports whether an application error of the registered
// type name is retried under types (empty: every type).
func retryableType(types []string, name string) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == name || "sentinel:"+t == name {
			return true
		}
	}
	return false
}
