package logs

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseFileQuery(t *testing.T) {
	node := "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		query string
		want  fileQuery
		err   string // part of the error; "" for none
	}{
		{"node_id=" + node + "&filename=worker-a-1.out", fileQuery{NodeID: node, Filename: "worker-a-1.out", Suffix: "out", Attempt: -1}, ""},
		{"actor_id=ABCDEF12&lines=50&follow=true", fileQuery{ActorID: "abcdef12", Suffix: "out", Attempt: -1, Lines: 50, Follow: true}, ""},
		{"task_id=abcdef&suffix=err&attempt_number=2", fileQuery{TaskID: "abcdef", Suffix: "err", Attempt: 2}, ""},
		{"worker_id=1a2b3c4d5e6f&media_type=stream", fileQuery{WorkerID: "1a2b3c4d5e6f", Suffix: "out", Attempt: -1, Follow: true}, ""},
		{"pid=42&node_id=abcdef", fileQuery{Pid: 42, NodeID: "abcdef", Suffix: "out", Attempt: -1}, ""},
		{"submission_id=raysubmit_1&lines=-1", fileQuery{SubmissionID: "raysubmit_1", Suffix: "out", Attempt: -1}, ""},
		{"", fileQuery{}, "give one of filename, actor_id"},
		{"actor_id=abcdef&task_id=abcdef", fileQuery{}, "conflicting parameters actor_id and task_id"},
		{"filename=x.log", fileQuery{}, "filename needs node_id"},
		{"pid=42", fileQuery{}, "pid needs node_id"},
		{"pid=abc&node_id=abcdef", fileQuery{}, "want a process id"},
		{"actor_id=abc", fileQuery{}, "at least 6"},
		{"actor_id=zzzzzzzz", fileQuery{}, "hex digits"},
		{"actor_id=abcdef&suffix=both", fileQuery{}, "want out or err"},
		{"submission_id=x&suffix=err", fileQuery{}, "suffix applies to worker logs"},
		{"actor_id=abcdef&attempt_number=1", fileQuery{}, "attempt_number applies to task_id"},
		{"actor_id=abcdef&lines=x", fileQuery{}, "lines"},
		{"actor_id=abcdef&follow=maybe", fileQuery{}, "follow"},
		{"actor_id=abcdef&colour=red", fileQuery{}, `unknown parameter "colour"`},
		{"actor_id=abcdef&actor_id=abcdef", fileQuery{}, "given 2 times"},
		{"submission_id=../x", fileQuery{}, "want a job submission id"},
		{"submission_id=*", fileQuery{}, "want a job submission id"},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := parseFileQuery(q)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one containing %q", tc.query, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.query, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%q: got %+v, want %+v", tc.query, got, tc.want)
		}
	}
}

func TestWorkerGlob(t *testing.T) {
	for _, tc := range []struct {
		id     string
		pid    int
		suffix string
		want   string
	}{
		{"0123456789abcdef0123456789abcdef", 0, "out", "worker-456789abcdef-*.out"},
		{"456789abcdef", 7, "err", "worker-456789abcdef-7.err"},
		{"abcdef", 0, "out", "worker-*abcdef-*.out"},
		{"", 99, "out", "worker-*-99.out"},
	} {
		if got := workerGlob(tc.id, tc.pid, tc.suffix); got != tc.want {
			t.Errorf("workerGlob(%q, %d, %q) = %q, want %q", tc.id, tc.pid, tc.suffix, got, tc.want)
		}
	}
}

func TestCategory(t *testing.T) {
	for name, want := range map[string]string{
		"worker-1a2b3c4d5e6f-12.out":   "worker_out",
		"worker-1a2b3c4d5e6f-12.out.3": "worker_out",
		"worker-1a2b3c4d5e6f-12.err":   "worker_err",
		"worker-1a2b3c4d5e6f-12.err.1": "worker_err",
		"job-driver-raysubmit_1.log":   "job_driver",
		"mcp-memory-0-3fa2c1.log":      "mcp_server",
		"serve-shop-0-3fa2c1.log":      "serve_replica",
		"audit.log":                    "audit",
		"something.txt":                "misc",
	} {
		if got := category(name); got != want {
			t.Errorf("category(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestPickID(t *testing.T) {
	ids := []string{"aaaaaa0000000000000000000000bbbb", "aaaaaa1111111111111111111111cccc"}
	if id, _ := pickID(ids, "aaaaaa0000000000000000000000bbbb"); id != ids[0] {
		t.Fatal("exact id not picked")
	}
	if id, _ := pickID(ids, "11cccc"); id != ids[1] {
		t.Fatal("suffix not picked")
	}
	if id, amb := pickID(ids, "aaaaaa"); id != "" || len(amb) != 2 {
		t.Fatalf("ambiguous prefix: %q, %v", id, amb)
	}
	if id, amb := pickID(ids, "dddddd"); id != "" || len(amb) != 0 {
		t.Fatalf("no match: %q, %v", id, amb)
	}
}
