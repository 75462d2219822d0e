//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/raygo/raygo/ray"
)

// QuotaError is a user error type registered to cross the wire.
type QuotaError struct {
	Used, Limit int
}

func (e *QuotaError) Error() string { return fmt.Sprintf("quota exceeded: %d > %d", e.Used, e.Limit) }

var ErrFlaky = errors.New("flaky failure")

func init() {
	ray.RegisterError[*QuotaError]("test.QuotaError")
	ray.RegisterSentinel("test.ErrFlaky", ErrFlaky)
}

var (
	FailQuota = ray.Func1(func(ctx context.Context, used int) (int, error) {
		return 0, fmt.Errorf("checking: %w", &QuotaError{Used: used, Limit: 10})
	}, ray.RegisterName("test.FailQuota"))
	Panics = ray.Func0(func(ctx context.Context) (int, error) {
		var m map[string]int
		m["x"] = 1 // nil map write
		return 0, nil
	}, ray.RegisterName("test.Panics"))
	Plain = ray.Func0(func(ctx context.Context) (int, error) { return 0, errors.New("plain failure") }, ray.RegisterName("test.Plain"))
	// FlakyUntil fails with ErrFlaky until attempt n.
	FlakyUntil = ray.Func1(func(ctx context.Context, n int) (int, error) {
		tc, _ := ray.CurrentTask(ctx)
		if tc.Attempt < n {
			return 0, ErrFlaky
		}
		return tc.Attempt, nil
	}, ray.RegisterName("test.FlakyUntil"))
	FlakyQuota = ray.Func0(func(ctx context.Context) (int, error) {
		tc, _ := ray.CurrentTask(ctx)
		if tc.Attempt == 0 {
			return 0, &QuotaError{Used: 1}
		}
		return tc.Attempt, nil
	}, ray.RegisterName("test.FlakyQuota"))
)

// badBinary marshals fine and refuses to unmarshal: a worker cannot decode it.
type badBinary struct{}

func (badBinary) MarshalBinary() ([]byte, error) { return []byte("x"), nil }
func (*badBinary) UnmarshalBinary([]byte) error  { return errors.New("refusing to decode") }

var TakesBad = ray.Func1(func(ctx context.Context, b badBinary) (int, error) { return 1, nil }, ray.RegisterName("test.TakesBad"))

func TestTaskErrors(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	_, err := FailQuota.Remote(ctx, 12).Get(ctx)
	var te *ray.TaskError
	if !errors.As(err, &te) || te.Function != "test.FailQuota" || te.NodeID == "" || te.WorkerID == "" {
		t.Fatalf("want TaskError with function and ids, got %#v", err)
	}
	var qe *QuotaError
	if !errors.As(err, &qe) || qe.Used != 12 || qe.Limit != 10 {
		t.Fatalf("registered error type lost: %v", err)
	}
	if !errors.Is(err, ray.ErrTaskFailed) || !strings.Contains(err.Error(), "quota exceeded: 12 > 10") {
		t.Fatalf("message lost: %v", err)
	}

	_, err = Panics.Remote(ctx).Get(ctx)
	if !errors.As(err, &te) || !te.Panic || !strings.Contains(te.Stack, "errors_test.go") || !strings.Contains(te.Message, "nil map") {
		t.Fatalf("panic not reported with its stack: %v", err)
	}

	_, err = Plain.Remote(ctx).Get(ctx)
	var re *ray.RemoteError
	if !errors.As(err, &re) || re.Message != "plain failure" {
		t.Fatalf("unregistered error: %v", err)
	}

	// Application errors are not retried by default...
	if _, err := FlakyUntil.Remote(ctx, 1).Get(ctx); !errors.Is(err, ErrFlaky) {
		t.Fatalf("want ErrFlaky without retries, got %v", err)
	}
	// ...but are with RetryExceptions, within MaxRetries.
	if n, err := FlakyUntil.Options(ray.RetryExceptions()).Remote(ctx, 2).Get(ctx); err != nil || n != 2 {
		t.Fatalf("RetryExceptions: attempt %d, %v", n, err)
	}
	if _, err := FlakyUntil.Options(ray.RetryExceptions(), ray.MaxRetries(1)).Remote(ctx, 3).Get(ctx); !errors.Is(err, ErrFlaky) {
		t.Fatalf("retries beyond MaxRetries: %v", err)
	}
	// A list of types limits which errors are retried.
	if n, err := FlakyQuota.Options(ray.RetryExceptions("test.QuotaError")).Remote(ctx).Get(ctx); err != nil || n != 1 {
		t.Fatalf("typed RetryExceptions: %d, %v", n, err)
	}
	if _, err := FlakyQuota.Options(ray.RetryExceptions("other.Error")).Remote(ctx).Get(ctx); !errors.As(err, &qe) {
		t.Fatalf("error of an unlisted type was retried: %v", err)
	}
}

