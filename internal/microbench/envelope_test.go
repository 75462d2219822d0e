package microbench

import (
	"context"
	"encoding/json"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func envelopeNames(rows []EnvelopeRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.Name
	}
	return out
}

func TestEnvelopeIsConsistent(t *testing.T) {
	rows := Envelope()
	want := []string{"tasks_1m_queued", "actors_10k", "task_10k_args", "task_3k_returns", "get_10k_refs", "largest_object"}
	if got := envelopeNames(rows); !slices.Equal(got, want) {
		t.Errorf("envelope rows = %v, want %v", got, want)
	}
	for _, r := range rows {
		if r.Run == nil || r.Count <= 0 || r.What == "" || r.Ray == "" || r.Timeout <= 0 {
			t.Errorf("%s: incomplete row %+v", r.Name, r)
		}
		if (r.Target != "") != (r.MaxTime > 0 || r.MaxMem > 0) {
			t.Errorf("%s: target %q with limits %s, %d bytes: want both or neither", r.Name, r.Target, r.MaxTime, r.MaxMem)
		}
	}
	// TARGETS.md: 1M queued tasks in ≤ 30 s and ≤ 2 GiB; 10k actors in
	// ≤ 5 s; 10k args and 10k-ref gets each ≤ 1 s.
	limits := map[string][2]int64{
		"tasks_1m_queued": {int64(30 * time.Second), 2 << 30},
		"actors_10k":      {int64(5 * time.Second), 0},
		"task_10k_args":   {int64(time.Second), 0},
		"get_10k_refs":    {int64(time.Second), 0},
		"task_3k_returns": {0, 0},
		"largest_object":  {0, 0},
	}
	for _, r := range rows {
		if l := limits[r.Name]; int64(r.MaxTime) != l[0] || r.MaxMem != l[1] {
			t.Errorf("%s: limits %s, %d bytes; want %s, %d", r.Name, r.MaxTime, r.MaxMem, time.Duration(l[0]), l[1])
		}
	}
	if largestObjectBytes != 4<<30 {
		t.Errorf("largest object %d bytes, want 4 GiB (twice the envelope's store)", largestObjectBytes)
	}
}

func TestSelectEnvelope(t *testing.T) {
	rows := Envelope()
	got, err := SelectEnvelope(rows, regexp.MustCompile("tasks_1m|task_3k|get_10k|task_10k"))
	if want := []string{"tasks_1m_queued", "task_10k_args", "task_3k_returns", "get_10k_refs"}; err != nil || !slices.Equal(envelopeNames(got), want) {
		t.Errorf("SelectEnvelope = %v, %v; want %v", envelopeNames(got), err, want)
	}
	if all, err := SelectEnvelope(rows, nil); err != nil || len(all) != len(rows) {
		t.Errorf("SelectEnvelope(nil) = %d rows, %v", len(all), err)
	}
	if _, err := SelectEnvelope(rows, regexp.MustCompile("single_client")); !errors.Is(err, ErrNoMatch) {
		t.Errorf("SelectEnvelope of a microbenchmark's name: %v, want ErrNoMatch", err)
	}
}

func TestEnvelopeConfig(t *testing.T) {
	for _, s := range []float64{0, -1, 1.0001, 2} {
		if err := (EnvelopeConfig{Scale: s}).Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("scale %v: %v, want ErrInvalidConfig", s, err)
		}
	}
	for _, s := range []float64{1e-9, 0.001, 1} {
		if err := (EnvelopeConfig{Scale: s}).Validate(); err != nil {
			t.Errorf("scale %v: %v", s, err)
		}
	}
	if err := NewEnvelopeConfig().Validate(); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		scale float64
		n     int
		want  int
	}{{1, 1_000_000, 1_000_000}, {0.001, 1_000_000, 1000}, {0.001, 3000, 3}, {0.001, 10, 1}, {1e-9, 10_000, 1}} {
		if got := (EnvelopeConfig{Scale: tc.scale}).count(tc.n); got != tc.want {
			t.Errorf("count(%d) at scale %v = %d, want %d", tc.n, tc.scale, got, tc.want)
		}
	}
}

