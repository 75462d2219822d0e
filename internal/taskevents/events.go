package taskevents

import (
	"os"

	"github.com/raygo/raygo/internal/pb"
)

// Task states and types, as the wire names them.
const (
	PendingArgs       = pb.TaskStatus_TASK_STATUS_PENDING_ARGS_AVAIL
	PendingNode       = pb.TaskStatus_TASK_STATUS_PENDING_NODE_ASSIGNMENT
	SubmittedToWorker = pb.TaskStatus_TASK_STATUS_SUBMITTED_TO_WORKER
	Running           = pb.TaskStatus_TASK_STATUS_RUNNING
	Finished          = pb.TaskStatus_TASK_STATUS_FINISHED
	Failed            = pb.TaskStatus_TASK_STATUS_FAILED

	NormalTask        = pb.TaskType_TASK_TYPE_NORMAL
	ActorCreationTask = pb.TaskType_TASK_TYPE_ACTOR_CREATION
	ActorTask         = pb.TaskType_TASK_TYPE_ACTOR_TASK
	DriverTask        = pb.TaskType_TASK_TYPE_DRIVER
)

// numStatus is one past the last TaskStatus.
const numStatus = int(Failed) + 1

// statusNames are Ray's names of the states, by TaskStatus.
var statusNames = [numStatus]string{"NIL", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED", "FAILED"}

// typeNames are Ray's names of the task types, by TaskType.
var typeNames = [...]string{"NORMAL_TASK", "ACTOR_CREATION_TASK", "ACTOR_TASK", "DRIVER_TASK"}

// StatusName is Ray's name of a state ("RUNNING"); "NIL" for one out of
// range.
func StatusName(s pb.TaskStatus) string {
	if s < 0 || int(s) >= numStatus {
		return statusNames[0]
	}
	return statusNames[s]
}

// TypeName is Ray's name of a task type ("NORMAL_TASK").
func TypeName(t pb.TaskType) string {
	if t < 0 || int(t) >= len(typeNames) {
		return typeNames[0]
	}
	return typeNames[t]
}

// States lists Ray's names of the states raygo reports, in the order of a
// task's life.
func States() []string { return append([]string(nil), statusNames[1:]...) }

// EnvSwitch is the environment variable that switches task events off
// when it is "0" (or "false", "off"): Enabled reads it.
const EnvSwitch = "RAYGO_TASK_EVENTS"

// Enabled reports whether the environment leaves task events on (see
// EnvSwitch).
func Enabled() bool {
	switch os.Getenv(EnvSwitch) {
	case "0", "false", "off", "no":
		return false
	}
	return true
}
