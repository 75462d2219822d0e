package serve

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Defaults of BatchOptions, each Ray's default for the matching argument of
// @serve.batch.
const (
	// DefaultMaxBatchSize is Ray's default max_batch_size.
	DefaultMaxBatchSize = 10
	// DefaultBatchWaitTimeout is Ray's default batch_wait_timeout_s (0.01 s).
	DefaultBatchWaitTimeout = 10 * time.Millisecond
	// DefaultMaxConcurrentBatches is Ray's default max_concurrent_batches.
	DefaultMaxConcurrentBatches = 1
)

// NoBatchWait as BatchOptions.BatchWaitTimeout means "do not wait for a
// batch to fill": a batch starts as soon as a call is queued and a batch
// slot is free, with every call queued by then (up to MaxBatchSize). It is
// Ray's batch_wait_timeout_s=0 (opportunistic batching); it needs its own
// value because a zero BatchWaitTimeout means the default.
const NoBatchWait time.Duration = -1

var (
	// ErrClosed is returned by Batcher.Call once Close has begun, both to
	// new calls and to calls still waiting for their batch to start.
	ErrClosed = errors.New("serve: batcher closed")

	// ErrBatchSize is wrapped by the error every caller of a batch gets
	// when the batch function returns a different number of outputs than
	// it was given inputs; the message names both counts.
	ErrBatchSize = errors.New("serve: batch function did not return one output per input")

	// ErrBatchPanic is wrapped by the error every caller of a batch gets
	// when the batch function panics; see BatchPanicError.
	ErrBatchPanic = errors.New("serve: batch function panicked")
)

// BatchPanicError is the error every caller of a batch gets when the batch
// function panics. The panic is recovered, so the process and the Batcher
// keep running. It matches ErrBatchPanic with errors.Is.
type BatchPanicError struct {
	// Value is what the function passed to panic.
	Value any
	// Stack is the panicking goroutine's stack, for logs; it is not part
	// of Error().
	Stack []byte
}

// Error implements error.
func (e *BatchPanicError) Error() string {
	return fmt.Sprintf("%v: %v", ErrBatchPanic, e.Value)
}

// Unwrap makes errors.Is(err, ErrBatchPanic) hold.
func (e *BatchPanicError) Unwrap() error { return ErrBatchPanic }

// BatchOptions configures a Batcher. The zero value is valid and gives
// Ray's defaults. Limits are explicit: MaxBatchSize and
// MaxConcurrentBatches must be at least 1 and have no upper bound beyond
// int; BatchWaitTimeout must be positive or NoBatchWait. The Batcher's
// queue of waiting calls has no bound of its own: the replica's
// MaxOngoingRequests, enforced before a request reaches the Batcher,
// bounds it (as in Ray, whose batch queue is unbounded too).
type BatchOptions struct {
	// MaxBatchSize is the most calls one run of the batch function gets.
	// 0 means DefaultMaxBatchSize (10, Ray's default).
	MaxBatchSize int

	// BatchWaitTimeout is how long a batch waits to fill, measured from
	// the arrival of its first (oldest) call; when it passes the batch
	// starts with the calls it has. 0 means DefaultBatchWaitTimeout
	// (10 ms, Ray's default); NoBatchWait means no wait at all.
	//
	// When every batch slot is busy, a batch that is due keeps taking
	// calls until it is full or a slot frees, so it starts no smaller
	// than it could. Ray cuts the batch when the timeout passes and lets
	// the cut batch wait for a slot; the callers' waits are the same, the
	// batches here are larger.
	BatchWaitTimeout time.Duration

	// MaxConcurrentBatches is how many runs of the batch function may be
	// in flight at once. 0 means DefaultMaxConcurrentBatches (1, Ray's
	// default: one batch at a time per batcher). Above 1 the function
	// must be safe for concurrent use.
	MaxConcurrentBatches int

	// OnBatch, if set, is called once per run of the batch function, with
	// the run's size and timings, after the function returns and before
	// the batch's callers get their outputs. It feeds metrics (a batch
	// size histogram above all), so it must be quick; with
	// MaxConcurrentBatches above 1 it is called concurrently.
	OnBatch func(BatchRecord)
}

