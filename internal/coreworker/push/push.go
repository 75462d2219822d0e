// Package push holds what both submitters share about push streams, the
// streams that carry tasks from an owner (or an actor's caller) to a
// worker and replies back: the Stream they write to, the loop that
// batches specs onto it from a channel (normal tasks, whose pipeline
// bounds it) and the Outbox an actor's caller puts calls in without
// ever waiting.
package push

import (
	"sync"

	"github.com/raygo/raygo/internal/pb"
)

// Stream is the owner's end of a push stream to a worker.
type Stream interface {
	Send(*pb.TaskBatch) error
	Recv() (*pb.ReplyBatch, error)
	// CloseSend ends the sending side; the worker finishes what it has
	// and the stream ends.
	CloseSend() error
	// Close breaks the stream now.
	Close()
}

// MaxBatch is the most specs one TaskBatch carries.
const MaxBatch = 1024

// SendLoop sends the specs that arrive on ch onto stream, each batch with
// everything queued behind its first spec (up to MaxBatch) and the shared
// fields common, until ch is closed; then it closes the stream's sending
// side. A nil spec on ch only wakes the loop: steal, if not nil, is asked
// before each send for the number of tasks to ask back (TaskBatch.steal),
// and a batch is sent when it has specs or a steal. When a send fails,
// SendLoop drains ch until it is closed (the stream's receiver reports the
// failure).
func SendLoop(stream Stream, ch <-chan *pb.TaskSpec, common *pb.TaskSpec, steal func() int32) {
	batch := make([]*pb.TaskSpec, 0, 64)
	for spec := range ch {
		batch = batch[:0]
		if spec != nil {
			batch = append(batch, spec)
		}
	drain:
		for len(batch) < MaxBatch {
			select {
			case sp, ok := <-ch:
				if !ok {
					break drain
				}
				if sp != nil {
					batch = append(batch, sp)
				}
			default:
				break drain
			}
		}
		var n int32
		if steal != nil {
			n = steal()
		}
		if len(batch) == 0 && n == 0 {
			continue
		}
		if err := stream.Send(&pb.TaskBatch{Tasks: batch, Common: common, Steal: n}); err != nil {
			for range ch {
			}
			return
		}
	}
	_ = stream.CloseSend()
}

// DropFront removes q's first n elements, moving the rest to the start of
// its array, so that a queue appended at the back and taken from the
// front reuses one array instead of allocating as the front advances.
func DropFront[T any](q []T, n int) []T {
	if n == 0 {
		return q
	}
	rest := copy(q, q[n:])
	clear(q[rest:])
	return q[:rest]
}

// Outbox is the specs waiting for one stream's sender (SendOutbox), in
// order. Put never blocks, so a submitter may call it under its own lock
// however far the stream is behind: an actor's caller may make any number
// of calls before the stream takes them. It is safe for concurrent use.
type Outbox struct {
	wake chan struct{} // one pending wake-up for the sender

	mu     sync.Mutex
	specs  []*pb.TaskSpec // guarded by mu
	closed bool           // guarded by mu
	failed bool           // guarded by mu: the stream failed; puts are dropped
}

// NewOutbox returns an empty Outbox.
func NewOutbox() *Outbox { return &Outbox{wake: make(chan struct{}, 1)} }

// Put queues specs behind those already queued and returns how many now
// wait for the sender. After Close, or once a send failed (the stream's
// receiver reports that), they are dropped.
//
// A caller that finds YieldBacklog or more waiting should yield its P
// (runtime.Gosched) once it holds no lock: in a process with one P the
// sender otherwise runs only when the caller blocks, and a task making
// thousands of calls would send them all at its end, the actor idle
// until then.
func (o *Outbox) Put(specs ...*pb.TaskSpec) int {
	o.mu.Lock()
	if o.closed || o.failed {
		o.mu.Unlock()
		return 0
	}
	o.specs = append(o.specs, specs...)
	n := len(o.specs)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return n
}

// YieldBacklog is the number of specs waiting in an Outbox past which
// their caller yields to the sender (see Put): a full batch. (Yielding
// every 64 or 256 calls sent smaller batches and was slower: n:n actor
// calls 0.71 and 0.81 of the single-lock core worker against 0.86.)
const YieldBacklog = MaxBatch

// Close ends the outbox: what is queued is still sent, then the stream's
// sending side is closed.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take waits for queued specs and returns them, handing back spare (the
// array of the previous take) for reuse; false once closed and empty.
func (o *Outbox) take(spare []*pb.TaskSpec) ([]*pb.TaskSpec, bool) {
	for {
		o.mu.Lock()
		if len(o.specs) > 0 {
			specs := o.specs
			clear(spare)
			o.specs = spare[:0]
			o.mu.Unlock()
			return specs, true
		}
		closed := o.closed
		o.mu.Unlock()
		if closed {
			return nil, false
		}
		<-o.wake
	}
}

func (o *Outbox) fail() {
	o.mu.Lock()
	o.failed = true
	o.specs = nil
	o.mu.Unlock()
}

// SendOutbox sends what o holds onto stream, up to MaxBatch specs per
// batch with the shared fields common, until o is closed and empty; then
// it closes the stream's sending side. After a failed send it stops (the
// stream's receiver reports the failure) and o drops later puts.
func SendOutbox(stream Stream, o *Outbox, common *pb.TaskSpec) {
	var spare []*pb.TaskSpec
	for {
		specs, ok := o.take(spare)
		if !ok {
			_ = stream.CloseSend()
			return
		}
		for rest := specs; len(rest) > 0; {
			n := min(len(rest), MaxBatch)
			if err := stream.Send(&pb.TaskBatch{Tasks: rest[:n], Common: common}); err != nil {
				o.fail()
				return
			}
			rest = rest[n:]
		}
		spare = specs
	}
}
