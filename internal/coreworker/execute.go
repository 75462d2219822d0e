package coreworker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/wirecheck"
	"github.com/raygo/raygo/internal/workerlog"
)

// TaskInfo describes the task a function is running; the ray package
// exposes it through the task's context.
type TaskInfo struct {
	TaskID   ids.ID
	Function string
	Attempt  int
	NodeID   ids.ID
	WorkerID ids.ID
	ActorID  ids.ID
}

type taskInfoKey struct{}

// blockHookKey carries the function a task calls when it first blocks in
// Get or Wait (see pushTasks).
type blockHookKey struct{}

// InfoFrom returns the running task's info, if ctx belongs to a task.
func InfoFrom(ctx context.Context) (TaskInfo, bool) {
	ti, ok := ctx.Value(taskInfoKey{}).(TaskInfo)
	return ti, ok
}

// executor runs tasks pushed to a worker process.
type executor struct {
	cw      *CoreWorker
	running atomic.Int32
	procs   atomic.Int32 // GOMAXPROCS set for the current lease

	mu        sync.Mutex
	cancels   map[ids.ID]*taskContext // guarded by mu; running tasks
	cancelled map[ids.ID]bool         // guarded by mu
	lastName  string                  // guarded by mu; the name last announced to the node's log reader
	actors    map[ids.ID]*hostedActor // guarded by mu; the actors this process hosts
}

func newExecutor(cw *CoreWorker) *executor {
	e := &executor{cw: cw, cancels: map[ids.ID]*taskContext{}, cancelled: map[ids.ID]bool{}, actors: map[ids.ID]*hostedActor{}}
	e.procs.Store(int32(runtime.GOMAXPROCS(0)))
	return e
}

// PushTasks receives task batches on a stream, runs them in order (actor
// calls up to the actor's concurrency) and streams replies back.
func (cw *CoreWorker) pushTasks(stream taskServerStream) error {
	if cw.exec == nil {
		return errs.Invalidf("coreworker: this process is a driver and runs no tasks")
	}
	e := cw.exec
	replies := make(chan *pb.TaskReply, 1024)
	sendDone := make(chan error, 1)
	go func() {
		var err error
		batch := make([]*pb.TaskReply, 0, 64)
		for r := range replies {
			batch = append(batch[:0], r)
		drain:
			for len(batch) < 1024 {
				select {
				case r2, ok := <-replies:
					if !ok {
						break drain
					}
					batch = append(batch, r2)
				default:
					break drain
				}
			}
			if err == nil {
				err = stream.Send(&pb.ReplyBatch{Replies: batch})
			}
		}
		sendDone <- err
	}()

	queue := newSpecQueue()
	var wg sync.WaitGroup
	// drain runs queued tasks one at a time. A normal task that blocks in
	// Get or Wait hands the queue to a fresh drain goroutine (its CPU is
	// lent back meanwhile), so tasks pipelined behind it still run: one of
	// them may be what it waits for. The blocked goroutine finishes its own
	// task and exits.
	var drain func()
	drain = func() {
		defer wg.Done()
		var handedOff atomic.Bool
		handOff := func() { // may be called from the task's own goroutines
			if handedOff.CompareAndSwap(false, true) {
				wg.Add(1)
				go drain()
			}
		}
		for !handedOff.Load() {
			spec, ok := queue.pop()
			if !ok {
				return
			}
			var ha *hostedActor
			if spec.GetActorId() != nil {
				ha = e.hosted(spec.GetActorId())
			}
			if ha != nil && cap(ha.sem) > 1 {
				ha.sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-ha.sem }()
					replies <- e.run(spec, nil)
				}()
				continue
			}
			if ha != nil {
				ha.sem <- struct{}{}
			}
			var hook func()
			if spec.GetActorId() == nil {
				hook = handOff // actor calls stay strictly serial
			}
			replies <- e.run(spec, hook)
			if ha != nil {
				<-ha.sem
			}
		}
	}
	wg.Add(1)
	go drain()
	var recvErr error
	for {
		batch, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		// Checked before anything acts on it: a num_returns of 2^31-1
		// would make fillFromCommon allocate 32 GiB of return ids.
		if err := wirecheck.TaskBatch(batch); err != nil {
			recvErr = err
			break
		}
		for _, s := range batch.GetTasks() {
			fillFromCommon(s, batch.GetCommon())
			queue.push(s)
		}
	}
	queue.close()
	wg.Wait()
	close(replies)
	if err := <-sendDone; err != nil && recvErr == nil {
		recvErr = err
	}
	if recvErr != nil && stream.Context().Err() != nil {
		return nil // the caller went away
	}
	return recvErr
}

