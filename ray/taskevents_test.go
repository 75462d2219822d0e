//go:build !windows

package ray_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/taskevents"
	"github.com/raygo/raygo/ray"
)

var teFail = ray.Func1(func(ctx context.Context, x int) (int, error) { return 0, errors.New("deliberate failure") },
	ray.RegisterName("test.TaskEventsFail"))

// TestTaskEvents runs tasks, a failing task, nested tasks and an actor on
// an embedded cluster (real worker processes, real gRPC), waits for their
// events to reach the head, and checks the rows and the timeline served
// over HTTP.
func TestTaskEvents(t *testing.T) {
	ctx := initCluster(t)
	store, apiURL, token := ray.HeadForTest()
	if store == nil {
		t.Fatal("no embedded head")
	}
	for i := range 20 {
		if v, err := Square.Remote(ctx, i).Get(ctx); err != nil || v != i*i {
			t.Fatalf("Square(%d) = %d, %v", i, v, err)
		}
	}
	if _, err := teFail.Options(ray.MaxRetries(0)).Remote(ctx, 1).Get(ctx); err == nil {
		t.Fatal("the failing task succeeded")
	}
	if _, err := SquareTree.Remote(ctx, 3).Get(ctx); err != nil {
		t.Fatal(err)
	}
	c := Counter.Remote(ctx)
	for range 3 {
		if _, err := Inc.Remote(ctx, c).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}

	byFn := func(fn string) []taskevents.Task {
		rows, _ := store.Tasks(func(t *taskevents.Task) bool { return t.FuncOrClassName == fn }, 0)
		return rows
	}
	// Square: 20 from the driver, 3 from SquareTree; all reported by
	// both their owner and their worker once they are FINISHED with a
	// worker and a start time.
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := 0
		for _, r := range byFn("test.Square") {
			// The owner's events come in its own flushes: one may hold
			// the task's first events and the next SUBMITTED_TO_WORKER.
			submitted := slices.ContainsFunc(r.Events, func(e taskevents.StateChange) bool { return e.State == "SUBMITTED_TO_WORKER" })
			if r.State == "FINISHED" && r.WorkerID != "" && r.StartTimeMs != 0 && r.CreationTimeMs != 0 && submitted {
				done++
			}
		}
		inc := 0
		for _, r := range byFn("test.Counter.Inc") {
			if r.State == "FINISHED" && r.WorkerID != "" {
				inc++
			}
		}
		if done == 23 && inc == 3 && len(byFn("test.TaskEventsFail")) == 1 && len(byFn("test.Counter")) == 1 {
			break
		}
		if time.Now().After(deadline) {
			rows, total := store.Tasks(nil, 0)
			t.Fatalf("events not all at the head after 30s: %d Square finished, %d Inc finished; %d rows: %+v", done, inc, total, rows)
		}
		time.Sleep(50 * time.Millisecond)
	}

	fail := byFn("test.TaskEventsFail")[0]
	if fail.State != "FAILED" || fail.ErrorType != "TASK_EXECUTION_EXCEPTION" || !strings.Contains(fail.ErrorMessage, "deliberate failure") || fail.Type != "NORMAL_TASK" {
		t.Fatalf("failed task row %+v", fail)
	}
	tree := byFn("test.SquareTree")
	if len(tree) != 1 {
		t.Fatalf("%d SquareTree rows", len(tree))
	}
	children, fromDriver := 0, 0
	for _, r := range byFn("test.Square") {
		switch r.ParentTaskID {
		case tree[0].TaskID:
			children++
		case "":
			fromDriver++
		}
		if r.RequiredResources["CPU"] != 1 || r.JobID == "" || r.NodeID == "" || r.WorkerPID == 0 {
			t.Fatalf("row %+v", r)
		}
		want := []string{"PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED"}
		var got []string
		for _, e := range r.Events {
			got = append(got, e.State)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if children != 3 || fromDriver != 20 {
		t.Fatalf("%d Square rows with SquareTree as parent (want 3), %d from the driver (want 20)", children, fromDriver)
	}
	ctor := byFn("test.Counter")[0]
	inc := byFn("test.Counter.Inc")
	if ctor.Type != "ACTOR_CREATION_TASK" || ctor.ActorID == "" || inc[0].Type != "ACTOR_TASK" || inc[0].ActorID != ctor.ActorID {
		t.Fatalf("actor rows: creation %+v, call %+v", ctor, inc[0])
	}
	counts := store.CountByState()
	if counts["FINISHED"] < 28 || counts["FAILED"] < 1 {
		t.Fatalf("CountByState = %v", counts)
	}

	// The timeline over HTTP: rows named, spans of the tasks.
	client, err := apiclient.New(apiURL, token)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := client.Timeline(ctx, fail.JobID, 0, &buf); err != nil {
		t.Fatal(err)
	}
	var trace []taskevents.TraceEvent
	if err := json.Unmarshal(buf.Bytes(), &trace); err != nil {
		t.Fatalf("timeline is not a JSON array of trace events: %v\n%.500s", err, buf.String())
	}
	spans := map[string]int{}
	rows := map[string]bool{}
	for _, e := range trace {
		switch {
		case e.Ph == "X":
			spans[e.Name]++
			if e.Dur <= 0 || e.Ts <= 0 || e.Args["task_id"] == "" || e.Args["job_id"] != fail.JobID {
				t.Fatalf("span %+v", e)
			}
		case e.Ph == "M" && (e.Name == "process_name" || e.Name == "thread_name"):
			rows[e.Args["name"].(string)] = true
		}
	}
	if spans["test.Square"] != 23 || spans["test.TaskEventsFail"] != 1 || spans["test.Counter.Inc"] != 3 || spans["test.Counter"] != 1 {
		t.Fatalf("spans by name %v", spans)
	}
	if !rows["Node "+ctor.NodeID] || !rows["Worker "+ctor.WorkerID+" (pid "+itoa(int(ctor.WorkerPID))+")"] {
		t.Fatalf("rows %v lack the actor's node and worker", rows)
	}
	if _, err := client.Timeline(ctx, "not-an-id", 0, &buf); !strings.Contains(errString(err), "job_id") {
		t.Fatalf("a malformed job id: %v", err)
	}
	if st := ray.DriverTaskEventsForTest(); st.Dropped != 0 || st.Reported == 0 {
		t.Fatalf("driver buffer %+v", st)
	}
}

// TestTaskEventsOff: with TaskEvents(false) neither the driver nor its
// workers report anything.
func TestTaskEventsOff(t *testing.T) {
	ctx := initCluster(t, ray.TaskEvents(false))
	store, _, _ := ray.HeadForTest()
	for i := range 5 {
		if _, err := Square.Remote(ctx, i).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Workers report every second: wait past that before looking.
	time.Sleep(1500 * time.Millisecond)
	if rows, total := store.Tasks(nil, 0); total != 0 {
		t.Fatalf("%d rows with events off: %+v", total, rows)
	}
}

// TestTaskEventsBudget: past its budget (RAYGO_TASK_EVENTS_RATE) the
// driver submits tasks unrecorded, and their workers record nothing of
// them either: the head holds whole rows for the recorded ones (FINISHED,
// with their worker) and a count of the others.
func TestTaskEventsBudget(t *testing.T) {
	t.Setenv(taskevents.EnvRate, "2") // a burst of 4, then 2 a second
	ctx := initCluster(t)
	store, _, _ := ray.HeadForTest()
	const n = 40
	refs := make([]ray.ObjectRef[int], n)
	for i := range n {
		refs[i] = Square.Remote(ctx, i)
	}
	for i, r := range refs {
		if v, err := r.Get(ctx); err != nil || v != i*i {
			t.Fatalf("Square(%d) = %d, %v", i, v, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Every row but the driver's own: a worker recording a task its
		// owner did not would add a row with no function.
		rows, _ := store.Tasks(func(t *taskevents.Task) bool { return t.Type != "DRIVER_TASK" }, 0)
		finished := 0
		for _, r := range rows {
			if r.FuncOrClassName == "test.Square" && r.State == "FINISHED" && r.WorkerID != "" && r.CreationTimeMs != 0 && r.StartTimeMs != 0 {
				finished++
			}
		}
		st := store.Stats()
		if int(st.NotRecorded)+len(rows) > n {
			t.Fatalf("%d rows and %d not recorded, more than the %d tasks: %+v", len(rows), st.NotRecorded, n, rows)
		}
		if finished == len(rows) && int(st.NotRecorded)+len(rows) == n {
			if len(rows) < 4 || len(rows) > n/2 {
				t.Fatalf("%d of %d tasks recorded: want the burst of 4 and a few more", len(rows), n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d rows (%d finished with a worker), %d not recorded; want rows + not recorded = %d and every row whole: %+v",
				len(rows), finished, st.NotRecorded, n, rows)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTaskEventsBadRate: a budget that is not a number fails Init with
// an error naming the variable, and a later Init works.
func TestTaskEventsBadRate(t *testing.T) {
	t.Setenv(taskevents.EnvRate, "-3")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := ray.Init(ctx)
	if err == nil {
		ray.Shutdown()
		t.Fatal("Init accepted RAYGO_TASK_EVENTS_RATE=-3")
	}
	if !strings.Contains(err.Error(), taskevents.EnvRate) {
		t.Fatalf("Init: %v; want the error to name %s", err, taskevents.EnvRate)
	}
	t.Setenv(taskevents.EnvRate, "")
	ctx = initCluster(t) // the failed Init left nothing behind
	if v, err := Square.Remote(ctx, 3).Get(ctx); err != nil || v != 9 {
		t.Fatalf("Square(3) after a failed Init = %d, %v", v, err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
