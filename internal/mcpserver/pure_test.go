package mcpserver

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/state"
)

func TestCursorRoundTrip(t *testing.T) {
	filters := []string{"state=ALIVE", "job_id=abcdef"}
	c := encodeCursor(cursor{Kind: "actors", Query: queryHash("actors", filters, true), Offset: 200})
	tests := []struct {
		name    string
		cur     string
		kind    string
		filters []string
		detail  bool
		want    int
		wantErr string
	}{
		{"first page", "", "actors", filters, true, 0, ""},
		{"same query", c, "actors", filters, true, 200, ""},
		{"filters reordered", c, "actors", []string{"job_id=abcdef", "state=ALIVE"}, true, 200, ""},
		{"other kind", c, "tasks", filters, true, 0, "is for a list of actors, not tasks"},
		{"other filters", c, "actors", filters[:1], true, 0, "other filters or detail"},
		{"other detail", c, "actors", filters, false, 0, "other filters or detail"},
		{"not base64", "%%%", "actors", nil, false, 0, "is not a cursor a list tool returned"},
		{"not json", "bm90IGpzb24", "actors", nil, false, 0, "is not a cursor a list tool returned"},
		{"negative offset", encodeCursor(cursor{Kind: "actors", Query: queryHash("actors", nil, false), Offset: -1}), "actors", nil, false, 0, "is not a cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeCursor(tt.cur, tt.kind, tt.filters, tt.detail)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrBadCursor) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrBadCursor containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestPlanPage(t *testing.T) {
	at := func(off int) string {
		return encodeCursor(cursor{Kind: "nodes", Query: queryHash("nodes", nil, false), Offset: off})
	}
	tests := []struct {
		name    string
		filters []string
		limit   int
		cur     string
		want    pageRequest
		wantErr string
	}{
		{"defaults", nil, 0, "", pageRequest{Offset: 0, Size: DefaultPageSize, Limit: DefaultPageSize + 1}, ""},
		{"max", nil, MaxPageSize, "", pageRequest{Offset: 0, Size: MaxPageSize, Limit: MaxPageSize + 1}, ""},
		{"second page", nil, 10, at(10), pageRequest{Offset: 10, Size: 10, Limit: 21}, ""},
		{"capped at the state API's limit", nil, 1000, at(state.MaxLimit - 10), pageRequest{Offset: state.MaxLimit - 10, Size: 1000, Limit: state.MaxLimit}, ""},
		{"past the state API's limit", nil, 10, at(state.MaxLimit), pageRequest{}, "first 100000 rows"},
		{"limit too big", nil, MaxPageSize + 1, "", pageRequest{}, "want 1 to 1000"},
		{"negative limit", nil, -1, "", pageRequest{}, "want 1 to 1000"},
		{"bad filter", []string{"state"}, 0, "", pageRequest{}, "want key=value or key!=value"},
		{"empty key", []string{"=x"}, 0, "", pageRequest{}, "want key=value"},
		{"negated filter", []string{"state!=DEAD"}, 0, "", pageRequest{Size: DefaultPageSize, Limit: DefaultPageSize + 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planPage("nodes", tt.filters, false, tt.limit, tt.cur)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestPage(t *testing.T) {
	rows := []int{0, 1, 2, 3, 4, 5, 6}
	tests := []struct {
		name     string
		rows     []int
		p        pageRequest
		want     []int
		nextFrom int // -1: no next cursor
	}{
		{"first of several", rows, pageRequest{Offset: 0, Size: 3}, []int{0, 1, 2}, 3},
		{"middle", rows, pageRequest{Offset: 3, Size: 3}, []int{3, 4, 5}, 6},
		{"last, short", rows, pageRequest{Offset: 6, Size: 3}, []int{6}, -1},
		{"exactly full", rows[:6], pageRequest{Offset: 3, Size: 3}, []int{3, 4, 5}, -1},
		{"past the end", rows, pageRequest{Offset: 9, Size: 3}, []int{}, -1},
		{"empty", nil, pageRequest{Offset: 0, Size: 3}, []int{}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next := page(tt.rows, tt.p, "tasks", nil, false)
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("page = %v, want %v", got, tt.want)
			}
			if tt.nextFrom < 0 {
				if next != "" {
					t.Fatalf("next = %q, want none", next)
				}
				return
			}
			off, err := decodeCursor(next, "tasks", nil, false)
			if err != nil || off != tt.nextFrom {
				t.Fatalf("next cursor → %d, %v; want %d", off, err, tt.nextFrom)
			}
		})
	}
}

func TestPlanLogs(t *testing.T) {
	off := func(n int64) *int64 { return &n }
	tests := []struct {
		name    string
		in      JobLogsInput
		want    logsPlan
		wantErr string
	}{
		{"from the start", JobLogsInput{SubmissionID: "j"}, logsPlan{maxBytes: DefaultLogPageBytes}, ""},
		{"offset and wait", JobLogsInput{SubmissionID: "j", Offset: off(10), WaitSeconds: 30, MaxBytes: 5}, logsPlan{offset: 10, wait: 30e9, maxBytes: 5}, ""},
		{"tail", JobLogsInput{SubmissionID: "j", TailLines: 20}, logsPlan{tail: 20, maxBytes: DefaultLogPageBytes}, ""},
		{"no id", JobLogsInput{}, logsPlan{}, "submission_id is empty"},
		{"both", JobLogsInput{SubmissionID: "j", Offset: off(0), TailLines: 5}, logsPlan{}, "not both"},
		{"negative offset", JobLogsInput{SubmissionID: "j", Offset: off(-1)}, logsPlan{}, "want 0 or more"},
		{"wait too long", JobLogsInput{SubmissionID: "j", WaitSeconds: 31}, logsPlan{}, "want 0 to 30"},
		{"max bytes too big", JobLogsInput{SubmissionID: "j", MaxBytes: MaxLogPageBytes + 1}, logsPlan{}, "want 1 to 1048576"},
		{"tail too long", JobLogsInput{SubmissionID: "j", TailLines: MaxTailLines + 1}, logsPlan{}, "want 1 to 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planLogs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrBadInput containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		b    string
		n    int
		cut  bool
		want string
	}{
		{"a\nb\nc\n", 2, false, "b\nc\n"},
		{"a\nb\nc", 2, false, "b\nc"},
		{"a\nb\nc\n", 1, false, "c\n"},
		{"a\nb\n", 5, false, "a\nb\n"},
		{"", 3, false, ""},
		{"partial\nwhole\n", 5, true, "partial\nwhole\n"},
		{"\x80\x80é\n", 5, true, "é\n"},
	}
	for _, tt := range tests {
		if got := string(lastLines([]byte(tt.b), tt.n, tt.cut)); got != tt.want {
			t.Errorf("lastLines(%q, %d, %t) = %q, want %q", tt.b, tt.n, tt.cut, got, tt.want)
		}
	}
}

func TestWholeRunes(t *testing.T) {
	tests := []struct {
		b    string
		want int
	}{
		{"abc", 3},
		{"ab\xc3\xa9", 4}, // é whole
		{"ab\xc3", 2},     // é cut
		{"a\xe2\x82", 1},  // € cut after 2 of 3 bytes
		{"a\xe2\x82\xac", 4},
		{"", 0},
	}
	for _, tt := range tests {
		if got := wholeRunes([]byte(tt.b)); got != tt.want {
			t.Errorf("wholeRunes(%q) = %d, want %d", tt.b, got, tt.want)
		}
	}
}

func TestSummarizeMetrics(t *testing.T) {
	const scrape = `# HELP raygo_cluster_active_nodes Alive nodes.
# TYPE raygo_cluster_active_nodes gauge
raygo_cluster_active_nodes 2
# HELP raygo_actors Actors by state.
# TYPE raygo_actors gauge
raygo_actors{State="ALIVE"} 3
raygo_actors{State="DEAD"} 0
# HELP raygo_workers Workers.
# TYPE raygo_workers gauge
raygo_workers{node_id="aa",NodeAddress="127.0.0.1:1",State="IDLE"} 2
raygo_workers{node_id="bb",NodeAddress="127.0.0.2:1",State="IDLE"} 3
# HELP raygo_node_cpu_utilization CPU use.
# TYPE raygo_node_cpu_utilization gauge
raygo_node_cpu_utilization{node_id="aa",NodeAddress="127.0.0.1:1"} 20
raygo_node_cpu_utilization{node_id="bb",NodeAddress="127.0.0.2:1"} 60
# HELP raygo_task_submission_to_start_seconds Latency.
# TYPE raygo_task_submission_to_start_seconds histogram
raygo_task_submission_to_start_seconds_bucket{le="1"} 4
raygo_task_submission_to_start_seconds_bucket{le="+Inf"} 4
raygo_task_submission_to_start_seconds_sum 2
raygo_task_submission_to_start_seconds_count 4
# HELP go_goroutines Not kept.
# TYPE go_goroutines gauge
go_goroutines 50
`
	got, err := summarizeMetrics(strings.NewReader(scrape))
	if err != nil {
		t.Fatal(err)
	}
	type kv struct {
		name, labels, agg string
		value             float64
	}
	var flat []kv
	for _, m := range got {
		flat = append(flat, kv{m.Name, labelKey(m.Labels), m.Aggregate, m.Value})
	}
	want := []kv{
		{"raygo_cluster_active_nodes", "", "sum", 2},
		{"raygo_actors", "State=ALIVE\x00", "sum", 3},
		{"raygo_task_submission_to_start_seconds", "", "mean", 0.5},
		{"raygo_workers", "State=IDLE\x00", "sum", 5},
		{"raygo_node_cpu_utilization", "", "mean", 40},
	}
	if !slices.Equal(flat, want) {
		t.Fatalf("summary =\n%v\nwant\n%v", flat, want)
	}
	if _, err := summarizeMetrics(strings.NewReader("not { a scrape")); err == nil {
		t.Fatal("a bad scrape was read")
	}
}

func TestPlaceRequest(t *testing.T) {
	nodes := []apiclient.ClusterStatusNode{
		{NodeID: "a", State: "ALIVE", ResourcesTotal: map[string]float64{"CPU": 4}, ResourcesUsed: map[string]float64{"CPU": 4}},
		{NodeID: "b", State: "ALIVE", ResourcesTotal: map[string]float64{"CPU": 2, "GPU": 1}, ResourcesUsed: map[string]float64{"CPU": 0}},
		{NodeID: "c", State: "DEAD", ResourcesTotal: map[string]float64{"CPU": 64, "GPU": 8}},
	}
	tests := []struct {
		name     string
		req      map[string]float64
		now, eve []string
	}{
		{"fits b now, a later", map[string]float64{"CPU": 2}, []string{"b"}, []string{"a", "b"}},
		{"only a could, busy", map[string]float64{"CPU": 3}, nil, []string{"a"}},
		{"gpu", map[string]float64{"CPU": 1, "GPU": 1}, []string{"b"}, []string{"b"}},
		{"infeasible (dead node ignored)", map[string]float64{"GPU": 2}, nil, nil},
		{"nothing requested", map[string]float64{}, []string{"a", "b"}, []string{"a", "b"}},
		{"bundle resources ignored", map[string]float64{"CPU_group_0_abc": 1}, []string{"a", "b"}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := placeRequest(tt.req, nodes)
			if !slices.Equal(p.FitsNow, tt.now) || !slices.Equal(p.FitsEver, tt.eve) {
				t.Fatalf("= now %v ever %v; want now %v ever %v", p.FitsNow, p.FitsEver, tt.now, tt.eve)
			}
		})
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8265": "127.0.0.1:8265",
		"0.0.0.0:8265":   "127.0.0.1:8265",
		"[::]:8265":      "[::1]:8265",
		":8265":          "127.0.0.1:8265",
		"10.0.0.5:80":    "10.0.0.5:80",
	} {
		if got := dialable(in); got != want {
			t.Errorf("dialable(%q) = %q, want %q", in, got, want)
		}
	}
}