// envelopeSample is a full-size run with every kind of row: a pass, a
// miss on memory, a capped row, a failure, rows with no target, a row
// whose memory is unknown.
func envelopeSample() []EnvelopeResult {
	rows := map[string]EnvelopeRow{}
	for _, r := range Envelope() {
		rows[r.Name] = r
	}
	res := func(name string, units int, took time.Duration, driver, workers int64) EnvelopeResult {
		r := rows[name]
		return EnvelopeResult{EnvelopeRow: r, Outcome: Outcome{Units: units, Time: took}, Asked: r.Count, Scale: 1, DriverPeak: driver, WorkersPeak: workers}
	}
	tasks := res("tasks_1m_queued", 1_000_000, 9560*time.Millisecond, 1374389535, 40<<20)
	tasks.Notes = []string{"all submitted after 6.18 s"}
	actors := res("actors_10k", 450, 9730*time.Millisecond, 620<<20, 7194070220)
	actors.Capped = "memory: one process per actor"
	args := res("task_10k_args", 10_000, 38900*time.Microsecond, 283<<20, 19<<20)
	returns := res("task_3k_returns", 3000, 12500*time.Microsecond, 280<<20, -1)
	gets := res("get_10k_refs", 0, 0, 282<<20, 22<<20)
	gets.Err = errors.New("boom")
	large := res("largest_object", largestObjectBytes, 7170*time.Millisecond, 2985002270, 22<<20)
	large.DriverPeakSinceStart = true
	missed := res("tasks_1m_queued", 1_000_000, 12*time.Second, 2<<30, 1)
	return []EnvelopeResult{tasks, actors, args, returns, gets, large, missed}
}