var registeredLate *ray.Function1[int, int]

func TestBadInput(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(2))

	t.Run("InitTwice", func(t *testing.T) {
		if err := ray.Init(ctx); !errors.Is(err, ray.ErrAlreadyInitialized) {
			t.Fatalf("second Init: %v", err)
		}
	})
	t.Run("NotRegisteredInWorker", func(t *testing.T) {
		// Registered here, at run time, so worker processes (which never
		// run this test) do not have it.
		if registeredLate == nil {
			registeredLate = ray.Func1(func(ctx context.Context, x int) (int, error) { return x, nil }, ray.RegisterName("test.RegisteredLate"))
		}
		_, err := registeredLate.Remote(ctx, 1).Get(ctx)
		var nr *ray.NotRegisteredError
		if !errors.As(err, &nr) || nr.Name != "test.RegisteredLate" || !errors.Is(err, ray.ErrNotRegistered) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("WrongArgumentTypes", func(t *testing.T) {
		// Types are checked by the compiler (see TestOptionAndArgTypes); a
		// value the worker cannot decode still fails with an ArgumentError.
		_, err := TakesBad.Remote(ctx, badBinary{}).Get(ctx)
		var ae *ray.ArgumentError
		if !errors.As(err, &ae) || ae.Function != TakesBad.Name() || !errors.Is(err, ray.ErrBadArgument) || !strings.Contains(err.Error(), "refusing to decode") {
			t.Fatalf("undecodable argument: %v", err)
		}
	})
	t.Run("GetFreed", func(t *testing.T) {
		ref, err := ray.Put(ctx, "gone soon")
		if err != nil {
			t.Fatal(err)
		}
		if err := ray.Free(ref); err != nil {
			t.Fatal(err)
		}
		if _, err := ref.Get(ctx); !errors.Is(err, ray.ErrObjectFreed) {
			t.Fatalf("Get after Free: %v", err)
		}
		// Passing a freed ref to a task fails too.
		bref, err := ray.Put(ctx, []byte("bytes"))
		if err != nil {
			t.Fatal(err)
		}
		_ = ray.Free(bref)
		if _, err := Len.RemoteArgs(ctx, bref).Get(ctx); !errors.Is(err, ray.ErrObjectFreed) {
			t.Fatalf("task on a freed ref: %v", err)
		}
	})
	t.Run("ZeroRef", func(t *testing.T) {
		var zero ray.ObjectRef[int]
		if _, err := zero.Get(ctx); !errors.Is(err, ray.ErrInvalidRequest) {
			t.Fatalf("Get on zero ref: %v", err)
		}
	})
}

func TestConnectErrors(t *testing.T) {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.Address("127.0.0.1:1"), ray.Token("x")); !errors.Is(err, ray.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable address: %v", err)
	}
	if err := ray.Init(ctx, ray.Address("not-an-address"), ray.Token("x")); err == nil {
		t.Fatal("malformed address accepted")
	}

	head := startHead(t, 1, "right-token", nil)
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("wrong-token")); !errors.Is(err, ray.ErrUnauthenticated) {
		t.Fatalf("wrong token: %v", err)
	}
	t.Setenv(ray.EnvToken, "")
	if err := ray.Init(ctx, ray.Address(head.GCSAddress())); !errors.Is(err, ray.ErrUnauthenticated) {
		t.Fatalf("missing token: %v", err)
	}
	if err := ray.Init(ctx, ray.Address(head.GCSAddress()), ray.Token("right-token")); err != nil {
		t.Fatalf("right token: %v", err)
	}
	defer ray.Shutdown()
	if v, err := Square.Remote(ctx, 9).Get(ctx); err != nil || v != 81 {
		t.Fatalf("task on a joined cluster: %v, %v", v, err)
	}
}

func TestWorkerBinaryExitsAtStart(t *testing.T) {
	t.Setenv(envCrashAtStart, "1")
	ctx := initCluster(t, ray.NumCPUs(1))
	_, err := Square.Remote(ctx, 3).Get(ctx)
	var se *ray.WorkerStartupError
	if !errors.As(err, &se) || se.ExitCode != 7 || se.Attempts < 3 || !strings.Contains(se.Stderr, "crashing at start on purpose") {
		t.Fatalf("want WorkerStartupError with exit code and stderr, got %v", err)
	}
	// The node does not keep restarting: a second call fails at once too.
	if _, err := Square.Remote(ctx, 3).Get(ctx); !errors.Is(err, ray.ErrWorkerStartup) {
		t.Fatalf("second call: %v", err)
	}
	_ = os.Getpid
}
