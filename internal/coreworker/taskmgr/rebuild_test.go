package taskmgr

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

var errLost = &errs.ObjectError{ObjectID: "o", Kind: errs.KindObjectLost, Detail: "its node died"}

func storedAt(node string) *pb.Value { return &pb.Value{InStore: true, StoreAddress: node, Size: 8} }

// TestRebuild: a finished task whose result was lost runs again within
// its retries (one rebuild at a time: a second caller joins it); the new
// reply replaces the lost value in its slot, and the lineage and its
// argument's holds stay as they were; past its retries, or for an object
// without lineage, Rebuild says why, wrapping the loss.
func TestRebuild(t *testing.T) {
	h := newHarness(t, Config{})
	arg, _ := h.put("x")
	tk := h.submit(Normal, 1, Policy{MaxRetries: 2}, ids.Nil, arg)
	h.refs.RemoveLocal(arg)
	h.m.Complete(tk, reply(storedAt("dead:1")))
	oid := tk.Returns[0].Entry.ID()
	slot := tk.Returns[0].Slot
	argCounts := h.refs.CountsOf(arg.ID())

	rb, err := h.m.Rebuild(oid, errLost)
	if err != nil || rb.Task != tk || tk.Spec.GetAttempt() != 1 || h.m.Pending() != 1 {
		t.Fatalf("Rebuild = %v, %v; attempt %d, %d pending", rb.Task, err, tk.Spec.GetAttempt(), h.m.Pending())
	}
	again, err := h.m.Rebuild(oid, errLost)
	if err != nil || again.Task != nil {
		t.Fatalf("a second Rebuild while one runs: task %v, %v; want to join it", again.Task, err)
	}
	select {
	case <-rb.Done():
		t.Fatal("done before the task replied")
	default:
	}
	h.m.CompleteAll([]Replied{{Task: tk, Reply: reply(storedAt("alive:2"))}}, nil)
	<-again.Done()
	if rb.Err() != nil || slot.Value().GetStoreAddress() != "alive:2" {
		t.Fatalf("after the rebuild: %v, slot %v", rb.Err(), slot.Value())
	}
	if h.m.Stats().Lineage != 1 || !reflect.DeepEqual(h.refs.CountsOf(arg.ID()), argCounts) || h.m.Pending() != 0 {
		t.Fatalf("lineage %d, argument counts %+v (were %+v), %d pending", h.m.Stats().Lineage, h.refs.CountsOf(arg.ID()), argCounts, h.m.Pending())
	}

	// The second rebuild fails for good: the value stays as it was, the
	// error says why.
	rb, err = h.m.Rebuild(oid, errLost)
	if err != nil {
		t.Fatal(err)
	}
	h.m.Fail(tk, Failure{Cause: CauseFatal, Info: errs.ToInfo(errs.Systemf("no node can run it"))})
	<-rb.Done()
	if err := rb.Err(); err == nil || !strings.Contains(err.Error(), "no node can run it") || slot.Value().GetStoreAddress() != "alive:2" {
		t.Fatalf("a failed rebuild: %v, slot %v", err, slot.Value())
	}
	// Two retries used: no more rebuilds.
	if _, err := h.m.Rebuild(oid, errLost); !errors.Is(err, errs.ErrObjectLost) || !strings.Contains(err.Error(), "used all of its 2 retries") {
		t.Fatalf("a rebuild past the retries: %v", err)
	}
	if _, err := h.m.Rebuild(ids.New(), errLost); !errors.Is(err, errs.ErrObjectLost) || !strings.Contains(err.Error(), "ray.Put") {
		t.Fatalf("a rebuild of an object no task made: %v", err)
	}
	h.drop(tk)
	if h.m.Stats().Lineage != 0 || h.refs.Len() != 0 {
		t.Fatalf("lineage %d, %d entries left", h.m.Stats().Lineage, h.refs.Len())
	}
}

