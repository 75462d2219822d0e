package errs

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestTypedErrorsRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		sentinel error
	}{
		{"task", &TaskError{Function: "f", Message: "boom", Stack: "stack", NodeID: "n1", WorkerID: "w1", Attempt: 2, Panic: true}, ErrTaskFailed},
		{"task with remote cause", &TaskError{Function: "f", Message: "boom", Cause: &RemoteError{TypeName: "*pkg.E", Message: "boom"}}, ErrTaskFailed},
		{"worker crashed", &WorkerCrashedError{Function: "f", NodeID: "n", WorkerID: "w", Attempts: 3, Reason: "oom"}, ErrWorkerCrashed},
		{"actor died", &ActorDiedError{ActorID: "a1", Name: "counter", Reason: "killed"}, ErrActorDied},
		{"cancelled", &CancelledError{Function: "f", TaskID: "t1"}, ErrTaskCancelled},
		{"object freed", &ObjectError{ObjectID: "o1", Kind: KindObjectFreed, Detail: "d"}, ErrObjectFreed},
		{"object lost", &ObjectError{ObjectID: "o1", Kind: KindObjectLost, Detail: "d"}, ErrObjectLost},
		{"owner died", &ObjectError{ObjectID: "o1", Kind: KindOwnerDied}, ErrOwnerDied},
		{"not registered", &NotRegisteredError{Name: "pkg.F"}, ErrNotRegistered},
		{"bad argument", &ArgumentError{Function: "f", Index: 2, Detail: "want int"}, ErrBadArgument},
		{"infeasible", &InfeasibleError{Function: "f", Request: "{CPU: 100}", Cluster: "{CPU: 2}"}, ErrInfeasible},
		{"worker startup", &WorkerStartupError{Binary: "/bin/x", ExitCode: 5, Attempts: 2, Stderr: "started"}, ErrWorkerStartup},
		{"invalid", Invalidf("bad %d", 1), ErrInvalidRequest},
		{"not found", NotFoundf("no %s", "x"), ErrNotFound},
		{"already exists", AlreadyExistsf("dup"), ErrAlreadyExists},
		{"timeout", &Status{Kind: KindTimeout, Message: "slow"}, ErrTimeout},
		{"system", Systemf("disk"), ErrSystem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.sentinel) {
				t.Fatalf("original %v does not match its sentinel", tt.err)
			}
			got := FromInfo(ToInfo(tt.err))
			if !errors.Is(got, tt.sentinel) {
				t.Fatalf("after the trip %v does not match %v", got, tt.sentinel)
			}
			if !reflect.DeepEqual(got, tt.err) {
				t.Fatalf("fields changed:\n got %#v\nwant %#v", got, tt.err)
			}
		})
	}
}

func TestWrappedTypedErrorRoundTrips(t *testing.T) {
	want := &InfeasibleError{Function: "f", Request: "{GPU: 8}", Cluster: "{GPU: 1}"}
	got := FromInfo(ToInfo(fmt.Errorf("scheduling: %w", want)))
	var ie *InfeasibleError
	if !errors.As(got, &ie) || *ie != *want {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func TestNilAndUntypedErrors(t *testing.T) {
	if ToInfo(nil) != nil || FromInfo(nil) != nil {
		t.Fatal("nil must map to nil both ways")
	}
	got := FromInfo(ToInfo(errors.New("disk on fire")))
	if !errors.Is(got, ErrSystem) || got.Error() != "disk on fire" {
		t.Fatalf("untyped error became %#v", got)
	}
}

// userError is registered by type, as ray.RegisterError does.
type userError struct {
	Code  int
	Field string
}

func (e *userError) Error() string { return fmt.Sprintf("user error %d on %s", e.Code, e.Field) }

// valueError is registered as a value (non-pointer) type.
type valueError struct{ Reason string }

func (e valueError) Error() string { return "value error: " + e.Reason }

var errQuota = errors.New("quota exceeded")

func init() {
	RegisterType("errs_test.userError", reflect.TypeOf(&userError{}))
	RegisterType("errs_test.valueError", reflect.TypeOf(valueError{}))
	RegisterSentinel("errs_test.quota", errQuota)
}

// trip sends a user function's error across the wire as a worker would.
func trip(t *testing.T, err error, panicked bool) *TaskError {
	t.Helper()
	info := FromAppError("pkg.F", err, "the stack", panicked, "node", "worker", 1)
	var te *TaskError
	if got := FromInfo(info); !errors.As(got, &te) {
		t.Fatalf("FromInfo(FromAppError) = %#v, want *TaskError", got)
	}
	return te
}

func TestRegisteredTypeSurvives(t *testing.T) {
	te := trip(t, fmt.Errorf("wrapped: %w", &userError{Code: 42, Field: "name"}), false)
	var ue *userError
	if !errors.As(te, &ue) || ue.Code != 42 || ue.Field != "name" {
		t.Fatalf("cause = %#v, want *userError{42, name}", te.Cause)
	}
	if !errors.Is(te, ErrTaskFailed) || te.Function != "pkg.F" || te.Attempt != 1 || te.Panic {
		t.Fatalf("task error fields lost: %#v", te)
	}
}

func TestRegisteredValueTypeSurvives(t *testing.T) {
	te := trip(t, valueError{Reason: "r"}, false)
	var ve valueError
	if !errors.As(te, &ve) || ve.Reason != "r" {
		t.Fatalf("cause = %#v, want valueError{r}", te.Cause)
	}
}

func TestRegisteredSentinelSurvives(t *testing.T) {
	te := trip(t, fmt.Errorf("charging: %w", errQuota), false)
	if !errors.Is(te, errQuota) {
		t.Fatalf("cause = %#v, want errors.Is(errQuota)", te.Cause)
	}
	if !strings.Contains(te.Message, "charging") {
		t.Fatalf("message %q lost the wrapping text", te.Message)
	}
}

func TestUnregisteredErrorBecomesRemoteError(t *testing.T) {
	te := trip(t, errors.New("plain failure"), false)
	var re *RemoteError
	if !errors.As(te, &re) {
		t.Fatalf("cause = %#v, want *RemoteError", te.Cause)
	}
	if re.Message != "plain failure" || re.TypeName != "*errors.errorString" {
		t.Fatalf("RemoteError = %#v", re)
	}
	// A second trip (a re-raised error) keeps the type name.
	var again *RemoteError
	if !errors.As(FromInfo(ToInfo(te)), &again) || *again != *re {
		t.Fatalf("second trip gave %#v, want %#v", again, re)
	}
}

func TestFromAppErrorMarksPanics(t *testing.T) {
	for _, panicked := range []bool{false, true} {
		info := FromAppError("pkg.F", errors.New("x"), "stack", panicked, "n", "w", 0)
		if info.GetKind() != KindTask || info.GetPanic() != panicked {
			t.Fatalf("panicked=%v: info = %v", panicked, info)
		}
		te := trip(t, errors.New("x"), panicked)
		if te.Panic != panicked || strings.Contains(te.Error(), "(panic)") != panicked {
			t.Fatalf("panicked=%v: %q", panicked, te.Error())
		}
		if te.Stack != "the stack" {
			t.Fatalf("stack = %q", te.Stack)
		}
	}
}
