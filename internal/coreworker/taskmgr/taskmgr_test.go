package taskmgr

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/coreworker/refcount"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	self  = refcount.Owner{Addr: "self:1", ID: ids.New()}
	other = refcount.Owner{Addr: "other:1", ID: ids.New()}
)

// harness wires a Manager to a real reference counter and memory store,
// with the counter's Sink doing what the core worker's does: freed
// objects leave the store, released lineage goes to the Manager.
type harness struct {
	t     *testing.T
	refs  *refcount.Counter
	store *memstore.Store
	m     *Manager

	mu      sync.Mutex
	freed   []ids.ID
	onFreed func(list []ids.ID) // runs inside ObjectFreed
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, store: memstore.New()}
	h.refs = refcount.New(self, h)
	h.m = New(cfg, h.refs, h.store)
	return h
}

func (h *harness) ObjectFreed(e *refcount.Entry) {
	if s := e.Slot(); s != nil {
		h.store.Free(s)
	}
	list := []ids.ID{e.ID()}
	h.mu.Lock()
	h.freed = append(h.freed, list...)
	hook := h.onFreed
	h.mu.Unlock()
	if hook != nil {
		hook(list)
	}
}
func (h *harness) BorrowEnded(*refcount.Entry)       {}
func (h *harness) ActorOutOfScope(*refcount.Entry)   {}
func (h *harness) LineageReleased(e *refcount.Entry) { h.m.LineageReleased(e.ID()) }

func (h *harness) wasFreed(id ids.ID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.freed, id)
}

// put makes an owned object with a value, as ray.Put does.
func (h *harness) put(data string) (*refcount.Entry, *memstore.Slot) {
	id := ids.New()
	s := memstore.NewReadySlot(id, &pb.Value{Data: []byte(data)})
	e := h.refs.Own(id, refcount.Object, nil, s)
	return e, s
}

// submit records a task as the core worker does: its return entries and
// slots made, its arguments held, then Add.
func (h *harness) submit(kind Kind, nret int, p Policy, parent ids.ID, args ...*refcount.Entry) *Task {
	h.t.Helper()
	t := NewTask(ids.New(), kind, nil, nret, p)
	t.Spec.Function = "f"
	t.Parent = parent
	if len(args) > 0 {
		if err := h.refs.Hold(args...); err != nil {
			h.t.Fatal(err)
		}
	}
	t.Args = args
	for i := range t.Returns {
		id := ids.ForReturn(t.ID, i)
		s := memstore.NewSlot(id)
		e := h.refs.NewOwned(id, s)
		t.Returns[i] = Return{Entry: e, Slot: s}
		h.refs.AddOwned(e)
	}
	h.m.Add(t)
	return t
}

// drop removes the caller's handle on each return of t.
func (h *harness) drop(t *Task) {
	for _, r := range t.Returns {
		h.refs.RemoveLocal(r.Entry)
	}
}

func inline(data string) *pb.Value { return &pb.Value{Data: []byte(data)} }
func inStore(data string) *pb.Value {
	return &pb.Value{InStore: true, StoreAddress: "node:1", Size: int64(len(data))}
}

func reply(vals ...*pb.Value) *pb.TaskReply { return &pb.TaskReply{Returns: vals} }

func crash() Failure {
	return Failure{Cause: CauseWorkerDied, Info: errs.ToInfo(&errs.WorkerCrashedError{Function: "f", Reason: "exit 1"})}
}

// resultErr is the error a return slot holds.
func resultErr(t *testing.T, s *memstore.Slot) error {
	t.Helper()
	v := s.Value()
	if v == nil || v.GetError() == nil {
		t.Fatalf("slot %s holds %v, want an error", s.ID().Short(), v)
	}
	return errs.FromInfo(v.GetError())
}

func TestNewTask(t *testing.T) {
	id := ids.New()
	t0 := NewTask(id, ActorCreation, nil, 0, Policy{})
	if t0.Returns != nil || t0.Spec == nil || ids.MustFromBytes(t0.Spec.TaskId) != id {
		t.Fatalf("task with no returns: %+v", t0)
	}
	t1 := NewTask(id, Normal, nil, 1, Policy{MaxRetries: 2, OOMRetries: 3})
	if len(t1.Returns) != 1 || t1.retriesLeft != 2 || t1.oomLeft != 3 {
		t.Fatalf("task with one return: returns %d retries %d oom %d", len(t1.Returns), t1.retriesLeft, t1.oomLeft)
	}
	spec := &pb.TaskSpec{Function: "g"}
	t3 := NewTask(id, ActorCall, spec, 3, Policy{})
	if len(t3.Returns) != 3 || t3.Spec != spec || t3.Function() != "g" {
		t.Fatalf("task with a given spec: %+v", t3)
	}
}

