// Package groupops sends one process's placement-group creates and
// removals to the control store on one ordered stream
// (ControlStore.PlacementGroupOps), many per message, and keeps the
// states the control store reports for the groups created on it.
//
// A caller queues an op and goes on: Create and Remove return an *Op at
// once, whose Err waits for the control store's answer. Ops queued while
// a message is on its way go together in the next one, so a driver that
// creates, waits for and removes groups in a loop pays a round trip per
// batch, not three per group. The control store applies ops in the order
// they were queued; Flush waits until every op queued so far is answered,
// which is how this process's reads of the group table see its own
// writes.
//
// The control store reports every change of state of the groups created
// on the stream; Watch serves them, so waiting for a group to be created
// needs no call of its own.
//
// When the stream breaks, the pipe opens another and sends again, in
// order, every op not answered yet (the control store applies ops
// idempotently by group id). The states learnt on the old stream are
// dropped (Watch reports them unknown; callers ask the control store).
// An op fails only with the control store's answer or when the pipe is
// closed.
package groupops

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/stopper"
	"github.com/raygo/raygo/internal/wirecheck"
)

// Limits of one message of ops.
const (
	// MaxBatchBytes bounds the encoded ops of one message (a message of
	// at most wirecheck.ListMessageBytes is accepted).
	MaxBatchBytes = 4 << 20
	// maxBackoff bounds the wait between attempts to open a stream.
	maxBackoff = time.Second
)

// ErrClosed is what ops fail with once the pipe is closed.
var ErrClosed = errs.Systemf("raygo: placement group ops: the process is shutting down")

// Stream is one PlacementGroupOps stream.
type Stream interface {
	Send(*pb.GroupOpsRequest) error
	Recv() (*pb.GroupOpsEvent, error)
}

// Opener opens a stream; ctx ends it.
type Opener func(ctx context.Context) (Stream, error)

// Op is one queued create or removal.
type Op struct {
	msg  *pb.GroupOp
	size int
	done chan struct{}
	err  error // set before done is closed
}

// Done is closed once the control store has answered the op (or the pipe
// closed).
func (o *Op) Done() <-chan struct{} { return o.done }

