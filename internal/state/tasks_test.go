//go:build !windows

package state_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
)

// bareHead starts a head with no driver, for tests that feed task events
// themselves. tb's cleanup stops it.
func bareHead(tb testing.TB) *node.Head {
	tb.Helper()
	tb.Setenv("RAYGO_TMPDIR", tb.TempDir())
	tb.Setenv(resources.FakeGPUsEnv, "0")
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{"CPU": 1}
	rc.SessionDir = tb.TempDir()
	rc.ObjectStoreBytes = 16 << 20
	h, err := node.StartHead(node.HeadConfig{GCS: gcs.DefaultConfig(), Raylet: rc, Token: testToken})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Stop)
	return h
}

// reportBatch is how many events one report carries: well under the
// control store's 1 MiB limit on a report's size.
const reportBatch = 2000

// reportTasks makes n finished tasks of job (functions f0…f3, every
// seventh one failed), and reports them to the head's control store over
// gRPC as workers do; dropped is reported as events lost at the source.
func reportTasks(tb testing.TB, h *node.Head, job ids.ID, n int, dropped int64) []ids.ID {
	tb.Helper()
	conn, err := rpc.Dial(h.GCSAddress(), testToken)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	cs := pb.NewControlStoreClient(conn)
	nodeID, worker := h.Raylet().NodeID().Bytes(), ids.New().Bytes()
	start := time.Now().UnixNano()
	out := make([]ids.ID, 0, n)
	var batch []*pb.TaskEvent
	flush := func(dropped int64) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cs.ReportTaskEvents(ctx, &pb.ReportTaskEventsRequest{Events: batch, Dropped: dropped}); err != nil {
			tb.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		id := ids.New()
		out = append(out, id)
		t0 := start + int64(i)*1000
		ev := &pb.TaskEvent{TaskId: id.Bytes(), JobId: job.Bytes(), HasDefinition: true,
			Name: fmt.Sprintf("f%d", i%4), Function: fmt.Sprintf("main.f%d", i%4), Type: pb.TaskType_TASK_TYPE_NORMAL,
			Required: &pb.Resources{Amounts: map[string]float64{"CPU": 1}},
			NodeId:   nodeID, WorkerId: worker, Pid: 4242,
			Changes: []*pb.TaskStatusChange{
				{Status: pb.TaskStatus_TASK_STATUS_PENDING_ARGS_AVAIL, UnixNanos: t0},
				{Status: pb.TaskStatus_TASK_STATUS_RUNNING, UnixNanos: t0 + 100},
			}}
		if i%7 == 0 {
			ev.Changes = append(ev.Changes, &pb.TaskStatusChange{Status: pb.TaskStatus_TASK_STATUS_FAILED, UnixNanos: t0 + 200})
			ev.Error = &pb.ErrorInfo{Kind: pb.ErrorKind_ERROR_KIND_TASK, Message: "boom"}
		} else {
			ev.Changes = append(ev.Changes, &pb.TaskStatusChange{Status: pb.TaskStatus_TASK_STATUS_FINISHED, UnixNanos: t0 + 200})
		}
		batch = append(batch, ev)
		if len(batch) == reportBatch {
			flush(0)
		}
	}
	flush(dropped)
	return out
}

