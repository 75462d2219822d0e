package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/microbench"
)

func TestMicrobenchPlan(t *testing.T) {
	def := microbench.NewConfig()
	ok := func(o microbenchOptions) microbenchOptions {
		if o.duration == 0 {
			o.duration = def.Duration
		}
		if o.clients == 0 {
			o.clients = def.Clients
		}
		return o
	}
	for _, tc := range []struct {
		opts microbenchOptions
		want string // "" for success, else part of the usage error
	}{
		{ok(microbenchOptions{}), ""},
		{ok(microbenchOptions{filter: "tasks_sync"}), ""},
		{ok(microbenchOptions{filter: "placement"}), ""},
		{ok(microbenchOptions{filter: "("}), "bad --filter"},
		{ok(microbenchOptions{filter: "nothing_like_this"}), "matches no benchmark"},
		{ok(microbenchOptions{duration: -time.Second}), "--duration"},
		{ok(microbenchOptions{duration: 10*time.Minute + time.Millisecond}), "at most 10m0s"},
		{ok(microbenchOptions{duration: 10 * time.Minute}), ""},
		{ok(microbenchOptions{clients: -1}), "--clients"},
		{ok(microbenchOptions{clients: microbench.MaxClients + 1}), "--clients"},
	} {
		p, err := tc.opts.plan(microbench.All())
		if tc.want == "" {
			if err != nil || len(p.benches) == 0 || p.cfg.Validate() != nil {
				t.Errorf("plan(%+v) = %d benchmarks, %v; want a valid plan", tc.opts, len(p.benches), err)
			}
			continue
		}
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plan(%+v) = %v, want a usage error containing %q", tc.opts, err, tc.want)
		}
	}
	// Zero duration is rejected too (the flag's default is not zero).
	if _, err := (&microbenchOptions{clients: 2}).plan(microbench.All()); err == nil {
		t.Errorf("plan with zero duration succeeded")
	}
}

func TestMicrobenchPlanEnvelope(t *testing.T) {
	for _, tc := range []struct {
		opts microbenchOptions
		want string   // "" for success, else part of the usage error
		rows []string // on success
	}{
		{microbenchOptions{envelope: true, scale: 1}, "", []string{"tasks_1m_queued", "actors_10k", "task_10k_args", "task_3k_returns", "get_10k_refs", "largest_object"}},
		{microbenchOptions{envelope: true, scale: 0.001, filter: "tasks_1m|task_3k|get_10k|task_10k"}, "", []string{"tasks_1m_queued", "task_10k_args", "task_3k_returns", "get_10k_refs"}},
		{microbenchOptions{envelope: true, scale: 1e-9, filter: "^actors"}, "", []string{"actors_10k"}},
		{microbenchOptions{envelope: true, scale: 0}, "--envelope-scale 0", nil},
		{microbenchOptions{envelope: true, scale: -0.5}, "--envelope-scale", nil},
		{microbenchOptions{envelope: true, scale: 1.01}, "at most 1", nil},
		{microbenchOptions{envelope: true, scale: 1, filter: "single_client"}, "matches no envelope row", nil},
		{microbenchOptions{envelope: true, scale: 1, filter: "("}, "bad --filter", nil},
		{microbenchOptions{scale: 0.5, scaleSet: true, duration: time.Second, clients: 2}, "needs --envelope", nil},
	} {
		p, err := tc.opts.plan(microbench.All())
		if tc.want == "" {
			var got []string
			for _, r := range p.rows {
				got = append(got, r.Name)
			}
			if err != nil || !slices.Equal(got, tc.rows) || p.ecfg.Scale != tc.opts.scale || p.benches != nil {
				t.Errorf("plan(%+v) = %v, %v; want rows %v", tc.opts, got, err, tc.rows)
			}
			continue
		}
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plan(%+v) = %v, want a usage error containing %q", tc.opts, err, tc.want)
		}
	}
}

