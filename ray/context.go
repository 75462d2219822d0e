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
