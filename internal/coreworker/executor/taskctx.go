package executor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// taskContextsMade counts the task contexts this process ever made: while
// it is zero (a driver), no context can belong to a task, and TaskIDFrom
// answers without walking the context chain on every submission.
var taskContextsMade atomic.Int64

// taskContext is the context a pushed task runs with: the worker's
// context, the task's TaskInfo and block hook as values, and a
// cancellation of its own (CancelTask, or the task's end). It does what
// context.WithCancel and two context.WithValue calls would, in one
// allocation, and it registers with the worker's context only if someone
// waits on Done: most tasks never do, and a trivial task's run costs
// about as much as those three contexts did.
type taskContext struct {
	parent  context.Context
	info    TaskInfo
	onBlock func()       // nil for none
	actor   *hostedActor // the actor whose method runs; nil for a normal task

	mu   sync.Mutex
	done chan struct{} // made by the first Done
	err  error         // set by cancel
	stop func() bool   // undoes the registration with parent
	// cancelled is set (after err, under mu) by cancel: Err, called on
	// every submission from a task, reads it without the lock.
	cancelled atomic.Bool
}

func newTaskContext(parent context.Context, info TaskInfo, onBlock func()) *taskContext {
	if taskContextsMade.Load() == 0 {
		taskContextsMade.Add(1)
	}
	return &taskContext{parent: parent, info: info, onBlock: onBlock}
}

func (c *taskContext) Deadline() (time.Time, bool) { return c.parent.Deadline() }

func (c *taskContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		} else {
			c.stop = context.AfterFunc(c.parent, func() { c.cancel(c.parent.Err()) })
		}
	}
	return c.done
}

func (c *taskContext) Err() error {
	if c.cancelled.Load() {
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		return err
	}
	if err := c.parent.Err(); err != nil {
		c.cancel(err)
		return err
	}
	return nil
}

func (c *taskContext) Value(key any) any {
	switch key.(type) {
	case taskInfoKey:
		return &c.info // a pointer: boxing the struct would allocate per lookup
	case blockHookKey:
		if c.onBlock == nil {
			return nil
		}
		return c.onBlock
	case actorKey:
		if c.actor == nil {
			return nil
		}
		return c.actor
	}
	return c.parent.Value(key)
}

// cancel ends the context with err (the first error wins).
func (c *taskContext) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	c.cancelled.Store(true)
	if c.done != nil {
		close(c.done)
	}
	if c.stop != nil {
		c.stop()
	}
}

// String names the context in panics and logs, as the standard ones do.
func (c *taskContext) String() string { return "coreworker.taskContext(" + c.info.Function + ")" }

// TaskInfo describes the task a function is running; the ray package
// exposes it through the task's context.
type TaskInfo struct {
	TaskID   ids.ID
	Function string
	Attempt  int
	NodeID   ids.ID
	WorkerID ids.ID
	ActorID  ids.ID
	// Capture is the placement group the task's (or actor's) own tasks
	// and actors run in by default (CaptureChildTasks); nil if none.
	Capture *pb.SchedulingOptions
}

type taskInfoKey struct{}

// blockHookKey carries the function a task calls when it first blocks in
// Get or Wait (see stream.run).
type blockHookKey struct{}

// InfoFrom returns the running task's info, if ctx belongs to a task.
func InfoFrom(ctx context.Context) (TaskInfo, bool) {
	ti, ok := ctx.Value(taskInfoKey{}).(*TaskInfo)
	if !ok {
		return TaskInfo{}, false
	}
	return *ti, true
}

// TaskIDFrom returns the running task's id, if ctx belongs to a task: what
// a submission needs of InfoFrom (its parent), answered without copying
// the TaskInfo and, in a process that never ran a task, without a lookup.
func TaskIDFrom(ctx context.Context) (ids.ID, bool) {
	if c, ok := ctx.(*taskContext); ok {
		return c.info.TaskID, true
	}
	if taskContextsMade.Load() == 0 {
		return ids.ID{}, false
	}
	if ti, ok := ctx.Value(taskInfoKey{}).(*TaskInfo); ok {
		return ti.TaskID, true
	}
	return ids.ID{}, false
}

// ActorFrom returns the actor whose method (or constructor) ctx belongs
// to, if any; like TaskIDFrom, without a lookup in a process that never
// ran a task. dropped reports whether the actor has been dropped from
// this process since the method started (killed, or ended itself): what
// the method does from then on is no longer the actor's.
func ActorFrom(ctx context.Context) (actor ids.ID, dropped, ok bool) {
	c, isTask := ctx.(*taskContext)
	if !isTask {
		if taskContextsMade.Load() == 0 {
			return ids.ID{}, false, false
		}
		ti, isInfo := ctx.Value(taskInfoKey{}).(*TaskInfo)
		if !isInfo || ti.ActorID.IsNil() {
			return ids.ID{}, false, false
		}
		ha, _ := ctx.Value(actorKey{}).(*hostedActor)
		return ti.ActorID, ha != nil && ha.gone.Load(), true
	}
	if c.info.ActorID.IsNil() {
		return ids.ID{}, false, false
	}
	return c.info.ActorID, c.actor != nil && c.actor.gone.Load(), true
}

// CaptureFrom returns the placement group that ctx's task puts its
// children in (TaskInfo.Capture), nil if none; like TaskIDFrom, without a
// lookup in a process that never ran a task.
func CaptureFrom(ctx context.Context) *pb.SchedulingOptions {
	if c, ok := ctx.(*taskContext); ok {
		return c.info.Capture
	}
	if taskContextsMade.Load() == 0 {
		return nil
	}
	if ti, ok := ctx.Value(taskInfoKey{}).(*TaskInfo); ok {
		return ti.Capture
	}
	return nil
}

// BlockHook returns the function a task calls the first time it blocks
// waiting for objects (it lets the task's queue move on); nil outside a
// task or for tasks that have none.
func BlockHook(ctx context.Context) func() {
	f, _ := ctx.Value(blockHookKey{}).(func())
	return f
}

// captureOf is the placement group a task's children run in by default:
// its own, when it was submitted with CaptureChildTasks.
func captureOf(spec *pb.TaskSpec) *pb.SchedulingOptions {
	if o := spec.GetScheduling(); o.GetCaptureChildTasks() && len(o.GetPlacementGroupId()) > 0 {
		return &pb.SchedulingOptions{PlacementGroupId: o.GetPlacementGroupId(), BundleIndex: -1, CaptureChildTasks: true}
	}
	return nil
}
