// Command compare reads the JSON of `raygo microbenchmark --json` and of
// `peers --json` and prints raygo's figures beside its Go peers', with the
// ratio raygo / peer, the target from TARGETS.md where there is one, and
// what each row compares: a call (a request and its reply) with a call, or
// a call with a one-way message, which a peer that sends no reply has an
// easier time with.
//
//	compare --raygo raygo.json --peers peers.json [--markdown]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/raygo/raygo/bench/internal/table"
)

// row is one element of either JSON file; kind is only in peers'.
type row struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Kind  string  `json:"kind"`
}

// comparison sets one raygo benchmark beside one peer's.
type comparison struct {
	raygo, peer string
	target      float64 // the least raygo/peer that TARGETS.md asks for; 0 for none
	what        string
}

var comparisons = []comparison{
	{"single_client_tasks_async", "asynq_end_to_end", 10,
		"call vs oneway: a raygo task is submitted, run in a worker process and its result got; an asynq task is enqueued and run, nothing comes back"},
	{"1_1_actor_calls_async", "protoactor_remote_send", 0.2,
		"call vs oneway: a raygo actor call is a request and a reply got through a future; a protoactor Send is one message"},
	{"single_client_tasks_sync", "grpc_unary_roundtrip", 0.5,
		"call vs call: one task and its result at a time vs one gRPC unary call at a time (raygo: its own whole task path)"},
	{"1_1_actor_calls_async", "protoactor_remote_request", 0,
		"call vs call: batches of 1000 actor calls vs batches of 1000 RequestFutures, both to a second process"},
	{"single_client_tasks_async", "protoactor_remote_request", 0,
		"call vs call: batches of 1000 tasks vs batches of 1000 remote actor requests"},
	{"single_client_tasks_sync", "grpc_stream_roundtrip", 0,
		"call vs call: one task at a time vs one message and its reply on an open gRPC stream"},
	{"1_1_actor_calls_sync", "grpc_stream_roundtrip", 0,
		"call vs call: one actor call at a time vs one message and its reply on an open gRPC stream"},
	{"single_client_tasks_async", "goroutine_pool", 0,
		"call vs call: batches of 1000 tasks in worker processes vs 1000 jobs to goroutines in the same process (the in-process limit)"},
	{"1_1_actor_calls_async", "goroutine_pool", 0,
		"call vs call: batches of 1000 actor calls vs 1000 jobs to goroutines in the same process (the in-process limit)"},
	{"single_client_tasks_async", "asynq_process_simple", 0,
		"call vs oneway: asynq's own benchmark, draining a backlog enqueued beforehand (enqueueing not timed)"},
}

func main() {
	raygoPath := flag.String("raygo", "raygo.json", "JSON written by `raygo microbenchmark --json`")
	peersPath := flag.String("peers", "peers.json", "JSON written by `peers --json`")
	markdown := flag.Bool("markdown", false, "print a Markdown table")
	flag.Parse()
	raygo, err := load(*raygoPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	peers, err := load(*peersPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
	write(os.Stdout, raygo, peers, *markdown)
}

func load(path string) (map[string]row, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []row
	if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := make(map[string]row, len(rows))
	for _, r := range rows {
		m[r.Name] = r
	}
	return m, nil
}

func write(w io.Writer, raygo, peers map[string]row, markdown bool) {
	header := []string{"#", "RAYGO BENCHMARK", "RAYGO (call)", "PEER", "PEER FIGURE", "COMPARES", "RAYGO/PEER", "TARGET", "VERDICT"}
	rows := [][]string{header}
	var notes []string
	for i, c := range comparisons {
		r, rok := raygo[c.raygo]
		p, pok := peers[c.peer]
		rcell, pcell, ratio, verdict := "missing", "missing", "—", "—"
		if rok {
			rcell = formatValue(r.Value) + " " + r.Unit
		}
		if pok {
			pcell = fmt.Sprintf("%s %s (%s)", formatValue(p.Value), p.Unit, p.Kind)
		}
		target := "—"
		if c.target > 0 {
			target = fmt.Sprintf("≥ %.2f×", c.target)
		}
		if rok && pok && p.Value > 0 {
			x := r.Value / p.Value
			ratio = fmt.Sprintf("%.2f×", x)
			if c.target > 0 {
				verdict = "meets"
				if x < c.target {
					verdict = "misses"
				}
			}
		}
		compares := "—"
		if pok {
			compares = "call vs " + p.Kind
		}
		rows = append(rows, []string{fmt.Sprint(i + 1), c.raygo, rcell, c.peer, pcell, compares, ratio, target, verdict})
		notes = append(notes, fmt.Sprintf("%d. %s", i+1, c.what))
	}
	if markdown {
		for i, r := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
			if i == 0 {
				fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(r)))
			}
		}
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
		return
	}
	table.WriteColumns(w, rows, []bool{true, false, true, false, true, false, true, false, false})
	fmt.Fprintln(w, "\ncall = a request and its reply; oneway = a message or queued task delivered one way, no reply.")
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
}

// formatValue prints a rate: thousands separators from 100 up, three
// significant digits below.
func formatValue(v float64) string {
	if v >= 99.95 {
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return fmt.Sprintf("%.3g", v)
}
