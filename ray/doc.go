// Package ray runs ordinary Go functions and types as distributed tasks
// and actors, the way Ray does for Python: on an embedded local cluster
// that Init starts for you, or on a cluster started with `raygo start`.
//
// # A first program
//
// Register remote functions and actor classes at package level, then call
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
//	func square(ctx context.Context, x int) (int, error) { return x * x, nil }
//
//	// Counter is an actor: its state lives in one worker process.
//	type Counter struct{ n int }
//
//	func NewCounter(ctx context.Context) (*Counter, error)   { return &Counter{}, nil }
//	func (c *Counter) Inc(ctx context.Context) (int, error) { c.n++; return c.n, nil }
//
//	var (
//		Square       = ray.Func1(square)                        // registered as "main.square"
//		CounterActor = ray.Actor0(NewCounter)                   // as "main.Counter"
//		Inc          = ray.Method0(CounterActor, (*Counter).Inc) // as "Inc"
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
//		c := CounterActor.Remote(ctx)
//		Inc.Remote(ctx, c)
//		n, err := Inc.Remote(ctx, c).Get(ctx) // a failed creation shows here
//		if err != nil {
//			log.Fatal(err)
//		}
//		fmt.Println(n) // 2
//	}
//
// The package's examples (go doc -all, or ray/example_test.go) run as tests.
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
//   - Register with Func0…Func3, Func1x2, Func1xN, FuncV, Actor0, Actor1
//     and Method0…Method2 at package initialization (var declarations or
//     init functions). Something registered later, inside main, exists
//     only in the driver; calls to it fail with ErrNotRegistered.
//   - Code that main runs before Init runs in every worker too. Call Init
//     first, or check IsWorker.
//   - A test binary is its package's worker binary: the package's TestMain
//     must call Init when IsWorker reports true (see docs/api.md).
//
// # Registration names
//
// Processes find code by name, so names are unique in the binary and must
// stay the same across its builds. Without RegisterName they are derived
// from the code, as Temporal's Go SDK does: a function registers under its
// full name ("main.square", "github.com/you/app/jobs.Square"), an actor
// class under its instance type's full name ("main.Counter"), a method
// given as a method expression ((*Counter).Inc) under the method's name
// ("Inc"). Renaming or moving the function renames it. Closures have
// runtime names ("main.init.func3") that change when closures are added
// above them: give them a name, ray.Func1(func…, ray.RegisterName("Square")).
// A name registered twice panics at init, naming both places.
//
// # Options
//
// Each place takes its own option type: Init takes InitOptions, a
// function's Options TaskOptions, an actor class's Options ActorOptions,
// a method's Options CallOptions, and so on, so an option given where it
// means nothing does not compile. Options that mean something in several
// places return a type that is several of these: NumCPUs sets the
// embedded node's CPUs in Init and a request on a task or actor.
//
// # Arguments and errors
//
// Remote takes plain values of the function's parameter types. RemoteArgs
// takes Args: an ObjectRef of the parameter's type, whose value the task
// receives once it is ready (without a trip through the caller), or a
// value wrapped with Val; a ref of another type does not compile.
//
// Every Remote returns at once, and a call that cannot be submitted (a
// bad option value, an argument that cannot be encoded, a call before
// Init) returns a future carrying the error: ObjectRef.Err and
// ActorHandle.Err report it, Get returns it, and every call made through
// a handle whose creation failed fails with the creation's error. Errors
// of the remote code surface from Get as typed errors: TaskError for the
// function's own error or panic, WorkerCrashedError, ActorDiedError,
// CancelledError, ObjectError and others, each matching a sentinel such
// as ErrTaskFailed with errors.Is. RegisterError and RegisterSentinel make
// your own error types and values survive the trip.
//
// # Actor lifetime
//
// The handles of a NonDetached actor (the default) are counted like
// object refs, in every process that holds one, and the actor ends when
// none remains anywhere; its name becomes free. In Go a variable stops
// counting after its last use, not at the end of its scope: an actor whose
// handle is only in a local variable may end right after the last call
// made through it, even if you meant to call it later through a handle
// found by name. Keep the handle in a struct or package variable, call
// runtime.KeepAlive(h) at the point it must live until, or make the actor
// Detached (it then lives until Kill, Terminate or ExitActor, or the
// cluster stops). Handles returned by GetActor, and handles of Detached
// actors, do not count, as in Ray.
//
// # Values
//
// Arguments, results and Put values are encoded with msgpack, which keeps
// exported struct fields only; []byte and string travel as raw bytes, and
// types that implement encoding.BinaryMarshaler and BinaryUnmarshaler use
// them. A type holding an unexported field (that is not tagged
// `msgpack:"-"`, in a struct that does not encode itself) would arrive
// with that field zeroed, so it is refused: registering a function that
// takes or returns one panics at init, and Put returns an *EncodingError,
// naming the type and the field. Nothing is decoded with a format that
// can run code.
//
// # Contracts
//
// Init connects the process once: a second Init before Shutdown fails with
// ErrAlreadyInitialized, and calls made before Init or after Shutdown fail
// with ErrNotInitialized. Shutdown ends the job: actors the driver created
// that are not Detached die, and an embedded cluster stops, leaving no
// worker processes or session files behind; its error reports what did
// not end cleanly. Shutdown is safe to call twice.
//
// After Init, every function and method in this package is safe for
// concurrent use by multiple goroutines. ObjectRef and ActorHandle are
// small values: copy them, store them, pass them to tasks and actors, or
// nest them in values. The object behind an ObjectRef lives until no copy
// of the ref remains in any process (copies are tracked with the garbage
// collector, so there is nothing to close), or until Free.
//
// Actor methods run one at a time unless MaxConcurrency is raised, in
// which case they must be safe for concurrent use. Calls from one process
// to one actor start in the order they were made.
package ray