func TestNewDefaults(t *testing.T) {
	m := New(Config{}, nil, nil)
	if m.cfg != DefaultConfig() {
		t.Fatalf("cfg = %+v, want the defaults", m.cfg)
	}
	cfg := Config{MaxLineage: 7, OOMBackoff: time.Millisecond, MaxOOMBackoff: time.Second}
	if m := New(cfg, nil, nil); m.cfg != cfg {
		t.Fatalf("cfg = %+v, want %+v", m.cfg, cfg)
	}
}

func TestTaskOf(t *testing.T) {
	tid := ids.New()
	for _, i := range []int{0, 1, 255, ids.MaxReturns - 1} {
		if got := TaskOf(ids.ForReturn(tid, i)); got != tid {
			t.Fatalf("TaskOf(return %d) = %v, want %v", i, got, tid)
		}
	}
}

func TestWireRefs(t *testing.T) {
	a, o := ids.New(), ids.New()
	got := WireRefs([]*pb.ObjectRef{
		{Id: a[:], OwnerId: o[:], OwnerAddress: "o:1"},
		{Id: []byte("short"), OwnerId: o[:]},
		{Id: a[:], OwnerAddress: "o:2"}, // owner id missing: kept, zero owner
	})
	want := []refcount.Ref{{ID: a, Owner: refcount.Owner{Addr: "o:1", ID: o}}, {ID: a, Owner: refcount.Owner{Addr: "o:2"}}}
	if !slices.Equal(got, want) {
		t.Fatalf("WireRefs = %v, want %v", got, want)
	}
}

// The pending tasks are kept on a list: added once however often Add is
// called, gone when they finish, in any order.
func TestPendingList(t *testing.T) {
	h := newHarness(t, Config{})
	a, b, c := h.submit(Normal, 1, Policy{}, ids.Nil), h.submit(Normal, 1, Policy{}, ids.Nil), h.submit(Normal, 1, Policy{}, ids.Nil)
	h.m.Add(b) // added again: still once
	if h.m.Pending() != 3 {
		t.Fatalf("Pending = %d, want 3", h.m.Pending())
	}
	for i, x := range []*Task{b, c, a} {
		h.m.Complete(x, reply(inline("r")))
		if _, ok := h.m.Lookup(x.ID); ok {
			t.Fatal("finished task still found")
		}
		if h.m.Pending() != 2-i {
			t.Fatalf("Pending = %d, want %d", h.m.Pending(), 2-i)
		}
	}
	// A task that ends before it was ever added (its submission failed)
	// leaves the list as it was.
	d := h.submit(Normal, 1, Policy{}, ids.Nil)
	lone := NewTask(ids.New(), Normal, nil, 0, Policy{})
	h.m.Fail(lone, Failure{Cause: CauseFatal, Info: &pb.ErrorInfo{Message: "not submitted"}})
	if got, ok := h.m.Lookup(d.ID); !ok || got != d || h.m.Pending() != 1 {
		t.Fatal("ending an unlisted task changed the pending list")
	}
}

// Ray's TestTaskSuccess: results land in the slots, the task is no longer
// pending, its arguments are released.
func TestCompleteFillsResultsAndReleasesArgs(t *testing.T) {
	h := newHarness(t, Config{})
	arg, _ := h.put("x")
	tk := h.submit(Normal, 2, Policy{}, ids.Nil, arg)
	if got, ok := h.m.Lookup(tk.ID); !ok || got != tk || h.m.Pending() != 1 {
		t.Fatal("submitted task not pending")
	}
	h.refs.RemoveLocal(arg) // the caller dropped its handle; the task holds it
	if h.wasFreed(arg.ID()) {
		t.Fatal("argument freed while its task is pending")
	}
	d := h.m.Complete(tk, reply(inline("a"), inline("b")))
	if d.Action != Done {
		t.Fatalf("Complete = %s", actionName(d.Action))
	}
	if string(tk.Returns[0].Slot.Value().GetData()) != "a" || string(tk.Returns[1].Slot.Value().GetData()) != "b" {
		t.Fatal("results not in their slots")
	}
	if _, ok := h.m.Lookup(tk.ID); ok || h.m.Pending() != 0 {
		t.Fatal("finished task still pending")
	}
	if !h.wasFreed(arg.ID()) {
		t.Fatal("argument not released")
	}
	if s := h.m.Stats(); s.Submitted != 1 || s.Finished != 1 || s.Lineage != 0 {
		t.Fatalf("stats %+v", s)
	}
	// A late reply or failure of a finished task is ignored.
	if d := h.m.Complete(tk, reply(inline("c"), inline("d"))); d.Action != Ignore {
		t.Fatalf("second Complete = %s", actionName(d.Action))
	}
	if d := h.m.Fail(tk, crash()); d.Action != Ignore {
		t.Fatalf("Fail after Complete = %s", actionName(d.Action))
	}
	if string(tk.Returns[0].Slot.Value().GetData()) != "a" {
		t.Fatal("a late reply replaced the result")
	}
	h.drop(tk)
	if h.refs.Len() != 0 || !memstore.IsFreed(tk.Returns[0].Slot.Value()) {
		t.Fatalf("%d entries left, result slot holds %v", h.refs.Len(), tk.Returns[0].Slot.Value())
	}
}

