package jobs

import (
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

func node(id string, total, avail resources.Set) scheduler.Node {
	return scheduler.Node{ID: id, Address: id + ":1", Alive: true, Total: total, Available: avail}
}

func TestPlacement(t *testing.T) {
	busy := node("aa", resources.Set{"CPU": 4}, resources.Set{"CPU": 0})
	free := node("bb", resources.Set{"CPU": 4}, resources.Set{"CPU": 4})
	gpu := node("cc", resources.Set{"CPU": 4, "GPU": 1}, resources.Set{"CPU": 4, "GPU": 1})
	for _, tc := range []struct {
		name  string
		want  resources.Set
		nodes []scheduler.Node
		kind  placeKind
		first string
		msg   string
	}{
		{"no resources: any node", resources.Set{}, []scheduler.Node{busy, free}, placeOn, "", ""},
		{"room on one", resources.Set{"CPU": 2}, []scheduler.Node{busy, free}, placeOn, "bb", ""},
		{"gpu goes to the gpu node", resources.Set{"GPU": 1}, []scheduler.Node{free, gpu}, placeOn, "cc", ""},
		{"busy: wait", resources.Set{"CPU": 2}, []scheduler.Node{busy}, placeWait, "", "free now: waiting"},
		{"never", resources.Set{"GPU": 2}, []scheduler.Node{busy, gpu}, placeNever, "", "can ever hold"},
		{"no nodes", resources.Set{"CPU": 1}, nil, placeNever, "", "no alive nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, order, msg := placement(tc.want, tc.nodes, 1)
			if kind != tc.kind {
				t.Fatalf("kind %v, want %v (%s)", kind, tc.kind, msg)
			}
			if tc.first != "" && (len(order) == 0 || order[0].ID != tc.first) {
				t.Fatalf("order %v, want %s first", order, tc.first)
			}
			if kind == placeOn && len(order) == 0 {
				t.Fatal("no node to try")
			}
			for _, n := range order {
				if !tc.want.Fits(n.Available) {
					t.Fatalf("would try %s, which has no room", n.ID)
				}
			}
			if !strings.Contains(msg, tc.msg) {
				t.Fatalf("message %q lacks %q", msg, tc.msg)
			}
		})
	}
}

func TestExited(t *testing.T) {
	now := time.UnixMilli(5000)
	for _, tc := range []struct {
		name   string
		from   pb.JobStatus
		req    *pb.EntrypointExitedRequest
		by     string
		status pb.JobStatus
		msg    string
		change bool
	}{
		{"success", pb.JobStatus_JOB_STATUS_RUNNING, &pb.EntrypointExitedRequest{ExitCode: 0}, "", pb.JobStatus_JOB_STATUS_SUCCEEDED, "successfully", true},
		{"failure", pb.JobStatus_JOB_STATUS_RUNNING, &pb.EntrypointExitedRequest{ExitCode: 3, Message: "exited with code 3"}, "",
			pb.JobStatus_JOB_STATUS_FAILED, "exited with code 3", true},
		{"stopped", pb.JobStatus_JOB_STATUS_RUNNING, &pb.EntrypointExitedRequest{ExitCode: -1, Stopped: true}, "ci",
			pb.JobStatus_JOB_STATUS_STOPPED, "stopped by ci", true},
		{"exit before the start reply", pb.JobStatus_JOB_STATUS_PENDING, &pb.EntrypointExitedRequest{ExitCode: 0}, "",
			pb.JobStatus_JOB_STATUS_SUCCEEDED, "successfully", true},
		{"ended already", pb.JobStatus_JOB_STATUS_STOPPED, &pb.EntrypointExitedRequest{ExitCode: 0}, "", pb.JobStatus_JOB_STATUS_STOPPED, "before", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &pb.JobSubmission{Status: tc.from, Message: "before"}
			if got := exited(s, tc.req, tc.by, now); got != tc.change {
				t.Fatalf("changed %t, want %t", got, tc.change)
			}
			if s.GetStatus() != tc.status || !strings.Contains(s.GetMessage(), tc.msg) {
				t.Fatalf("%v %q, want %v with %q", s.GetStatus(), s.GetMessage(), tc.status, tc.msg)
			}
			if tc.change && (s.GetEndUnixMs() != 5000 || s.GetExitCode() != tc.req.GetExitCode()) {
				t.Fatalf("end %d exit %d", s.GetEndUnixMs(), s.GetExitCode())
			}
		})
	}
}

func TestPrune(t *testing.T) {
	var subs []*pb.JobSubmission
	add := func(id string, st pb.JobStatus, end int64) {
		subs = append(subs, &pb.JobSubmission{SubmissionId: id, Status: st, EndUnixMs: end})
	}
	add("running", pb.JobStatus_JOB_STATUS_RUNNING, 0)
	add("old", pb.JobStatus_JOB_STATUS_SUCCEEDED, 10)
	add("mid", pb.JobStatus_JOB_STATUS_FAILED, 20)
	add("new", pb.JobStatus_JOB_STATUS_STOPPED, 30)
	add("pending", pb.JobStatus_JOB_STATUS_PENDING, 0)
	for _, tc := range []struct {
		keep int
		want string
	}{{3, ""}, {2, "old"}, {1, "old mid"}, {0, "old mid new"}} {
		if got := strings.Join(prune(subs, tc.keep), " "); got != tc.want {
			t.Errorf("keep %d: dropped %q, want %q", tc.keep, got, tc.want)
		}
	}
}