// run executes one task and builds its reply.
func (e *executor) run(spec *pb.TaskSpec, onBlock func()) *pb.TaskReply {
	cw := e.cw
	tid := ids.MustFromBytes(spec.GetTaskId())
	reply := &pb.TaskReply{TaskId: spec.GetTaskId()}
	e.mu.Lock()
	if e.cancelled[tid] {
		delete(e.cancelled, tid)
		e.mu.Unlock()
		reply.Error = errs.ToInfo(&errs.CancelledError{Function: spec.GetFunction(), TaskID: tid.String()})
		return reply
	}
	tc := newTaskContext(cw.ctx, TaskInfo{TaskID: tid, Function: spec.GetFunction(), Attempt: int(spec.GetAttempt()),
		NodeID: cw.cfg.NodeID, WorkerID: cw.workerID, ActorID: ids.MustFromBytes(spec.GetActorId())}, onBlock)
	e.cancels[tid] = tc
	var instance any
	if ha := e.actors[ids.MustFromBytes(spec.GetActorId())]; ha != nil {
		instance = ha.instance
	}
	e.mu.Unlock()
	defer func() {
		tc.cancel(context.Canceled)
		e.mu.Lock()
		delete(e.cancels, tid)
		wasCancelled := e.cancelled[tid]
		delete(e.cancelled, tid)
		e.mu.Unlock()
		if wasCancelled {
			reply.Returns = nil
			reply.Error = errs.ToInfo(&errs.CancelledError{Function: spec.GetFunction(), TaskID: tid.String()})
		}
	}()
	var ctx context.Context = tc

	args, releaseArgs, err := e.resolveArgs(ctx, spec)
	defer releaseArgs()
	if err != nil {
		reply.Error = errs.ToInfo(err)
		return reply
	}
	var call func() ([]Encoded, error)
	if spec.GetActorId() != nil {
		m, ok := cw.registry.method(spec.GetFunction())
		if !ok {
			reply.Error = errs.ToInfo(&errs.NotRegisteredError{Name: spec.GetFunction()})
			return reply
		}
		if instance == nil {
			// Killed here, or restarted elsewhere: the caller reconnects.
			reply.Error = &pb.ErrorInfo{Kind: errs.KindActorNotHere, ActorId: ids.MustFromBytes(spec.GetActorId()).String(),
				Message: "the actor is not hosted by this worker (killed or restarted elsewhere)"}
			return reply
		}
		call = func() ([]Encoded, error) { return m(ctx, instance, args) }
	} else {
		f, ok := cw.registry.fn(spec.GetFunction())
		if !ok {
			reply.Error = errs.ToInfo(&errs.NotRegisteredError{Name: spec.GetFunction()})
			return reply
		}
		call = func() ([]Encoded, error) { return f(ctx, args) }
	}
	e.announce(spec)
	e.fitProcs(spec)
	start := time.Now()
	e.running.Add(1)
	rets, err, stack := protect(call)
	e.running.Add(-1)
	reply.ExecMicros = time.Since(start).Microseconds()
	if err != nil {
		reply.Error = e.appError(spec, err, stack)
		return reply
	}
	if len(rets) != len(spec.GetReturnIds()) {
		reply.Error = errs.ToInfo(errs.Systemf("raygo: %s returned %d values, want %d", spec.GetFunction(), len(rets), len(spec.GetReturnIds())))
		return reply
	}
	reply.Returns, err = e.storeReturns(ctx, spec, rets)
	if err != nil {
		reply.Error = errs.ToInfo(err)
		return reply
	}
	cw.flushBorrows(ctx)
	return reply
}

func (e *executor) appError(spec *pb.TaskSpec, err error, stack string) *pb.ErrorInfo {
	var (
		ae *errs.ArgumentError
		nr *errs.NotRegisteredError
	)
	if errors.As(err, &ae) || errors.As(err, &nr) {
		return errs.ToInfo(err)
	}
	return errs.FromAppError(spec.GetFunction(), err, stack, stack != "", e.cw.cfg.NodeID.String(), e.cw.workerID.String(), int(spec.GetAttempt()))
}

