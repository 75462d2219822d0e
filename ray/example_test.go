//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raygo/raygo/ray"
)

// Functions and actor types are registered at package level, so that the
// worker processes (this same test binary, started by the node daemon)
// register them too. Without RegisterName, a function registers under its
// full name ("github.com/raygo/raygo/ray_test.square"), an actor class
// under its instance type's ("…ray_test.tally") and a method under its
// own ("Add").

func square(ctx context.Context, x int) (int, error) { return x * x, nil }

func sumRange(ctx context.Context, data []int, lo, hi int) (int, error) {
	sum := 0
	for _, v := range data[lo:hi] {
		sum += v
	}
	return sum, nil
}

func nap(ctx context.Context, ms int) (int, error) {
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return ms, nil
	case <-ctx.Done(): // ray.Cancel cancels the task's context
		return 0, ctx.Err()
	}
}

var (
	exampleSquare   = ray.Func1(square)
	exampleSumRange = ray.Func3(sumRange)
	exampleNap      = ray.Func1(nap)
)

// tally is the state of an example actor.
type tally struct{ n int }

func newTally(ctx context.Context) (*tally, error) { return &tally{}, nil }

func (t *tally) Add(ctx context.Context, k int) (int, error) { t.n += k; return t.n, nil }
func (t *tally) Total(ctx context.Context) (int, error)      { return t.n, nil }

var (
	exampleTally = ray.Actor0(newTally)
	exampleAdd   = ray.Method1(exampleTally, (*tally).Add)
	exampleTotal = ray.Method0(exampleTally, (*tally).Total)
)

// Square numbers in parallel: each Remote call returns a future at once,
// and ray.Get collects the results in submission order.
func ExampleFunc1() {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(2), ray.LogWorkers(false)); err != nil {
		fmt.Println(err)
		return
	}
	defer ray.Shutdown()

	refs := make([]ray.ObjectRef[int], 6)
	for i := range refs {
		refs[i] = exampleSquare.Remote(ctx, i)
	}
	squares, err := ray.Get(ctx, refs...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(squares)
	// Output: [0 1 4 9 16 25]
}

// A counter actor: its state lives in one worker process, and the calls
// one process makes run in the order they were made.
func ExampleActor0() {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(2), ray.LogWorkers(false)); err != nil {
		fmt.Println(err)
		return
	}
	defer ray.Shutdown()

	counter := exampleTally.Remote(ctx)
	if err := counter.Err(); err != nil {
		fmt.Println(err)
		return
	}
	for k := 1; k <= 3; k++ {
		exampleAdd.Remote(ctx, counter, k) // fire and forget; still runs in order
	}
	total, err := exampleTotal.Remote(ctx, counter).Get(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("total:", total)
	// Output: total: 6
}

// Put a large value in the cluster once and pass its ref to many tasks
// with RemoteArgs: each task receives the value, not the ref, and the
// value is not copied into every task's arguments by the driver. Plain
// values go beside refs wrapped in Val; a ref of the wrong type does not
// compile.
func ExamplePut() {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(2), ray.LogWorkers(false)); err != nil {
		fmt.Println(err)
		return
	}
	defer ray.Shutdown()

	data := make([]int, 100_000) // ~360 KiB encoded: above InlineThreshold, so it lives in the object store
	for i := range data {
		data[i] = i
	}
	dataRef, err := ray.Put(ctx, data)
	if err != nil {
		fmt.Println(err)
		return
	}
	const chunk = 25_000
	parts := make([]ray.ObjectRef[int], 0, len(data)/chunk)
	for lo := 0; lo < len(data); lo += chunk {
		parts = append(parts, exampleSumRange.RemoteArgs(ctx, dataRef, ray.Val(lo), ray.Val(lo+chunk)))
	}
	sums, err := ray.Get(ctx, parts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	total := 0
	for _, s := range sums {
		total += s
	}
	fmt.Println(len(sums), "chunks, total", total)
	// Output: 4 chunks, total 4999950000
}

// Wait for the first of several tasks to finish, then cancel the rest.
// Ready and not-ready refs keep their input order.
func ExampleWait() {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(2), ray.LogWorkers(false)); err != nil {
		fmt.Println(err)
		return
	}
	defer ray.Shutdown()

	slow := exampleNap.Remote(ctx, 30_000)
	fast := exampleNap.Remote(ctx, 10)
	ready, notReady, err := ray.Wait(ctx, []ray.ObjectRef[int]{slow, fast}, 1, -1) // negative timeout: no limit
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ready:", len(ready), "not ready:", len(notReady))
	ms, _ := ready[0].Get(ctx)
	fmt.Println("first result:", ms)

	if err := ray.Cancel(ctx, slow); err != nil {
		fmt.Println(err)
		return
	}
	_, err = slow.Get(ctx)
	fmt.Println("slow task cancelled:", errors.Is(err, ray.ErrTaskCancelled))
	// Output:
	// ready: 1 not ready: 1
	// first result: 10
	// slow task cancelled: true
}

// Write a large []byte object in place in the node's shared memory, then
// read it back without a copy.
func ExampleGetBuffer() {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(1), ray.LogWorkers(false), ray.ObjectStoreMemory(64<<20)); err != nil {
		fmt.Println(err)
		return
	}
	defer ray.Shutdown()

	ref, err := ray.PutBuffer(ctx, 8<<20, func(b []byte) error {
		for i := range b {
			b[i] = byte(i % 251)
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	buf, err := ray.GetBuffer(ctx, ref)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer buf.Release() // the bytes are valid until here
	fmt.Println(buf.Len(), buf.Bytes()[252])
	// Output: 8388608 1
}

// End an actor gracefully: Terminate is queued behind the calls already
// made, which finish first; later calls fail with ActorDiedError.
func ExampleTerminate() {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(1), ray.LogWorkers(false)); err != nil {
		fmt.Println(err)
		return
	}
	defer ray.Shutdown()

	counter := exampleTally.Remote(ctx)
	last := exampleAdd.Remote(ctx, counter, 5)
	if _, err := ray.Terminate(ctx, counter).Get(ctx); err != nil {
		fmt.Println(err)
		return
	}
	n, err := last.Get(ctx)
	fmt.Println("call before Terminate:", n, err)
	_, err = exampleTotal.Remote(ctx, counter).Get(ctx)
	fmt.Println("call after Terminate fails:", errors.Is(err, ray.ErrActorDied))
	// Output:
	// call before Terminate: 5 <nil>
	// call after Terminate fails: true
}

// An actor creation that cannot be submitted returns a handle carrying
// its error, like a task's ref: Err reports it, and calls through the
// handle fail with it.
func ExampleActorHandle_Err() {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.NumCPUs(1), ray.LogWorkers(false)); err != nil {
		fmt.Println(err)
		return
	}
	defer ray.Shutdown()

	h := exampleTally.Options(ray.Lifetime(ray.Detached)).Remote(ctx) // detached actors need a name
	fmt.Println(errors.Is(h.Err(), ray.ErrInvalidRequest))
	_, err := exampleTotal.Remote(ctx, h).Get(ctx)
	fmt.Println(errors.Is(err, h.Err()))
	// Output:
	// true
	// true
}
