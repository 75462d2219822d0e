package microbench

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func names(bs []Benchmark) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Name
	}
	return out
}

func TestAllIsConsistent(t *testing.T) {
	suite := All()
	seen := map[string]bool{}
	for _, b := range suite {
		if seen[b.Name] {
			t.Errorf("%s appears twice", b.Name)
		}
		seen[b.Name] = true
		if b.Unit != UnitOps && b.Unit != UnitGBps {
			t.Errorf("%s: unit %q", b.Name, b.Unit)
		}
		if (b.RayFigure > 0) != (b.RayHardware != "") {
			t.Errorf("%s: Ray figure %v on hardware %q: want both or neither", b.Name, b.RayFigure, b.RayHardware)
		}
		if b.Target == "" {
			t.Errorf("%s has no target", b.Name)
		}
	}
	for _, b := range suite {
		if b.With != "" && !seen[b.With] {
			t.Errorf("%s is a baseline for %q, which is not in the suite", b.Name, b.With)
		}
	}
	// The rows of TARGETS.md, all of them: the unbuilt one is listed, not
	// left out.
	for _, name := range []string{
		"single_client_tasks_sync", "single_client_tasks_async", "single_client_tasks_and_get_batch",
		"multi_client_tasks_async", "1_1_actor_calls_sync", "1_1_actor_calls_async", "1_1_actor_calls_concurrent",
		"1_n_actor_calls_async", "n_n_actor_calls_async", "n_n_actor_calls_with_arg_async",
		"single_client_get_calls", "single_client_put_calls", "multi_client_put_calls",
		"single_client_put_gigabytes", "single_client_get_object_containing_10k_refs",
		"single_client_wait_1k_refs", "placement_group_create/removal", "memcpy_gigabytes",
		// ray_perf.py rows missing from TARGETS.md, and the store's own rows.
		"multi_client_put_gigabytes", "single_client_put_calls_store", "single_client_get_calls_store",
		"get_buffer_1mib", "get_buffer_1gib",
	} {
		if !seen[name] {
			t.Errorf("suite lacks %s", name)
		}
	}
	if len(seen) != 23 {
		t.Errorf("suite has %d rows, want 23", len(seen))
	}
	for _, b := range suite {
		if !b.Built() {
			t.Errorf("%s is not built", b.Name)
		}
	}
}

func TestSelect(t *testing.T) {
	suite := All()
	all, err := Select(suite, nil)
	if err != nil || len(all) != len(suite) {
		t.Fatalf("Select(nil) = %d benchmarks, %v; want all %d", len(all), err, len(suite))
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"single_client_tasks_sync|single_client_put_calls$|single_client_wait_1k_refs",
			[]string{"single_client_tasks_sync", "single_client_put_calls", "single_client_wait_1k_refs"}},
		// Suite order, whatever the order in the filter.
		{"^(single_client_put_calls|single_client_tasks_sync)$", []string{"single_client_tasks_sync", "single_client_put_calls"}},
		// The baseline comes with what it is a baseline for, and alone.
		{"single_client_put_gigabytes", []string{"single_client_put_gigabytes", "memcpy_gigabytes"}},
		{"get_buffer_1mib", []string{"get_buffer_1mib", "get_buffer_1gib"}},
		{"^memcpy", []string{"memcpy_gigabytes"}},
		{"placement", []string{"placement_group_create/removal"}},
		{"actor_calls_sync", []string{"1_1_actor_calls_sync"}},
	} {
		got, err := Select(suite, regexp.MustCompile(tc.filter))
		if err != nil || !slices.Equal(names(got), tc.want) {
			t.Errorf("Select(%q) = %v, %v; want %v", tc.filter, names(got), err, tc.want)
		}
	}
	if _, err := Select(suite, regexp.MustCompile("no_such_benchmark")); !errors.Is(err, ErrNoMatch) || !strings.Contains(err.Error(), "no_such_benchmark") {
		t.Errorf("Select with a filter matching nothing: %v, want ErrNoMatch naming the filter", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := NewConfig().Validate(); err != nil {
		t.Errorf("NewConfig().Validate() = %v", err)
	}
	for _, c := range []Config{
		{Duration: 0, Clients: 2},
		{Duration: -time.Second, Clients: 2},
		{Duration: MaxDuration + time.Nanosecond, Clients: 2},
		{Duration: time.Second, Clients: 0},
		{Duration: time.Second, Clients: MaxClients + 1},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v.Validate() = %v, want ErrInvalidConfig", c, err)
		}
	}
	for _, c := range []Config{{Duration: time.Nanosecond, Clients: 1}, {Duration: MaxDuration, Clients: MaxClients}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v, want nil", c, err)
		}
	}
	if w := (Config{Duration: time.Hour}).warmup(); w != maxWarmup {
		t.Errorf("warm-up of a long run = %s, want the cap %s", w, maxWarmup)
	}
}

