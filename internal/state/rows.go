package state

import (
	"encoding/hex"
	"net"
	"strings"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// The rows of each kind and their columns. Column names are Ray's
// (python/ray/util/state/common.py) where Ray has the field; raygo's own
// fields keep Ray's style. Tables list the default columns first.

// hexID prints a wire id as hex ("" for none).
func hexID(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}

// hostOf is the host of a host:port address (the address when it has no
// port).
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// enumName strips a proto enum's prefix: NODE_STATE_ALIVE → ALIVE.
func enumName(s, prefix string) string { return strings.TrimPrefix(s, prefix) }

// ---------------------------------------------------------------- nodes

type nodeRow struct {
	id, ip, state, name, address, hostID, metricsAddress string
	head                                                 bool
	total, available                                     map[string]float64
	labels                                               map[string]string
	startMs, hostMemory, storeCapacity                   int64
	numWorkers, pendingLeases                            int64
}

var nodeColumns = []column[nodeRow]{
	strCol("node_id", false, func(r *nodeRow) string { return r.id }),
	strCol("node_ip", false, func(r *nodeRow) string { return r.ip }),
	boolCol("is_head_node", false, func(r *nodeRow) bool { return r.head }),
	strCol("state", false, func(r *nodeRow) string { return r.state }),
	strCol("node_name", false, func(r *nodeRow) string { return r.name }),
	otherCol("resources_total", false, func(r *nodeRow) any { return r.total }),
	otherCol("labels", false, func(r *nodeRow) any { return r.labels }),
	otherCol("resources_available", true, func(r *nodeRow) any { return r.available }),
	intCol("start_time_ms", true, func(r *nodeRow) int64 { return r.startMs }),
	strCol("address", true, func(r *nodeRow) string { return r.address }),
	strCol("host_id", true, func(r *nodeRow) string { return r.hostID }),
	intCol("host_memory", true, func(r *nodeRow) int64 { return r.hostMemory }),
	intCol("object_store_capacity", true, func(r *nodeRow) int64 { return r.storeCapacity }),
	intCol("num_workers", true, func(r *nodeRow) int64 { return r.numWorkers }),
	intCol("pending_leases", true, func(r *nodeRow) int64 { return r.pendingLeases }),
	strCol("metrics_address", true, func(r *nodeRow) string { return r.metricsAddress }),
}

func nodeFromPB(n *pb.NodeInfo, headID string) nodeRow {
	id := hexID(n.GetNodeId())
	return nodeRow{id: id, ip: hostOf(n.GetAddress()), head: id == headID, state: enumName(n.GetState().String(), "NODE_STATE_"),
		name: n.GetHostname(), address: n.GetAddress(), hostID: n.GetHostId(), metricsAddress: n.GetMetricsAddress(),
		total: n.GetTotal().GetAmounts(), available: n.GetAvailable().GetAmounts(), labels: n.GetLabels(),
		startMs: n.GetStartUnixMs(), hostMemory: n.GetHostMemory(), storeCapacity: n.GetObjectStoreCapacity(),
		numWorkers: int64(n.GetNumWorkers()), pendingLeases: int64(n.GetPendingLeases())}
}

// ---------------------------------------------------------------- jobs

// driverInfo is Ray's JobDetails.driver_info.
type driverInfo struct {
	ID            string `json:"id"`
	NodeIPAddress string `json:"node_ip_address"`
	Address       string `json:"address"`
}

type jobRow struct {
	jobID, submissionID, entrypoint, typ, status, message, errorType string
	namespace, binaryHash, driverNodeID                              string
	driver                                                           *driverInfo
	startMs, endMs                                                   int64
	exitCode                                                         int64
	hasExit                                                          bool
	metadata                                                         map[string]string
	runtimeEnv                                                       *runtimeEnvJSON
	entrypointCPUs, entrypointGPUs                                   float64
	entrypointResources                                              map[string]float64
	submittedBy                                                      string
}

// runtimeEnvJSON is a runtime environment as the API shows it.
type runtimeEnvJSON struct {
	WorkingDir string            `json:"working_dir,omitempty"`
	EnvVars    map[string]string `json:"env_vars,omitempty"`
}

func runtimeEnvOf(e *pb.RuntimeEnv) *runtimeEnvJSON {
	if e == nil || (e.GetWorkingDir() == "" && len(e.GetEnvVars()) == 0) {
		return nil
	}
	return &runtimeEnvJSON{WorkingDir: e.GetWorkingDir(), EnvVars: e.GetEnvVars()}
}

var jobColumns = []column[jobRow]{
	strCol("job_id", false, func(r *jobRow) string { return r.jobID }),
	strCol("submission_id", false, func(r *jobRow) string { return r.submissionID }),
	strCol("entrypoint", false, func(r *jobRow) string { return r.entrypoint }),
	strCol("type", false, func(r *jobRow) string { return r.typ }),
	strCol("status", false, func(r *jobRow) string { return r.status }),
	strCol("message", false, func(r *jobRow) string { return r.message }),
	strCol("error_type", false, func(r *jobRow) string { return r.errorType }),
	otherCol("driver_info", false, func(r *jobRow) any { return r.driver }),
	intCol("start_time", true, func(r *jobRow) int64 { return r.startMs }),
	intCol("end_time", true, func(r *jobRow) int64 { return r.endMs }),
	strCol("namespace", true, func(r *jobRow) string { return r.namespace }),
	otherCol("metadata", true, func(r *jobRow) any { return r.metadata }),
	otherCol("runtime_env", true, func(r *jobRow) any { return r.runtimeEnv }),
	otherCol("driver_exit_code", true, func(r *jobRow) any {
		if !r.hasExit {
			return nil
		}
		return r.exitCode
	}),
	strCol("driver_node_id", true, func(r *jobRow) string { return r.driverNodeID }),
	floatCol("entrypoint_num_cpus", true, func(r *jobRow) float64 { return r.entrypointCPUs }),
	floatCol("entrypoint_num_gpus", true, func(r *jobRow) float64 { return r.entrypointGPUs }),
	otherCol("entrypoint_resources", true, func(r *jobRow) any { return r.entrypointResources }),
	strCol("binary_hash", true, func(r *jobRow) string { return r.binaryHash }),
	strCol("submitted_by", true, func(r *jobRow) string { return r.submittedBy }),
}

// Job types and the statuses of driver jobs, as Ray names them.
const (
	jobTypeDriver     = "DRIVER"
	jobTypeSubmission = "SUBMISSION"
)

func jobFromPB(j *pb.JobInfo) jobRow {
	r := jobRow{jobID: hexID(j.GetJobId()), submissionID: j.GetSubmissionId(), entrypoint: j.GetEntrypoint(), typ: jobTypeDriver,
		namespace: j.GetNamespace(), binaryHash: j.GetBinaryHash(), startMs: j.GetStartUnixMs(), endMs: j.GetEndUnixMs(),
		runtimeEnv: runtimeEnvOf(j.GetRuntimeEnv())}
	if r.submissionID != "" {
		r.typ = jobTypeSubmission
	}
	switch j.GetState() {
	case pb.JobState_JOB_STATE_FINISHED:
		r.status = "SUCCEEDED"
	default:
		r.status = "RUNNING"
	}
	if j.GetDriverAddress() != "" || len(j.GetDriverId()) > 0 {
		r.driver = &driverInfo{ID: hexID(j.GetDriverId()), NodeIPAddress: hostOf(j.GetDriverAddress()), Address: j.GetDriverAddress()}
	}
	return r
}

// mergeSubmission fills a job row from its submission: the submission's
// status and message win over the driver's (the driver of a failed
// entrypoint may have ended cleanly). r may be a fresh row (a submission
// whose driver has not registered).
func mergeSubmission(r *jobRow, s *pb.JobSubmission) {
	r.typ = jobTypeSubmission
	r.submissionID = s.GetSubmissionId()
	if r.jobID == "" {
		r.jobID = hexID(s.GetJobId())
	}
	r.entrypoint = s.GetEntrypoint()
	r.status = enumName(s.GetStatus().String(), "JOB_STATUS_")
	r.message = s.GetMessage()
	if s.GetStatus() == pb.JobStatus_JOB_STATUS_FAILED {
		r.errorType = "JOB_ENTRYPOINT_COMMAND_ERROR"
	}
	r.startMs, r.endMs = s.GetStartUnixMs(), s.GetEndUnixMs()
	r.metadata = s.GetMetadata()
	if env := runtimeEnvOf(s.GetRuntimeEnv()); env != nil {
		r.runtimeEnv = env
	}
	r.driverNodeID = hexID(s.GetNodeId())
	switch s.GetStatus() {
	case pb.JobStatus_JOB_STATUS_SUCCEEDED, pb.JobStatus_JOB_STATUS_FAILED, pb.JobStatus_JOB_STATUS_STOPPED:
		r.exitCode, r.hasExit = int64(s.GetExitCode()), true
	}
	r.entrypointCPUs, r.entrypointGPUs, r.entrypointResources = s.GetEntrypointNumCpus(), s.GetEntrypointNumGpus(), s.GetEntrypointResources()
	r.submittedBy = s.GetSubmittedBy()
}

// mergeJobs makes the job rows: every control-store job, with its
// submission's fields when it has one, then the submissions whose driver
// has not registered (or never will).
func mergeJobs(jobs []*pb.JobInfo, subs []*pb.JobSubmission) []jobRow {
	bySub := make(map[string]*pb.JobSubmission, len(subs))
	for _, s := range subs {
		bySub[s.GetSubmissionId()] = s
	}
	used := map[string]bool{}
	out := make([]jobRow, 0, len(jobs)+len(subs))
	for _, j := range jobs {
		r := jobFromPB(j)
		if s := bySub[j.GetSubmissionId()]; s != nil && j.GetSubmissionId() != "" {
			mergeSubmission(&r, s)
			used[s.GetSubmissionId()] = true
		}
		out = append(out, r)
	}
	for _, s := range subs {
		if used[s.GetSubmissionId()] {
			continue
		}
		var r jobRow
		mergeSubmission(&r, s)
		out = append(out, r)
	}
	return out
}

// ---------------------------------------------------------------- actors

// deathCause is an actor's death cause as the API shows it.
type deathCause struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type actorRow struct {
	id, class, state, jobID, name, nodeID, namespace, address, workerID, ownerID, pgID string
	pid, numRestarts, maxRestarts                                                      int64
	detached                                                                           bool
	required                                                                           map[string]float64
	death                                                                              *deathCause
	runtimeEnv                                                                         *runtimeEnvJSON
}

var actorColumns = []column[actorRow]{
	strCol("actor_id", false, func(r *actorRow) string { return r.id }),
	strCol("class_name", false, func(r *actorRow) string { return r.class }),
	strCol("state", false, func(r *actorRow) string { return r.state }),
	strCol("job_id", false, func(r *actorRow) string { return r.jobID }),
	strCol("name", false, func(r *actorRow) string { return r.name }),
	strCol("node_id", false, func(r *actorRow) string { return r.nodeID }),
	intCol("pid", false, func(r *actorRow) int64 { return r.pid }),
	strCol("ray_namespace", false, func(r *actorRow) string { return r.namespace }),
	otherCol("required_resources", true, func(r *actorRow) any { return r.required }),
	otherCol("death_cause", true, func(r *actorRow) any { return r.death }),
	boolCol("is_detached", true, func(r *actorRow) bool { return r.detached }),
	strCol("placement_group_id", true, func(r *actorRow) string { return r.pgID }),
	intCol("num_restarts", true, func(r *actorRow) int64 { return r.numRestarts }),
	intCol("max_restarts", true, func(r *actorRow) int64 { return r.maxRestarts }),
	strCol("address", true, func(r *actorRow) string { return r.address }),
	strCol("worker_id", true, func(r *actorRow) string { return r.workerID }),
	strCol("owner_id", true, func(r *actorRow) string { return r.ownerID }),
	otherCol("runtime_env", true, func(r *actorRow) any { return r.runtimeEnv }),
}

func actorFromPB(a *pb.ActorInfo) actorRow {
	r := actorRow{id: hexID(a.GetActorId()), class: a.GetClassName(), state: enumName(a.GetState().String(), "ACTOR_STATE_"),
		jobID: hexID(a.GetJobId()), name: a.GetName(), nodeID: hexID(a.GetNodeId()), namespace: a.GetNamespace(),
		address: a.GetAddress(), workerID: hexID(a.GetWorkerId()), ownerID: hexID(a.GetOwnerId()),
		pgID: hexID(a.GetCreation().GetScheduling().GetPlacementGroupId()), pid: int64(a.GetPid()),
		numRestarts: int64(a.GetNumRestarts()), maxRestarts: int64(a.GetMaxRestarts()), detached: a.GetDetached(),
		required: a.GetCreation().GetResources().GetAmounts(), runtimeEnv: runtimeEnvOf(a.GetCreation().GetRuntimeEnv())}
	if a.GetState() == pb.ActorState_ACTOR_STATE_DEAD && a.GetDeathCause() != nil {
		r.death = &deathCause{Type: errs.KindName(errs.Kind(a.GetDeathCause().GetKind())), Message: errs.FromInfo(a.GetDeathCause()).Error()}
	}
	return r
}

// ---------------------------------------------------------------- placement groups

// bundleJSON is one bundle of a placement group.
type bundleJSON struct {
	BundleIndex   int                `json:"bundle_index"`
	NodeID        string             `json:"node_id"`
	UnitResources map[string]float64 `json:"unit_resources"`
}

type groupRow struct {
	id, name, jobID, state, strategy, namespace, pendingReason, creatorID string
	detached, infeasible                                                  bool
	createdMs                                                             int64
	bundles                                                               []bundleJSON
}

var groupColumns = []column[groupRow]{
	strCol("placement_group_id", false, func(r *groupRow) string { return r.id }),
	strCol("name", false, func(r *groupRow) string { return r.name }),
	strCol("creator_job_id", false, func(r *groupRow) string { return r.jobID }),
	strCol("state", false, func(r *groupRow) string { return r.state }),
	strCol("strategy", false, func(r *groupRow) string { return r.strategy }),
	otherCol("bundles", true, func(r *groupRow) any { return r.bundles }),
	boolCol("is_detached", true, func(r *groupRow) bool { return r.detached }),
	strCol("ray_namespace", true, func(r *groupRow) string { return r.namespace }),
	strCol("pending_reason", true, func(r *groupRow) string { return r.pendingReason }),
	boolCol("infeasible", true, func(r *groupRow) bool { return r.infeasible }),
	intCol("creation_time_ms", true, func(r *groupRow) int64 { return r.createdMs }),
	strCol("creator_id", true, func(r *groupRow) string { return r.creatorID }),
}

func groupFromPB(g *pb.PlacementGroupInfo) groupRow {
	r := groupRow{id: hexID(g.GetGroupId()), name: g.GetName(), jobID: hexID(g.GetJobId()),
		state: enumName(g.GetState().String(), "PLACEMENT_GROUP_STATE_"), strategy: enumName(g.GetStrategy().String(), "PLACEMENT_STRATEGY_"),
		namespace: g.GetNamespace(), pendingReason: g.GetPendingReason(), creatorID: hexID(g.GetCreatorId()),
		detached: g.GetDetached(), infeasible: g.GetInfeasible(), createdMs: g.GetCreatedUnixMs()}
	for i, b := range g.GetBundles() {
		r.bundles = append(r.bundles, bundleJSON{BundleIndex: i, NodeID: hexID(b.GetNodeId()), UnitResources: b.GetResources().GetAmounts()})
	}
	return r
}

// ---------------------------------------------------------------- workers

// Worker types, Ray's names.
const (
	workerTypeWorker = "WORKER"
	workerTypeDriver = "DRIVER"
)

type workerRow struct {
	id, typ, nodeID, ip, state, jobID, address, stdoutFile, stderrFile string
	alive                                                              bool
	pid, startMs                                                       int64
	actorIDs                                                           []string
	held                                                               map[string]float64
}

var workerColumns = []column[workerRow]{
	strCol("worker_id", false, func(r *workerRow) string { return r.id }),
	boolCol("is_alive", false, func(r *workerRow) bool { return r.alive }),
	strCol("worker_type", false, func(r *workerRow) string { return r.typ }),
	strCol("state", false, func(r *workerRow) string { return r.state }),
	strCol("node_id", false, func(r *workerRow) string { return r.nodeID }),
	strCol("ip", false, func(r *workerRow) string { return r.ip }),
	intCol("pid", false, func(r *workerRow) int64 { return r.pid }),
	strCol("job_id", false, func(r *workerRow) string { return r.jobID }),
	intCol("start_time_ms", true, func(r *workerRow) int64 { return r.startMs }),
	strCol("address", true, func(r *workerRow) string { return r.address }),
	otherCol("actor_ids", true, func(r *workerRow) any { return r.actorIDs }),
	otherCol("resources_held", true, func(r *workerRow) any { return r.held }),
	strCol("stdout_file", true, func(r *workerRow) string { return r.stdoutFile }),
	strCol("stderr_file", true, func(r *workerRow) string { return r.stderrFile }),
}

func workerFromPB(w *pb.WorkerInfo, nodeID, ip string) workerRow {
	return workerRow{id: hexID(w.GetWorkerId()), typ: workerTypeWorker, alive: true, state: w.GetState(), nodeID: nodeID, ip: ip,
		pid: int64(w.GetPid()), jobID: hexID(w.GetJobId()), startMs: w.GetStartUnixMs(), address: w.GetAddress(),
		held: w.GetHeld().GetAmounts(), stdoutFile: w.GetStdoutFile(), stderrFile: w.GetStderrFile()}
}

// driverRow is the worker row of a running job's driver.
func driverRow(j *pb.JobInfo) workerRow {
	return workerRow{id: hexID(j.GetDriverId()), typ: workerTypeDriver, alive: true, state: "DRIVER", ip: hostOf(j.GetDriverAddress()),
		jobID: hexID(j.GetJobId()), startMs: j.GetStartUnixMs(), address: j.GetDriverAddress()}
}

// ---------------------------------------------------------------- objects

type objectRow struct {
	id, nodeID, ip, state string
	size, pins            int64
}

var objectColumns = []column[objectRow]{
	strCol("object_id", false, func(r *objectRow) string { return r.id }),
	intCol("object_size", false, func(r *objectRow) int64 { return r.size }),
	strCol("state", false, func(r *objectRow) string { return r.state }),
	strCol("node_id", false, func(r *objectRow) string { return r.nodeID }),
	strCol("ip", false, func(r *objectRow) string { return r.ip }),
	intCol("pins", false, func(r *objectRow) int64 { return r.pins }),
}

func objectFromPB(o *pb.ObjectInfo, nodeID, ip string) objectRow {
	return objectRow{id: hexID(o.GetObjectId()), size: o.GetSize(), state: o.GetState(), nodeID: nodeID, ip: ip, pins: int64(o.GetPins())}
}
