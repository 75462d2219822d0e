package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/session"
)

func TestStreamListMatchesEncodingJSON(t *testing.T) {
	body := `{"total":3, "num_after_truncation":3,"num_filtered":2,"partial_failure_warning":"node x","warnings":["a \"b\""],
	"result":[ {"id":"a\\u00e9\"q","n":1,"m":{"k":[1,{"x":"}"}]},"b":true,"z":null},{"n":-2.5e3,"id":"plain"} , {} ],"extra":[1,"]"]}`
	var want struct {
		Result []map[string]json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatal(err)
	}
	keys := []string{"id", "n", "m", "missing"}
	// Whole, and a byte at a time (every value split across reads).
	for _, r := range []io.Reader{strings.NewReader(body), iotest.OneByteReader(strings.NewReader(body))} {
		var got [][]json.RawMessage
		a, err := streamList(r, func(row []byte) error {
			vals := make([]json.RawMessage, len(keys))
			if err := pickFields(row, keys, vals); err != nil {
				return err
			}
			for i := range vals {
				vals[i] = append(json.RawMessage(nil), vals[i]...)
			}
			got = append(got, vals)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if a.Total != 3 || a.NumFiltered != 2 || a.PartialFailure != "node x" || !reflect.DeepEqual(a.Warnings, []string{`a "b"`}) || a.rows != 3 {
			t.Errorf("meta = %+v", a)
		}
		if len(got) != len(want.Result) {
			t.Fatalf("%d rows, want %d", len(got), len(want.Result))
		}
		for i := range want.Result {
			for j, k := range keys {
				if string(got[i][j]) != string(want.Result[i][k]) {
					t.Errorf("row %d %s = %s, want %s", i, k, got[i][j], want.Result[i][k])
				}
			}
		}
	}
	for _, bad := range []string{`{"result":[{"a":1}`, `{"result":[{"a" 1}]}`, `{"total":1}`, `[1]`, `{"result":["x]}`, `{"result":[1 2]}`, ``} {
		_, err := streamList(strings.NewReader(bad), func(row []byte) error { return pickFields(row, keys, make([]json.RawMessage, len(keys))) })
		if err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func FuzzStreamList(f *testing.F) {
	f.Add(`{"total":1,"result":[{"a":"x\"y","b":{"c":[1,2,"]"]}},{"a":1}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		var want struct {
			Result []map[string]json.RawMessage `json:"result"`
		}
		if json.Unmarshal([]byte(s), &want) != nil || want.Result == nil || !strings.HasPrefix(strings.TrimSpace(s), "{") {
			return
		}
		var got [][]json.RawMessage
		_, err := streamList(iotest.HalfReader(strings.NewReader(s)), func(row []byte) error {
			vals := make([]json.RawMessage, 2)
			if err := pickFields(row, []string{"a", "b"}, vals); err != nil {
				return err
			}
			got = append(got, []json.RawMessage{append([]byte(nil), vals[0]...), append([]byte(nil), vals[1]...)})
			return nil
		})
		if err != nil {
			return // duplicate "result" keys and other corners encoding/json forgives
		}
		for i := range min(len(got), len(want.Result)) {
			for j, k := range []string{"a", "b"} {
				w := want.Result[i][k]
				if w == nil {
					continue
				}
				var x, y any
				_ = json.Unmarshal(w, &x)
				if json.Unmarshal(got[i][j], &y) != nil || !reflect.DeepEqual(x, y) {
					t.Fatalf("%s: row %d %s = %s, want %s", s, i, k, got[i][j], w)
				}
			}
		}
	})
}

func TestAppendCell(t *testing.T) {
	for _, tc := range []struct {
		key, raw, want string
	}{
		{"node_id", `"0123456789abcdef0123456789abcdef"`, "456789abcdef"},
		{"name", `"a\tb\nc"`, "a b c"},
		{"name", `"caf\u00e9"`, "café"},
		{"object_size", `2097152`, "2.0MiB"},
		{"pid", `42`, "42"},
		{"resources_total", `{"memory":1073741824,"CPU":4,"GPU":0.5}`, "CPU: 4, GPU: 0.5, memory: 1.0GiB"},
		{"error_type", `null`, ""},
		{"is_head_node", `true`, "true"},
	} {
		if got := string(appendCell(nil, tc.key, json.RawMessage(tc.raw))); got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.key, tc.raw, got, tc.want)
		}
	}
}

// reportTasks feeds n finished tasks of job to the control store at addr
// over gRPC, as workers report them.
func reportTasks(t testing.TB, addr, token string, job ids.ID, n int) []ids.ID {
	t.Helper()
	conn, err := rpc.Dial(addr, token)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := pb.NewControlStoreClient(conn)
	var batch []*pb.TaskEvent
	out := make([]ids.ID, 0, n)
	now := time.Now().UnixNano()
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cs.ReportTaskEvents(ctx, &pb.ReportTaskEventsRequest{Events: batch}); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		id := ids.New()
		out = append(out, id)
		status := pb.TaskStatus_TASK_STATUS_FINISHED
		if i%5 == 0 {
			status = pb.TaskStatus_TASK_STATUS_RUNNING
		}
		batch = append(batch, &pb.TaskEvent{TaskId: id.Bytes(), JobId: job.Bytes(), HasDefinition: true, Name: fmt.Sprintf("square-%d", i%3),
			Function: "main.square", Type: pb.TaskType_TASK_TYPE_NORMAL, Pid: 77,
			Changes: []*pb.TaskStatusChange{{Status: pb.TaskStatus_TASK_STATUS_PENDING_ARGS_AVAIL, UnixNanos: now}, {Status: status, UnixNanos: now + 1000}}})
		if len(batch) == 2000 {
			flush()
		}
	}
	flush()
	return out
}

func TestListGetSummary(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	r := e.raygo("start", "--head", "--port", "0", "--num-cpus", "2", "--dashboard-port", "0")
	if r.code != 0 {
		t.Fatalf("start --head: %v", r)
	}
	t.Cleanup(func() { e.raygo("stop", "--force") })
	addr, _ := e.latest().ReadFile(addressFile)
	token, _ := e.latest().ReadFile(tokenFile)
	job := ids.New()
	tasks := reportTasks(t, addr, token, job, 10)

	r = e.raygo("list", "nodes")
	if r.code != 0 || !strings.Contains(r.stdout, "NODE_ID") || !strings.Contains(r.stdout, "ALIVE") || !strings.Contains(r.stdout, "CPU: 2") {
		t.Errorf("list nodes: %v", r)
	}
	r = e.raygo("list", "tasks", "--filter", "state=running", "--filter", "job_id="+job.Short())
	if r.code != 0 || strings.Count(r.stdout, "RUNNING") != 2 || !strings.Contains(r.stdout, tasks[5].Short()) {
		t.Errorf("list running tasks: %v", r)
	}
	r = e.raygo("list", "tasks", "--limit", "3")
	if r.code != 0 || strings.Count(strings.TrimSpace(r.stdout), "\n") != 3 || !strings.Contains(r.stderr, "Showing 3 of 10 tasks") {
		t.Errorf("list tasks --limit 3: %v", r)
	}
	r = e.raygo("list", "tasks", "--format", "json", "--detail", "--limit", "2")
	var rows []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil || len(rows) != 2 || rows[0]["task_id"] != tasks[9].String() || rows[0]["events"] == nil {
		t.Errorf("list tasks --format json --detail: %v", r)
	}
	r = e.raygo("list", "placement-groups", "--format", "yaml")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list placement-groups --format yaml: %v", r)
	}
	r = e.raygo("get", "tasks", tasks[3].Short())
	if r.code != 0 || !strings.Contains(r.stdout, "task_id: "+tasks[3].String()) || !strings.Contains(r.stdout, "func_or_class_name: main.square") {
		t.Errorf("get tasks SHORT: %v", r)
	}
	r = e.raygo("summary", "tasks")
	if r.code != 0 || !strings.Contains(r.stdout, "total_tasks: 10") || !strings.Contains(r.stdout, "FINISHED: 8, RUNNING: 2") {
		t.Errorf("summary tasks: %v", r)
	}
	r = e.raygo("summary", "actors", "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"total_actors": 0`) {
		t.Errorf("summary actors --format json: %v", r)
	}

	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"list", "gizmos"}, 2, `unknown kind "gizmos"`},
		{[]string{"list", "nodes", "--format", "xml"}, 2, `unknown format "xml"`},
		{[]string{"list", "nodes", "--limit", "0"}, 2, "--limit 0"},
		{[]string{"list", "nodes", "--filter", "colour=red"}, 1, `"colour" is no column; filter on one of node_id`},
		{[]string{"list", "tasks", "--filter", "state"}, 1, "key=value"},
		{[]string{"get", "actors", "abc"}, 1, "at least 6"},
		{[]string{"get", "actors", ids.New().String()}, 1, "no actor has id"},
		{[]string{"get", "nodes"}, 2, "takes KIND and ID"},
		{[]string{"summary", "nodes"}, 2, "no summary of nodes"},
	} {
		r := e.raygo(bad.args...)
		if r.code != bad.code || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("raygo %s: want exit %d and %q; %v", strings.Join(bad.args, " "), bad.code, bad.want, r)
		}
	}
}

// BenchmarkListTasks100k runs `raygo list tasks --limit 100000` end to
// end (the binary, against a head holding 100,000 tasks), as a table and
// as JSON.
func BenchmarkListTasks100k(b *testing.B) {
	root := filepath.Join(b.TempDir(), "sessions")
	raygo := func(args ...string) string {
		b.Helper()
		cmd := exec.Command(raygoBin, args...)
		cmd.Env = append(os.Environ(), "RAYGO_TMPDIR="+root)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("raygo %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	raygo("start", "--head", "--port", "0", "--num-cpus", "1", "--dashboard-port", "0")
	b.Cleanup(func() { raygo("stop", "--force") })
	link, err := os.Readlink(filepath.Join(root, "session_latest"))
	if err != nil {
		b.Fatal(err)
	}
	sess := session.Dir(link)
	addr, _ := sess.ReadFile(addressFile)
	token, _ := sess.ReadFile(tokenFile)
	reportTasks(b, addr, token, ids.New(), 100_000)
	for _, format := range []string{"table", "json"} {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				if out := raygo("list", "tasks", "--limit", "100000", "--format", format); strings.Count(out, "\n") < 100_000 {
					b.Fatalf("%d lines", strings.Count(out, "\n"))
				}
			}
		})
	}
}