// TestMicrobenchmarkUsage runs the command in this process: every case
// fails (or finishes) before a cluster would be started.
func TestMicrobenchmarkUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"--filter", "(unclosed"}, 2, "bad --filter"},
		{[]string{"--filter", "no_such_benchmark"}, 2, "matches no benchmark"},
		{[]string{"--duration", "0s"}, 2, "--duration 0s"},
		{[]string{"--duration", "11m"}, 2, "at most 10m0s"},
		{[]string{"--duration", "soon"}, 2, "invalid argument"},
		{[]string{"--clients", "0"}, 2, "--clients 0"},
		{[]string{"extra"}, 2, "takes no arguments"},
		{[]string{"--json", filepath.Join(dir, "missing", "out.json")}, 1, "directory does not exist"},
		{[]string{"--envelope", "--envelope-scale", "0"}, 2, "--envelope-scale 0"},
		{[]string{"--envelope", "--envelope-scale", "2"}, 2, "at most 1"},
		{[]string{"--envelope", "--envelope-scale", "big"}, 2, "invalid argument"},
		{[]string{"--envelope-scale", "0.5"}, 2, "needs --envelope"},
		{[]string{"--envelope", "--filter", "single_client_tasks_sync"}, 2, "matches no envelope row"},
		{[]string{"--envelope", "--json", filepath.Join(dir, "missing", "out.json")}, 1, "directory does not exist"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"microbenchmark"}, tc.args...), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("microbenchmark %q: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}

// TestMicrobenchmarkPlacementGroups runs placement_group_create/removal
// on an embedded cluster (it needs no worker processes) and reports it
// in the JSON.
func TestMicrobenchmarkPlacementGroups(t *testing.T) {
	root := t.TempDir()
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("RAYGO_TMPDIR", root)
	out := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"microbenchmark", "--filter", "placement", "--duration", "200ms", "--json", out}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "placement_group_create/removal") || strings.Contains(stdout.String(), "not built") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(data), `"name": "placement_group_create/removal"`) {
		t.Errorf("JSON: %s, %v", data, err)
	}
}

func TestMicrobenchmarkList(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"microbenchmark", "--list"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--list: exit %d: %s", code, stderr.String())
	}
	got := strings.Fields(stdout.String())
	if len(got) != len(microbench.All()) || !slices.Contains(got, "single_client_wait_1k_refs") {
		t.Errorf("--list printed %v", got)
	}
}

func TestMicrobenchmarkEnvelopeList(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"microbenchmark", "--envelope", "--list"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--envelope --list: exit %d: %s", code, stderr.String())
	}
	var want []string
	for _, r := range microbench.Envelope() {
		want = append(want, r.Name)
	}
	if got := strings.Fields(stdout.String()); !slices.Equal(got, want) {
		t.Errorf("--envelope --list printed %v, want %v", got, want)
	}
}

func TestEnvelopeProgress(t *testing.T) {
	var b bytes.Buffer
	p := envelopeProgress{newProgressLine(&b)}
	rows := microbench.Envelope()
	p.Start(1, 2, rows[0].Name)
	p.Done(1, 2, microbench.EnvelopeResult{EnvelopeRow: rows[0], Outcome: microbench.Outcome{Units: 1, Time: 9560 * time.Millisecond}})
	p.Start(2, 2, rows[1].Name)
	p.Done(2, 2, microbench.EnvelopeResult{EnvelopeRow: rows[1], Err: errors.New("boom")})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "[1/2] tasks_1m_queued ... 9.56 s (") ||
		!strings.HasPrefix(lines[1], "[2/2] actors_10k ... failed after ") || !strings.HasSuffix(lines[1], ": boom") {
		t.Errorf("envelope progress:\n%s", b.String())
	}
}

func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := newProgressLine(&b) // a buffer is not a terminal: a line per benchmark
	all := microbench.All()
	p.Start(1, 3, all[0].Name)
	p.Done(1, 3, microbench.Result{Benchmark: all[0], Value: 12345})
	p.Start(2, 3, all[1].Name)
	p.Done(2, 3, microbench.Result{Benchmark: all[1], Err: errors.New("boom")})
	p.Start(3, 3, "placement_group_create/removal")
	p.Done(3, 3, microbench.Result{Err: microbench.ErrNotBuilt})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	want := []string{
		"[1/3] single_client_tasks_sync ... 12,345 ops/s",
		"[2/3] single_client_tasks_async ... failed after",
		"[3/3] placement_group_create/removal ... not built",
	}
	if len(lines) != len(want) {
		t.Fatalf("progress output:\n%s\nwant %d lines", b.String(), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("progress line %d = %q, want prefix %q", i, lines[i], want[i])
		}
	}
	if strings.Contains(b.String(), "\r") || strings.Contains(b.String(), "\033") {
		t.Errorf("progress to a non-terminal has control characters: %q", b.String())
	}
}