// recorder is a Progress that records its calls.
type recorder struct{ calls []string }

func (r *recorder) Start(i, n int, name string) {
	r.calls = append(r.calls, "start "+name)
}

func (r *recorder) Done(i, n int, res Result) {
	s := "done " + res.Name
	if res.Err != nil {
		s += " err"
	}
	r.calls = append(r.calls, s)
}

func TestRun(t *testing.T) {
	cfg := Config{Duration: time.Millisecond, Clients: 1}
	fixed := func(v float64, err error) func(context.Context, Config) (float64, error) {
		return func(context.Context, Config) (float64, error) { return v, err }
	}
	benches := []Benchmark{
		{Name: "ok", Unit: UnitOps, Run: fixed(42, nil)},
		{Name: "fails", Unit: UnitOps, Run: fixed(0, errors.New("boom"))},
		{Name: "zero", Unit: UnitOps, Run: fixed(0, nil)},
		{Name: "panics", Unit: UnitOps, Run: func(context.Context, Config) (float64, error) { panic("bad") }},
		{Name: "unbuilt", Unit: UnitOps},
		{Name: "measured", Unit: UnitOps, Run: func(ctx context.Context, cfg Config) (float64, error) {
			return measure(ctx, cfg, 10, func(context.Context) error { return nil })
		}},
	}
	rec := &recorder{}
	res := Run(context.Background(), cfg, benches, rec)
	if len(res) != len(benches) {
		t.Fatalf("Run returned %d results for %d benchmarks", len(res), len(benches))
	}
	if res[0].Err != nil || res[0].Value != 42 {
		t.Errorf("ok: %v, %v", res[0].Value, res[0].Err)
	}
	for _, i := range []int{1, 2, 3} {
		if !res[i].Failed() {
			t.Errorf("%s: err %v, want a failure", res[i].Name, res[i].Err)
		}
	}
	if !strings.Contains(res[3].Err.Error(), "panicked") {
		t.Errorf("panics: %v", res[3].Err)
	}
	if !res[4].NotBuilt() || res[4].Failed() {
		t.Errorf("unbuilt: %v, want ErrNotBuilt and not failed", res[4].Err)
	}
	if res[5].Err != nil || res[5].Value <= 0 {
		t.Errorf("measured: %v, %v; want a positive rate", res[5].Value, res[5].Err)
	}
	want := []string{"start ok", "done ok", "start fails", "done fails err", "start zero", "done zero err",
		"start panics", "done panics err", "start unbuilt", "done unbuilt err", "start measured", "done measured"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("progress calls = %v, want %v", rec.calls, want)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := 0
	benches := []Benchmark{
		{Name: "first", Unit: UnitOps, Run: func(ctx context.Context, cfg Config) (float64, error) {
			ran++
			cancel()
			return measure(ctx, cfg, 1, func(context.Context) error { return nil })
		}},
		{Name: "second", Unit: UnitOps, Run: func(context.Context, Config) (float64, error) { ran++; return 1, nil }},
	}
	res := Run(ctx, Config{Duration: time.Hour, Clients: 1}, benches, nil)
	if ran != 1 {
		t.Errorf("%d benchmarks ran after the context ended, want 1", ran)
	}
	if len(res) != 1 || !errors.Is(res[0].Err, context.Canceled) {
		t.Errorf("results after the context ended: %+v; want the interrupted one only, with context.Canceled", res)
	}
}

func TestMeasureStopsAtFirstError(t *testing.T) {
	calls := 0
	boom := errors.New("boom")
	_, err := measure(context.Background(), Config{Duration: time.Hour, Clients: 1}, 1, func(context.Context) error {
		calls++
		if calls == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls != 3 {
		t.Errorf("measure: %v after %d calls, want boom after 3", err, calls)
	}
}