// CompleteAll handles a batch as Complete would each reply: results in
// their slots (a short reply's missing ones failed), arguments released,
// a retryable error handed back for resubmission, a late reply ignored.
func TestCompleteAll(t *testing.T) {
	h := newHarness(t, Config{})
	arg, _ := h.put("x")
	ok := h.submit(Normal, 1, Policy{}, ids.Nil, arg)
	h.refs.RemoveLocal(arg)
	short := h.submit(ActorCall, 2, Policy{}, ids.Nil)
	retried := h.submit(Normal, 1, Policy{MaxRetries: 1, RetryExceptions: true}, ids.Nil)
	late := h.submit(Normal, 1, Policy{}, ids.Nil)
	h.m.Complete(late, reply(inline("first")))
	appErr := &pb.TaskReply{Error: errs.FromAppError("f", errors.New("flaky"), "", false, "n", "w", 0)}
	done := []Replied{{ok, reply(inline("a"))}, {short, reply(inline("b"))}, {retried, appErr}, {late, reply(inline("second"))}}
	retry := h.m.CompleteAll(done, nil)
	if len(retry) != 1 || retry[0] != retried {
		t.Fatalf("retry %v, want the task whose error is retryable", retry)
	}
	if string(ok.Returns[0].Slot.Value().GetData()) != "a" || !h.wasFreed(arg.ID()) {
		t.Fatal("result not filled or argument not released")
	}
	if string(short.Returns[0].Slot.Value().GetData()) != "b" || !errors.Is(resultErr(t, short.Returns[1].Slot), errs.ErrSystem) {
		t.Fatal("short reply: want the first result and a system error for the second")
	}
	if retried.Returns[0].Slot.Ready() {
		t.Fatal("a retried task's result was filled")
	}
	if string(late.Returns[0].Slot.Value().GetData()) != "first" || done[3].Task != nil {
		t.Fatal("a late reply was not ignored")
	}
	if s := h.m.Stats(); s.Finished != 3 || h.m.Pending() != 1 {
		t.Fatalf("stats %+v, %d pending; want 3 finished and the retried one pending", s, h.m.Pending())
	}
	if retry := h.m.CompleteAll(nil, nil); retry != nil {
		t.Fatal("an empty batch asked for retries")
	}
}

// A reply that carries fewer values than the task has returns fails the
// missing ones instead of leaving their waiters blocked.
func TestCompleteShortReplyFailsMissingReturns(t *testing.T) {
	h := newHarness(t, Config{})
	tk := h.submit(Normal, 3, Policy{}, ids.Nil)
	h.m.Complete(tk, reply(inline("a")))
	if string(tk.Returns[0].Slot.Value().GetData()) != "a" {
		t.Fatal("first result missing")
	}
	for _, r := range tk.Returns[1:] {
		err := resultErr(t, r.Slot)
		if !errors.Is(err, errs.ErrSystem) {
			t.Fatalf("missing return holds %v, want a system error", err)
		}
	}
}

// A returned value that contains refs keeps them: the worker registered
// this process as their borrower before replying.
func TestCompleteRecordsNestedRefs(t *testing.T) {
	h := newHarness(t, Config{})
	tk := h.submit(Normal, 1, Policy{}, ids.Nil)
	inner := ids.New()
	v := inline("outer")
	v.Nested = []*pb.ObjectRef{{Id: inner[:], OwnerId: other.ID[:], OwnerAddress: other.Addr}}
	h.m.Complete(tk, reply(v))
	c := h.refs.CountsOf(inner)
	if c.Contained != 1 || c.Owned || !c.InScope {
		t.Fatalf("nested ref counts %+v", c)
	}
	if got := h.refs.TakeBorrows(); got != nil {
		t.Fatalf("nested ref queued for registration again: %v", got)
	}
	h.drop(tk)
	if !h.refs.CountsOf(inner).Gone {
		t.Fatal("nested ref outlived its container")
	}
}

