package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/ids"
)

// Output formats of list, get and summary.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

func checkFormat(f string, allowed ...string) error {
	if slices.Contains(allowed, f) {
		return nil
	}
	return usageErrorf("unknown format %q: want %s", f, strings.Join(allowed, ", "))
}

// kindArg reads a kind argument as a usage error when unknown.
func kindArg(s string) (string, error) {
	k, err := apiclient.NormalizeKind(s)
	if err != nil {
		return "", &usageError{err}
	}
	return k, nil
}

// tableColumn is one column of a kind's table: the row's field and its
// header.
type tableColumn struct {
	key, header string
}

func cols(keys ...string) []tableColumn {
	out := make([]tableColumn, len(keys))
	for i, k := range keys {
		out[i] = tableColumn{key: k, header: strings.ToUpper(k)}
	}
	return out
}

// tableColumns are the columns `raygo list` prints per kind (like Ray's
// table output, with ids in raygo's short form; --format json or yaml
// prints whole rows with full ids).
var tableColumns = map[string][]tableColumn{
	"nodes":            cols("node_id", "node_ip", "is_head_node", "state", "node_name", "resources_total"),
	"jobs":             cols("job_id", "submission_id", "type", "status", "entrypoint", "message"),
	"actors":           cols("actor_id", "class_name", "state", "name", "node_id", "pid", "job_id"),
	"tasks":            cols("task_id", "attempt_number", "name", "state", "type", "node_id", "worker_pid", "error_type"),
	"objects":          cols("object_id", "object_size", "state", "node_id", "ip", "pins"),
	"workers":          cols("worker_id", "worker_type", "state", "node_id", "ip", "pid", "job_id"),
	"placement_groups": cols("placement_group_id", "name", "creator_job_id", "state", "strategy"),
}

