package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventually polls cond until it holds or a few seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder collects OnBatch records.
type recorder struct {
	mu   sync.Mutex
	recs []BatchRecord
}

func (r *recorder) onBatch(rec BatchRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
}

func (r *recorder) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s []int
	for _, rec := range r.recs {
		s = append(s, rec.Size)
	}
	return s
}

func (r *recorder) records() []BatchRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.recs)
}

func newBatcher[In, Out any](t *testing.T, fn func(context.Context, []In) ([]Out, error), o BatchOptions) *Batcher[In, Out] {
	t.Helper()
	b, err := NewBatcher(fn, o)
	if err != nil {
		t.Fatalf("NewBatcher: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// itoa is a batch function mapping each input to its decimal string.
func itoa(_ context.Context, in []int) ([]string, error) {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = strconv.Itoa(v)
	}
	return out, nil
}

func TestDecideBatch(t *testing.T) {
	t0 := time.Unix(1000, 0)
	o := BatchOptions{MaxBatchSize: 4, BatchWaitTimeout: 10 * time.Millisecond, MaxConcurrentBatches: 2}
	noWait := o
	noWait.BatchWaitTimeout = 0
	for _, tc := range []struct {
		name            string
		queued, running int
		now             time.Time
		o               BatchOptions
		start           bool
		wakeAt          time.Time
	}{
		{"nothing queued", 0, 0, t0, o, false, time.Time{}},
		{"partial batch, wait not over", 1, 0, t0.Add(3 * time.Millisecond), o, false, t0.Add(10 * time.Millisecond)},
		{"partial batch, wait just over", 3, 0, t0.Add(10 * time.Millisecond), o, true, time.Time{}},
		{"partial batch, wait long over", 1, 1, t0.Add(time.Hour), o, true, time.Time{}},
		{"full batch starts at once", 4, 0, t0, o, true, time.Time{}},
		{"more than a full batch", 9, 1, t0, o, true, time.Time{}},
		{"all slots busy, full batch waits", 9, 2, t0, o, false, time.Time{}},
		{"all slots busy, due batch waits", 2, 2, t0.Add(time.Hour), o, false, time.Time{}},
		{"no wait: one call starts", 1, 0, t0, noWait, true, time.Time{}},
		{"no wait: slots busy", 3, 2, t0, noWait, false, time.Time{}},
		{"batch size 1 never waits", 1, 0, t0, BatchOptions{MaxBatchSize: 1, BatchWaitTimeout: time.Hour, MaxConcurrentBatches: 1}, true, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, wakeAt := decideBatch(tc.queued, tc.running, t0, tc.now, tc.o)
			if start != tc.start || !wakeAt.Equal(tc.wakeAt) {
				t.Errorf("decideBatch(queued=%d, running=%d, now=t0+%v) = (%v, %v), want (%v, %v)",
					tc.queued, tc.running, tc.now.Sub(t0), start, wakeAt, tc.start, tc.wakeAt)
			}
		})
	}
}

func TestBatchOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      BatchOptions
		wantErr string // substring; "" means valid
		want    BatchOptions
	}{
		{"zero is Ray's defaults", BatchOptions{}, "",
			BatchOptions{MaxBatchSize: 10, BatchWaitTimeout: 10 * time.Millisecond, MaxConcurrentBatches: 1}},
		{"explicit values kept", BatchOptions{MaxBatchSize: 32, BatchWaitTimeout: time.Second, MaxConcurrentBatches: 4}, "",
			BatchOptions{MaxBatchSize: 32, BatchWaitTimeout: time.Second, MaxConcurrentBatches: 4}},
		{"NoBatchWait is a zero wait", BatchOptions{BatchWaitTimeout: NoBatchWait}, "",
			BatchOptions{MaxBatchSize: 10, BatchWaitTimeout: 0, MaxConcurrentBatches: 1}},
		{"negative batch size", BatchOptions{MaxBatchSize: -1}, "MaxBatchSize is -1", BatchOptions{}},
		{"negative wait", BatchOptions{BatchWaitTimeout: -time.Second}, "BatchWaitTimeout is -1s", BatchOptions{}},
		{"negative concurrency", BatchOptions{MaxConcurrentBatches: -2}, "MaxConcurrentBatches is -2", BatchOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Validate() = %v, want an error containing %q", err, tc.wantErr)
				}
				if _, nerr := NewBatcher(itoa, tc.in); nerr == nil || nerr.Error() != err.Error() {
					t.Fatalf("NewBatcher error = %v, want %v", nerr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if got := tc.in.withDefaults(); got.MaxBatchSize != tc.want.MaxBatchSize ||
				got.BatchWaitTimeout != tc.want.BatchWaitTimeout ||
				got.MaxConcurrentBatches != tc.want.MaxConcurrentBatches {
				t.Fatalf("withDefaults() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNewBatcherNilFunction(t *testing.T) {
	_, err := NewBatcher[int, int](nil, BatchOptions{})
	if err == nil || !strings.Contains(err.Error(), "batch function is nil") {
		t.Fatalf("NewBatcher(nil) error = %v, want one naming the nil function", err)
	}
}

// TestFullBatchesUnderLoad: with a wait far longer than the test, only
// full batches can start, each caller gets the output for its own input,
// and one batch runs at a time by default.
func TestFullBatchesUnderLoad(t *testing.T) {
	const callers, size = 200, 10
	var rec recorder
	var inFlight, maxInFlight atomic.Int32
	b := newBatcher(t, func(ctx context.Context, in []int) ([]string, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond) // let the next batch fill meanwhile
		return itoa(ctx, in)
	}, BatchOptions{MaxBatchSize: size, BatchWaitTimeout: time.Hour, OnBatch: rec.onBatch})

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := range callers {
		wg.Go(func() {
			got, err := b.Call(context.Background(), i)
			if err != nil {
				errs <- fmt.Errorf("Call(%d): %w", i, err)
			} else if want := strconv.Itoa(i); got != want {
				errs <- fmt.Errorf("Call(%d) = %q, want %q", i, got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sizes := rec.sizes()
	if len(sizes) != callers/size {
		t.Errorf("%d batches, want %d: sizes %v", len(sizes), callers/size, sizes)
	}
	for _, s := range sizes {
		if s != size {
			t.Errorf("batch sizes %v, want all %d", sizes, size)
			break
		}
	}
	if m := maxInFlight.Load(); m != 1 {
		t.Errorf("%d batches ran at once, want 1 (MaxConcurrentBatches default)", m)
	}
	if st := b.Stats(); st != (BatcherStats{}) {
		t.Errorf("Stats() after all calls = %+v, want zero", st)
	}
}

// TestWaitTimeoutFlushesPartialBatch: a batch that never fills starts once
// its first call has waited BatchWaitTimeout.
func TestWaitTimeoutFlushesPartialBatch(t *testing.T) {
	const wait = 30 * time.Millisecond
	var rec recorder
	var seen sync.Map
	b := newBatcher(t, func(ctx context.Context, in []int) ([]string, error) {
		for _, v := range in {
			seen.Store(v, true)
		}
		return itoa(ctx, in)
	}, BatchOptions{MaxBatchSize: 10, BatchWaitTimeout: wait, OnBatch: rec.onBatch})

	start := time.Now()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if got, err := b.Call(context.Background(), i); err != nil || got != strconv.Itoa(i) {
				t.Errorf("Call(%d) = %q, %v; want %q, nil", i, got, err, strconv.Itoa(i))
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took < wait {
		t.Errorf("partial batch returned after %v, before the %v wait", took, wait)
	}
	recs := rec.records()
	var total int
	for _, r := range recs {
		total += r.Size
		if r.Waited < wait {
			t.Errorf("batch %+v started after %v, before the %v wait", r, r.Waited, wait)
		}
	}
	if total != 3 {
		t.Errorf("batches %+v hold %d calls, want 3", recs, total)
	}

	// The timer is reused: a second partial batch flushes too.
	if got, err := b.Call(context.Background(), 7); err != nil || got != "7" {
		t.Fatalf("second Call = %q, %v; want \"7\", nil", got, err)
	}
}

// TestNoBatchWait: with NoBatchWait a lone call runs at once, and calls
// that arrive while the one slot is busy form the next batch together.
func TestNoBatchWait(t *testing.T) {
	var rec recorder
	release := make(chan struct{})
	b := newBatcher(t, func(ctx context.Context, in []int) ([]string, error) {
		if in[0] == 0 {
			<-release
		}
		return itoa(ctx, in)
	}, BatchOptions{BatchWaitTimeout: NoBatchWait, OnBatch: rec.onBatch})

	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := b.Call(context.Background(), 0); err != nil {
			t.Errorf("Call(0): %v", err)
		}
	})
	eventually(t, "the first batch to start", func() bool { return b.Stats().Running == 1 })
	for i := 1; i <= 5; i++ {
		wg.Go(func() {
			if got, err := b.Call(context.Background(), i); err != nil || got != strconv.Itoa(i) {
				t.Errorf("Call(%d) = %q, %v", i, got, err)
			}
		})
	}
	eventually(t, "5 calls to queue", func() bool { return b.Stats().Queued == 5 })
	close(release)
	wg.Wait()
	if got := rec.sizes(); !slices.Equal(got, []int{1, 5}) {
		t.Errorf("batch sizes %v, want [1 5]", got)
	}
}

func TestBatchErrors(t *testing.T) {
	errModel := errors.New("model exploded")
	for _, tc := range []struct {
		name  string
		fn    func(context.Context, []int) ([]string, error)
		check func(error) error
	}{
		{"function error reaches every caller",
			func(context.Context, []int) ([]string, error) { return nil, errModel },
			func(err error) error {
				if err != errModel {
					return fmt.Errorf("got %v, want the function's own error", err)
				}
				return nil
			}},
		{"too few outputs",
			func(_ context.Context, in []int) ([]string, error) { return make([]string, len(in)-1), nil },
			func(err error) error {
				if !errors.Is(err, ErrBatchSize) || !strings.Contains(err.Error(), "got 3 inputs and returned 2 outputs") {
					return fmt.Errorf("got %v, want ErrBatchSize naming 3 inputs and 2 outputs", err)
				}
				return nil
			}},
		{"too many outputs",
			func(_ context.Context, in []int) ([]string, error) { return make([]string, len(in)+2), nil },
			func(err error) error {
				if !errors.Is(err, ErrBatchSize) || !strings.Contains(err.Error(), "got 3 inputs and returned 5 outputs") {
					return fmt.Errorf("got %v, want ErrBatchSize naming 3 inputs and 5 outputs", err)
				}
				return nil
			}},
		{"panic is recovered",
			func(context.Context, []int) ([]string, error) { panic("tensor shape mismatch") },
			func(err error) error {
				var pe *BatchPanicError
				if !errors.Is(err, ErrBatchPanic) || !errors.As(err, &pe) || pe.Value != "tensor shape mismatch" ||
					!strings.Contains(string(pe.Stack), "batch_test.go") ||
					err.Error() != "serve: batch function panicked: tensor shape mismatch" {
					return fmt.Errorf("got %v, want a *BatchPanicError for the panic value with its stack", err)
				}
				return nil
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			b := newBatcher(t, tc.fn, BatchOptions{MaxBatchSize: 3, BatchWaitTimeout: time.Hour, OnBatch: rec.onBatch})
			// Two batches: the batcher survives a failed batch and serves
			// the next one the same way.
			for round := range 2 {
				var wg sync.WaitGroup
				for i := range 3 {
					wg.Go(func() {
						if _, err := b.Call(context.Background(), i); tc.check(err) != nil {
							t.Errorf("batch %d: Call(%d): %v", round, i, tc.check(err))
						}
					})
				}
				wg.Wait()
			}
			recs := rec.records()
			if len(recs) != 2 || recs[0].Size != 3 || recs[1].Size != 3 || tc.check(recs[0].Err) != nil {
				t.Errorf("OnBatch records %+v, want two batches of 3 with the callers' error", recs)
			}
		})
	}
}

// TestCancelBeforeBatchStarts: a caller that leaves while waiting is taken
// out of its batch; the function never sees its input.
func TestCancelBeforeBatchStarts(t *testing.T) {
	var rec recorder
	var seen []int
	var mu sync.Mutex
	b := newBatcher(t, func(ctx context.Context, in []int) ([]string, error) {
		mu.Lock()
		seen = append(seen, in...)
		mu.Unlock()
		return itoa(ctx, in)
	}, BatchOptions{MaxBatchSize: 3, BatchWaitTimeout: time.Hour, OnBatch: rec.onBatch})

	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := b.Call(ctx, -1)
		gone <- err
	}()
	eventually(t, "the call to queue", func() bool { return b.Stats().Queued == 1 })
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Call returned %v, want context.Canceled", err)
	}
	if q := b.Stats().Queued; q != 0 {
		t.Fatalf("Stats().Queued = %d after the only caller left, want 0", q)
	}

	// A deadline works the same way.
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer dcancel()
	if _, err := b.Call(dctx, -2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call past its deadline returned %v, want context.DeadlineExceeded", err)
	}
	// An already-ended context never queues.
	if _, err := b.Call(ctx, -3); !errors.Is(err, context.Canceled) {
		t.Fatalf("Call with a cancelled context returned %v, want context.Canceled", err)
	}

	// The next full batch holds only the callers still there.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			if got, err := b.Call(context.Background(), i); err != nil || got != strconv.Itoa(i) {
				t.Errorf("Call(%d) = %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(seen)
	if !slices.Equal(seen, []int{0, 1, 2}) {
		t.Errorf("the function saw %v, want [0 1 2] (no input of a caller that left)", seen)
	}
	if got := rec.sizes(); !slices.Equal(got, []int{3}) {
		t.Errorf("batch sizes %v, want [3]", got)
	}
}

// TestCancelAfterBatchStarts: a caller that leaves while its batch runs
// returns at once, and the function still runs with its input.
func TestCancelAfterBatchStarts(t *testing.T) {
	var rec recorder
	started := make(chan []int, 1)
	release := make(chan struct{})
	b := newBatcher(t, func(ctx context.Context, in []int) ([]string, error) {
		started <- slices.Clone(in)
		<-release
		return itoa(ctx, in)
	}, BatchOptions{MaxBatchSize: 2, BatchWaitTimeout: time.Hour, OnBatch: rec.onBatch})

	ctx, cancel := context.WithCancel(context.Background())
	leaver := make(chan error, 1)
	go func() {
		_, err := b.Call(ctx, 1)
		leaver <- err
	}()
	stayer := make(chan string, 1)
	go func() {
		got, err := b.Call(context.Background(), 2)
		if err != nil {
			t.Errorf("Call(2): %v", err)
		}
		stayer <- got
	}()
	in := <-started
	cancel()
	if err := <-leaver; !errors.Is(err, context.Canceled) {
		t.Fatalf("Call whose context ended mid-batch returned %v, want context.Canceled", err)
	}
	close(release)
	if got := <-stayer; got != "2" {
		t.Errorf("the caller that stayed got %q, want \"2\"", got)
	}
	slices.Sort(in)
	if !slices.Equal(in, []int{1, 2}) {
		t.Errorf("the function got %v, want [1 2]", in)
	}
	eventually(t, "the batch to be recorded", func() bool { return len(rec.sizes()) == 1 })
	if got := rec.sizes(); got[0] != 2 {
		t.Errorf("batch size %d, want 2", got[0])
	}
}

func TestClose(t *testing.T) {
	fnCtxDone := make(chan error, 1)
	running := make(chan struct{})
	b, err := NewBatcher(func(ctx context.Context, in []int) ([]string, error) {
		if in[0] == 0 {
			close(running)
			<-ctx.Done() // held until Close cancels the context
			fnCtxDone <- ctx.Err()
			return nil, ctx.Err()
		}
		return itoa(ctx, in)
	}, BatchOptions{MaxBatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}

	runningErr := make(chan error, 1)
	go func() {
		_, err := b.Call(context.Background(), 0)
		runningErr <- err
	}()
	<-running
	// These wait behind the running batch (one at a time).
	const waiting = 4
	waitingErrs := make(chan error, waiting)
	for i := 1; i <= waiting; i++ {
		go func() {
			_, err := b.Call(context.Background(), i)
			waitingErrs <- err
		}()
	}
	eventually(t, "calls to queue", func() bool { return b.Stats().Queued == waiting })

	b.Close() // returns only once the running function has returned
	select {
	case err := <-fnCtxDone:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the running function's context ended with %v, want context.Canceled", err)
		}
	default:
		t.Fatal("Close returned before the running batch function did")
	}
	if err := <-runningErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the running batch's caller got %v, want the function's context.Canceled", err)
	}
	for range waiting {
		if err := <-waitingErrs; !errors.Is(err, ErrClosed) {
			t.Errorf("a waiting caller got %v, want ErrClosed", err)
		}
	}
	if _, err := b.Call(context.Background(), 5); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Close returned %v, want ErrClosed", err)
	}
	if st := b.Stats(); st != (BatcherStats{}) {
		t.Errorf("Stats() after Close = %+v, want zero", st)
	}
	b.Close() // idempotent
}

// TestCloseStopsArmedTimer: Close with a partial batch waiting on a long
// timer fails the call and leaves no goroutine behind (TestMain checks).
func TestCloseStopsArmedTimer(t *testing.T) {
	b, err := NewBatcher(itoa, BatchOptions{BatchWaitTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := b.Call(context.Background(), 1)
		errc <- err
	}()
	eventually(t, "the call to queue", func() bool { return b.Stats().Queued == 1 })
	b.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting caller got %v, want ErrClosed", err)
	}
}

// TestMaxConcurrentBatches: up to MaxConcurrentBatches runs overlap, and
// never more.
func TestMaxConcurrentBatches(t *testing.T) {
	const limit, callers = 3, 12
	var inFlight, maxInFlight atomic.Int32
	allIn := make(chan struct{})
	var once sync.Once
	b := newBatcher(t, func(ctx context.Context, in []int) ([]string, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		if n == limit {
			once.Do(func() { close(allIn) })
		}
		// The first runs hold until limit of them overlap, which proves
		// they run concurrently.
		select {
		case <-allIn:
		case <-ctx.Done():
		}
		return itoa(ctx, in)
	}, BatchOptions{MaxBatchSize: 1, MaxConcurrentBatches: limit})

	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			if got, err := b.Call(context.Background(), i); err != nil || got != strconv.Itoa(i) {
				t.Errorf("Call(%d) = %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if m := maxInFlight.Load(); m != limit {
		t.Errorf("at most %d batches ran at once, want exactly %d", m, limit)
	}
}

// TestRandomCancellations runs many callers, some of which leave before
// or during their batch, and checks that every caller gets either its own
// output or its context's error, that no input reaches the function
// twice, that no batch is empty or too large, and that the batcher ends
// idle.
func TestRandomCancellations(t *testing.T) {
	const callers, size = 400, 8
	var mu sync.Mutex
	seen := map[int]int{}
	var badSize atomic.Int32
	b := newBatcher(t, func(ctx context.Context, in []int) ([]string, error) {
		if len(in) == 0 || len(in) > size {
			badSize.Add(1)
		}
		mu.Lock()
		for _, v := range in {
			seen[v]++
		}
		mu.Unlock()
		time.Sleep(time.Duration(len(in)) * 50 * time.Microsecond)
		return itoa(ctx, in)
	}, BatchOptions{MaxBatchSize: size, BatchWaitTimeout: 2 * time.Millisecond, MaxConcurrentBatches: 2})

	var wg sync.WaitGroup
	var served, left atomic.Int32
	for i := range callers {
		wg.Go(func() {
			ctx := context.Background()
			if i%3 != 0 {
				// Deadlines from 0 to 4 ms: some end while queued, some
				// while their batch runs, some never matter.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(i%5)*time.Millisecond)
				defer cancel()
			}
			got, err := b.Call(ctx, i)
			switch {
			case err == nil && got == strconv.Itoa(i):
				served.Add(1)
			case err != nil && errors.Is(err, ctx.Err()):
				left.Add(1)
			default:
				t.Errorf("Call(%d) = %q, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	eventually(t, "the batcher to go idle", func() bool { return b.Stats() == (BatcherStats{}) })
	if n := badSize.Load(); n > 0 {
		t.Errorf("%d batches were empty or larger than %d", n, size)
	}
	mu.Lock()
	defer mu.Unlock()
	for v, n := range seen {
		if n != 1 {
			t.Errorf("input %d reached the function %d times", v, n)
		}
	}
	if served.Load() < callers/3 {
		t.Errorf("only %d of %d callers were served; every caller without a deadline should be", served.Load(), callers)
	}
	t.Logf("%d served, %d left, %d inputs reached the function", served.Load(), left.Load(), len(seen))
}

// ExampleBatcher batches concurrent requests for a function that works on
// a whole batch at once.
func ExampleBatcher() {
	upper, err := NewBatcher(func(_ context.Context, words []string) ([]string, error) {
		out := make([]string, len(words))
		for i, w := range words {
			out[i] = strings.ToUpper(w)
		}
		return out, nil
	}, BatchOptions{MaxBatchSize: 3})
	if err != nil {
		panic(err)
	}
	defer upper.Close()

	words := []string{"alpha", "beta", "gamma"}
	results := make([]string, len(words))
	var wg sync.WaitGroup
	for i, w := range words {
		wg.Go(func() { // three concurrent requests, one batch
			results[i], _ = upper.Call(context.Background(), w)
		})
	}
	wg.Wait()
	fmt.Println(results)
	// Output: [ALPHA BETA GAMMA]
}

// BenchmarkBatcherCall measures the batcher's own cost per call: a
// trivial batch function, batches of 10, enough concurrent callers to
// fill them. The batch-size metric shows the batches that formed.
func BenchmarkBatcherCall(b *testing.B) {
	var batches, calls atomic.Int64
	bt, err := NewBatcher(func(_ context.Context, in []int) ([]int, error) {
		return in, nil
	}, BatchOptions{MaxBatchSize: 10, OnBatch: func(r BatchRecord) {
		batches.Add(1)
		calls.Add(int64(r.Size))
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for i := 0; pb.Next(); i++ {
			if _, err := bt.Call(ctx, i); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := batches.Load(); n > 0 {
		b.ReportMetric(float64(calls.Load())/float64(n), "calls/batch")
	}
}