// Ray's TestTaskFailure / TestTaskRetry: a system failure is retried
// while retries are left, each retry a new attempt, the arguments held
// throughout; then the task fails with the failure's error.
func TestRetriesThenFails(t *testing.T) {
	h := newHarness(t, Config{})
	arg, _ := h.put("x")
	tk := h.submit(Normal, 1, Policy{MaxRetries: 2}, ids.Nil, arg)
	h.refs.RemoveLocal(arg)
	for attempt := 1; attempt <= 2; attempt++ {
		d := h.m.Fail(tk, crash())
		if d.Action != Retry {
			t.Fatalf("failure %d: %s, want Retry", attempt, actionName(d.Action))
		}
		if tk.Spec.GetAttempt() != int32(attempt) || int(tk.retriesLeft) != 2-attempt {
			t.Fatalf("after failure %d: attempt %d, retries left %d", attempt, tk.Spec.GetAttempt(), tk.retriesLeft)
		}
		if tk.Returns[0].Slot.Ready() || h.m.Pending() != 1 {
			t.Fatal("a retried task's result was filled")
		}
		if c := h.refs.CountsOf(arg.ID()); c.Submitted != 1 {
			t.Fatalf("argument counts %+v while retrying", c)
		}
	}
	f := crash()
	d := h.m.Fail(tk, f)
	if d.Action != Fail || d.Err != f.Info {
		t.Fatalf("last failure: %s %v", actionName(d.Action), d.Err)
	}
	if err := resultErr(t, tk.Returns[0].Slot); !errors.Is(err, errs.ErrWorkerCrashed) {
		t.Fatalf("result %v, want WorkerCrashed", err)
	}
	if !h.wasFreed(arg.ID()) || h.m.Pending() != 0 {
		t.Fatal("failed task still holds its argument, or is pending")
	}
	if s := h.m.Stats(); s.Retried != 2 || s.Failed != 1 || s.Finished != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRetriesForever(t *testing.T) {
	h := newHarness(t, Config{})
	tk := h.submit(Normal, 1, Policy{MaxRetries: -1}, ids.Nil)
	for i := range 100 {
		if d := h.m.Fail(tk, crash()); d.Action != Retry {
			t.Fatalf("failure %d: %s", i, actionName(d.Action))
		}
	}
	if tk.retriesLeft != -1 || tk.Spec.GetAttempt() != 100 {
		t.Fatalf("retries left %d, attempt %d", tk.retriesLeft, tk.Spec.GetAttempt())
	}
	h.m.Complete(tk, reply(inline("ok")))
	if string(tk.Returns[0].Slot.Value().GetData()) != "ok" {
		t.Fatal("result of the last attempt missing")
	}
}

// Out-of-memory kills retry on their own counter, with growing, capped
// pauses; they spend no system retries.
func TestOOMRetries(t *testing.T) {
	h := newHarness(t, Config{OOMBackoff: 10 * time.Millisecond, MaxOOMBackoff: 15 * time.Millisecond})
	tk := h.submit(Normal, 1, Policy{MaxRetries: 1, OOMRetries: 2}, ids.Nil)
	oom := Failure{Cause: CauseOOM, Info: &pb.ErrorInfo{Kind: errs.KindOutOfMemory, NodeId: "node-1", WorkerId: "w-1", Message: "rss 9 GiB"}}
	if d := h.m.Fail(tk, oom); d.Action != Retry || d.Delay != 10*time.Millisecond {
		t.Fatalf("first kill: %s after %v", actionName(d.Action), d.Delay)
	}
	if d := h.m.Fail(tk, oom); d.Action != Retry || d.Delay != 15*time.Millisecond {
		t.Fatalf("second kill: %s after %v, want the capped pause", actionName(d.Action), d.Delay)
	}
	if tk.retriesLeft != 1 || tk.oomLeft != 0 || tk.oomKills != 2 {
		t.Fatalf("retries %d, oom left %d, kills %d", tk.retriesLeft, tk.oomLeft, tk.oomKills)
	}
	// A system failure still has its retry.
	if d := h.m.Fail(tk, crash()); d.Action != Retry {
		t.Fatalf("crash after OOM kills: %s", actionName(d.Action))
	}
	if d := h.m.Fail(tk, oom); d.Action != Fail {
		t.Fatalf("third kill: %s", actionName(d.Action))
	}
	err := resultErr(t, tk.Returns[0].Slot)
	var oe *errs.OutOfMemoryError
	if !errors.As(err, &oe) || oe.Attempts != 3 || oe.NodeID != "node-1" || oe.Message != "rss 9 GiB" || oe.Function != "f" {
		t.Fatalf("result %#v, want an OutOfMemoryError after 3 kills", err)
	}
}

func TestOOMRetriesForever(t *testing.T) {
	h := newHarness(t, Config{})
	tk := h.submit(Normal, 1, Policy{OOMRetries: -1}, ids.Nil)
	for i := range 20 {
		if d := h.m.Fail(tk, Failure{Cause: CauseOOM}); d.Action != Retry {
			t.Fatalf("kill %d: %s", i, actionName(d.Action))
		}
	}
	if tk.oomLeft != -1 || tk.oomKills != 20 {
		t.Fatalf("oom left %d, kills %d", tk.oomLeft, tk.oomKills)
	}
}

// An application error in the reply is retried only with
// RetryExceptions; system errors the worker reports never are.
func TestCompleteWithErrorReply(t *testing.T) {
	h := newHarness(t, Config{})
	appInfo := errs.FromAppError("f", errors.New("flaky"), "", false, "n", "w", 0)

	tk := h.submit(Normal, 1, Policy{MaxRetries: 1, RetryExceptions: true}, ids.Nil)
	if d := h.m.Complete(tk, &pb.TaskReply{Error: appInfo}); d.Action != Retry || tk.Spec.GetAttempt() != 1 {
		t.Fatalf("app error with RetryExceptions: %s", actionName(d.Action))
	}
	if d := h.m.Complete(tk, &pb.TaskReply{Error: appInfo}); d.Action != Fail {
		t.Fatalf("app error, retries spent: %s", actionName(d.Action))
	}
	if err := resultErr(t, tk.Returns[0].Slot); !errors.Is(err, errs.ErrTaskFailed) {
		t.Fatalf("result %v, want the task error", err)
	}

	tk = h.submit(Normal, 1, Policy{MaxRetries: 5, RetryExceptions: true}, ids.Nil)
	nr := errs.ToInfo(&errs.NotRegisteredError{Name: "f"})
	if d := h.m.Complete(tk, &pb.TaskReply{Error: nr}); d.Action != Fail {
		t.Fatalf("not registered: %s", actionName(d.Action))
	}
	if err := resultErr(t, tk.Returns[0].Slot); !errors.Is(err, errs.ErrNotRegistered) {
		t.Fatalf("result %v", err)
	}
}

// Ray: a cancelled task is never retried and its results say cancelled.
func TestCancelled(t *testing.T) {
	h := newHarness(t, Config{})
	if _, ok := h.m.MarkCancelled(ids.New()); ok {
		t.Fatal("MarkCancelled of an unknown task")
	}
	tk := h.submit(Normal, 1, Policy{MaxRetries: -1}, ids.Nil)
	if h.m.Cancelled(tk) {
		t.Fatal("new task cancelled")
	}
	got, ok := h.m.MarkCancelled(tk.ID)
	if !ok || got != tk || !h.m.Cancelled(tk) {
		t.Fatal("MarkCancelled")
	}
	// Its worker died meanwhile: no retry, whatever MaxRetries says.
	if d := h.m.Fail(tk, crash()); d.Action != Fail {
		t.Fatalf("cancelled task: %s", actionName(d.Action))
	}
	err := resultErr(t, tk.Returns[0].Slot)
	var ce *errs.CancelledError
	if !errors.As(err, &ce) || ce.TaskID != tk.ID.String() || ce.Function != "f" || !errors.Is(err, errs.ErrTaskCancelled) {
		t.Fatalf("result %#v, want a CancelledError naming the task", err)
	}
	if _, ok := h.m.MarkCancelled(tk.ID); ok {
		t.Fatal("MarkCancelled of a finished task")
	}

	// The worker answers with an error after the cancel: cancelled too.
	tk2 := h.submit(Normal, 1, Policy{}, ids.Nil)
	h.m.MarkCancelled(tk2.ID)
	h.m.Complete(tk2, &pb.TaskReply{Error: errs.FromAppError("f", errors.New("context canceled"), "", false, "", "", 0)})
	if err := resultErr(t, tk2.Returns[0].Slot); !errors.Is(err, errs.ErrTaskCancelled) {
		t.Fatalf("result %v, want cancelled", err)
	}

	// Cancelled before it was sent (CauseCancelled).
	tk3 := h.submit(Normal, 1, Policy{MaxRetries: 3}, ids.Nil)
	h.m.Fail(tk3, Failure{Cause: CauseCancelled})
	if err := resultErr(t, tk3.Returns[0].Slot); !errors.Is(err, errs.ErrTaskCancelled) {
		t.Fatalf("result %v, want cancelled", err)
	}
	// A task that finished before the cancel took effect keeps its result.
	tk4 := h.submit(Normal, 1, Policy{}, ids.Nil)
	h.m.MarkCancelled(tk4.ID)
	h.m.Complete(tk4, reply(inline("done")))
	if string(tk4.Returns[0].Slot.Value().GetData()) != "done" {
		t.Fatal("result of a task that finished lost")
	}
	if s := h.m.Stats(); s.Cancelled != 3 || s.Failed != 0 || s.Finished != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Ray wraps an argument's failure in the dependent task's error: it
// matches both.
func TestFailDependencyWrapsArgumentError(t *testing.T) {
	h := newHarness(t, Config{})
	tk := h.submit(Normal, 2, Policy{MaxRetries: -1, RetryExceptions: true}, ids.Nil)
	argErr := errs.ToInfo(&errs.WorkerCrashedError{Function: "g", Reason: "killed", Attempts: 4})
	h.m.FailDependency(tk, argErr)
	for _, r := range tk.Returns {
		err := resultErr(t, r.Slot)
		var te *errs.TaskError
		if !errors.As(err, &te) || te.Function != "f" || !errors.Is(err, errs.ErrTaskFailed) {
			t.Fatalf("result %#v, want a TaskError of f", err)
		}
		var wc *errs.WorkerCrashedError
		if !errors.As(err, &wc) || wc.Function != "g" || wc.Attempts != 4 || !errors.Is(err, errs.ErrWorkerCrashed) {
			t.Fatalf("result %v does not reach the argument's error", err)
		}
		if !errors.As(te.Cause, &wc) {
			t.Fatalf("Cause = %#v, want the argument's error", te.Cause)
		}
	}
	if s := h.m.Stats(); s.Failed != 1 || s.Retried != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestFailFatal(t *testing.T) {
	h := newHarness(t, Config{})
	tk := h.submit(Normal, 1, Policy{MaxRetries: -1}, ids.Nil)
	info := errs.ToInfo(&errs.InfeasibleError{Function: "f", Request: "{GPU: 8}"})
	h.m.Fail(tk, Failure{Cause: CauseFatal, Info: info})
	if err := resultErr(t, tk.Returns[0].Slot); !errors.Is(err, errs.ErrInfeasible) {
		t.Fatalf("result %v", err)
	}
	// Without an error of its own: a system error naming the function.
	tk = h.submit(Normal, 1, Policy{}, ids.Nil)
	h.m.Fail(tk, Failure{Cause: CauseFatal})
	if err := resultErr(t, tk.Returns[0].Slot); !errors.Is(err, errs.ErrSystem) {
		t.Fatalf("result %v, want a system error", err)
	}
	// An actor creation task has no results to fill.
	tc := h.submit(ActorCreation, 0, Policy{}, ids.Nil)
	if d := h.m.Fail(tc, Failure{Cause: CauseFatal, Info: info}); d.Action != Fail || h.m.Pending() != 0 {
		t.Fatal("actor creation failure")
	}
}

// A failure's own error is what the results carry when no rule builds
// another.
func TestFailureInfoKeepsTheFailuresError(t *testing.T) {
	h := newHarness(t, Config{})
	tk := NewTask(ids.New(), Normal, nil, 1, Policy{})
	info := errs.ToInfo(&errs.ActorDiedError{ActorID: "a", Reason: "gone"})
	if got := h.m.failureInfo(tk, Failure{Cause: CauseActorDied, Info: info}); got != info {
		t.Fatalf("failureInfo = %v, want the failure's own error", got)
	}
}

// Children: the tasks a task submitted, for recursive cancel; forgotten
// as they finish.
func TestChildren(t *testing.T) {
	h := newHarness(t, Config{})
	parent, other := ids.New(), ids.New()
	c1 := h.submit(Normal, 1, Policy{MaxRetries: 1}, parent)
	c2 := h.submit(ActorCall, 1, Policy{}, parent)
	c3 := h.submit(Normal, 1, Policy{}, other)
	h.submit(Normal, 1, Policy{}, ids.Nil)
	byID := func(ts []*Task) []ids.ID {
		out := make([]ids.ID, len(ts))
		for i, t := range ts {
			out[i] = t.ID
		}
		slices.SortFunc(out, func(a, b ids.ID) int { return slices.Compare(a[:], b[:]) })
		return out
	}
	want := byID([]*Task{c1, c2})
	if got := byID(h.m.Children(parent)); !slices.Equal(got, want) {
		t.Fatalf("Children = %v, want %v", got, want)
	}
	if got := h.m.Children(ids.New()); len(got) != 0 {
		t.Fatalf("Children of a task with none = %v", got)
	}
	h.m.Fail(c1, crash()) // retried: still a child
	if len(h.m.Children(parent)) != 2 {
		t.Fatal("a retried child was forgotten")
	}
	h.m.Complete(c1, reply(inline("a")))
	if got := h.m.Children(parent); len(got) != 1 || got[0] != c2 {
		t.Fatalf("Children after one finished = %v", got)
	}
	h.m.Fail(c2, Failure{Cause: CauseCancelled})
	if got := h.m.Children(parent); len(got) != 0 {
		t.Fatalf("children left: %v", got)
	}
	h.m.Complete(c3, reply(inline("c")))
	if got := h.m.Children(other); len(got) != 0 {
		t.Fatalf("children left: %v", got)
	}
}

// Ray's lineage pinning: a task whose results live in a node store keeps
// its spec and its arguments' entries while a result is in scope.
func TestLineageKeptThenReleased(t *testing.T) {
	h := newHarness(t, Config{})
	arg, _ := h.put("x")
	tk := h.submit(Normal, 2, Policy{MaxRetries: 1}, ids.Nil, arg)
	h.refs.RemoveLocal(arg)
	h.m.Complete(tk, reply(inStore("a"), inline("b")))
	if !tk.Returns[0].Slot.Value().GetInStore() {
		t.Fatal("in-store result not recorded")
	}
	// The argument's value went; its entry stays for the lineage.
	if !h.wasFreed(arg.ID()) {
		t.Fatal("argument value kept")
	}
	if c := h.refs.CountsOf(arg.ID()); c.Gone || c.InScope || c.Lineage != 1 {
		t.Fatalf("argument counts %+v, want kept for lineage", c)
	}
	spec, ok := h.m.LineageOf(tk.Returns[1].Entry.ID())
	if !ok || spec != tk.Spec || h.m.Stats().Lineage != 1 {
		t.Fatal("lineage not kept")
	}
	h.refs.RemoveLocal(tk.Returns[0].Entry)
	if _, ok := h.m.LineageOf(tk.Returns[0].Entry.ID()); !ok {
		t.Fatal("lineage dropped while a result is in scope")
	}
	h.refs.RemoveLocal(tk.Returns[1].Entry)
	if _, ok := h.m.LineageOf(tk.Returns[0].Entry.ID()); ok || h.m.Stats().Lineage != 0 {
		t.Fatal("lineage kept after every result went")
	}
	if !h.refs.CountsOf(arg.ID()).Gone || h.refs.Len() != 0 {
		t.Fatalf("%d entries left after the lineage was released", h.refs.Len())
	}
}

// Ray's lineage chain: a result that is the argument of a later task
// whose lineage is kept stays, and releasing the later lineage releases
// the earlier.
func TestLineageChain(t *testing.T) {
	h := newHarness(t, Config{})
	t1 := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil)
	h.m.Complete(t1, reply(inStore("r1")))
	r1 := t1.Returns[0].Entry
	t2 := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil, r1)
	h.refs.RemoveLocal(r1)
	h.m.Complete(t2, reply(inStore("r2")))
	if _, ok := h.m.LineageOf(r1.ID()); !ok {
		t.Fatal("lineage of t1 dropped while r1 is needed to rebuild r2")
	}
	if h.m.Stats().Lineage != 2 {
		t.Fatalf("lineage %d, want 2", h.m.Stats().Lineage)
	}
	h.drop(t2)
	if h.m.Stats().Lineage != 0 || h.refs.Len() != 0 {
		t.Fatalf("lineage %d, %d entries left", h.m.Stats().Lineage, h.refs.Len())
	}
}

// No lineage is kept for inline results, or tasks and actor calls that
// may not run again.
func TestLineageNotKept(t *testing.T) {
	for _, c := range []struct {
		name string
		kind Kind
		p    Policy
		v    *pb.Value
	}{
		{"inline result", Normal, Policy{MaxRetries: 3}, inline("a")},
		{"no retries", Normal, Policy{}, inStore("a")},
		{"actor call without task retries", ActorCall, Policy{}, inStore("a")},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			arg, _ := h.put("x")
			tk := h.submit(c.kind, 1, c.p, ids.Nil, arg)
			h.refs.RemoveLocal(arg)
			h.m.Complete(tk, reply(c.v))
			if h.m.Stats().Lineage != 0 || !h.refs.CountsOf(arg.ID()).Gone {
				t.Fatalf("lineage %d, arg %+v", h.m.Stats().Lineage, h.refs.CountsOf(arg.ID()))
			}
		})
	}
}

