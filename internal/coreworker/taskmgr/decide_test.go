package taskmgr

import (
	"fmt"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// TestDecide covers the retry policy, Cause × policy × state.
func TestDecide(t *testing.T) {
	cfg := Config{OOMBackoff: time.Second, MaxOOMBackoff: 10 * time.Second}
	crashed := errs.ToInfo(&errs.WorkerCrashedError{Function: "f", Reason: "exit 1"})
	actorDied := errs.ToInfo(&errs.ActorDiedError{ActorID: "a", Reason: "killed"})
	oom := &pb.ErrorInfo{Kind: errs.KindOutOfMemory, NodeId: "n", Message: "rss above threshold"}
	app := &pb.ErrorInfo{Kind: errs.KindTask, Function: "f", TypeName: "main.MyErr"}
	appSentinel := &pb.ErrorInfo{Kind: errs.KindTask, Function: "f", TypeName: "sentinel:ErrTransient"}
	appOther := &pb.ErrorInfo{Kind: errs.KindTask, Function: "f", TypeName: "main.Other"}
	notRegistered := errs.ToInfo(&errs.NotRegisteredError{Name: "f"})
	badArg := errs.ToInfo(&errs.ArgumentError{Function: "f", Index: 0, Detail: "bad"})
	argErr := errs.ToInfo(&errs.ObjectError{ObjectID: "o", Kind: errs.KindObjectLost})
	fatal := errs.ToInfo(&errs.InfeasibleError{Request: "{GPU: 8}"})
	unreachable := &pb.ErrorInfo{Kind: errs.KindUnavailable, Message: "its owner, this task's caller, could not be reached"}

	retryApp := Policy{MaxRetries: 3, RetryExceptions: true}
	typed := Policy{MaxRetries: 3, RetryExceptions: true, RetryTypes: []string{"main.MyErr", "ErrTransient"}}
	left := func(n int) State { return State{RetriesLeft: n, OOMLeft: n} }

	type want struct {
		action Action
		delay  time.Duration
		err    *pb.ErrorInfo // nil: the Manager builds it
	}
	cases := []struct {
		name string
		p    Policy
		st   State
		f    Failure
		want want
	}{
		// Cancelled never retries, whatever the cause and the retries left.
		{"cancelled worker died", Policy{MaxRetries: -1}, State{RetriesLeft: -1, Cancelled: true}, Failure{CauseWorkerDied, crashed}, want{Fail, 0, nil}},
		{"cancelled actor died", Policy{MaxRetries: -1}, State{RetriesLeft: -1, Cancelled: true}, Failure{CauseActorDied, actorDied}, want{Fail, 0, nil}},
		{"cancelled oom", Policy{OOMRetries: -1}, State{OOMLeft: -1, Cancelled: true}, Failure{CauseOOM, oom}, want{Fail, 0, nil}},
		{"cancelled app error", retryApp, State{RetriesLeft: 3, Cancelled: true}, Failure{CauseApp, app}, want{Fail, 0, nil}},
		{"cancelled fatal", Policy{}, State{Cancelled: true}, Failure{CauseFatal, fatal}, want{Fail, 0, nil}},
		{"cause cancelled", retryApp, left(3), Failure{CauseCancelled, nil}, want{Fail, 0, nil}},
		{"cause cancelled, no limit", Policy{MaxRetries: -1}, left(-1), Failure{CauseCancelled, crashed}, want{Fail, 0, nil}},

		// System failures retry while retries are left; -1 for ever.
		{"worker died, retries left", Policy{MaxRetries: 3}, left(3), Failure{CauseWorkerDied, crashed}, want{Retry, 0, nil}},
		{"worker died, last retry", Policy{MaxRetries: 3}, left(1), Failure{CauseWorkerDied, crashed}, want{Retry, 0, nil}},
		{"worker died, none left", Policy{MaxRetries: 3}, left(0), Failure{CauseWorkerDied, crashed}, want{Fail, 0, crashed}},
		{"worker died, no retries", Policy{}, left(0), Failure{CauseWorkerDied, crashed}, want{Fail, 0, crashed}},
		{"worker died, for ever", Policy{MaxRetries: -1}, State{RetriesLeft: -1, Attempt: 1000}, Failure{CauseWorkerDied, crashed}, want{Retry, 0, nil}},
		{"actor died, retries left", Policy{MaxRetries: 1}, left(1), Failure{CauseActorDied, actorDied}, want{Retry, 0, nil}},
		{"actor died, none left", Policy{MaxRetries: 1}, left(0), Failure{CauseActorDied, actorDied}, want{Fail, 0, actorDied}},
		{"actor died, for ever", Policy{MaxRetries: -1}, left(-1), Failure{CauseActorDied, actorDied}, want{Retry, 0, nil}},

		// OOM on its own counter, with a growing, capped pause.
		{"oom, first kill", Policy{OOMRetries: 5}, State{OOMLeft: 5}, Failure{CauseOOM, oom}, want{Retry, time.Second, nil}},
		{"oom, third kill", Policy{OOMRetries: 5}, State{OOMLeft: 3, OOMKills: 2}, Failure{CauseOOM, oom}, want{Retry, 3 * time.Second, nil}},
		{"oom, delay capped", Policy{OOMRetries: -1}, State{OOMLeft: -1, OOMKills: 40}, Failure{CauseOOM, oom}, want{Retry, 10 * time.Second, nil}},
		{"oom, no system retries needed", Policy{OOMRetries: 1}, State{RetriesLeft: 0, OOMLeft: 1}, Failure{CauseOOM, oom}, want{Retry, time.Second, nil}},
		{"oom, none left", Policy{MaxRetries: 3, OOMRetries: 2}, State{RetriesLeft: 3, OOMLeft: 0, OOMKills: 2}, Failure{CauseOOM, oom}, want{Fail, 0, nil}},

		// A worker that could not reach a peer (its caller, partitioned
		// away) answers unavailable: a system failure.
		{"unreachable caller, retries left", Policy{MaxRetries: 3}, left(3), Failure{CauseApp, unreachable}, want{Retry, 0, nil}},
		{"unreachable caller, none left", Policy{MaxRetries: 3}, left(0), Failure{CauseApp, unreachable}, want{Fail, 0, unreachable}},

		// Application errors only with RetryExceptions and a matching type.
		{"app error, no RetryExceptions", Policy{MaxRetries: 3}, left(3), Failure{CauseApp, app}, want{Fail, 0, app}},
		{"app error, RetryExceptions", retryApp, left(3), Failure{CauseApp, app}, want{Retry, 0, nil}},
		{"app error, RetryExceptions, for ever", Policy{MaxRetries: -1, RetryExceptions: true}, left(-1), Failure{CauseApp, app}, want{Retry, 0, nil}},
		{"app error, RetryExceptions, none left", retryApp, left(0), Failure{CauseApp, app}, want{Fail, 0, app}},
		{"app error, listed type", typed, left(3), Failure{CauseApp, app}, want{Retry, 0, nil}},
		{"app error, listed sentinel", typed, left(3), Failure{CauseApp, appSentinel}, want{Retry, 0, nil}},
		{"app error, unlisted type", typed, left(3), Failure{CauseApp, appOther}, want{Fail, 0, appOther}},
		{"app error, listed type, none left", typed, left(0), Failure{CauseApp, app}, want{Fail, 0, app}},
		{"not registered, RetryExceptions", retryApp, left(3), Failure{CauseApp, notRegistered}, want{Fail, 0, notRegistered}},
		{"bad argument, RetryExceptions", retryApp, left(3), Failure{CauseApp, badArg}, want{Fail, 0, badArg}},
		{"app error without info", retryApp, left(3), Failure{CauseApp, nil}, want{Fail, 0, nil}},

		// Failed arguments and fatal causes never retry.
		{"dependency", Policy{MaxRetries: -1, RetryExceptions: true}, left(-1), Failure{CauseDependency, argErr}, want{Fail, 0, nil}},
		{"fatal", Policy{MaxRetries: -1, OOMRetries: -1, RetryExceptions: true}, left(-1), Failure{CauseFatal, fatal}, want{Fail, 0, fatal}},
		{"fatal without info", Policy{MaxRetries: -1}, left(-1), Failure{CauseFatal, nil}, want{Fail, 0, nil}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.p, c.st, c.f, cfg)
			if d.Action != c.want.action || d.Delay != c.want.delay || d.Err != c.want.err {
				t.Fatalf("Decide = {%s %v %v}, want {%s %v %v}", actionName(d.Action), d.Delay, d.Err, actionName(c.want.action), c.want.delay, c.want.err)
			}
		})
	}
}

func TestRetryableType(t *testing.T) {
	for _, c := range []struct {
		types []string
		name  string
		want  bool
	}{
		{nil, "anything", true},
		{[]string{"a.T"}, "a.T", true},
		{[]string{"a.T"}, "b.T", false},
		{[]string{"ErrX"}, "sentinel:ErrX", true},
		{[]string{"ErrX"}, "sentinel:ErrY", false},
		{[]string{"a.T", "ErrX"}, "sentinel:ErrX", true},
		{[]string{"sentinel:ErrX"}, "sentinel:ErrX", true},
	} {
		if got := retryableType(c.types, c.name); got != c.want {
			t.Errorf("retryableType(%v, %q) = %v, want %v", c.types, c.name, got, c.want)
		}
	}
}

// actionName prints an Action in failure messages.
func actionName(a Action) string {
	switch a {
	case Fail:
		return "Fail"
	case Retry:
		return "Retry"
	case Done:
		return "Done"
	case Ignore:
		return "Ignore"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}
