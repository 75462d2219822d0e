package microbench

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{5.8, "5.8"},
		{5.1, "5.1"},
		{13.4, "13.4"},
		{19.9, "19.9"},
		{0.42137, "0.421"},
		{0.0969, "0.0969"},
		{1, "1"},
		{99.94, "99.9"},
		{99.96, "100"},
		{981, "981"},
		{8041.4, "8,041"},
		{27376, "27,376"},
		{4837425.2, "4,837,425"},
		{-1234, "-1,234"},
	} {
		if got := FormatValue(tc.in); got != tc.want {
			t.Errorf("FormatValue(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// sample is a run with every kind of row: measured, baseline, failed and
// not built.
func sample() []Result {
	suite := All()
	find := func(name string) Benchmark {
		for _, b := range suite {
			if b.Name == name {
				return b
			}
		}
		panic("no benchmark " + name)
	}
	return []Result{
		{Benchmark: find("single_client_tasks_sync"), Value: 11380.4},
		{Benchmark: find("single_client_put_gigabytes"), Value: 3.5},
		{Benchmark: find("memcpy_gigabytes"), Value: 7},
		{Benchmark: find("single_client_wait_1k_refs"), Err: errors.New("boom")},
		{Benchmark: find("placement_group_create/removal"), Err: ErrNotBuilt},
	}
}

func TestFormatTable(t *testing.T) {
	got := FormatTable(sample())
	want := `BENCHMARK                              RAYGO        RAY  RAYGO TARGET            RAYGO/RAY
single_client_tasks_sync        11,380 ops/s  981 ops/s  ≥ 15,000 (p50 ≤ 70 µs)      11.6×
single_client_put_gigabytes         3.5 GB/s  19.9 GB/s  ≥ 0.7 × memcpy             0.176×
memcpy_gigabytes                      7 GB/s          —  baseline                        —
single_client_wait_1k_refs             error  5.1 ops/s  ≥ 100                           —
placement_group_create/removal     not built  765 ops/s  ≥ 10,000                        —

Ray's figures: m5.16xlarge (64 vCPU), from Ray's release logs (see TARGETS.md).
single_client_put_gigabytes is 0.5 × memcpy_gigabytes measured in the same run.
single_client_wait_1k_refs failed: boom
`
	if got != want {
		t.Errorf("FormatTable:\n%s\nwant:\n%s", got, want)
	}
}

func TestFormatTableEmpty(t *testing.T) {
	if got := FormatTable(nil); !strings.HasPrefix(got, "BENCHMARK") || strings.Count(got, "\n") != 1 {
		t.Errorf("FormatTable(nil) = %q, want the header only", got)
	}
}

func TestJSON(t *testing.T) {
	data, err := JSON(sample())
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, data)
	}
	want := []map[string]any{
		{"name": "single_client_tasks_sync", "value": 11380.4, "unit": "ops/s"},
		{"name": "single_client_put_gigabytes", "value": 3.5, "unit": "GB/s"},
		{"name": "memcpy_gigabytes", "value": 7.0, "unit": "GB/s"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("JSON rows = %v, want %v (failed and not-built rows left out)", rows, want)
	}

	data, err = JSON(nil)
	if err != nil || strings.TrimSpace(string(data)) != "[]" {
		t.Errorf("JSON(nil) = %q, %v; want an empty array", data, err)
	}
}
