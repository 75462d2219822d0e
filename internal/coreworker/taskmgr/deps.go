package taskmgr

import (
	"sync/atomic"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/pb"
)

// ResolveDeps waits for a task's argument objects that this process has
// slots for (owned ones, pending or ready; slots[i] is nil for arguments
// passed by value or owned elsewhere, which the worker fetches), then
// replaces ready inline values in the spec by the values themselves, so
// the worker need not ask for them, and calls done with the first
// argument error, if any. It starts no goroutine: done runs in this
// goroutine if everything is ready, else in the one that fills the last
// slot (or the first error).
func ResolveDeps(store *memstore.Store, t *Task, slots []*memstore.Slot, done func(*Task, *pb.ErrorInfo)) {
	n, pending := 0, 0
	for _, s := range slots {
		if s != nil {
			n++
			if !s.Ready() {
				pending++
			}
		}
	}
	if pending == 0 {
		done(t, InlineArgs(t.Spec, slots))
		return
	}
	var left atomic.Int32
	var fired atomic.Bool
	left.Store(int32(n))
	finish := func(v *pb.Value) {
		if v.GetError() == nil && left.Add(-1) > 0 {
			return
		}
		if fired.CompareAndSwap(false, true) {
			done(t, InlineArgs(t.Spec, slots))
		}
	}
	// Every slot is counted and registered, ready ones too (OnReady calls
	// them back at once): a slot that fills between the count above and
	// its registration must still count down.
	for _, s := range slots {
		if s != nil {
			store.OnReady(s, finish)
		}
	}
}

// InlineArgs puts ready inline values in place of ref arguments (slots[i]
// is argument i's slot, or nil) and returns the first argument error.
func InlineArgs(spec *pb.TaskSpec, slots []*memstore.Slot) *pb.ErrorInfo {
	var first *pb.ErrorInfo
	for i, s := range slots {
		if s == nil {
			continue
		}
		v := s.Value()
		if v == nil {
			continue
		}
		if e := v.GetError(); e != nil {
			if first == nil {
				first = e
			}
			continue
		}
		if !v.GetInStore() {
			spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Value{Value: v}}
		}
	}
	return first
}
