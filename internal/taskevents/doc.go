// Package taskevents records what happens to tasks and keeps it on the
// head, as Ray's task event buffer (src/ray/core_worker/task_event_buffer.cc)
// and the control store's task manager (src/ray/gcs/gcs_server/gcs_task_manager.cc)
// do.
//
// Every driver and worker process has one Buffer. The owner of a task
// records its definition and its pending states (PENDING_ARGS_AVAIL,
// PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER) and the failures it
// decides; the executor records RUNNING and how the attempt ended
// (FINISHED or FAILED), with its node, worker and pid. Recording is an
// append of a small fixed-size struct under a mutex; one goroutine merges
// the buffered events per task attempt and reports them to the control
// store (ControlStore.ReportTaskEvents) every Interval. The buffer is
// bounded: past MaxEvents it drops new events and counts them, so a head
// that cannot be reached never blocks a task.
//
// The control store keeps a Store: one compact row per (task, attempt),
// at most MaxTasks rows (the oldest finished evicted first, then the
// oldest), read by the state API (Tasks, Get, CountByState), metrics
// (OnStart) and the timeline (Timeline, served at GET /api/v0/timeline).
//
// A process reports like this:
//
//	buf := taskevents.NewBuffer(taskevents.BufferConfig{JobID: job, Report: func(ctx context.Context, r *pb.ReportTaskEventsRequest) error {
//		_, err := gcs.ReportTaskEvents(ctx, r)
//		return err
//	}})
//	buf.Start()
//	defer buf.Stop() // reports what is left, once
//	buf.Define(taskevents.Definition{TaskID: id, Function: "pkg.Square", Type: pb.TaskType_TASK_TYPE_NORMAL}, time.Now().UnixNano())
//	buf.State(id, 0, pb.TaskStatus_TASK_STATUS_SUBMITTED_TO_WORKER, time.Now().UnixNano())
//
// and the head reads:
//
//	store := taskevents.NewStore(taskevents.StoreConfig{MaxTasks: 100_000})
//	store.Report(req)
//	rows, total := store.Tasks(func(t *taskevents.Task) bool { return t.State == "FAILED" }, 100)
//
// A nil *Buffer records nothing: that is how task events are switched off
// (ray.TaskEvents(false), RAYGO_TASK_EVENTS=0).
//
// See docs/taskevents.md.
package taskevents
