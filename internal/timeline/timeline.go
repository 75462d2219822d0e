// Package timeline serves the cluster's task timeline on the head's HTTP
// API: GET /api/v0/timeline[?job_id=HEX] answers the Chrome Trace Event
// JSON (an array) of every stored task attempt that ran, built by
// taskevents.Store.Timeline from the control store's task events. Load
// it in Perfetto (ui.perfetto.dev) or chrome://tracing; `raygo timeline`
// writes it to a file. See docs/taskevents.md.
package timeline

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/ids"
)

// Path is the timeline's route.
const Path = "/api/v0/timeline"

// Limits of one timeline: the newest DefaultSpans attempts unless the
// request's limit asks for up to MaxSpans (about 400 bytes of JSON each).
const (
	DefaultSpans = 100_000
	MaxSpans     = 1_000_000
)

// Register adds GET /api/v0/timeline (scope read) to the API.
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	store := c.GCS.TaskEvents()
	s.Handle("GET "+Path, api.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		job := r.URL.Query().Get("job_id")
		if err := checkJobID(job); err != nil {
			api.WriteError(w, err)
			return
		}
		limit, err := parseLimit(r.URL.Query().Get("limit"))
		if err != nil {
			api.WriteError(w, err)
			return
		}
		events := store.Timeline(job, limit)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("download") == "1" {
			w.Header().Set("Content-Disposition", `attachment; filename="timeline.json"`)
		}
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		if events == nil {
			_, _ = w.Write([]byte("[]\n"))
			return
		}
		_ = enc.Encode(events)
	})
	return nil, nil
}

// parseLimit reads the limit parameter: empty is DefaultSpans.
func parseLimit(v string) (int, error) {
	if v == "" {
		return DefaultSpans, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxSpans {
		return 0, api.BadRequest("limit %q: want a number of task attempts from 1 to %d", v, MaxSpans)
	}
	return n, nil
}

// checkJobID refuses a job_id that is not an id as raygo prints them.
func checkJobID(job string) error {
	if job == "" {
		return nil
	}
	if len(job) != 2*ids.Size {
		return api.BadRequest("job_id %q: want %d hex digits", job, 2*ids.Size)
	}
	for _, c := range job {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return api.BadRequest("job_id %q: want %d hex digits", job, 2*ids.Size)
		}
	}
	return nil
}
