package state

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/taskevents"
)

// ---------------------------------------------------------------- tasks

var taskColumns = []column[taskevents.Task]{
	strCol("task_id", false, func(r *taskevents.Task) string { return r.TaskID }),
	intCol("attempt_number", false, func(r *taskevents.Task) int64 { return int64(r.Attempt) }),
	strCol("name", false, func(r *taskevents.Task) string { return r.Name }),
	strCol("state", false, func(r *taskevents.Task) string { return r.State }),
	strCol("job_id", false, func(r *taskevents.Task) string { return r.JobID }),
	strCol("actor_id", false, func(r *taskevents.Task) string { return r.ActorID }),
	strCol("type", false, func(r *taskevents.Task) string { return r.Type }),
	strCol("func_or_class_name", false, func(r *taskevents.Task) string { return r.FuncOrClassName }),
	strCol("parent_task_id", false, func(r *taskevents.Task) string { return r.ParentTaskID }),
	strCol("node_id", false, func(r *taskevents.Task) string { return r.NodeID }),
	strCol("worker_id", false, func(r *taskevents.Task) string { return r.WorkerID }),
	intCol("worker_pid", false, func(r *taskevents.Task) int64 { return int64(r.WorkerPID) }),
	strCol("error_type", false, func(r *taskevents.Task) string { return r.ErrorType }),
	strCol("error_message", true, func(r *taskevents.Task) string { return r.ErrorMessage }),
	otherCol("required_resources", true, func(r *taskevents.Task) any { return r.RequiredResources }),
	strCol("placement_group_id", true, func(r *taskevents.Task) string { return r.PlacementGroupID }),
	intCol("creation_time_ms", true, func(r *taskevents.Task) int64 { return r.CreationTimeMs }),
	intCol("start_time_ms", true, func(r *taskevents.Task) int64 { return r.StartTimeMs }),
	intCol("end_time_ms", true, func(r *taskevents.Task) int64 { return r.EndTimeMs }),
	otherCol("events", true, func(r *taskevents.Task) any { return r.Events }),
}

// registerTasks serves tasks from the control store's task-event store:
// filters run inside the store's scan (no copy of rows that do not
// match), newest attempts first.
func registerTasks(s *api.Server, src *sources) {
	store := func() *taskevents.Store { return src.c.GCS.TaskEvents() }
	s.Handle("GET /api/v0/tasks", api.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			api.WriteError(w, api.BadRequest("list tasks: %v", err))
			return
		}
		keep, err := compile(taskColumns, q.Filters)
		if err != nil {
			api.WriteError(w, api.BadRequest("list tasks: %v", err))
			return
		}
		st := store()
		rows, matched := st.Tasks(keep, q.Limit)
		stats := st.Stats()
		m := listMeta{Total: stats.Stored, NumAfterTruncation: stats.Stored, NumFiltered: matched, Warnings: taskWarnings(stats)}
		_ = writeList(w, taskColumns, q.Detail, rows, m)
	})
	s.Handle("GET /api/v0/tasks/summarize", api.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		filters, err := parseSummaryQuery(r.URL.Query())
		if err != nil {
			api.WriteError(w, api.BadRequest("summarize tasks: %v", err))
			return
		}
		keep, err := compile(taskColumns, filters)
		if err != nil {
			api.WriteError(w, api.BadRequest("summarize tasks: %v", err))
			return
		}
		// Count inside the scan and keep no rows.
		sum := newTaskSummaries()
		st := store()
		matched := 0
		st.Tasks(func(t *taskevents.Task) bool {
			if keep == nil || keep(t) {
				sum.add(t.FuncOrClassName, t.Type, t.State)
				matched++
			}
			return false
		}, 0)
		stats := st.Stats()
		m := listMeta{Total: stats.Stored, NumAfterTruncation: stats.Stored, NumFiltered: matched, Warnings: taskWarnings(stats)}
		writeSummary(w, m, sum)
	})
	s.Handle("GET /api/v0/tasks/{id}", api.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		attempt := -1
		for k := range r.URL.Query() {
			if k != "attempt" {
				api.WriteError(w, api.BadRequest("get task: unknown parameter %q (want attempt)", k))
				return
			}
		}
		if s := r.URL.Query().Get("attempt"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				api.WriteError(w, api.BadRequest("get task: attempt %q: want a number from 0", s))
				return
			}
			attempt = n
		}
		attempts, err := findTask(store(), r.PathValue("id"))
		if err != nil {
			api.WriteError(w, lookupError(err))
			return
		}
		t := &attempts[len(attempts)-1]
		if attempt >= 0 {
			t = nil
			for i := range attempts {
				if int(attempts[i].Attempt) == attempt {
					t = &attempts[i]
				}
			}
			if t == nil {
				api.WriteError(w, api.NotFound("task %s has no attempt %d (it has %d)", attempts[0].TaskID, attempt, len(attempts)))
				return
			}
		}
		_ = writeOne(w, taskColumns, t)
	})
}

// findTask returns every stored attempt of the task q names (a full id
// or an abbreviation), oldest first.
func findTask(st *taskevents.Store, q string) ([]taskevents.Task, error) {
	q, err := normalizeID(q)
	if err != nil {
		return nil, err
	}
	if len(q) != 2*ids.Size {
		// An abbreviation: find the ids it matches in one scan.
		seen := map[string]bool{}
		var cands []string
		st.Tasks(func(t *taskevents.Task) bool {
			if idMatches(t.TaskID, q) && !seen[t.TaskID] {
				seen[t.TaskID] = true
				cands = append(cands, t.TaskID)
			}
			return false
		}, 0)
		if q, err = resolveID(cands, q, "task"); err != nil {
			return nil, err
		}
	}
	attempts := st.Get(q)
	if len(attempts) == 0 {
		return nil, fmt.Errorf("%w: no task has id %s (or its events were evicted)", errNoSuchID, q)
	}
	return attempts, nil
}

// taskWarnings says when the store's rows are incomplete.
func taskWarnings(st taskevents.Stats) []string {
	var out []string
	if st.Evicted > 0 {
		out = append(out, fmt.Sprintf("%d task attempts were evicted from the head's task-event store (it keeps the newest; raise --task-events-max)", st.Evicted))
	}
	if st.DroppedAtSource > 0 {
		out = append(out, fmt.Sprintf("%d task events were dropped by workers and drivers before reaching the head (their buffers were full): some tasks may be missing or show an older state", st.DroppedAtSource))
	}
	if st.NotRecorded > 0 {
		out = append(out, fmt.Sprintf("%d task attempts were not recorded: their drivers and workers submitted more than their task-event budget (by default %d a second per process after a burst of %d; %s sets it)", st.NotRecorded, taskevents.DefaultRate, taskevents.DefaultBurst, taskevents.EnvRate))
	}
	return out
}
