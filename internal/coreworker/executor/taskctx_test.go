package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/ids"
)

func TestTaskContext(t *testing.T) {
	type otherKey struct{}
	parent, cancelParent := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "from parent"))
	defer cancelParent()
	hooked := false
	tc := newTaskContext(parent, TaskInfo{Function: "f"}, func() { hooked = true })

	if ti, ok := InfoFrom(tc); !ok || ti.Function != "f" {
		t.Fatalf("InfoFrom: %+v %v", ti, ok)
	}
	if v := tc.Value(otherKey{}); v != "from parent" {
		t.Fatalf("parent's value: %v", v)
	}
	tc.Value(blockHookKey{}).(func())()
	if !hooked {
		t.Fatal("block hook not returned")
	}
	if v := newTaskContext(parent, TaskInfo{}, nil).Value(blockHookKey{}); v != nil {
		t.Fatalf("no hook: Value = %v, want nil", v)
	}
	if tc.Err() != nil {
		t.Fatalf("Err before cancel: %v", tc.Err())
	}

	// A context derived by the task sees the task's cancellation.
	child, stop := context.WithTimeout(tc, time.Minute)
	defer stop()
	tc.cancel(context.Canceled)
	tc.cancel(errors.New("second")) // the first error wins
	select {
	case <-tc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after cancel")
	}
	select {
	case <-child.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("derived context not cancelled")
	}
	if !errors.Is(tc.Err(), context.Canceled) {
		t.Fatalf("Err: %v", tc.Err())
	}

	// Done made after cancel is closed at once.
	late := newTaskContext(parent, TaskInfo{}, nil)
	late.cancel(context.Canceled)
	select {
	case <-late.Done():
	default:
		t.Fatal("Done made after cancel is open")
	}
}

// TestTaskContextParent: the worker's context ending ends every task's,
// whether it was waited on before (Done) or only asked (Err).
func TestTaskContextParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	waited := newTaskContext(parent, TaskInfo{}, nil)
	done := waited.Done()
	asked := newTaskContext(parent, TaskInfo{}, nil)
	cancelParent()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed when the parent ended")
	}
	if !errors.Is(waited.Err(), context.Canceled) || !errors.Is(asked.Err(), context.Canceled) {
		t.Fatalf("Err: %v, %v", waited.Err(), asked.Err())
	}
	select {
	case <-asked.Done():
	default:
		t.Fatal("Done of a context whose Err saw the parent end is open")
	}
}

func TestTaskIDFrom(t *testing.T) {
	id := ids.New()
	tc := newTaskContext(context.Background(), TaskInfo{TaskID: id, Function: "f"}, nil)
	if got, ok := TaskIDFrom(tc); !ok || got != id {
		t.Fatalf("the task's own context: %v %v, want %v", got, ok, id)
	}
	derived, cancel := context.WithCancel(tc)
	defer cancel()
	if got, ok := TaskIDFrom(derived); !ok || got != id {
		t.Fatalf("a context derived from the task's: %v %v, want %v", got, ok, id)
	}
	if got, ok := TaskIDFrom(context.Background()); ok {
		t.Fatalf("outside a task: %v, want none", got)
	}
}

func TestTaskContextActor(t *testing.T) {
	tc := newTaskContext(context.Background(), TaskInfo{Function: "f"}, nil)
	if v := tc.Value(actorKey{}); v != nil {
		t.Fatalf("a normal task's context: actor %v, want none (an untyped nil)", v)
	}
	if err := ExitActor(tc); err == nil {
		t.Fatal("ExitActor outside an actor method succeeded")
	}
	ha := &hostedActor{}
	tc.actor = ha
	derived, cancel := context.WithCancel(tc)
	defer cancel()
	if v, _ := derived.Value(actorKey{}).(*hostedActor); v != ha {
		t.Fatalf("an actor method's derived context: actor %v, want %v", v, ha)
	}
}
