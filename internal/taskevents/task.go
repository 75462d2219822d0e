package taskevents

// StateChange is one state an attempt entered, and when (unix ms).
type StateChange struct {
	State  string `json:"state"`
	TimeMs int64  `json:"created_ms"`
}

// Task is one attempt of a task as the state API shows it (Ray's
// TaskState). Rows are built on read from the Store's compact form;
// RequiredResources is shared with the Store and must not be modified.
type Task struct {
	TaskID  string `json:"task_id"`
	Attempt int32  `json:"attempt_number"`
	Name    string `json:"name"`
	// State is Ray's name of the latest state: PENDING_ARGS_AVAIL,
	// PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, RUNNING, FINISHED,
	// FAILED.
	State   string `json:"state"`
	JobID   string `json:"job_id"`
	ActorID string `json:"actor_id,omitempty"`
	// Type is NORMAL_TASK, ACTOR_CREATION_TASK, ACTOR_TASK or DRIVER_TASK.
	Type              string             `json:"type"`
	FuncOrClassName   string             `json:"func_or_class_name"`
	ParentTaskID      string             `json:"parent_task_id,omitempty"`
	NodeID            string             `json:"node_id,omitempty"`
	WorkerID          string             `json:"worker_id,omitempty"`
	WorkerPID         int32              `json:"worker_pid,omitempty"`
	ErrorType         string             `json:"error_type,omitempty"`
	ErrorMessage      string             `json:"error_message,omitempty"`
	RequiredResources map[string]float64 `json:"required_resources,omitempty"`
	PlacementGroupID  string             `json:"placement_group_id,omitempty"`
	CreationTimeMs    int64              `json:"creation_time_ms,omitempty"`
	StartTimeMs       int64              `json:"start_time_ms,omitempty"`
	EndTimeMs         int64              `json:"end_time_ms,omitempty"`
	Events            []StateChange      `json:"events,omitempty"`
}

// Stats describes a Store's retention.
type Stats struct {
	Stored          int   // attempts stored now
	Evicted         int64 // attempts evicted to stay within MaxTasks, all time
	DroppedAtSource int64 // events processes dropped before reporting them (their buffers were full)
	// NotRecorded counts the attempts processes submitted without
	// recording them: past their budget (DefaultRate a second each).
	NotRecorded int64
}