// fitProcs sizes the Go scheduler to the CPUs the task was granted (at
// least one), as Ray sets OMP_NUM_THREADS for its workers: a one-CPU task
// gets one P. Besides keeping a worker within its share, this is what makes
// short tasks fast: with a single P, handing a reply from the task to the
// gRPC writer never wakes a second OS thread, which on a VM costs tens of
// microseconds per hand-off.
//
// An actor that asks for no CPU shares its process with other such actors
// (the node daemon's shared hosts): the process gets one P per actor it
// hosts, up to the machine's CPUs, so that CPU-bound actors sharing a
// process are not squeezed onto one P.
func (e *executor) fitProcs(spec *pb.TaskSpec) {
	if spec.GetActorId() != nil && !spec.GetActorCreation() {
		return // an actor's calls run with what its creation set
	}
	cpus := spec.GetResources().GetAmounts()["CPU"]
	want := int(math.Ceil(cpus))
	if spec.GetActorCreation() && cpus == 0 {
		e.mu.Lock()
		want = len(e.actors) + 1
		e.mu.Unlock()
	}
	want = min(max(1, want), runtime.NumCPU())
	if e.procs.Load() != int32(want) {
		e.procs.Store(int32(want))
		runtime.GOMAXPROCS(want)
	}
}

// hostedActor is an actor living in this process.
type hostedActor struct {
	instance any
	sem      chan struct{} // one slot per call that may run at once
}

// hosted returns the actor with the wire id, or nil.
func (e *executor) hosted(id []byte) *hostedActor {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.actors[ids.MustFromBytes(id)]
}

// drop removes an actor from this process (killed while sharing it with
// others); calls already running finish, later ones are refused.
func (e *executor) drop(id []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.actors, ids.MustFromBytes(id))
}

// announce tells the node daemon reading this process's output which
// function (or actor class) the following lines come from, when it changes.
func (e *executor) announce(spec *pb.TaskSpec) {
	name := spec.GetFunction()
	if spec.GetName() != "" && spec.GetActorId() == nil {
		name = spec.GetName() // the task's display name (ray.Name)
	}
	if spec.GetActorId() != nil && !spec.GetActorCreation() {
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			name = name[:i] // "Class.Method" -> "Class"
		}
	}
	e.mu.Lock()
	changed := name != e.lastName
	e.lastName = name
	e.mu.Unlock()
	if changed {
		workerlog.WriteName(os.Stdout, name)
		workerlog.WriteName(os.Stderr, name)
	}
}

// protect runs f, turning a panic into an error with its stack.
func protect(f func() ([]Encoded, error)) (rets []Encoded, err error, stack string) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
			stack = string(debug.Stack())
		}
	}()
	rets, err = f()
	return
}

// resolveArgs returns each argument's encoded bytes, fetching refs from
// their owners or object stores. Arguments in the local store alias shared
// memory until release, which the caller calls when the task is done
// (decoding copies what the function keeps).
func (e *executor) resolveArgs(ctx context.Context, spec *pb.TaskSpec) (args [][]byte, release func(), err error) {
	args = make([][]byte, len(spec.GetArgs()))
	var releases []func()
	release = func() {
		for _, f := range releases {
			f()
		}
	}
	for i, a := range spec.GetArgs() {
		if v := a.GetValue(); v != nil {
			if v.GetError() != nil {
				return nil, release, errs.FromInfo(v.GetError())
			}
			args[i] = v.GetData() // by value: always inline
			continue
		}
		r := a.GetRef()
		ref := &Ref{ID: ids.MustFromBytes(r.GetId()), OwnerAddr: r.GetOwnerAddress(), OwnerID: ids.MustFromBytes(r.GetOwnerId())}
		data, rel, objErr, err := e.cw.getUncounted(ctx, ref)
		if rel != nil {
			releases = append(releases, rel)
		}
		if err != nil {
			return nil, release, err
		}
		if objErr != nil {
			return nil, release, objErr
		}
		args[i] = data
	}
	return args, release, nil
}

// storeReturns turns encoded results into reply values: large ones into
// the node's store, and nested refs registered with their owners as
// borrowed by the caller.
func (e *executor) storeReturns(ctx context.Context, spec *pb.TaskSpec, rets []Encoded) ([]*pb.Value, error) {
	out := make([]*pb.Value, len(rets))
	caller := spec.GetOwnerAddress()
	byOwner := map[string][]ids.ID{}
	for i, r := range rets {
		v, err := e.cw.makeValueFor(ctx, ids.MustFromBytes(spec.GetReturnIds()[i]), [][]byte{r.Data}, spec.GetFunction(), ids.MustFromBytes(spec.GetOwnerId()), caller)
		if err != nil {
			return nil, err
		}
		for _, n := range r.Nested {
			v.Nested = append(v.Nested, &pb.ObjectRef{Id: n.ID, OwnerId: n.OwnerID, OwnerAddress: n.OwnerAddress})
			if n.OwnerAddress != caller {
				byOwner[n.OwnerAddress] = append(byOwner[n.OwnerAddress], ids.MustFromBytes(n.ID))
			}
		}
		out[i] = v
	}
	for owner, list := range byOwner {
		e.cw.registerBorrower(ctx, owner, list, caller)
	}
	return out, nil
}