// BatchRecord describes one run of a batch function, for metrics.
type BatchRecord struct {
	// Size is the number of calls the function got (never 0; callers
	// that left before the batch started are not counted).
	Size int
	// Waited is how long the batch's oldest call waited between Call and
	// the start of the function.
	Waited time.Duration
	// Took is how long the function ran.
	Took time.Duration
	// Err is the error the batch's callers got: the function's own, a
	// wrapped ErrBatchSize, a *BatchPanicError, or nil.
	Err error
}

// Validate reports whether o is usable, naming the offending field and
// value. Zero values are valid (they mean Ray's defaults).
func (o BatchOptions) Validate() error {
	if o.MaxBatchSize < 0 {
		return fmt.Errorf("serve: BatchOptions.MaxBatchSize is %d; it must be at least 1 (or 0 for the default, %d)",
			o.MaxBatchSize, DefaultMaxBatchSize)
	}
	if o.BatchWaitTimeout < 0 && o.BatchWaitTimeout != NoBatchWait {
		return fmt.Errorf("serve: BatchOptions.BatchWaitTimeout is %v; it must be positive, 0 for the default (%v) or NoBatchWait",
			o.BatchWaitTimeout, DefaultBatchWaitTimeout)
	}
	if o.MaxConcurrentBatches < 0 {
		return fmt.Errorf("serve: BatchOptions.MaxConcurrentBatches is %d; it must be at least 1 (or 0 for the default, %d)",
			o.MaxConcurrentBatches, DefaultMaxConcurrentBatches)
	}
	return nil
}

// withDefaults returns o with every zero field replaced by its default
// and NoBatchWait by a wait of 0.
func (o BatchOptions) withDefaults() BatchOptions {
	if o.MaxBatchSize == 0 {
		o.MaxBatchSize = DefaultMaxBatchSize
	}
	switch o.BatchWaitTimeout {
	case 0:
		o.BatchWaitTimeout = DefaultBatchWaitTimeout
	case NoBatchWait:
		o.BatchWaitTimeout = 0
	}
	if o.MaxConcurrentBatches == 0 {
		o.MaxConcurrentBatches = DefaultMaxConcurrentBatches
	}
	return o
}

// decideBatch is the Batcher's whole scheduling rule, kept pure so it can
// be table-tested. Given the number of calls waiting (queued), the number
// of batches running, when the oldest waiting call arrived and the time
// now, it says whether a batch starts now and, if not, when the decision
// must be taken again (the zero time when only a new call or a finished
// batch can change it). o must have its defaults applied.
func decideBatch(queued, running int, oldest, now time.Time, o BatchOptions) (start bool, wakeAt time.Time) {
	if queued == 0 || running >= o.MaxConcurrentBatches {
		return false, time.Time{}
	}
	due := oldest.Add(o.BatchWaitTimeout)
	if queued >= o.MaxBatchSize || !now.Before(due) {
		return true, time.Time{}
	}
	return false, due
}

// Call states. A call leaves callQueued once, with the Batcher's mu held,
// so that Batcher.queued always counts exactly the queued calls.
const (
	callQueued    = iota // waiting for its batch to start
	callTaken            // in a batch, or failed by Close
	callAbandoned        // its caller left before its batch started
)

// call is one Call waiting for, or in, a batch.
type call[In, Out any] struct {
	in      In
	arrived time.Time
	state   int           // guarded by the Batcher's mu
	done    chan struct{} // closed once out and err are set
	out     Out
	err     error
}