// A result dropped before the reply is handled keeps no lineage.
func TestLineageOfResultsAlreadyOutOfScope(t *testing.T) {
	h := newHarness(t, Config{})
	arg, _ := h.put("x")
	tk := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil, arg)
	h.refs.RemoveLocal(arg)
	h.drop(tk)
	h.m.Complete(tk, reply(inStore("a")))
	if h.m.Stats().Lineage != 0 || h.refs.Len() != 0 {
		t.Fatalf("lineage %d, %d entries left", h.m.Stats().Lineage, h.refs.Len())
	}
}

// A result dropped (by another goroutine: a handle collected) while the
// reply is being recorded must still release the lineage. The counter's
// Sink runs the drop at the one point in between that calls out.
func TestLineageResultDroppedWhileRecording(t *testing.T) {
	h := newHarness(t, Config{})
	arg, _ := h.put("x")
	tk := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil, arg)
	h.refs.RemoveLocal(arg)
	var once sync.Once
	h.onFreed = func(list []ids.ID) {
		if slices.Contains(list, arg.ID()) {
			once.Do(func() { h.drop(tk) })
		}
	}
	h.m.Complete(tk, reply(inStore("a")))
	if h.m.Stats().Lineage != 0 || h.refs.Len() != 0 {
		t.Fatalf("lineage %d kept and %d entries left with no result in scope", h.m.Stats().Lineage, h.refs.Len())
	}
}