// TestMicrobenchmarkJoinUnreachable points the command at a cluster that
// is not there: it must fail quickly, naming the address.
func TestMicrobenchmarkJoinUnreachable(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	addr := closedAddress(t)
	r := e.run([]string{envToken + "=x"}, "microbenchmark", "--address", addr, "--filter", "tasks_sync", "--duration", "100ms")
	if r.code != 1 || !strings.Contains(r.stderr, addr) {
		t.Errorf("microbenchmark against %s: want exit 1 naming it; %v", addr, r)
	}
}

// TestMicrobenchmarkRuns runs three benchmarks for real on an embedded
// cluster started by the raygo binary, which is also their worker binary.
func TestMicrobenchmarkRuns(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	out := filepath.Join(t.TempDir(), "out.json")
	r := e.raygo("microbenchmark", "--filter", "single_client_tasks_sync|single_client_put_calls$|single_client_wait_1k_refs",
		"--duration", "200ms", "--json", out)
	if r.code != 0 {
		t.Fatalf("microbenchmark: %v", r)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("--json output: %v\n%s", err, data)
	}
	var got []string
	for _, row := range rows {
		if len(row) != 3 {
			t.Errorf("JSON row %v: want exactly name, value and unit", row)
		}
		name, _ := row["name"].(string)
		value, _ := row["value"].(float64)
		if unit, _ := row["unit"].(string); unit != microbench.UnitOps || !(value > 0) {
			t.Errorf("JSON row %v: want a positive value in ops/s", row)
		}
		got = append(got, name)
	}
	if want := []string{"single_client_tasks_sync", "single_client_put_calls", "single_client_wait_1k_refs"}; !slices.Equal(got, want) {
		t.Errorf("JSON names = %v, want %v", got, want)
	}
	// Ray's figures for the three, as the table prints them.
	for _, want := range []string{"981 ops/s", "5,173 ops/s", "5.1 ops/s", "m5.16xlarge"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks Ray's figure %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "[1/3] single_client_tasks_sync") || !strings.Contains(r.stderr, "[3/3] single_client_wait_1k_refs") {
		t.Errorf("no progress lines on stderr:\n%s", r.stderr)
	}
	// Shutdown removed the embedded cluster's session.
	if left, _ := filepath.Glob(filepath.Join(e.root, "session_*")); len(left) > 0 {
		t.Errorf("sessions left behind: %v", left)
	}
}

// TestMicrobenchmarkEnvelope runs four envelope rows, scaled down, for
// real on an embedded cluster started by the raygo binary.
func TestMicrobenchmarkEnvelope(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	out := filepath.Join(t.TempDir(), "envelope.json")
	r := e.raygo("microbenchmark", "--envelope", "--envelope-scale", "0.001",
		"--filter", "tasks_1m|task_3k|get_10k|task_10k", "--json", out)
	if r.code != 0 {
		t.Fatalf("microbenchmark --envelope: %v", r)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("--json output: %v\n%s", err, data)
	}
	var got []string
	for _, row := range rows {
		name, _ := row["name"].(string)
		value, _ := row["value"].(float64)
		unit, _ := row["unit"].(string)
		wantUnit := microbench.UnitSeconds
		if strings.HasSuffix(name, "_peak_mem") {
			wantUnit = microbench.UnitBytes
		}
		if len(row) != 3 || unit != wantUnit || !(value > 0) {
			t.Errorf("JSON row %v: want exactly name, a positive value and unit %q", row, wantUnit)
		}
		got = append(got, name)
	}
	want := []string{
		"tasks_1m_queued", "tasks_1m_queued_peak_mem", "task_10k_args", "task_10k_args_peak_mem",
		"task_3k_returns", "task_3k_returns_peak_mem", "get_10k_refs", "get_10k_refs_peak_mem",
	}
	if !slices.Equal(got, want) {
		t.Errorf("JSON names = %v, want %v", got, want)
	}
	// The table: scaled counts, not judged.
	for _, want := range []string{"1,000 tasks", "10 args", "3 returns", "10 refs", "n/a", "DRIVER PEAK", "Scaled run (×0.001)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "actors_10k") || strings.Contains(r.stdout, "largest_object") {
		t.Errorf("rows outside the filter ran:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "[1/4] tasks_1m_queued") || !strings.Contains(r.stderr, "[4/4] get_10k_refs") {
		t.Errorf("no progress lines on stderr:\n%s", r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(e.root, "session_*")); len(left) > 0 {
		t.Errorf("sessions left behind: %v", left)
	}
}
