package taskevents

import (
	"encoding/json"
	"testing"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func TestTimeline(t *testing.T) {
	s := NewStore(StoreConfig{})
	job, other := ids.New(), ids.New()
	nodeA, nodeB := ids.ID{1}, ids.ID{2}
	w1, w2, w3 := ids.ID{1, 1}, ids.ID{1, 2}, ids.ID{2, 1}
	add := func(job, node, worker ids.ID, pid int32, fn string, start, end int64, final pb.TaskStatus) ids.ID {
		id := ids.New()
		e := def(ev(id, 0, int64(PendingArgs), start-ms1, int64(Running), start), fn)
		if end != 0 {
			e.Changes = append(e.Changes, &pb.TaskStatusChange{Status: final, UnixNanos: end})
		}
		e.JobId, e.NodeId, e.WorkerId, e.Pid = job.Bytes(), node.Bytes(), worker.Bytes(), pid
		s.Add([]*pb.TaskEvent{e}, 0)
		return id
	}
	add(job, nodeB, w3, 30, "pkg.C", 5*ms1, 6*ms1, Finished)
	first := add(job, nodeA, w1, 10, "pkg.A", 2*ms1, 4*ms1, Finished)
	add(job, nodeA, w2, 20, "pkg.B", 3*ms1, 9*ms1, Failed)
	add(other, nodeA, w1, 10, "pkg.Other", 7*ms1, 8*ms1, Finished)
	s.Add([]*pb.TaskEvent{def(ev(ids.New(), 0, int64(PendingArgs), ms1), "pkg.NeverRan")}, 0)

	trace := s.Timeline(job.String(), 0)
	var meta, spans []TraceEvent
	for _, e := range trace {
		switch e.Ph {
		case "M":
			meta = append(meta, e)
		case "X":
			spans = append(spans, e)
		default:
			t.Fatalf("unexpected phase %q", e.Ph)
		}
	}
	names := map[[2]int]string{}
	for _, m := range meta {
		if m.Name == "process_name" || m.Name == "thread_name" {
			names[[2]int{m.Pid, m.Tid}] = m.Args["name"].(string)
		}
	}
	want := map[[2]int]string{
		{1, 0}: "Node " + nodeA.String(), {2, 0}: "Node " + nodeB.String(),
		{1, 1}: "Worker " + w1.String() + " (pid 10)", {1, 2}: "Worker " + w2.String() + " (pid 20)", {2, 1}: "Worker " + w3.String() + " (pid 30)",
	}
	for k, v := range want {
		if names[k] != v {
			t.Errorf("row %v named %q, want %q", k, names[k], v)
		}
	}
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3 (the job's tasks that ran): %+v", len(spans), spans)
	}
	a := spans[0] // in order of start
	if a.Name != "pkg.A" || a.Ts != 2000 || a.Dur != 2000 || a.Pid != 1 || a.Tid != 1 || a.Args["task_id"] != first.String() ||
		a.Args["state"] != "FINISHED" || a.Args["job_id"] != job.String() || a.Args["func_or_class_name"] != "pkg.A" {
		t.Fatalf("first span %+v", a)
	}
	if spans[1].Name != "pkg.B" || spans[1].Args["state"] != "FAILED" || spans[1].Tid != 2 {
		t.Fatalf("second span %+v", spans[1])
	}
	if spans[2].Pid != 2 || spans[2].Tid != 1 {
		t.Fatalf("third span on row %d/%d, want 2/1", spans[2].Pid, spans[2].Tid)
	}
	if _, err := json.Marshal(trace); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Timeline("", 0)); n != len(trace)+1 {
		t.Fatalf("every job: %d events, want %d", n, len(trace)+1)
	}
	if n := countX(s.Timeline("", 2)); n != 2 {
		t.Fatalf("limit 2: %d spans", n)
	}
	if got := s.Timeline("zz", 0); got != nil {
		t.Fatalf("malformed job: %v", got)
	}
	// A span still running ends now.
	add(job, nodeA, w1, 10, "pkg.Running", 10*ms1, 0, 0)
	for _, e := range s.Timeline(job.String(), 0) {
		if e.Name == "pkg.Running" && (e.Args["state"] != "RUNNING" || e.Dur <= 0) {
			t.Fatalf("running span %+v", e)
		}
	}
}

func countX(trace []TraceEvent) int {
	n := 0
	for _, e := range trace {
		if e.Ph == "X" {
			n++
		}
	}
	return n
}
