package ray

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/raygo/raygo/internal/apiclient"
)

// The state API: what the cluster is doing, for programs and agents, as
// Ray's ray.util.state (list_nodes, list_actors, list_tasks, get_actor, …)
// and `raygo list`/`raygo get` give it. Each call asks the head's HTTP API
// (found through the control store this process is connected to, and
// called with the cluster token), so it works from a driver and from
// tasks, on an embedded cluster and on a standalone one whose head serves
// the API (not one started with --dashboard-port -1).
//
//	alive, err := ray.ListActors(ctx, ray.Filter("state", "ALIVE"))
//	failed, err := ray.ListTasks(ctx, ray.Filter("state", "FAILED"), ray.Limit(1000))
//	a, err := ray.GetActorState(ctx, handle.ID())
//
// Lists return at most 100 rows unless Limit says otherwise (at most
// 100,000). A list known to be incomplete (some nodes did not answer, or
// task events were evicted or dropped) returns its rows and a
// *PartialStateError saying what is missing.

// StateOption narrows a state list: Filter, FilterNot, Limit, Detail.
type StateOption interface{ applyState(*apiclient.ListOptions) }

type stateOpt func(*apiclient.ListOptions)

func (f stateOpt) applyState(o *apiclient.ListOptions) { f(o) }

// Filter keeps the rows whose field key (its JSON name: "state",
// "class_name", "node_id", …) equals value. Strings compare
// case-insensitively; fields named *_id also match a short id (at least 6
// of the id's first or last hex digits). Several filters must all hold.
// An unknown key fails the call with an error naming the valid ones.
func Filter(key, value string) StateOption {
	return stateOpt(func(o *apiclient.ListOptions) { o.Filters = append(o.Filters, key+"="+value) })
}

// FilterNot keeps the rows whose field key does not equal value.
func FilterNot(key, value string) StateOption {
	return stateOpt(func(o *apiclient.ListOptions) { o.Filters = append(o.Filters, key+"!="+value) })
}

// Limit returns at most n rows (default 100; 1 to 100,000).
func Limit(n int) StateOption { return stateOpt(func(o *apiclient.ListOptions) { o.Limit = n }) }

// Detail fills every field of the rows, not only the main ones.
func Detail() StateOption { return stateOpt(func(o *apiclient.ListOptions) { o.Detail = true }) }

// PartialStateError is returned with the rows of a list that is known to
// be incomplete: nodes that did not answer, task events evicted or
// dropped. The rows returned are still good.
type PartialStateError struct {
	Kind     string
	Warnings []string
}

func (e *PartialStateError) Error() string {
	return fmt.Sprintf("ray: the list of %s is incomplete: %s", e.Kind, strings.Join(e.Warnings, "; "))
}

// ErrNoStateAPI is returned when the cluster's head serves no HTTP API.
var ErrNoStateAPI = errors.New("ray: the cluster's head serves no HTTP API (it was started with --dashboard-port -1)")

// NodeRow is a node (Ray's NodeState).
type NodeRow struct {
	NodeID         string             `json:"node_id"`
	NodeIP         string             `json:"node_ip"`
	IsHeadNode     bool               `json:"is_head_node"`
	State          string             `json:"state"` // ALIVE, DEAD
	NodeName       string             `json:"node_name"`
	ResourcesTotal map[string]float64 `json:"resources_total"`
	Labels         map[string]string  `json:"labels"`
	// With Detail:
	ResourcesAvailable  map[string]float64 `json:"resources_available"`
	StartTimeMs         int64              `json:"start_time_ms"`
	Address             string             `json:"address"`
	HostID              string             `json:"host_id"`
	HostMemory          int64              `json:"host_memory"`
	ObjectStoreCapacity int64              `json:"object_store_capacity"`
	NumWorkers          int64              `json:"num_workers"`
	PendingLeases       int64              `json:"pending_leases"`
	MetricsAddress      string             `json:"metrics_address"`
}