func TestFormatEnvelopeTable(t *testing.T) {
	got := FormatEnvelopeTable(envelopeSample())
	want := `ROW                             COUNT     TIME  DRIVER PEAK  WORKERS PEAK  TARGET           RAY               VERDICT
tasks_1m_queued       1,000,000 tasks   9.56 s     1.28 GiB        40 MiB  ≤ 30 s, ≤ 2 GiB  190 s             pass
actors_10k       450 of 10,000 actors   9.73 s      620 MiB       6.7 GiB  ≤ 5 s            15.7 s (cluster)  n/a
task_10k_args             10,000 args  38.9 ms      283 MiB        19 MiB  ≤ 1 s            17.3 s            pass
task_3k_returns         3,000 returns  12.5 ms      280 MiB             —  —                5.7 s             —
get_10k_refs              10,000 refs    error      282 MiB        22 MiB  ≤ 1 s            23.7 s            error
largest_object                  4 GiB   7.17 s     2.78 GiB        22 MiB  —                100 GiB+ object   —
tasks_1m_queued       1,000,000 tasks     12 s        2 GiB           1 B  ≤ 30 s, ≤ 2 GiB  190 s             miss

Driver peak: this process's VmHWM during the row (with an embedded cluster it holds the control store, the node daemon and its object store too); workers peak: the highest sum of the resident sets of its child processes, sampled every 100 ms. A memory target is judged on the two added.
Ray's figures: m4.16xlarge (64 vCPU), one node unless marked (cluster); from Ray's release/benchmarks (see TARGETS.md).
tasks_1m_queued: all submitted after 6.18 s
actors_10k: (capped at 450 by memory: one process per actor)
get_10k_refs failed: boom
largest_object: the driver peak could not be reset (/proc/self/clear_refs), so it is the peak since the process started.
`
	if got != want {
		t.Errorf("FormatEnvelopeTable:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatEnvelopeTableScaled(t *testing.T) {
	r := Envelope()[2] // task_10k_args
	got := FormatEnvelopeTable([]EnvelopeResult{{EnvelopeRow: r, Outcome: Outcome{Units: 10, Time: time.Millisecond}, Asked: 10, Scale: 0.001, DriverPeak: 1 << 20, WorkersPeak: 0}})
	for _, want := range []string{"10 args", "1 ms", "1 MiB", "0 B", "n/a", "Scaled run (×0.001)"} {
		if !strings.Contains(got, want) {
			t.Errorf("scaled table lacks %q:\n%s", want, got)
		}
	}
}

func TestVerdict(t *testing.T) {
	row := EnvelopeRow{Name: "x", Count: 100, MaxTime: time.Second, MaxMem: 1000, Target: "≤ 1 s, ≤ 1000 B"}
	for _, tc := range []struct {
		r    EnvelopeResult
		want string
	}{
		{EnvelopeResult{Outcome: Outcome{Units: 100, Time: time.Second}, DriverPeak: 500, WorkersPeak: 500}, "pass"},
		{EnvelopeResult{Outcome: Outcome{Units: 100, Time: time.Second + 1}, DriverPeak: 500, WorkersPeak: 500}, "miss"},
		{EnvelopeResult{Outcome: Outcome{Units: 100, Time: time.Second}, DriverPeak: 500, WorkersPeak: 501}, "miss"},
		{EnvelopeResult{Outcome: Outcome{Units: 99, Time: time.Millisecond}, DriverPeak: 1, WorkersPeak: 1}, "n/a"},
		{EnvelopeResult{Outcome: Outcome{Units: 100, Time: time.Millisecond}, DriverPeak: -1, WorkersPeak: 1}, "n/a"},
		{EnvelopeResult{Outcome: Outcome{Units: 100, Time: time.Millisecond}, Err: errors.New("x")}, "error"},
	} {
		tc.r.EnvelopeRow = row
		if got := tc.r.Verdict(); got != tc.want {
			t.Errorf("Verdict of %+v = %q, want %q", tc.r.Outcome, got, tc.want)
		}
	}
	noTarget := EnvelopeResult{EnvelopeRow: EnvelopeRow{Count: 1}, Outcome: Outcome{Units: 1, Time: 1}}
	if got := noTarget.Verdict(); got != dash {
		t.Errorf("Verdict without a target = %q", got)
	}
	timeOnly := EnvelopeResult{EnvelopeRow: EnvelopeRow{Count: 1, MaxTime: time.Second}, Outcome: Outcome{Units: 1, Time: 1}, DriverPeak: -1, WorkersPeak: -1}
	if got := timeOnly.Verdict(); got != "pass" {
		t.Errorf("Verdict of a time-only target with unknown memory = %q, want pass", got)
	}
}

func TestEnvelopeJSON(t *testing.T) {
	data, err := EnvelopeJSON(envelopeSample()[:6])
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, data)
	}
	want := []map[string]any{
		{"name": "tasks_1m_queued", "value": 9.56, "unit": "s"},
		{"name": "tasks_1m_queued_peak_mem", "value": float64(1374389535 + 40<<20), "unit": "bytes"},
		{"name": "actors_10k", "value": 9.73, "unit": "s"},
		{"name": "actors_10k_peak_mem", "value": float64(620<<20 + 7194070220), "unit": "bytes"},
		{"name": "task_10k_args", "value": 0.0389, "unit": "s"},
		{"name": "task_10k_args_peak_mem", "value": float64(283<<20 + 19<<20), "unit": "bytes"},
		{"name": "task_3k_returns", "value": 0.0125, "unit": "s"}, // workers peak unknown: no memory entry
		{"name": "largest_object", "value": 7.17, "unit": "s"},
		{"name": "largest_object_peak_mem", "value": float64(2985002270 + 22<<20), "unit": "bytes"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("JSON rows = %v\nwant %v (the failed row left out)", rows, want)
	}
	if data, err := EnvelopeJSON(nil); err != nil || strings.TrimSpace(string(data)) != "[]" {
		t.Errorf("EnvelopeJSON(nil) = %q, %v", data, err)
	}
}

func TestFormatDurationAndBytes(t *testing.T) {
	for d, want := range map[time.Duration]string{
		9560 * time.Millisecond:  "9.56 s",
		190 * time.Second:        "190 s",
		38900 * time.Microsecond: "38.9 ms",
		349 * time.Microsecond:   "349 µs",
		18 * time.Microsecond:    "18 µs",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{
		0: "0 B", 100: "100 B", 1023: "1,023 B", 1024: "1 KiB", 1 << 20: "1 MiB", 1<<20 - 1: "1 MiB",
		511 << 20: "511 MiB", 1374389535: "1.28 GiB", 2 << 30: "2 GiB", 1 << 40: "1 TiB",
	} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may set.
	line := []byte("4242 (a) b (c)) S 77 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 5 0 100 12345678 3456 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n")
	ppid, rss, err := parseStat(line)
	if err != nil || ppid != 77 || rss != 3456 {
		t.Errorf("parseStat = %d, %d, %v; want 77, 3456", ppid, rss, err)
	}
	for _, bad := range []string{"", "1 (x) S", "1 x S 2 3"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

func TestStatusBytes(t *testing.T) {
	data := []byte("Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\nThreads: 3\n")
	if n, err := statusBytes(data, "VmHWM"); err != nil || n != 2048<<10 {
		t.Errorf("VmHWM = %d, %v", n, err)
	}
	if n, err := statusBytes(data, "Threads"); err != nil || n != 3 {
		t.Errorf("Threads = %d, %v", n, err)
	}
	if _, err := statusBytes(data, "VmRSS"); !errors.Is(err, errNoProc) {
		t.Errorf("missing key: %v", err)
	}
}

// TestProcMemory reads this process's and a child's memory from /proc.
func TestProcMemory(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	if driverPeak() <= 0 {
		t.Errorf("driverPeak() = %d", driverPeak())
	}
	if a, err := memAvailable(); err != nil || a <= 0 {
		t.Errorf("memAvailable() = %d, %v", a, err)
	}
	if n := openFiles(); n < 3 {
		t.Errorf("openFiles() = %d", n)
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s := startMemSampler(10 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		cs, err := children()
		if err != nil {
			t.Fatal(err)
		}
		if cs[cmd.Process.Pid] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children() = %v, lacks pid %d with a resident set", cs, cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if peak := s.Stop(); peak <= 0 {
		t.Errorf("sampled workers peak %d with a child running", peak)
	}
}

// envRecorder is an EnvelopeProgress that records its calls.
type envRecorder struct{ calls []string }

func (r *envRecorder) Start(i, n int, name string) { r.calls = append(r.calls, "start "+name) }

func (r *envRecorder) Done(i, n int, res EnvelopeResult) {
	s := "done " + res.Name
	if res.Err != nil {
		s += " err"
	}
	r.calls = append(r.calls, s)
}

func TestRunEnvelope(t *testing.T) {
	var gotN []int
	rows := []EnvelopeRow{
		{Name: "ok", Count: 1000, Run: func(_ context.Context, n int) (Outcome, error) {
			gotN = append(gotN, n)
			return Outcome{Units: n, Time: time.Millisecond}, nil
		}},
		{Name: "fails", Count: 1, Run: func(context.Context, int) (Outcome, error) { return Outcome{}, errors.New("boom") }},
		{Name: "zero", Count: 1, Run: func(context.Context, int) (Outcome, error) { return Outcome{Units: 1}, nil }},
		{Name: "panics", Count: 1, Run: func(context.Context, int) (Outcome, error) { panic("bad") }},
		{Name: "nothing", Count: 1},
	}
	rec := &envRecorder{}
	res := RunEnvelope(context.Background(), EnvelopeConfig{Scale: 0.01}, rows, rec)
	if len(res) != len(rows) {
		t.Fatalf("%d results for %d rows", len(res), len(rows))
	}
	if res[0].Err != nil || res[0].Units != 10 || res[0].Asked != 10 || !slices.Equal(gotN, []int{10}) {
		t.Errorf("ok: %+v, run with %v; want 10 units", res[0], gotN)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil && (res[0].DriverPeak <= 0 || res[0].WorkersPeak < 0) {
		t.Errorf("ok: peaks %d, %d; want them measured", res[0].DriverPeak, res[0].WorkersPeak)
	}
	for _, r := range res[1:] {
		if r.Err == nil {
			t.Errorf("%s: no error", r.Name)
		}
	}
	if !strings.Contains(res[3].Err.Error(), "panicked") {
		t.Errorf("panics: %v", res[3].Err)
	}
	want := []string{"start ok", "done ok", "start fails", "done fails err", "start zero", "done zero err",
		"start panics", "done panics err", "start nothing", "done nothing err"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("progress calls = %v, want %v", rec.calls, want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	stopping := []EnvelopeRow{
		{Name: "first", Count: 1, Run: func(ctx context.Context, _ int) (Outcome, error) { ran++; cancel(); return Outcome{}, ctx.Err() }},
		{Name: "second", Count: 1, Run: func(context.Context, int) (Outcome, error) { ran++; return Outcome{Units: 1, Time: 1}, nil }},
	}
	if res := RunEnvelope(ctx, NewEnvelopeConfig(), stopping, nil); ran != 1 || len(res) != 1 || !errors.Is(res[0].Err, context.Canceled) {
		t.Errorf("after the context ended: %d rows ran, results %+v", ran, res)
	}
}

func TestFill(t *testing.T) {
	a, b := make([]byte, 1001), make([]byte, 1001)
	fill(a)
	fill(b)
	if !slices.Equal(a, b) || crc32.Checksum(a, castagnoli) == crc32.Checksum(make([]byte, 1001), castagnoli) {
		t.Errorf("fill is not a fixed, non-zero pattern")
	}
	if slices.Equal(a[:8], a[8:16]) || a[1000] == 0 && a[999] == 0 && a[998] == 0 {
		t.Errorf("fill repeats or leaves the tail: % x", a[992:])
	}
}
