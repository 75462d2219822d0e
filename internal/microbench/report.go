package microbench

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// dash marks a cell with nothing to show.
const dash = "—"

// FormatTable renders results as a table: each benchmark's raygo figure,
// Ray's, raygo's target and the ratio of the two figures, then notes (the
// machines of Ray's figures, put versus memcpy, and the errors of failed
// benchmarks). It is pure, for tests.
func FormatTable(results []Result) string {
	rows := [][]string{{"BENCHMARK", "RAYGO", "RAY", "RAYGO TARGET", "RAYGO/RAY"}}
	for _, r := range results {
		rows = append(rows, []string{r.Name, valueCell(r), rayCell(r), cell(r.Target), ratioCell(r)})
	}
	var b strings.Builder
	writeColumns(&b, rows, []bool{false, true, true, false, true})

	var notes []string
	var machines []string
	for _, r := range results {
		if r.RayHardware != "" && !slices.Contains(machines, r.RayHardware) {
			machines = append(machines, r.RayHardware)
		}
	}
	if len(machines) > 0 {
		notes = append(notes, "Ray's figures: "+strings.Join(machines, ", ")+", from Ray's release logs (see TARGETS.md).")
	}
	if n := memcpyNote(results); n != "" {
		notes = append(notes, n)
	}
	for _, r := range results {
		if r.Failed() {
			notes = append(notes, fmt.Sprintf("%s failed: %v", r.Name, r.Err))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n")
		for _, n := range notes {
			b.WriteString(n + "\n")
		}
	}
	return b.String()
}

// writeColumns writes rows as space-separated columns, each as wide as
// its widest cell (in runes), right-aligned where right says so.
func writeColumns(b *strings.Builder, rows [][]string, right []bool) {
	widths := make([]int, len(right))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if right[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// memcpyNote compares each put-gigabytes figure with the memcpy baseline
// measured with it.
func memcpyNote(results []Result) string {
	var lines []string
	for _, base := range results {
		if base.With == "" || base.Err != nil || base.Value <= 0 {
			continue
		}
		for _, r := range results {
			if r.Name == base.With && r.Err == nil {
				lines = append(lines, fmt.Sprintf("%s is %s × %s measured in the same run.", r.Name, formatRatio(r.Value/base.Value), base.Name))
			}
		}
	}
	return strings.Join(lines, "\n")
}

func cell(s string) string {
	if s == "" {
		return dash
	}
	return s
}

func valueCell(r Result) string {
	switch {
	case r.NotBuilt():
		return "not built"
	case r.Err != nil:
		return "error"
	}
	return FormatValue(r.Value) + " " + r.Unit
}

func rayCell(r Result) string {
	if r.RayFigure <= 0 {
		return dash
	}
	return FormatValue(r.RayFigure) + " " + r.Unit
}

func ratioCell(r Result) string {
	if r.Err != nil || r.RayFigure <= 0 {
		return dash
	}
	return formatRatio(r.Value/r.RayFigure) + "×"
}

// FormatValue prints a rate readably: whole numbers with thousands
// separators from 100 up (12,345), at most three significant digits below
// (13.4, 5.8, 0.421).
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case math.Abs(v) >= 99.95:
		return thousands(int64(math.Round(v)))
	case v == 0:
		return "0"
	}
	digits := max(0, 2-int(math.Floor(math.Log10(math.Abs(v)))))
	out := strconv.FormatFloat(v, 'f', digits, 64)
	if strings.Contains(out, ".") {
		out = strings.TrimRight(strings.TrimRight(out, "0"), ".")
	}
	return out
}

// formatRatio prints a ratio like FormatValue.
func formatRatio(x float64) string { return FormatValue(x) }

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// jsonRow is one element of the JSON output.
type jsonRow struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// JSON renders the measured results as a JSON array of objects with the
// keys name, value and unit, one per line; not-built and failed
// benchmarks are left out. It is pure, for tests.
func JSON(results []Result) ([]byte, error) {
	rows := make([]jsonRow, 0, len(results))
	for _, r := range results {
		if r.Err == nil {
			rows = append(rows, jsonRow{Name: r.Name, Value: r.Value, Unit: r.Unit})
		}
	}
	out, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("microbench: encode results: %w", err)
	}
	return append(out, '\n'), nil
}
