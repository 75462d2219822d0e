package ray

import (
	"context"

	"github.com/raygo/raygo/internal/coreworker"
)

// TaskContext describes the task, actor call or actor constructor a
// context belongs to.
type TaskContext struct {
	TaskID   string
	Function string
	// Attempt counts from 0; retries after failures increase it.
	Attempt  int
	NodeID   string
	WorkerID string
	ActorID  string // "" outside actors
}

// CurrentTask returns the context's task, and false outside tasks (in a
// driver).
func CurrentTask(ctx context.Context) (TaskContext, bool) {
	ti, ok := coreworker.InfoFrom(ctx)
	if !ok {
		return TaskContext{}, false
	}
	tc := TaskContext{TaskID: ti.TaskID.String(), Function: ti.Function, Attempt: ti.Attempt,
		NodeID: ti.NodeID.String(), WorkerID: ti.WorkerID.String()}
	if !ti.ActorID.IsNil() {
		tc.ActorID = ti.ActorID.String()
	}
	return tc, true
}

// JobID returns the id of the job this process belongs to (hex), as
// Ray's get_runtime_context().get_job_id(): a driver's own job, or the
// job of the driver a worker runs tasks for. It needs Init
// (ErrNotInitialized).
func JobID() (string, error) {
	cw, err := current()
	if err != nil {
		return "", err
	}
	return cw.JobID().String(), nil
}
