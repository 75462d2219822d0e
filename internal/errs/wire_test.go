package errs

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/pb"
)

// roundTrips lists, for every kind, a Go error with every field set. A
// kind added to the proto without a row here fails
// TestEveryKindRoundTrips.
var roundTrips = []struct {
	kind Kind
	err  error
	// info, when set, is the wire form to start from instead of err
	// (kinds no Go error is sent as); FromInfo(info) must equal err.
	info *pb.ErrorInfo
}{
	{KindTask, &TaskError{Function: "f", Message: "boom", Stack: "stack", NodeID: "n1", WorkerID: "w1", Attempt: 2, Panic: true,
		Cause: &RemoteError{TypeName: "*pkg.E", Message: "boom"}}, nil},
	{KindWorkerCrashed, &WorkerCrashedError{Function: "f", NodeID: "n", WorkerID: "w", Attempts: 3, Reason: "oom"}, nil},
	{KindActorDied, &ActorDiedError{ActorID: "a1", Name: "counter", Reason: "killed", Cause: ActorOwnerDied}, nil},
	{KindActorNotHere, &ActorDiedError{ActorID: "a1", Name: "counter", Reason: "moved", Cause: ActorKilled},
		&pb.ErrorInfo{Kind: KindActorNotHere, ActorId: "a1", ActorName: "counter", Reason: "moved", ActorDeath: ActorKilled}},
	{KindActorInterrupted, &ActorDiedError{ActorID: "a1", Name: "counter", Reason: "killed during the call", Cause: ActorKilled},
		&pb.ErrorInfo{Kind: KindActorInterrupted, ActorId: "a1", ActorName: "counter", Reason: "killed during the call", ActorDeath: ActorKilled}},
	{KindPlacementGroupRemoved, &PlacementGroupRemovedError{Function: "f", GroupID: "0123456789abcdef0123456789abcdef", Name: "pg"}, nil},
	{KindNodeDied, &NodeDiedError{Function: "f", NodeID: "n1", NodeAddress: "127.0.0.1:7000", Attempts: 2, Reason: "heartbeats stopped"}, nil},
	{KindHeadLost, &HeadLostError{Head: "127.0.0.1:6379", Reason: "no answer for 5s and it keeps no storage"}, nil},
	{KindCancelled, &CancelledError{Function: "f", TaskID: "t1", Reason: "by the driver"}, nil},
	{KindObjectFreed, &ObjectError{ObjectID: "o1", Kind: KindObjectFreed, Detail: "d"}, nil},
	{KindObjectLost, &ObjectError{ObjectID: "o1", Kind: KindObjectLost, Detail: "d"}, nil},
	{KindOwnerDied, &ObjectError{ObjectID: "o1", Kind: KindOwnerDied, Detail: "d"}, nil},
	{KindNotRegistered, &NotRegisteredError{Name: "pkg.F"}, nil},
	{KindBadArgument, &ArgumentError{Function: "f", Index: 2, Detail: "want int"}, nil},
	{KindInfeasible, &InfeasibleError{Function: "f", Request: "{CPU: 100}", Cluster: "{CPU: 2}"}, nil},
	{KindWorkerStartup, &WorkerStartupError{Binary: "/bin/x", ExitCode: 5, Attempts: 2, Stderr: "started"}, nil},
	{KindObjectStoreFull, &ObjectStoreFullError{Kind: KindObjectStoreFull, ObjectID: "o1", Message: "full"}, nil},
	{KindObjectTooLarge, &ObjectStoreFullError{Kind: KindObjectTooLarge, ObjectID: "o1", Message: "large"}, nil},
	{KindOutOfMemory, &OutOfMemoryError{Function: "f", NodeID: "n", WorkerID: "w", Attempts: 4, Message: "92% used"}, nil},
	{KindInvalid, Invalidf("bad %d", 1), nil},
	{KindNotFound, NotFoundf("no %s", "x"), nil},
	{KindAlreadyExists, AlreadyExistsf("dup"), nil},
	{KindTimeout, Timeoutf("slow"), nil},
	{KindUnauthenticated, &Status{Kind: KindUnauthenticated, Message: "raygo: unauthenticated: wrong token"}, nil},
	{KindUnavailable, &Status{Kind: KindUnavailable, Message: "raygo: unavailable: refused"}, nil},
	{KindSystem, Systemf("disk"), nil},
}

// setFields counts the non-zero fields of a struct behind a pointer.
func setFields(v any) (set, all int) {
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		all++
		if !rv.Field(i).IsZero() {
			set++
		}
	}
	return set, all
}

func TestEveryKindRoundTrips(t *testing.T) {
	covered := map[Kind]bool{}
	for _, tt := range roundTrips {
		covered[tt.kind] = true
		t.Run(KindName(tt.kind), func(t *testing.T) {
			if set, all := setFields(tt.err); set != all {
				t.Fatalf("test error %#v sets %d of its %d fields; set them all", tt.err, set, all)
			}
			info := tt.info
			if info == nil {
				info = ToInfo(tt.err)
			}
			if info.GetKind() != tt.kind {
				t.Fatalf("kind on the wire = %v, want %v", info.GetKind(), tt.kind)
			}
			// Through the bytes, as the wire carries it.
			b, err := info.MarshalVT()
			if err != nil {
				t.Fatal(err)
			}
			var back pb.ErrorInfo
			if err := back.UnmarshalVT(b); err != nil {
				t.Fatal(err)
			}
			got := FromInfo(&back)
			if !reflect.DeepEqual(got, tt.err) {
				t.Fatalf("fields changed:\n got %#v\nwant %#v", got, tt.err)
			}
			if s := Sentinel(tt.kind); !errors.Is(tt.err, s) || !errors.Is(got, s) {
				t.Fatalf("%v does not match its sentinel %v before and after the trip", got, s)
			}
		})
	}
	for v := range pb.ErrorKind_name {
		if k := Kind(v); k != pb.ErrorKind_ERROR_KIND_UNSPECIFIED && !covered[k] {
			t.Errorf("kind %v has no row in roundTrips", k)
		}
	}
}

func TestTaskErrorCarriesRaygoCause(t *testing.T) {
	cause := &ObjectError{ObjectID: "o1", Kind: KindObjectLost, Detail: "node gone"}
	want := &TaskError{Function: "f", Message: "arg 0: " + cause.Error(), Cause: cause}
	got := FromInfo(ToInfo(want))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
	if !errors.Is(got, ErrTaskFailed) || !errors.Is(got, ErrObjectLost) {
		t.Fatalf("%v matches neither its own sentinel nor its cause's", got)
	}
	// A task that returns a Get error: the caller matches that error too.
	te := trip(t, fmt.Errorf("loading: %w", cause), false)
	var oe *ObjectError
	if !errors.As(te, &oe) || *oe != *cause {
		t.Fatalf("cause = %#v, want %#v", te.Cause, cause)
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
	got = FromInfo(&pb.ErrorInfo{Message: "no kind"})
	if !errors.Is(got, ErrSystem) || got.Error() != "no kind" {
		t.Fatalf("an ErrorInfo without a kind became %#v", got)
	}
	got = FromInfo(&pb.ErrorInfo{Kind: 999, Message: "from a newer peer"})
	if !errors.Is(got, ErrSystem) || got.Error() != "from a newer peer" {
		t.Fatalf("an unknown kind became %#v", got)
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
