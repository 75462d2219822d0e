// Package ray runs ordinary Go functions and types as distributed tasks
// and actors, the way Ray does for Python: on an embedded local cluster
// that Init starts for you, or on a cluster started with `raygo start`.
//
// # A first program
//
// Register remote functions and actor types at package level, then call
// Init and submit work. Remote returns at once with an ObjectRef, a
// future; Get waits for the value.
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"log"
//
//		"github.com/raygo/raygo/ray"
//	)
//
//	// Square runs in worker processes.
//	var Square = ray.Func1("demo.Square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	// Counter is an actor: its state lives in one worker process.
//	type Counter struct{ n int }
//
//	func (c *Counter) Inc(ctx context.Context) (int, error) { c.n++; return c.n, nil }
//
//	var (
//		CounterActor = ray.Actor0("demo.Counter", func(ctx context.Context) (*Counter, error) {
//			return &Counter{}, nil
//		})
//		Inc = ray.Method0(CounterActor, "Inc", (*Counter).Inc)
//	)
//
//	func main() {
//		ctx := context.Background()
//		if err := ray.Init(ctx); err != nil { // a worker process never returns from Init
//			log.Fatal(err)
//		}
//		defer ray.Shutdown()
//
//		refs := make([]ray.ObjectRef[int], 4)
//		for i := range refs {
//			refs[i] = Square.Remote(ctx, i) // runs in parallel
//		}
//		squares, err := ray.Get(ctx, refs...)
//		if err != nil {
//			log.Fatal(err)
//		}
//		fmt.Println(squares) // [0 1 4 9]
//
//		c, err := CounterActor.Remote(ctx)
//		if err != nil {
//			log.Fatal(err)
//		}
//		Inc.Remote(ctx, c)
//		n, err := Inc.Remote(ctx, c).Get(ctx)
//		if err != nil {
//			log.Fatal(err)
//		}
//		fmt.Println(n) // 2
//	}
//
// # The same-binary model
//
// Go cannot ship closures between processes, so your program is also the
// worker binary. A node daemon starts worker processes from the driver's
// own executable (uploaded by content hash when the driver joins a remote
// cluster) with RAYGO_WORKER=1 in their environment. In such a process
// Init does not return: it serves tasks and exits the process when its
// node daemon stops it or dies.
//
// This has consequences:
//
//   - Register with Func0..Func3, Func1x2, Actor0, Actor1 and
//     Method0..Method2 at package initialization (var declarations or init
//     functions). Something registered later, inside main, exists only in
//     the driver; calls to it fail with ErrNotRegistered. Names must be
//     unique in the binary (a duplicate panics) and stable across builds.
//   - Code that main runs before Init runs in every worker too. Call Init
//     first, or check IsWorker.
//   - A test binary is its package's worker binary: the package's TestMain
//     must call Init when IsWorker reports true (see docs/api.md).
//
// Arguments, results and Put values are encoded with msgpack (exported
// fields only); []byte and string travel as raw bytes, and types that
// implement encoding.BinaryMarshaler and encoding.BinaryUnmarshaler use
// them. Nothing is decoded with a format that can run code.
//
// # Contracts
//
// Init connects the process once: a second Init before Shutdown fails with
// ErrAlreadyInitialized, and calls made before Init or after Shutdown fail
// with ErrNotInitialized. Shutdown ends the job: actors the driver created
// without Detached die, and an embedded cluster stops, leaving no worker
// processes or session files behind. Shutdown is safe to call twice.
//
// After Init, every function and method in this package is safe for
// concurrent use by multiple goroutines. ObjectRef and ActorHandle are
// small values: copy them, store them, pass them to tasks and actors, or
// nest them in values. The object behind an ObjectRef lives until no copy
// of the ref remains in any process (copies are tracked with the garbage
// collector, so there is nothing to close), or until Free.
//
// A failed call surfaces from Get as a typed error: TaskError for the
// function's own error or panic, WorkerCrashedError, ActorDiedError,
// CancelledError, ObjectError and others, each matching a sentinel such as
// ErrTaskFailed with errors.Is. RegisterError and RegisterSentinel make
// your own error types and values survive the trip.
//
// Actor methods run one at a time unless MaxConcurrency is raised, in
// which case they must be safe for concurrent use. Calls from one process
// to one actor start in the order they were made.
package ray