// MaxLineage: past it the oldest lineage goes, and its arguments' lineage
// refs with it.
func TestLineageEviction(t *testing.T) {
	h := newHarness(t, Config{MaxLineage: 2})
	var tasks []*Task
	var args []*refcount.Entry
	for i := range 3 {
		arg, _ := h.put(fmt.Sprint("x", i))
		tk := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil, arg)
		h.refs.RemoveLocal(arg)
		h.m.Complete(tk, reply(inStore("r")))
		tasks, args = append(tasks, tk), append(args, arg)
	}
	if h.m.Stats().Lineage != 2 {
		t.Fatalf("lineage %d, want 2", h.m.Stats().Lineage)
	}
	if _, ok := h.m.LineageOf(tasks[0].Returns[0].Entry.ID()); ok {
		t.Fatal("oldest lineage kept")
	}
	if !h.refs.CountsOf(args[0].ID()).Gone {
		t.Fatal("evicted lineage still pins its argument")
	}
	for _, i := range []int{1, 2} {
		if _, ok := h.m.LineageOf(tasks[i].Returns[0].Entry.ID()); !ok {
			t.Fatalf("lineage %d evicted", i)
		}
	}
	// The evicted task's result going is no event for the Manager.
	h.drop(tasks[0])
	h.drop(tasks[2])
	if h.m.Stats().Lineage != 1 {
		t.Fatalf("lineage %d, want 1", h.m.Stats().Lineage)
	}
	h.drop(tasks[1])
	if h.m.Stats().Lineage != 0 || h.refs.Len() != 0 {
		t.Fatalf("lineage %d, %d entries left", h.m.Stats().Lineage, h.refs.Len())
	}
}