func newListCmd() *cobra.Command {
	var (
		f       apiFlags
		filters []string
		detail  bool
		limit   int
		format  string
	)
	cmd := &cobra.Command{
		Use:   "list KIND",
		Short: "List the cluster's nodes, jobs, actors, tasks, objects, workers or placement groups",
		Long: `List the cluster's state through the head's HTTP API (Ray's ` + "`ray list`" + `).

KIND is nodes, jobs, actors, tasks, objects, workers or placement-groups
(placement_groups, and singulars, work too). Filters are key=value or
key!=value on the rows' field names (see docs/state.md); all must hold.
Strings compare case-insensitively; fields named *_id also match a short id
(at least 6 of the id's first or last hex digits). At most --limit rows are
printed (default 100, at most 100,000); a note on stderr says when more
matched. Tables show the main fields with short ids; --format json prints the
rows as a JSON list, one row per line, and --format yaml as YAML, with full
ids (every field with --detail).`,
		Example: `  raygo list nodes
  raygo list actors --filter state=ALIVE --filter class_name=main.Counter
  raygo list tasks --filter state!=FINISHED --limit 1000
  raygo list tasks --filter job_id=3f2a9c01d2e4 --format json
  raygo list placement-groups --detail --format yaml`,
		Args: exactArgs(1, "KIND"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := kindArg(args[0])
			if err != nil {
				return err
			}
			if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
				return err
			}
			if limit < 1 || limit > 100_000 {
				return usageErrorf("--limit %d: want 1 to 100000", limit)
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			body, err := c.ListRaw(cmd.Context(), kind, apiclient.ListOptions{Filters: filters, Limit: limit, Detail: detail})
			if err != nil {
				return err
			}
			defer body.Close()
			out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
			var (
				onRow  func([]byte) error
				finish func() error
			)
			switch format {
			case formatTable:
				t := newTable(tableColumns[kind])
				onRow, finish = t.addRaw, func() error { return t.write(out) }
			case formatJSON:
				j := &jsonRows{w: out}
				onRow, finish = j.add, j.close
			case formatYAML:
				var rows []any
				onRow = func(row []byte) error {
					var v any
					if err := json.Unmarshal(row, &v); err != nil {
						return err
					}
					rows = append(rows, v)
					return nil
				}
				finish = func() error {
					if rows == nil {
						rows = []any{}
					}
					return printYAML(out, rows)
				}
			}
			a, err := streamList(body, onRow)
			if err != nil {
				return fmt.Errorf("list %s: %w", kind, err)
			}
			err = finish()
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			shown := a.rows
			printListNotes(cmd.ErrOrStderr(), kind, shown, a.NumFiltered, a.PartialFailure, a.Warnings)
			return err
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "key=value or key!=value on the rows' fields (repeatable; all must hold)")
	cmd.Flags().BoolVar(&detail, "detail", false, "every field of each row (with --format json or yaml)")
	cmd.Flags().IntVar(&limit, "limit", 100, "the most rows to print (1 to 100000)")
	cmd.Flags().StringVar(&format, "format", formatTable, "table, json or yaml")
	return cmd
}

// printListNotes says on stderr what the rows printed leave out.
func printListNotes(w io.Writer, kind string, shown, matched int, partial string, warnings []string) {
	if matched > shown {
		fmt.Fprintf(w, "Showing %d of %d %s; use --limit to see more (at most 100000) or --filter to narrow.\n", shown, matched, kind)
	}
	if partial != "" {
		fmt.Fprintf(w, "Warning: %s\n", partial)
	}
	for _, s := range warnings {
		fmt.Fprintf(w, "Warning: %s\n", s)
	}
}

func newGetCmd() *cobra.Command {
	var (
		f      apiFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "get KIND ID",
		Short: "Show one node, job, actor, task, object, worker or placement group, with every field",
		Long: `Show one row of the cluster's state, with every field (Ray's ` + "`ray get`" + `).

ID is a full id or at least 6 of its first or last hex digits (the short ids
that tables and logs print); a job may also be named by its submission id.
A task shows its latest attempt.`,
		Example: `  raygo get actors 9b1c0e2f7a31
  raygo get tasks 5e0d77c2a0b1 --format json
  raygo get jobs raysubmit_XYZ`,
		Args: exactArgs(2, "KIND and ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := kindArg(args[0])
			if err != nil {
				return err
			}
			if err := checkFormat(format, formatJSON, formatYAML); err != nil {
				return err
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			raw, err := c.Get(cmd.Context(), kind, args[1])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == formatJSON {
				return printJSON(out, raw)
			}
			return printYAML(out, raw)
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", formatYAML, "yaml or json")
	return cmd
}

func newSummaryCmd() *cobra.Command {
	var (
		f       apiFlags
		filters []string
		format  string
	)
	cmd := &cobra.Command{
		Use:   "summary KIND",
		Short: "Summarize tasks (by function), actors (by class) or objects (by node)",
		Long: `Summarize the cluster's tasks, actors or objects (Ray's ` + "`ray summary`" + `):
tasks by function or actor class and state, actors by class and state,
objects by node and state with their sizes. Filters narrow what is counted,
as in raygo list.`,
		Example: `  raygo summary tasks
  raygo summary actors --format json
  raygo summary tasks --filter job_id=3f2a9c01d2e4`,
		Args: exactArgs(1, "KIND (tasks, actors or objects)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := kindArg(args[0])
			if err != nil {
				return err
			}
			if !slices.Contains(apiclient.StateSummaryKinds, kind) {
				return usageErrorf("no summary of %s: want tasks, actors or objects", kind)
			}
			if err := checkFormat(format, formatTable, formatJSON, formatYAML); err != nil {
				return err
			}
			c, err := f.client(cmd.Context())
			if err != nil {
				return err
			}
			res, sum, err := c.Summary(cmd.Context(), kind, filters...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch format {
			case formatJSON:
				err = printJSON(out, sum)
			case formatYAML:
				err = printYAML(out, sum)
			default:
				err = printSummary(out, kind, sum)
			}
			printListNotes(cmd.ErrOrStderr(), kind, res.NumFiltered, res.NumFiltered, res.PartialFailureWarning, res.Warnings)
			return err
		},
	}
	f.add(cmd.Flags())
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "key=value or key!=value on the rows' fields (repeatable)")
	cmd.Flags().StringVar(&format, "format", formatTable, "table, json or yaml")
	return cmd
}

func columnKeys(cols []tableColumn) []string {
	keys := make([]string, len(cols))
	for i, c := range cols {
		keys[i] = c.key
	}
	return keys
}

// jsonRows prints rows as a JSON list with one row per line, as the API
// sent them (no re-encoding, so that 100,000 rows print quickly, and each
// is one line for grep).
type jsonRows struct {
	w io.Writer
	n int
}

func (j *jsonRows) add(row []byte) error {
	sep := ",\n  "
	if j.n == 0 {
		sep = "[\n  "
	}
	j.n++
	if _, err := io.WriteString(j.w, sep); err != nil {
		return err
	}
	_, err := j.w.Write(row)
	return err
}

func (j *jsonRows) close() error {
	end := "\n]\n"
	if j.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}

// table collects rows' cells, formatted once into one buffer, then
// writes them in columns two spaces apart, each padded to its widest (in
// runes): no allocation per row for 100,000 rows.
type table struct {
	cols   []tableColumn
	keys   []string
	vals   []json.RawMessage
	text   []byte
	ends   []int // where each cell ends in text
	widths []int
	rows   int
}

func newTable(cols []tableColumn) *table {
	t := &table{cols: cols, keys: columnKeys(cols), vals: make([]json.RawMessage, len(cols)), widths: make([]int, len(cols))}
	for i, c := range cols {
		start := len(t.text)
		t.text = append(t.text, c.header...)
		t.end(i, start)
	}
	return t
}

func (t *table) end(i, start int) {
	t.ends = append(t.ends, len(t.text))
	if n := utf8.RuneCount(t.text[start:]); n > t.widths[i] {
		t.widths[i] = n
	}
}

// add adds a row given as the raw values of the columns, in order.
func (t *table) add(vals []json.RawMessage) {
	for i, c := range t.cols {
		start := len(t.text)
		t.text = appendCell(t.text, c.key, vals[i])
		t.end(i, start)
	}
	t.rows++
}

// addRaw adds a row given as a JSON object.
func (t *table) addRaw(row []byte) error {
	if err := pickFields(row, t.keys, t.vals); err != nil {
		return err
	}
	t.add(t.vals)
	return nil
}

func (t *table) write(w io.Writer) error {
	if t.rows == 0 {
		_, err := fmt.Fprintln(w, "(none)")
		return err
	}
	line := make([]byte, 0, 256)
	start := 0
	for k, end := range t.ends {
		i := k % len(t.cols)
		cell := t.text[start:end]
		start = end
		line = append(line, cell...)
		if i == len(t.cols)-1 {
			line = append(line, '\n')
			if _, err := w.Write(line); err != nil {
				return err
			}
			line = line[:0]
			continue
		}
		for pad := t.widths[i] - utf8.RuneCount(cell) + 2; pad > 0; pad-- {
			line = append(line, ' ')
		}
	}
	return nil
}

// appendCell formats one field for a table: strings as they are (ids in
// their short form, tabs and newlines as spaces), sizes in binary units,
// maps as "k: v, …" sorted by key, null as nothing.
func appendCell(b []byte, key string, raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		return b
	}
	switch raw[0] {
	case '"':
		if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
			// No escapes: the bytes are the string (no allocation: a
			// table of 100,000 rows has a million cells).
			v := raw[1 : len(raw)-1]
			if len(v) == 2*ids.Size && strings.HasSuffix(key, "_id") {
				v = v[len(v)-ids.ShortLen:]
			}
			if bytes.ContainsAny(v, "\t\n\r") {
				return append(b, cellText(string(v))...)
			}
			return append(b, v...)
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return append(b, raw...)
		}
		if strings.HasSuffix(key, "_id") && len(s) == 2*ids.Size {
			s = ids.ShortString(s)
		}
		return append(b, cellText(s)...)
	case '{':
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return append(b, raw...)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, cellText(formatValue(k, m[k]))...)
		}
		return b
	}
	if key == "object_size" {
		if v, err := strconv.ParseFloat(string(raw), 64); err == nil {
			return append(b, humanBytes(v)...)
		}
	}
	return append(b, raw...)
}