// Batcher gathers single calls into batches for a batch function. It is
// safe for concurrent use. Create one with NewBatcher and stop it with
// Close; it owns its goroutines (one per running batch, plus the wait
// timer's callback) and Close waits for all of them.
type Batcher[In, Out any] struct {
	fn   func(ctx context.Context, batch []In) ([]Out, error)
	opts BatchOptions // defaults applied

	// ctx is every batch function's context; cancel ends it in Close. A
	// batch serves many callers and can outlive any one of them, so the
	// function never sees a caller's context.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // running batches and an armed timer

	mu     sync.Mutex
	closed bool // guarded by mu
	// pending[head:] is the FIFO of calls waiting for a batch, possibly
	// with abandoned ones among them; pending[:head] is spent (nil).
	pending []*call[In, Out] // guarded by mu
	head    int              // guarded by mu
	queued  int              // guarded by mu; calls in pending still callQueued
	running int              // guarded by mu; batches in flight
	timer   *time.Timer      // guarded by mu; the wait timer, reused
	armed   bool             // guarded by mu; timer is set and counted in wg
}

// NewBatcher returns a Batcher that runs fn on batches of calls, as
// configured by opts (see BatchOptions; the zero value is Ray's defaults).
// fn gets the inputs of one batch in arrival order and must return one
// output per input, in the same order, or an error for the whole batch.
// fn must return once its context is done; the context ends when the
// Batcher is closed. It returns an error if fn is nil or opts is invalid.
func NewBatcher[In, Out any](fn func(ctx context.Context, batch []In) ([]Out, error), opts BatchOptions) (*Batcher[In, Out], error) {
	if fn == nil {
		return nil, errors.New("serve: NewBatcher: the batch function is nil")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Batcher[In, Out]{
		fn:     fn,
		opts:   opts.withDefaults(),
		ctx:    ctx,
		cancel: cancel,
	}, nil
}

// Call adds in to the next batch, waits for the batch function to run,
// and returns the output at in's position in the batch, or the error of
// the whole batch (the function's own error, a wrapped ErrBatchSize or a
// *BatchPanicError).
//
// If ctx ends before the batch starts, the call is taken out of it (the
// function never sees in) and Call returns ctx.Err(). If ctx ends after
// the batch started, Call returns ctx.Err() at once and the function still
// runs with in; its output for in is dropped. After Close, Call returns
// ErrClosed.
func (b *Batcher[In, Out]) Call(ctx context.Context, in In) (Out, error) {
	var zero Out
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	c := &call[In, Out]{in: in, done: make(chan struct{})}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return zero, ErrClosed
	}
	c.arrived = time.Now()
	b.pending = append(b.pending, c)
	b.queued++
	b.scheduleLocked(c.arrived)
	b.mu.Unlock()

	select {
	case <-c.done:
		return c.out, c.err
	case <-ctx.Done():
		b.mu.Lock()
		if c.state == callQueued {
			// Still waiting: it is skipped when its batch is taken.
			c.state = callAbandoned
			b.queued--
		}
		b.mu.Unlock()
		return zero, ctx.Err()
	}
}

// BatcherStats is a snapshot of a Batcher, for gauges.
type BatcherStats struct {
	// Queued is the number of calls waiting for their batch to start.
	Queued int
	// Running is the number of batches whose function is running.
	Running int
}

// Stats returns a snapshot of b's queue.
func (b *Batcher[In, Out]) Stats() BatcherStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BatcherStats{Queued: b.queued, Running: b.running}
}

// Close stops b: calls still waiting for their batch get ErrClosed, later
// calls get ErrClosed, the context of running batch functions is
// cancelled, and Close returns once every goroutine of b has returned
// (so once every running batch function has returned). Callers of a
// batch that was running get what its function returned. Close is
// idempotent and safe to call concurrently with Call.
func (b *Batcher[In, Out]) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		if b.armed && b.timer.Stop() {
			b.armed = false
			b.wg.Done()
		}
		for _, c := range b.pending[b.head:] {
			if c.state == callQueued {
				c.state = callTaken
				c.err = ErrClosed
				close(c.done)
			}
		}
		b.pending, b.head, b.queued = nil, 0, 0
	}
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}