// DriverInfo is a job's driver.
type DriverInfo struct {
	ID            string `json:"id"`
	NodeIPAddress string `json:"node_ip_address"`
	Address       string `json:"address"`
}

// RuntimeEnvRow is a runtime environment as the state API shows it.
type RuntimeEnvRow struct {
	WorkingDir string            `json:"working_dir,omitempty"`
	EnvVars    map[string]string `json:"env_vars,omitempty"`
}

// JobRow is a job: a driver that connected (type DRIVER), or a job
// submission (type SUBMISSION) and its driver once it connects (Ray's
// JobState).
type JobRow struct {
	JobID        string      `json:"job_id"`
	SubmissionID string      `json:"submission_id"`
	Entrypoint   string      `json:"entrypoint"`
	Type         string      `json:"type"`   // DRIVER, SUBMISSION
	Status       string      `json:"status"` // PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED
	Message      string      `json:"message"`
	ErrorType    string      `json:"error_type"`
	DriverInfo   *DriverInfo `json:"driver_info"`
	// With Detail:
	StartTime           int64              `json:"start_time"` // unix ms
	EndTime             int64              `json:"end_time"`
	Namespace           string             `json:"namespace"`
	Metadata            map[string]string  `json:"metadata"`
	RuntimeEnv          *RuntimeEnvRow     `json:"runtime_env"`
	DriverExitCode      *int               `json:"driver_exit_code"`
	DriverNodeID        string             `json:"driver_node_id"`
	EntrypointNumCPUs   float64            `json:"entrypoint_num_cpus"`
	EntrypointNumGPUs   float64            `json:"entrypoint_num_gpus"`
	EntrypointResources map[string]float64 `json:"entrypoint_resources"`
	BinaryHash          string             `json:"binary_hash"`
	SubmittedBy         string             `json:"submitted_by"`
}