// TestRebuildAfterLineageDropped: past MaxLineage the oldest lineage goes,
// and a rebuild of its result says so.
func TestRebuildAfterLineageDropped(t *testing.T) {
	h := newHarness(t, Config{MaxLineage: 1})
	t1 := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil)
	h.m.Complete(t1, reply(storedAt("n")))
	t2 := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil)
	h.m.Complete(t2, reply(storedAt("n")))
	if _, err := h.m.Rebuild(t1.Returns[0].Entry.ID(), errLost); !errors.Is(err, errs.ErrObjectLost) || !strings.Contains(err.Error(), "lineage of the task that made it was dropped") {
		t.Fatalf("a rebuild after the lineage was dropped: %v", err)
	}
	rb, err := h.m.Rebuild(t2.Returns[0].Entry.ID(), errLost)
	if err != nil || rb.Task != t2 {
		t.Fatalf("the kept lineage: %v, %v", rb.Task, err)
	}
	h.m.CompleteAll([]Replied{{Task: t2, Reply: reply(storedAt("m"))}}, nil)
	h.drop(t1)
	h.drop(t2)
}

// TestRebuildActorCall: an actor call with MaxTaskRetries keeps its
// lineage (its arguments, the actor handle among them, gain lineage refs)
// and is rebuilt within its task retries, as a normal task is; one with
// MaxTaskRetries(0) keeps none, and a rebuild of its result says it ran
// at most once, naming the method.
func TestRebuildActorCall(t *testing.T) {
	h := newHarness(t, Config{})
	actor := h.refs.Own(ids.New(), refcount.Actor, nil, nil)
	arg, _ := h.put("x")
	tk := h.submit(ActorCall, 1, Policy{MaxRetries: 1}, ids.Nil, arg, actor)
	tk.Spec.Function = "Counter.Make"
	h.refs.RemoveLocal(arg)
	h.m.Complete(tk, reply(storedAt("dead:1")))
	if h.m.Stats().Lineage != 1 || h.refs.CountsOf(actor.ID()).Lineage != 1 || h.refs.CountsOf(arg.ID()).Lineage != 1 {
		t.Fatalf("lineage %d; actor %+v, argument %+v: want both held by the call's lineage",
			h.m.Stats().Lineage, h.refs.CountsOf(actor.ID()), h.refs.CountsOf(arg.ID()))
	}
	oid := tk.Returns[0].Entry.ID()
	rb, err := h.m.Rebuild(oid, errLost)
	if err != nil || rb.Task != tk || rb.Task.Kind != ActorCall || tk.Spec.GetAttempt() != 1 {
		t.Fatalf("Rebuild = %v, %v; attempt %d", rb.Task, err, tk.Spec.GetAttempt())
	}
	h.m.CompleteAll([]Replied{{Task: tk, Reply: reply(storedAt("alive:2"))}}, nil)
	<-rb.Done()
	if rb.Err() != nil || tk.Returns[0].Slot.Value().GetStoreAddress() != "alive:2" {
		t.Fatalf("after the rebuild: %v, slot %v", rb.Err(), tk.Returns[0].Slot.Value())
	}
	// Its one task retry is used.
	if _, err := h.m.Rebuild(oid, errLost); !errors.Is(err, errs.ErrObjectLost) ||
		!strings.Contains(err.Error(), "actor method Counter.Make used all of its 1 task retries") {
		t.Fatalf("a rebuild past MaxTaskRetries: %v", err)
	}
	h.drop(tk)
	if h.m.Stats().Lineage != 0 || h.refs.CountsOf(actor.ID()).Lineage != 0 {
		t.Fatalf("lineage %d, actor %+v after the result went", h.m.Stats().Lineage, h.refs.CountsOf(actor.ID()))
	}

	// At most once: no lineage, and a rebuild says why.
	once := h.submit(ActorCall, 1, Policy{}, ids.Nil, actor)
	once.Spec.Function = "Counter.Once"
	h.m.Complete(once, reply(storedAt("dead:1")))
	if h.m.Stats().Lineage != 0 {
		t.Fatalf("lineage %d for an at-most-once call", h.m.Stats().Lineage)
	}
	_, err = h.m.Rebuild(once.Returns[0].Entry.ID(), errLost)
	if !errors.Is(err, errs.ErrObjectLost) || !strings.Contains(err.Error(), "actor method (Counter.Once) with MaxTaskRetries(0)") {
		t.Fatalf("a rebuild of an at-most-once call's result: %v", err)
	}
	h.drop(once)
	h.refs.RemoveLocal(actor)
	if h.refs.Len() != 0 {
		t.Fatalf("%d entries left", h.refs.Len())
	}
}
