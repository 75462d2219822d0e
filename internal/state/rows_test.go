package state

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func TestMergeJobs(t *testing.T) {
	j1, j2 := ids.New(), ids.New()
	jobs := []*pb.JobInfo{
		{JobId: j1.Bytes(), Entrypoint: "./driver", State: pb.JobState_JOB_STATE_RUNNING, DriverAddress: "10.0.0.1:5000", StartUnixMs: 10},
		{JobId: j2.Bytes(), Entrypoint: "./sub-driver", SubmissionId: "raysubmit_a", State: pb.JobState_JOB_STATE_FINISHED, StartUnixMs: 20},
	}
	subs := []*pb.JobSubmission{
		{SubmissionId: "raysubmit_a", Entrypoint: "python x.py", Status: pb.JobStatus_JOB_STATUS_FAILED, Message: "exit code 3", ExitCode: 3, JobId: j2.Bytes()},
		{SubmissionId: "raysubmit_b", Entrypoint: "sleep 100", Status: pb.JobStatus_JOB_STATUS_PENDING, Message: "waiting"},
	}
	rows := mergeJobs(jobs, subs)
	type view struct{ job, sub, typ, status, entry, errType string }
	var got []view
	for _, r := range rows {
		got = append(got, view{r.jobID, r.submissionID, r.typ, r.status, r.entrypoint, r.errorType})
	}
	want := []view{
		{j1.String(), "", "DRIVER", "RUNNING", "./driver", ""},
		{j2.String(), "raysubmit_a", "SUBMISSION", "FAILED", "python x.py", "JOB_ENTRYPOINT_COMMAND_ERROR"},
		{"", "raysubmit_b", "SUBMISSION", "PENDING", "sleep 100", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged jobs:\n got %+v\nwant %+v", got, want)
	}
	if rows[0].driver == nil || rows[0].driver.NodeIPAddress != "10.0.0.1" {
		t.Errorf("driver info = %+v", rows[0].driver)
	}
	if !rows[1].hasExit || rows[1].exitCode != 3 || rows[2].hasExit {
		t.Errorf("exit codes: %v %d, %v", rows[1].hasExit, rows[1].exitCode, rows[2].hasExit)
	}
}

func TestConvertersUseRayNames(t *testing.T) {
	n := nodeFromPB(&pb.NodeInfo{NodeId: ids.New().Bytes(), Address: "10.1.2.3:6000", State: pb.NodeState_NODE_STATE_DEAD}, "")
	if n.ip != "10.1.2.3" || n.state != "DEAD" || n.head {
		t.Errorf("node row %+v", n)
	}
	a := actorFromPB(&pb.ActorInfo{ActorId: ids.New().Bytes(), State: pb.ActorState_ACTOR_STATE_DEAD,
		DeathCause: &pb.ErrorInfo{Kind: pb.ErrorKind_ERROR_KIND_ACTOR_DIED, Reason: "killed by ray.Kill"}})
	if a.state != "DEAD" || a.death == nil || a.death.Message == "" || a.death.Type == "" {
		t.Errorf("actor row %+v, death %+v", a, a.death)
	}
	g := groupFromPB(&pb.PlacementGroupInfo{GroupId: ids.New().Bytes(), State: pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED,
		Strategy: pb.PlacementStrategy_PLACEMENT_STRATEGY_STRICT_SPREAD, Bundles: []*pb.Bundle{{Resources: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}}}})
	if g.state != "CREATED" || g.strategy != "STRICT_SPREAD" || len(g.bundles) != 1 || g.bundles[0].UnitResources["CPU"] != 1 {
		t.Errorf("group row %+v", g)
	}
}

func TestSummaries(t *testing.T) {
	ts := newTaskSummaries()
	for _, x := range [][3]string{
		{"main.f", taskTypeNormal, "FINISHED"},
		{"main.f", taskTypeNormal, "FINISHED"},
		{"main.f", taskTypeNormal, "FAILED"},
		{"main.Counter", taskTypeCreation, "FINISHED"},
		{"Inc", taskTypeActor, "RUNNING"},
	} {
		ts.add(x[0], x[1], x[2])
	}
	if ts.TotalTasks != 3 || ts.TotalActorScheduled != 1 || ts.TotalActorTasks != 1 ||
		!reflect.DeepEqual(ts.Summary["main.f"].StateCounts, map[string]int{"FINISHED": 2, "FAILED": 1}) ||
		ts.Summary["Inc"].Type != taskTypeActor {
		t.Errorf("task summary %+v", ts)
	}

	as := summarizeActors([]actorRow{{class: "A", state: "ALIVE"}, {class: "A", state: "DEAD"}, {class: "B", state: "ALIVE"}})
	if as.TotalActors != 3 || !reflect.DeepEqual(as.Summary["A"].StateCounts, map[string]int{"ALIVE": 1, "DEAD": 1}) || as.SummaryBy != "class" {
		t.Errorf("actor summary %+v", as)
	}

	os := summarizeObjects([]objectRow{
		{nodeID: "n1", state: "IN_MEMORY", size: mib},
		{nodeID: "n1", state: "SPILLED", size: 3 * mib},
		{nodeID: "n2", state: "IN_MEMORY", size: mib / 2},
	})
	if os.TotalObjects != 3 || os.TotalSizeMB != 4.5 || os.Summary["n1"].TotalSizeMB != 4 ||
		os.Summary["n1"].StateSizeMB["SPILLED"] != 3 || os.Summary["n2"].StateCounts["IN_MEMORY"] != 1 {
		t.Errorf("object summary %+v", os)
	}
	raw, _ := json.Marshal(os)
	var back map[string]any
	if json.Unmarshal(raw, &back) != nil || back["summary_by"] != "node" || back["callsite_enabled"] != false {
		t.Errorf("object summary JSON %s", raw)
	}
}
