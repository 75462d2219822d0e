package taskmgr

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// depTask makes a task whose n arguments are refs to fresh pending
// slots; nil entries of byValue make that argument a value (no slot).
func depTask(st *memstore.Store, n int, byValue ...int) (*Task, []*memstore.Slot) {
	t := NewTask(ids.New(), Normal, nil, 1, Policy{})
	t.Spec.Function = "f"
	t.Spec.Args = make([]*pb.Arg, n)
	slots := make([]*memstore.Slot, n)
	skip := map[int]bool{}
	for _, i := range byValue {
		skip[i] = true
	}
	for i := range n {
		if skip[i] {
			t.Spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Value{Value: inline("v")}}
			continue
		}
		id := ids.New()
		t.Spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Ref{Ref: &pb.ObjectRef{Id: id[:]}}}
		slots[i] = memstore.NewSlot(id)
	}
	return t, slots
}

type resolved struct {
	t   *Task
	err *pb.ErrorInfo
}

// recorder returns a done callback that records its calls.
func recorder() (func(*Task, *pb.ErrorInfo), func() []resolved) {
	var mu sync.Mutex
	var calls []resolved
	return func(t *Task, e *pb.ErrorInfo) {
			mu.Lock()
			calls = append(calls, resolved{t, e})
			mu.Unlock()
		}, func() []resolved {
			mu.Lock()
			defer mu.Unlock()
			return append([]resolved(nil), calls...)
		}
}

func TestResolveDepsAllReady(t *testing.T) {
	st := memstore.New()
	tk, slots := depTask(st, 3, 1)
	st.Fill(slots[0], inline("a"))
	st.Fill(slots[2], inStore("c"))
	done, calls := recorder()
	ResolveDeps(st, tk, slots, done)
	got := calls()
	if len(got) != 1 || got[0].t != tk || got[0].err != nil {
		t.Fatalf("done calls %v, want one without error, at once", got)
	}
	// Inline values replace their refs; in-store values stay refs (the
	// worker reads them from its node's store).
	if string(tk.Spec.Args[0].GetValue().GetData()) != "a" {
		t.Fatalf("arg 0 = %v, want the inline value", tk.Spec.Args[0])
	}
	if tk.Spec.Args[1].GetValue() == nil {
		t.Fatal("a by-value argument changed")
	}
	if tk.Spec.Args[2].GetRef() == nil {
		t.Fatalf("arg 2 = %v, want still a ref", tk.Spec.Args[2])
	}
	// No slots at all (every argument by value or owned elsewhere).
	tk2, _ := depTask(st, 2, 0, 1)
	ResolveDeps(st, tk2, nil, done)
	if len(calls()) != 2 {
		t.Fatal("done not called for a task without slots")
	}
}

func TestResolveDepsWaitsForTheLast(t *testing.T) {
	st := memstore.New()
	tk, slots := depTask(st, 3)
	st.Fill(slots[1], inline("b"))
	done, calls := recorder()
	ResolveDeps(st, tk, slots, done)
	st.Fill(slots[0], inline("a"))
	if len(calls()) != 0 {
		t.Fatal("done before every argument was ready")
	}
	st.Fill(slots[2], inline("c"))
	got := calls()
	if len(got) != 1 || got[0].err != nil {
		t.Fatalf("done calls %v", got)
	}
	for i, want := range []string{"a", "b", "c"} {
		if string(tk.Spec.Args[i].GetValue().GetData()) != want {
			t.Fatalf("arg %d = %v, want %q inlined", i, tk.Spec.Args[i], want)
		}
	}
}

// An argument error ends the wait at once, whatever is still pending,
// and done runs once.
func TestResolveDepsFailsFast(t *testing.T) {
	st := memstore.New()
	tk, slots := depTask(st, 3)
	done, calls := recorder()
	ResolveDeps(st, tk, slots, done)
	e := errs.ToInfo(&errs.ObjectError{ObjectID: "x", Kind: errs.KindObjectLost})
	st.Fill(slots[1], &pb.Value{Error: e})
	got := calls()
	if len(got) != 1 || got[0].err != e {
		t.Fatalf("done calls %v, want one with the argument's error", got)
	}
	st.Fill(slots[0], inline("a"))
	st.Fill(slots[2], &pb.Value{Error: errs.ToInfo(errs.Systemf("second"))})
	if len(calls()) != 1 {
		t.Fatal("done called again")
	}
}

// A freed argument counts as failed.
func TestResolveDepsArgumentFreed(t *testing.T) {
	st := memstore.New()
	tk, slots := depTask(st, 2)
	done, calls := recorder()
	ResolveDeps(st, tk, slots, done)
	st.Free(slots[0])
	got := calls()
	if len(got) != 1 || got[0].err == nil {
		t.Fatalf("done calls %v, want the freed error", got)
	}
}

// The same pending ref passed twice.
func TestResolveDepsDuplicateSlot(t *testing.T) {
	st := memstore.New()
	tk, slots := depTask(st, 2)
	slots[1] = slots[0]
	done, calls := recorder()
	ResolveDeps(st, tk, slots, done)
	st.Fill(slots[0], inline("a"))
	if got := calls(); len(got) != 1 || got[0].err != nil {
		t.Fatalf("done calls %v", got)
	}
}

func TestInlineArgsFirstError(t *testing.T) {
	st := memstore.New()
	tk, slots := depTask(st, 4)
	e1 := errs.ToInfo(errs.Systemf("first"))
	st.Fill(slots[1], &pb.Value{Error: e1})
	st.Fill(slots[2], inline("c"))
	st.Fill(slots[3], &pb.Value{Error: errs.ToInfo(errs.Systemf("second"))})
	if got := InlineArgs(tk.Spec, slots); got != e1 {
		t.Fatalf("InlineArgs = %v, want the first error", got)
	}
	if tk.Spec.Args[0].GetRef() == nil || string(tk.Spec.Args[2].GetValue().GetData()) != "c" {
		t.Fatal("InlineArgs did not inline the ready value, or touched the pending one")
	}
}

// Arguments that become ready while ResolveDeps is registering for them
// (the reply reader fills slots concurrently) must still let it finish:
// done runs exactly once in every case.
func TestResolveDepsRacesFills(t *testing.T) {
	st := memstore.New()
	const rounds = 3000
	for r := range rounds {
		tk, slots := depTask(st, 4)
		var n atomic.Int32
		fired := make(chan struct{})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range slots {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				st.Fill(slots[i], inline("v"))
			}()
		}
		close(start)
		ResolveDeps(st, tk, slots, func(*Task, *pb.ErrorInfo) {
			if n.Add(1) == 1 {
				close(fired)
			}
		})
		wg.Wait()
		select {
		case <-fired:
		default:
			t.Fatalf("round %d: every argument is ready but done never ran", r)
		}
		if n.Load() != 1 {
			t.Fatalf("round %d: done ran %d times", r, n.Load())
		}
		for _, s := range slots[:4] {
			st.Free(s)
		}
	}
}