// DeathCause says why an actor died.
type DeathCause struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ActorRow is an actor (Ray's ActorState).
type ActorRow struct {
	ActorID   string `json:"actor_id"`
	ClassName string `json:"class_name"`
	State     string `json:"state"` // PENDING_CREATION, ALIVE, RESTARTING, DEAD
	JobID     string `json:"job_id"`
	Name      string `json:"name"`
	NodeID    string `json:"node_id"`
	PID       int    `json:"pid"`
	Namespace string `json:"ray_namespace"`
	// With Detail:
	RequiredResources map[string]float64 `json:"required_resources"`
	DeathCause        *DeathCause        `json:"death_cause"`
	IsDetached        bool               `json:"is_detached"`
	PlacementGroupID  string             `json:"placement_group_id"`
	NumRestarts       int                `json:"num_restarts"`
	MaxRestarts       int                `json:"max_restarts"`
	Address           string             `json:"address"`
	WorkerID          string             `json:"worker_id"`
	OwnerID           string             `json:"owner_id"`
	RuntimeEnv        *RuntimeEnvRow     `json:"runtime_env"`
}

// TaskStateChange is one state a task attempt entered, and when.
type TaskStateChange struct {
	State     string `json:"state"`
	CreatedMs int64  `json:"created_ms"`
}

// TaskRow is one attempt of a task (Ray's TaskState).
type TaskRow struct {
	TaskID          string `json:"task_id"`
	AttemptNumber   int    `json:"attempt_number"`
	Name            string `json:"name"`
	State           string `json:"state"` // PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, RUNNING, FINISHED, FAILED
	JobID           string `json:"job_id"`
	ActorID         string `json:"actor_id"`
	Type            string `json:"type"` // NORMAL_TASK, ACTOR_CREATION_TASK, ACTOR_TASK, DRIVER_TASK
	FuncOrClassName string `json:"func_or_class_name"`
	ParentTaskID    string `json:"parent_task_id"`
	NodeID          string `json:"node_id"`
	WorkerID        string `json:"worker_id"`
	WorkerPID       int    `json:"worker_pid"`
	ErrorType       string `json:"error_type"`
	// With Detail:
	ErrorMessage      string             `json:"error_message"`
	RequiredResources map[string]float64 `json:"required_resources"`
	PlacementGroupID  string             `json:"placement_group_id"`
	CreationTimeMs    int64              `json:"creation_time_ms"`
	StartTimeMs       int64              `json:"start_time_ms"`
	EndTimeMs         int64              `json:"end_time_ms"`
	Events            []TaskStateChange  `json:"events"`
}

// ObjectRow is an object in a node's store (a copy: an object held by
// two nodes has two rows).
type ObjectRow struct {
	ObjectID   string `json:"object_id"`
	ObjectSize int64  `json:"object_size"` // bytes
	State      string `json:"state"`       // IN_MEMORY, SECONDARY, SPILLED, CREATING
	NodeID     string `json:"node_id"`
	IP         string `json:"ip"`
	Pins       int    `json:"pins"` // readers mapping it now
}

// WorkerRow is a worker process, or a running job's driver (Ray's
// WorkerState).
type WorkerRow struct {
	WorkerID   string `json:"worker_id"`
	IsAlive    bool   `json:"is_alive"`
	WorkerType string `json:"worker_type"` // WORKER, DRIVER
	State      string `json:"state"`       // STARTING, IDLE, LEASED, ACTOR; DRIVER for drivers
	NodeID     string `json:"node_id"`
	IP         string `json:"ip"`
	PID        int    `json:"pid"`
	JobID      string `json:"job_id"`
	// With Detail:
	StartTimeMs   int64              `json:"start_time_ms"`
	Address       string             `json:"address"`
	ActorIDs      []string           `json:"actor_ids"`
	ResourcesHeld map[string]float64 `json:"resources_held"`
	StdoutFile    string             `json:"stdout_file"`
	StderrFile    string             `json:"stderr_file"`
}

// BundleRow is one bundle of a placement group.
type BundleRow struct {
	BundleIndex   int                `json:"bundle_index"`
	NodeID        string             `json:"node_id"`
	UnitResources map[string]float64 `json:"unit_resources"`
}

// PlacementGroupRow is a placement group (Ray's PlacementGroupState).
type PlacementGroupRow struct {
	PlacementGroupID string `json:"placement_group_id"`
	Name             string `json:"name"`
	CreatorJobID     string `json:"creator_job_id"`
	State            string `json:"state"`    // PENDING, CREATED, REMOVED, RESCHEDULING
	Strategy         string `json:"strategy"` // PACK, SPREAD, STRICT_PACK, STRICT_SPREAD
	// With Detail:
	Bundles        []BundleRow `json:"bundles"`
	IsDetached     bool        `json:"is_detached"`
	Namespace      string      `json:"ray_namespace"`
	PendingReason  string      `json:"pending_reason"`
	Infeasible     bool        `json:"infeasible"`
	CreationTimeMs int64       `json:"creation_time_ms"`
	CreatorID      string      `json:"creator_id"`
}

// ListNodes lists the cluster's nodes, alive and dead, by id.
func ListNodes(ctx context.Context, opts ...StateOption) ([]NodeRow, error) {
	return listState[NodeRow](ctx, "nodes", opts)
}

// ListJobs lists the jobs: drivers and job submissions, oldest first.
func ListJobs(ctx context.Context, opts ...StateOption) ([]JobRow, error) {
	return listState[JobRow](ctx, "jobs", opts)
}

// ListActors lists the actors, alive and dead, by id.
func ListActors(ctx context.Context, opts ...StateOption) ([]ActorRow, error) {
	return listState[ActorRow](ctx, "actors", opts)
}

// ListTasks lists task attempts, newest first, from the head's task-event
// store (which keeps the newest 100,000 by default).
func ListTasks(ctx context.Context, opts ...StateOption) ([]TaskRow, error) {
	return listState[TaskRow](ctx, "tasks", opts)
}

// ListObjects lists the objects in the nodes' stores, largest first.
func ListObjects(ctx context.Context, opts ...StateOption) ([]ObjectRow, error) {
	return listState[ObjectRow](ctx, "objects", opts)
}

// ListWorkers lists the worker processes of every node and the running
// jobs' drivers.
func ListWorkers(ctx context.Context, opts ...StateOption) ([]WorkerRow, error) {
	return listState[WorkerRow](ctx, "workers", opts)
}

// ListPlacementGroups lists the placement groups, oldest first.
func ListPlacementGroups(ctx context.Context, opts ...StateOption) ([]PlacementGroupRow, error) {
	return listState[PlacementGroupRow](ctx, "placement_groups", opts)
}

// GetActorState returns one actor with every field, by id (a full id or
// at least 6 of its first or last hex digits). An unknown id is an error
// for which IsNotFound holds.
func GetActorState(ctx context.Context, id string) (ActorRow, error) {
	return getState[ActorRow](ctx, "actors", id)
}

// GetTaskState returns a task's latest attempt with every field, by id.
func GetTaskState(ctx context.Context, id string) (TaskRow, error) {
	return getState[TaskRow](ctx, "tasks", id)
}

// GetNodeState returns one node with every field, by id.
func GetNodeState(ctx context.Context, id string) (NodeRow, error) {
	return getState[NodeRow](ctx, "nodes", id)
}

// GetJobState returns one job with every field, by job id or
// submission id.
func GetJobState(ctx context.Context, id string) (JobRow, error) {
	return getState[JobRow](ctx, "jobs", id)
}

// IsNotFound reports whether err says a state lookup found nothing.
func IsNotFound(err error) bool { return apiclient.IsNotFound(err) }

// stateClient is a client of the cluster's HTTP API, found through the
// control store; close it with CloseIdle when done.
func stateClient(ctx context.Context) (*apiclient.Client, error) {
	base, token, err := ClusterAPI(ctx)
	if err != nil {
		return nil, err
	}
	return apiclient.New(base, token)
}

func listState[T any](ctx context.Context, kind string, opts []StateOption) ([]T, error) {
	var o apiclient.ListOptions
	for _, opt := range opts {
		opt.applyState(&o)
	}
	if o.Limit < 0 || o.Limit > 100_000 {
		return nil, fmt.Errorf("%w: Limit(%d): want 1 to 100000", ErrInvalidRequest, o.Limit)
	}
	c, err := stateClient(ctx)
	if err != nil {
		return nil, err
	}
	defer c.CloseIdle()
	var out struct {
		Rows           []T      `json:"result"`
		PartialFailure string   `json:"partial_failure_warning"`
		Warnings       []string `json:"warnings"`
	}
	if err := c.ListTo(ctx, kind, o, &out); err != nil {
		return nil, fmt.Errorf("ray: list %s: %w", kind, err)
	}
	if out.PartialFailure != "" || len(out.Warnings) > 0 {
		w := out.Warnings
		if out.PartialFailure != "" {
			w = append([]string{out.PartialFailure}, w...)
		}
		return out.Rows, &PartialStateError{Kind: kind, Warnings: w}
	}
	return out.Rows, nil
}

func getState[T any](ctx context.Context, kind, id string) (T, error) {
	var row T
	c, err := stateClient(ctx)
	if err != nil {
		return row, err
	}
	defer c.CloseIdle()
	raw, err := c.Get(ctx, kind, id)
	if err != nil {
		return row, fmt.Errorf("ray: get %s %s: %w", kind, id, err)
	}
	if err := json.Unmarshal(raw, &row); err != nil {
		return row, fmt.Errorf("ray: get %s %s: %w", kind, id, err)
	}
	return row, nil
}