// scheduleLocked starts every batch decideBatch allows now and, if a
// batch will be due later, arms the wait timer for it.
func (b *Batcher[In, Out]) scheduleLocked(now time.Time) {
	if b.closed {
		return
	}
	for {
		b.trimLocked()
		var oldest time.Time
		if b.head < len(b.pending) {
			oldest = b.pending[b.head].arrived
		}
		start, wakeAt := decideBatch(b.queued, b.running, oldest, now, b.opts)
		if !start {
			if !wakeAt.IsZero() && !b.armed {
				// An armed timer is never later than needed: the oldest
				// call only gets younger, so firing early just means
				// deciding again.
				b.armed = true
				b.wg.Add(1)
				if b.timer == nil {
					b.timer = time.AfterFunc(wakeAt.Sub(now), b.onTimer)
				} else {
					b.timer.Reset(wakeAt.Sub(now))
				}
			}
			return
		}
		b.startLocked(now)
	}
}

// trimLocked drops abandoned calls from the head of the queue, so that
// its first call, if any, is the oldest one still waiting, and reclaims
// the spent front of pending.
func (b *Batcher[In, Out]) trimLocked() {
	for b.head < len(b.pending) && b.pending[b.head].state == callAbandoned {
		b.pending[b.head] = nil
		b.head++
	}
	switch {
	case b.head == len(b.pending):
		// Empty: reuse the array from its start.
		b.pending, b.head = b.pending[:0], 0
	case b.head > len(b.pending)/2:
		// Mostly spent: move the live part down rather than let append
		// grow the array.
		n := copy(b.pending, b.pending[b.head:])
		clear(b.pending[n:])
		b.pending, b.head = b.pending[:n], 0
	}
}

// startLocked takes up to MaxBatchSize waiting calls, oldest first,
// skipping abandoned ones, and runs the batch function on them in a new
// goroutine counted in wg.
func (b *Batcher[In, Out]) startLocked(now time.Time) {
	calls := make([]*call[In, Out], 0, min(b.queued, b.opts.MaxBatchSize))
	for ; b.head < len(b.pending) && len(calls) < b.opts.MaxBatchSize; b.head++ {
		c := b.pending[b.head]
		b.pending[b.head] = nil
		if c.state == callQueued {
			c.state = callTaken
			calls = append(calls, c)
		}
	}
	b.queued -= len(calls)
	b.running++
	b.wg.Add(1)
	go b.runBatch(calls, now)
}

// onTimer is the wait timer's callback: a batch may be due.
func (b *Batcher[In, Out]) onTimer() {
	defer b.wg.Done()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	b.scheduleLocked(time.Now())
}

// runBatch runs the batch function once for calls, hands each caller its
// result and frees the batch's slot.
func (b *Batcher[In, Out]) runBatch(calls []*call[In, Out], started time.Time) {
	defer b.wg.Done()
	ins := make([]In, len(calls))
	for i, c := range calls {
		ins[i] = c.in
	}
	fnStart := time.Now()
	outs, err := b.invoke(ins)
	took := time.Since(fnStart)
	if err == nil && len(outs) != len(ins) {
		err = fmt.Errorf("%w: it got %d inputs and returned %d outputs", ErrBatchSize, len(ins), len(outs))
	}
	if b.opts.OnBatch != nil {
		b.opts.OnBatch(BatchRecord{
			Size:   len(calls),
			Waited: started.Sub(calls[0].arrived),
			Took:   took,
			Err:    err,
		})
	}
	for i, c := range calls {
		if err != nil {
			c.err = err
		} else {
			c.out = outs[i]
		}
		close(c.done)
	}

	b.mu.Lock()
	b.running--
	b.scheduleLocked(time.Now())
	b.mu.Unlock()
}

// invoke calls the batch function, turning a panic into a
// *BatchPanicError.
func (b *Batcher[In, Out]) invoke(ins []In) (outs []Out, err error) {
	defer func() {
		if r := recover(); r != nil {
			outs, err = nil, &BatchPanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return b.fn(b.ctx, ins)
}