func TestStateAPITasks(t *testing.T) {
	h := bareHead(t)
	th := &testHead{t: t, head: h, url: h.APIURL()}
	job := ids.New()
	tasks := reportTasks(t, h, job, 70, 3)

	a := th.list("/api/v0/tasks")
	rows := a.rows(t)
	if a.Total != 70 || a.NumFiltered != 70 || len(rows) != 70 {
		t.Fatalf("tasks: total %d, filtered %d, %d rows", a.Total, a.NumFiltered, len(rows))
	}
	if rows[0]["task_id"] != tasks[69].String() {
		t.Errorf("first row %v, want the newest task %s", rows[0]["task_id"], tasks[69])
	}
	if len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], "3 task events were dropped") {
		t.Errorf("warnings = %q, want the 3 dropped events said", a.Warnings)
	}

	failed := th.list("/api/v0/tasks?" + filter("state=failed", "job_id="+job.Short())).rows(t)
	if len(failed) != 10 {
		t.Fatalf("failed tasks of the job: %d, want 10", len(failed))
	}
	for _, r := range failed {
		if r["state"] != "FAILED" || r["error_type"] == "" {
			t.Errorf("failed row %v", r)
		}
	}
	if a := th.list("/api/v0/tasks?limit=5&" + filter("func_or_class_name!=main.f0")); len(a.rows(t)) != 5 || a.NumFiltered != 52 {
		t.Errorf("func_or_class_name!=main.f0 limit 5: %d rows, num_filtered %d; want 5, 52", len(a.rows(t)), a.NumFiltered)
	}
	if code, a := th.get("/api/v0/tasks?" + filter("worker_pid=x")); code != http.StatusBadRequest || !strings.Contains(a.Error["message"], "worker_pid is an integer") {
		t.Errorf("worker_pid=x: HTTP %d %v", code, a.Error)
	}

	code, one := th.get("/api/v0/tasks/" + tasks[7].Short())
	if code != http.StatusOK {
		t.Fatalf("get task by short id: HTTP %d %v", code, one.Error)
	}
	row := one.row(t)
	if row["task_id"] != tasks[7].String() || row["state"] != "FAILED" || row["error_message"] == "" || row["events"] == nil {
		t.Errorf("task %s = %v", tasks[7], row)
	}
	if code, _ := th.get("/api/v0/tasks/" + tasks[7].String() + "?attempt=1"); code != http.StatusNotFound {
		t.Errorf("attempt 1 of a task with one: HTTP %d, want 404", code)
	}
	if code, _ := th.get("/api/v0/tasks/" + ids.New().String()); code != http.StatusNotFound {
		t.Errorf("unknown task: HTTP %d, want 404", code)
	}

	c, err := apiclient.New(h.APIURL(), testToken)
	if err != nil {
		t.Fatal(err)
	}
	res, sum, err := c.Summary(context.Background(), "tasks", "job_id="+job.String())
	if err != nil {
		t.Fatal(err)
	}
	var ts struct {
		Summary map[string]struct {
			Type        string         `json:"type"`
			StateCounts map[string]int `json:"state_counts"`
		} `json:"summary"`
		TotalTasks int `json:"total_tasks"`
	}
	if err := json.Unmarshal(sum, &ts); err != nil {
		t.Fatal(err)
	}
	// Tasks 0, 7, 14, … fail: of f0 (i%4==0) those with i%28==0: 0, 28, 56.
	if ts.TotalTasks != 70 || res.NumFiltered != 70 || ts.Summary["main.f0"].StateCounts["FAILED"] != 3 ||
		ts.Summary["main.f0"].StateCounts["FINISHED"] != 15 || ts.Summary["main.f0"].Type != "NORMAL_TASK" {
		t.Errorf("summary: %s (num_filtered %d)", sum, res.NumFiltered)
	}
}

// BenchmarkListTasks100k measures a list of 100,000 tasks over HTTP, as
// `raygo list tasks --limit 100000` asks for it: the server's answer, and
// the Go client's decoding of it into rows.
func BenchmarkListTasks100k(b *testing.B) {
	h := bareHead(b)
	reportTasks(b, h, ids.New(), 100_000, 0)
	c, err := apiclient.New(h.APIURL(), testToken)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			body, err := c.ListRaw(ctx, "tasks", apiclient.ListOptions{Limit: 100_000})
			if err != nil {
				b.Fatal(err)
			}
			n, _ := drain(body)
			b.ReportMetric(float64(n), "bytes/op")
		}
	})
	b.Run("decoded", func(b *testing.B) {
		for b.Loop() {
			var out struct {
				Rows []map[string]json.RawMessage `json:"result"`
			}
			if err := c.ListTo(ctx, "tasks", apiclient.ListOptions{Limit: 100_000}, &out); err != nil {
				b.Fatal(err)
			}
			if len(out.Rows) != 100_000 {
				b.Fatalf("%d rows", len(out.Rows))
			}
		}
	})
}

func drain(body interface {
	Read([]byte) (int, error)
	Close() error
}) (int, error) {
	defer body.Close()
	buf := make([]byte, 256<<10)
	total := 0
	for {
		n, err := body.Read(buf)
		total += n
		if err != nil {
			return total, nil
		}
	}
}
