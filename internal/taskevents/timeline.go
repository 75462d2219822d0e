package taskevents

import (
	"cmp"
	"slices"
	"time"

	"github.com/raygo/raygo/internal/ids"
)

// TraceEvent is one event of the Chrome Trace Event format, as Ray's
// `ray timeline` writes them: "X" complete events (one per attempt that
// ran) and "M" metadata events naming the rows. Times are microseconds.
// A timeline is a JSON array of them, loadable in Perfetto
// (ui.perfetto.dev) and chrome://tracing.
type TraceEvent struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat,omitempty"`
	Ph    string         `json:"ph"`
	Ts    int64          `json:"ts"`
	Dur   int64          `json:"dur,omitempty"`
	Pid   int            `json:"pid"`
	Tid   int            `json:"tid"`
	Cname string         `json:"cname,omitempty"`
	Args  map[string]any `json:"args,omitempty"`
}

// span is an attempt that ran: where, when and what.
type span struct {
	task              ids.ID
	attempt, pid      int32
	name, fn, state   string
	job, node, worker ids.ID
	actor             ids.ID
	start, end        int64 // unix ns; end 0: still running
}

// Timeline returns the Chrome trace of the newest limit stored attempts
// that ran (limit <= 0: all), of job jobID (hex; empty: every job): one
// process row per node, one thread row per worker, one complete event
// per attempt from RUNNING to its end (an attempt still running ends
// now). The driver's own task is left out.
func (s *Store) Timeline(jobID string, limit int) []TraceEvent {
	var job ids.ID
	if jobID != "" {
		j, ok := parseID(jobID)
		if !ok {
			return nil
		}
		job = j
	}
	var spans []span
	s.mu.Lock()
	for i := s.all.tail; i >= 0 && (limit <= 0 || len(spans) < limit); i = s.rows.at(i).allPrev {
		r := s.rows.at(i)
		if r.times[Running] == 0 || r.typ == DriverTask || (jobID != "" && r.job != job) {
			continue
		}
		end := r.times[Failed]
		if end == 0 {
			end = r.times[Finished]
		}
		name, fn := s.refs.names(i, r)
		if name == "" {
			name = fn
		}
		spans = append(spans, span{task: r.id, attempt: r.attempt, pid: r.pid, name: name, fn: fn, state: statusNames[r.state],
			job: r.job, node: r.node, worker: r.worker, actor: r.actor, start: r.times[Running], end: end})
	}
	s.mu.Unlock()
	return buildTrace(spans, time.Now().UnixNano())
}

// buildTrace lays spans out as trace events: nodes numbered (pid) in
// order of their ids, workers (tid) likewise within their node, metadata
// events naming both first, then the spans in order of start. now ends
// spans still running.
func buildTrace(spans []span, now int64) []TraceEvent {
	type rowKey struct{ node, worker ids.ID }
	nodes := map[ids.ID]int{}
	workers := map[rowKey]int{}
	pids := map[rowKey]int32{}
	for _, sp := range spans {
		nodes[sp.node] = 0
		workers[rowKey{sp.node, sp.worker}] = 0
		pids[rowKey{sp.node, sp.worker}] = sp.pid
	}
	nodeIDs := slices.SortedFunc(mapsKeys(nodes), func(a, b ids.ID) int { return slices.Compare(a[:], b[:]) })
	out := make([]TraceEvent, 0, len(nodes)+len(workers)+len(spans))
	for i, n := range nodeIDs {
		nodes[n] = i + 1
		out = append(out, TraceEvent{Name: "process_name", Ph: "M", Pid: i + 1, Args: map[string]any{"name": "Node " + n.String()}},
			TraceEvent{Name: "process_sort_index", Ph: "M", Pid: i + 1, Args: map[string]any{"sort_index": i + 1}})
	}
	wkeys := slices.SortedFunc(mapsKeys(workers), func(a, b rowKey) int {
		return cmp.Or(slices.Compare(a.node[:], b.node[:]), slices.Compare(a.worker[:], b.worker[:]))
	})
	perNode := map[ids.ID]int{}
	for _, k := range wkeys {
		perNode[k.node]++
		tid := perNode[k.node]
		workers[k] = tid
		label := "Worker " + k.worker.String()
		if p := pids[k]; p != 0 {
			label += " (pid " + itoa(int64(p)) + ")"
		}
		out = append(out, TraceEvent{Name: "thread_name", Ph: "M", Pid: nodes[k.node], Tid: tid, Args: map[string]any{"name": label}},
			TraceEvent{Name: "thread_sort_index", Ph: "M", Pid: nodes[k.node], Tid: tid, Args: map[string]any{"sort_index": tid}})
	}
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(spans[a].start, spans[b].start) })
	for _, i := range order {
		sp := &spans[i]
		end := sp.end
		if end == 0 {
			end = max(now, sp.start)
		}
		args := map[string]any{"task_id": sp.task.String(), "attempt_number": sp.attempt, "func_or_class_name": sp.fn,
			"job_id": sp.job.String(), "state": sp.state, "worker_id": sp.worker.String(), "node_id": sp.node.String()}
		if !sp.actor.IsNil() {
			args["actor_id"] = sp.actor.String()
		}
		cname := "rail_response" // Ray's colour for tasks
		if sp.state == "FAILED" {
			cname = "terrible"
		}
		out = append(out, TraceEvent{Name: sp.name, Cat: "task", Ph: "X", Ts: sp.start / 1000, Dur: max(1, (end-sp.start)/1000),
			Pid: nodes[sp.node], Tid: workers[rowKey{sp.node, sp.worker}], Cname: cname, Args: args})
	}
	return out
}