// getUncounted fetches an object's bytes for a task argument; the caller
// holds the reference for the task's duration, so no handle is made.
func (cw *CoreWorker) getUncounted(ctx context.Context, ref *Ref) (data []byte, release func(), objErr, err error) {
	cw.mu.Lock()
	o, ok := cw.objects[ref.ID]
	cw.mu.Unlock()
	var v *pb.Value
	if ok && o.ready {
		v = o.value
	} else if ref.OwnerID == cw.workerID {
		v, err = cw.waitValue(ctx, ref, ok, o)
	} else {
		v, err = cw.askOwner(ctx, ref)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	d, rel, err := cw.valueBytes(ctx, ref, v)
	return d, rel, errs.FromInfo(v.GetError()), err
}

// CancelTask cancels a running or queued task; with force the worker
// process exits.
func (cw *CoreWorker) cancelTask(_ context.Context, req *pb.CancelTaskRequest) (*pb.CancelTaskReply, error) {
	if cw.exec == nil {
		return &pb.CancelTaskReply{}, nil
	}
	e := cw.exec
	tid := ids.MustFromBytes(req.GetTaskId())
	e.mu.Lock()
	tc, running := e.cancels[tid]
	e.cancelled[tid] = true
	e.mu.Unlock()
	if req.GetForce() {
		go func() {
			time.Sleep(5 * time.Millisecond) // let the reply go out
			exitProcess(1)
		}()
		return &pb.CancelTaskReply{Found: true}, nil
	}
	if running {
		tc.cancel(context.Canceled)
	}
	return &pb.CancelTaskReply{Found: running}, nil
}

// CreateActor runs an actor's constructor in this worker, which then hosts
// the actor for the rest of its life.
func (cw *CoreWorker) hostActor(ctx context.Context, req *pb.CreateActorTaskRequest) (*pb.CreateActorTaskReply, error) {
	if cw.exec == nil {
		return nil, errs.Invalidf("coreworker: a driver cannot host an actor")
	}
	e := cw.exec
	spec := req.GetSpec()
	ctor, ok := cw.registry.class(spec.GetFunction())
	if !ok {
		return &pb.CreateActorTaskReply{Error: errs.ToInfo(&errs.NotRegisteredError{Name: spec.GetFunction()})}, nil
	}
	aid := ids.MustFromBytes(spec.GetActorId())
	tctx := context.WithValue(cw.ctx, taskInfoKey{}, TaskInfo{TaskID: ids.MustFromBytes(spec.GetTaskId()), Function: spec.GetFunction(),
		NodeID: cw.cfg.NodeID, WorkerID: cw.workerID, ActorID: aid})
	args, releaseArgs, err := e.resolveArgs(tctx, spec)
	defer releaseArgs()
	if err != nil {
		return &pb.CreateActorTaskReply{Error: errs.ToInfo(err)}, nil
	}
	e.announce(spec)
	e.fitProcs(spec)
	var instance any
	_, err, stack := protect(func() ([]Encoded, error) {
		var err error
		instance, err = ctor(tctx, args)
		return nil, err
	})
	if err != nil {
		return &pb.CreateActorTaskReply{Error: e.appError(spec, err, stack)}, nil
	}
	cw.flushBorrows(ctx)
	n := max(1, int(spec.GetMaxConcurrency()))
	e.mu.Lock()
	e.actors[aid] = &hostedActor{instance: instance, sem: make(chan struct{}, n)}
	e.mu.Unlock()
	return &pb.CreateActorTaskReply{}, nil
}

// specQueue is an unbounded FIFO of task specs between a stream's reader
// and its executor.
type specQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*pb.TaskSpec
	closed bool
}

func newSpecQueue() *specQueue {
	q := &specQueue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *specQueue) push(s *pb.TaskSpec) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *specQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

func (q *specQueue) pop() (*pb.TaskSpec, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return nil, false
	}
	s := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return s, true
}
