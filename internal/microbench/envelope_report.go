package microbench

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// envelopeHardware is the machine of Ray's single-node envelope figures.
const envelopeHardware = "m4.16xlarge (64 vCPU)"

// FormatEnvelopeTable renders envelope results as a table: each row's
// count, wall time, driver and workers peak memory, raygo's target, Ray's
// figure and the verdict; then notes (how memory is measured, each row's
// remarks, why a row is capped, the errors of failed rows). It is pure,
// for tests.
func FormatEnvelopeTable(results []EnvelopeResult) string {
	rows := [][]string{{"ROW", "COUNT", "TIME", "DRIVER PEAK", "WORKERS PEAK", "TARGET", "RAY", "VERDICT"}}
	for _, r := range results {
		rows = append(rows, []string{r.Name, countCell(r), timeCell(r), bytesCell(r.DriverPeak), bytesCell(r.WorkersPeak),
			cell(r.Target), cell(r.Ray), r.Verdict()})
	}
	var b strings.Builder
	writeColumns(&b, rows, []bool{false, true, true, true, true, false, false, false})

	notes := []string{
		"Driver peak: this process's VmHWM during the row (with an embedded cluster it holds the control store, the node daemon and its object store too); " +
			"workers peak: the highest sum of the resident sets of its child processes, sampled every 100 ms. A memory target is judged on the two added.",
	}
	if len(results) > 0 {
		notes = append(notes, "Ray's figures: "+envelopeHardware+", one node unless marked (cluster); from Ray's release/benchmarks (see TARGETS.md).")
	}
	scaled := false
	for _, r := range results {
		scaled = scaled || r.Scale < 1
	}
	if scaled {
		notes = append(notes, fmt.Sprintf("Scaled run (×%v): counts are scaled, so targets are not judged (n/a).", results[0].Scale))
	}
	for _, r := range results {
		if r.Err != nil {
			notes = append(notes, fmt.Sprintf("%s failed: %v", r.Name, r.Err))
			continue
		}
		if r.Capped != "" {
			notes = append(notes, fmt.Sprintf("%s: (capped at %s by %s)", r.Name, thousands(int64(r.Units)), r.Capped))
		}
		for _, n := range r.Notes {
			notes = append(notes, r.Name+": "+n)
		}
		if r.DriverPeakSinceStart {
			notes = append(notes, r.Name+": the driver peak could not be reset (/proc/self/clear_refs), so it is the peak since the process started.")
		}
	}
	b.WriteString("\n")
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	return b.String()
}

func countCell(r EnvelopeResult) string {
	format := func(n int) string {
		if r.What == "bytes" {
			return FormatBytes(int64(n))
		}
		return thousands(int64(n))
	}
	unit := ""
	if r.What != "bytes" {
		unit = " " + r.What
	}
	if r.Err == nil && r.Units != r.Asked {
		return format(r.Units) + " of " + format(r.Asked) + unit
	}
	return format(r.Asked) + unit
}

func timeCell(r EnvelopeResult) string {
	if r.Err != nil {
		return "error"
	}
	return FormatDuration(r.Time)
}

func bytesCell(n int64) string {
	if n < 0 {
		return dash
	}
	return FormatBytes(n)
}

// FormatDuration prints a duration with three significant digits in s,
// ms or µs: 25.3 s, 812 ms, 41.2 µs.
func FormatDuration(d time.Duration) string {
	switch s := d.Seconds(); {
	case s >= 1:
		return FormatValue(s) + " s"
	case s >= 1e-3:
		return FormatValue(s*1e3) + " ms"
	default:
		return FormatValue(s*1e6) + " µs"
	}
}

// FormatBytes prints a byte count in binary units with three significant
// digits: 1.23 GiB, 511 MiB, 12 KiB, 100 B.
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for ; math.Abs(v) >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	if i > 0 && math.Abs(v) >= 999.5 { // rounds up to the next unit
		v /= 1024
		i++
	}
	return FormatValue(v) + " " + units[i]
}

// Units of the envelope's JSON rows.
const (
	UnitSeconds = "s"
	UnitBytes   = "bytes"
)

// EnvelopeJSON renders the rows that ran as a JSON array of objects with
// the keys name, value and unit, the schema of JSON: for each row its
// time in seconds under its name, and where known its peak memory (driver
// and workers added) in bytes under name + "_peak_mem". Failed rows are
// left out. It is pure, for tests.
func EnvelopeJSON(results []EnvelopeResult) ([]byte, error) {
	rows := make([]jsonRow, 0, 2*len(results))
	for _, r := range results {
		if r.Err != nil {
			continue
		}
		rows = append(rows, jsonRow{Name: r.Name, Value: r.Time.Seconds(), Unit: UnitSeconds})
		if r.DriverPeak >= 0 && r.WorkersPeak >= 0 {
			rows = append(rows, jsonRow{Name: r.Name + "_peak_mem", Value: float64(r.DriverPeak + r.WorkersPeak), Unit: UnitBytes})
		}
	}
	out, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("microbench: encode results: %w", err)
	}
	return append(out, '\n'), nil
}