// formatValue prints a map's value: memory amounts in binary units,
// other numbers as Ray prints resources.
func formatValue(key string, v any) string {
	switch x := v.(type) {
	case float64:
		if strings.Contains(key, "memory") {
			return humanBytes(x)
		}
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return formatAmount(x)
	case string:
		return x
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}

// cellText keeps a cell on one line and one column.
func cellText(s string) string {
	if strings.ContainsAny(s, "\t\n\r") {
		s = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s)
	}
	return s
}

// printJSON prints v (rows, a row or a summary) as indented JSON.
func printJSON(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// printYAML prints v as YAML (keys sorted).
func printYAML(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(yamlNumbers(generic)); err != nil {
		return err
	}
	return enc.Close()
}

// yamlNumbers turns json.Numbers into ints or floats so that YAML prints
// them as numbers.
func yamlNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = yamlNumbers(e)
		}
	}
	return v
}

// printSummary prints a summary as Ray does: totals, then a table of its
// groups.
func printSummary(w io.Writer, kind string, raw json.RawMessage) error {
	var s struct {
		Summary             map[string]map[string]json.RawMessage `json:"summary"`
		TotalTasks          *int                                  `json:"total_tasks"`
		TotalActorTasks     *int                                  `json:"total_actor_tasks"`
		TotalActorScheduled *int                                  `json:"total_actor_scheduled"`
		TotalActors         *int                                  `json:"total_actors"`
		TotalObjects        *int                                  `json:"total_objects"`
		TotalSizeMB         *float64                              `json:"total_size_mb"`
		SummaryBy           string                                `json:"summary_by"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("summary of %s: %w", kind, err)
	}
	title := strings.ToUpper(kind[:1]) + kind[1:]
	fmt.Fprintf(w, "======== %s Summary ========\nStats:\n------------------------------------\n", title)
	stat := func(name string, v *int) {
		if v != nil {
			fmt.Fprintf(w, "%s: %d\n", name, *v)
		}
	}
	stat("total_tasks", s.TotalTasks)
	stat("total_actor_tasks", s.TotalActorTasks)
	stat("total_actor_scheduled", s.TotalActorScheduled)
	stat("total_actors", s.TotalActors)
	stat("total_objects", s.TotalObjects)
	if s.TotalSizeMB != nil {
		fmt.Fprintf(w, "total_size: %s\n", humanBytes(*s.TotalSizeMB*(1<<20)))
	}
	fmt.Fprintf(w, "\nTable (group by %s):\n------------------------------------\n", s.SummaryBy)
	var tc []tableColumn
	switch kind {
	case "tasks":
		tc = cols("func_or_class_name", "type", "state_counts")
	case "actors":
		tc = cols("class_name", "state_counts")
	default:
		tc = cols("node_id", "total_objects", "total_size_mb", "state_counts")
	}
	keys := make([]string, 0, len(s.Summary))
	for k := range s.Summary {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	t := newTable(tc)
	row := make([]json.RawMessage, len(tc))
	for _, k := range keys {
		g := s.Summary[k]
		for i, c := range tc {
			row[i] = g[c.key]
		}
		t.add(row)
	}
	return t.write(w)
}