// Many released lineages, then eviction: the order list is compacted and
// still evicts oldest first.
func TestLineageOrderCompaction(t *testing.T) {
	h := newHarness(t, Config{MaxLineage: 3})
	done := func() *Task {
		tk := h.submit(Normal, 1, Policy{MaxRetries: 1}, ids.Nil)
		h.m.Complete(tk, reply(inStore("r")))
		return tk
	}
	for range 200 {
		h.drop(done())
	}
	if len(h.m.order) > 2*len(h.m.lineage)+64+1 {
		t.Fatalf("order holds %d ids for %d lineages", len(h.m.order), len(h.m.lineage))
	}
	kept := []*Task{done(), done(), done()}
	newest := done()
	if _, ok := h.m.LineageOf(kept[0].Returns[0].Entry.ID()); ok {
		t.Fatal("oldest lineage survived eviction")
	}
	for _, tk := range append(kept[1:], newest) {
		if _, ok := h.m.LineageOf(tk.Returns[0].Entry.ID()); !ok {
			t.Fatal("a newer lineage was evicted")
		}
	}
}

// LineageReleased for objects of no kept task is ignored.
func TestLineageReleasedUnknown(t *testing.T) {
	h := newHarness(t, Config{})
	h.m.LineageReleased(ids.ForReturn(ids.New(), 0))
	h.m.LineageReleased(ids.New())
	if h.m.Stats().Lineage != 0 {
		t.Fatal("lineage appeared")
	}
}