// Err waits for the op's answer: nil once applied, else why it was not.
func (o *Op) Err(ctx context.Context) error {
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Result reports the op's answer without waiting; ok is false while it
// has none.
func (o *Op) Result() (err error, ok bool) {
	select {
	case <-o.done:
		return o.err, true
	default:
		return nil, false
	}
}

// Pipe is a process's stream of placement-group ops. It is safe for
// concurrent use.
type Pipe struct {
	open Opener
	stop *stopper.Stopper

	mu       sync.Mutex
	seq      uint64              // the last op's number
	queue    []*Op               // not sent on the current stream yet, in order
	inflight []*Op               // sent and not answered, in order
	groups   map[ids.ID]*watched // groups created on the current stream
	closed   bool
	wake     chan struct{} // buffered(1): the queue has ops

	lastRemove *Op          // the last remove op queued
	removals   atomic.Int64 // remove ops not answered yet
}

type watched struct {
	state   pb.PlacementGroupState
	changed chan struct{} // closed and replaced on every change, closed when dropped
}

// New starts a pipe that opens its streams with open.
func New(open Opener) *Pipe {
	p := &Pipe{open: open, stop: stopper.New(), groups: map[ids.ID]*watched{}, wake: make(chan struct{}, 1)}
	if err := p.stop.Go("groupops", p.run); err != nil {
		panic(err) // a new stopper is running
	}
	return p
}

// Create queues the creation of group g (validated by the caller).
func (p *Pipe) Create(g *pb.PlacementGroupInfo) *Op {
	id := ids.MustFromBytes(g.GetGroupId())
	return p.queueOp(&pb.GroupOp{Create: g}, func(*Op) {
		if _, ok := p.groups[id]; !ok {
			p.groups[id] = &watched{state: pb.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING, changed: make(chan struct{})}
		}
	})
}

// Remove queues the removal of group id.
func (p *Pipe) Remove(id ids.ID) *Op {
	return p.queueOp(&pb.GroupOp{Remove: id.Bytes()}, func(op *Op) {
		p.lastRemove = op
		p.removals.Add(1)
	})
}

// FlushRemovals waits until every removal queued before it is answered;
// it returns at once when none waits (one atomic load), so submissions
// call it on their way.
func (p *Pipe) FlushRemovals(ctx context.Context) error {
	if p.removals.Load() == 0 {
		return nil
	}
	p.mu.Lock()
	last := p.lastRemove
	p.mu.Unlock()
	return answered(ctx, last)
}

// answered waits for op's answer (nil op: none to wait for).
func answered(ctx context.Context, op *Op) error {
	if op == nil {
		return nil
	}
	select {
	case <-op.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Pipe) queueOp(msg *pb.GroupOp, locked func(op *Op)) *Op {
	op := &Op{msg: msg, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		op.err = ErrClosed
		close(op.done)
		return op
	}
	p.seq++
	msg.Seq = p.seq
	op.size = proto.Size(msg)
	p.queue = append(p.queue, op)
	if locked != nil {
		locked(op)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return op
}

// Flush waits until every op queued before it is answered (the control
// store answers in order, so the last one is enough).
func (p *Pipe) Flush(ctx context.Context) error {
	p.mu.Lock()
	var last *Op
	if n := len(p.queue); n > 0 {
		last = p.queue[n-1]
	} else if n := len(p.inflight); n > 0 {
		last = p.inflight[n-1]
	}
	p.mu.Unlock()
	return answered(ctx, last)
}

// Watch returns the last state the control store reported for group id,
// created through this pipe, and a channel closed at its next change
// (or when the state is no longer followed). ok is false when the pipe
// does not follow the group: not created here, removed, or created
// before the stream was last opened again.
func (p *Pipe) Watch(id ids.ID) (state pb.PlacementGroupState, changed <-chan struct{}, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.groups[id]
	if w == nil {
		return 0, nil, false
	}
	return w.state, w.changed, true
}

// Close fails the ops not answered yet with ErrClosed and stops the
// pipe's goroutines. Callers flush first (with a deadline of their own)
// to give queued removals their chance.
func (p *Pipe) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stop.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, op := range append(p.inflight, p.queue...) {
		op.err = ErrClosed
		p.finishLocked(op)
	}
	p.inflight, p.queue = nil, nil
	p.dropGroupsLocked()
}

// run opens streams, one at a time, until the pipe stops.
func (p *Pipe) run(ctx context.Context) {
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		opened := time.Now()
		err := p.serve(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(opened) > maxBackoff {
			backoff = 10 * time.Millisecond
		}
		_ = err // the next stream retries; ops wait for it
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// serve runs one stream: sends queued ops, applies answers and state
// changes, until the stream breaks or ctx ends.
func (p *Pipe) serve(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := p.open(sctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	// A new stream: what was sent on the old one is sent again, first.
	p.queue = append(p.inflight, p.queue...)
	p.inflight = nil
	p.dropGroupsLocked()
	for _, op := range p.queue {
		if c := op.msg.GetCreate(); c != nil {
			p.groups[ids.MustFromBytes(c.GetGroupId())] = &watched{state: pb.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING, changed: make(chan struct{})}
		}
	}
	p.mu.Unlock()

	broken := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the stream's reader; it ends with the stream (cancel)
		defer wg.Done()
		for {
			ev, err := s.Recv()
			if err != nil {
				broken <- err
				return
			}
			if err := p.apply(ev); err != nil {
				broken <- err
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	for {
		if req := p.take(); req != nil {
			if err := s.Send(req); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-broken:
			return err
		case <-p.wake:
		}
	}
}

// take moves the next batch of queued ops to inflight and returns their
// message, or nil when none are queued.
func (p *Pipe) take() *pb.GroupOpsRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return nil
	}
	n, size := 0, 0
	for n < len(p.queue) && n < wirecheck.MaxGroupOps && (n == 0 || size+p.queue[n].size <= MaxBatchBytes) {
		size += p.queue[n].size
		n++
	}
	req := &pb.GroupOpsRequest{Ops: make([]*pb.GroupOp, n)}
	for i, op := range p.queue[:n] {
		req.Ops[i] = op.msg
	}
	p.inflight = append(p.inflight, p.queue[:n]...)
	p.queue = append(p.queue[:0:0], p.queue[n:]...)
	return req
}

// errUnexpectedAnswer: the control store answered an op not in flight.
var errUnexpectedAnswer = errors.New("groupops: an answer to no op in flight")

// apply takes one event: answers complete the ops in flight, in order;
// changes update the states followed.
func (p *Pipe) apply(ev *pb.GroupOpsEvent) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range ev.GetResults() {
		if len(p.inflight) == 0 || p.inflight[0].msg.GetSeq() != r.GetSeq() {
			return errUnexpectedAnswer
		}
		op := p.inflight[0]
		p.inflight = p.inflight[1:]
		if info := r.GetError(); info != nil {
			op.err = errs.FromInfo(info)
			if c := op.msg.GetCreate(); c != nil {
				p.dropLocked(ids.MustFromBytes(c.GetGroupId()))
			}
		}
		p.finishLocked(op)
	}
	for _, c := range ev.GetChanges() {
		id, ok := ids.FromBytes(c.GetGroupId())
		if !ok {
			continue
		}
		w := p.groups[id]
		if w == nil {
			continue
		}
		if c.GetState() == pb.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED {
			p.dropLocked(id)
			continue
		}
		w.state = c.GetState()
		close(w.changed)
		w.changed = make(chan struct{})
	}
	return nil
}

// finishLocked completes op (its err set).
func (p *Pipe) finishLocked(op *Op) {
	if op.msg.GetRemove() != nil {
		p.removals.Add(-1)
	}
	close(op.done)
}

func (p *Pipe) dropLocked(id ids.ID) {
	if w := p.groups[id]; w != nil {
		close(w.changed)
		delete(p.groups, id)
	}
}

func (p *Pipe) dropGroupsLocked() {
	for id := range p.groups {
		p.dropLocked(id)
	}
}