// Many tasks complete, fail and retry from several goroutines at once:
// every result lands once and every argument is released.
func TestConcurrentCompletion(t *testing.T) {
	h := newHarness(t, Config{MaxLineage: 16})
	const n = 200
	arg, _ := h.put("shared")
	parent := ids.New()
	tasks := make([]*Task, n)
	for i := range tasks {
		tasks[i] = h.submit(Normal, 1, Policy{MaxRetries: 1}, parent, arg)
	}
	h.refs.RemoveLocal(arg)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				tk := tasks[i]
				switch i % 3 {
				case 0:
					h.m.Complete(tk, reply(inStore("r")))
				case 1:
					if d := h.m.Fail(tk, crash()); d.Action != Retry {
						t.Errorf("task %d: %s", i, actionName(d.Action))
					}
					h.m.Complete(tk, reply(inline("r")))
				case 2:
					h.m.MarkCancelled(tk.ID)
					h.m.Fail(tk, crash())
				}
				_ = h.m.Children(parent)
			}
		}()
	}
	wg.Wait()
	for i, tk := range tasks {
		if !tk.Returns[0].Slot.Ready() {
			t.Fatalf("task %d has no result", i)
		}
		h.drop(tk)
	}
	if h.m.Pending() != 0 || h.m.Stats().Lineage != 0 || h.refs.Len() != 0 {
		t.Fatalf("pending %d, lineage %d, entries %d", h.m.Pending(), h.m.Stats().Lineage, h.refs.Len())
	}
}

func TestRetryCountsClamped(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want int32
	}{{-1, -1}, {0, 0}, {3, 3}, {math.MaxInt32, math.MaxInt32}, {math.MaxInt32 + 1, math.MaxInt32}, {math.MaxInt, math.MaxInt32}, {math.MinInt, math.MinInt32}} {
		if got := clamp32(tc.n); got != tc.want {
			t.Errorf("clamp32(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
	tk := NewTask(ids.New(), Normal, nil, 1, Policy{MaxRetries: math.MaxInt, OOMRetries: -1})
	if tk.retriesLeft != math.MaxInt32 || tk.oomLeft != -1 {
		t.Fatalf("retries left %d, oom left %d", tk.retriesLeft, tk.oomLeft)
	}
	// Go's allocator puts an 8-byte header before objects with pointers
	// past 512 bytes: 568 bytes is what fits the 576-byte size class (at
	// 576 the task took 640 bytes a call).
	if size := unsafe.Sizeof(*tk); size+8 > 576 {
		t.Errorf("a Task with its spec is %d bytes: with the allocator's 8-byte header, past the 576-byte size class", size)
	}
}
