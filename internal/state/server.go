package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/raylet"
)

// Kinds are the state API's kinds, as they appear in its paths.
var Kinds = []string{"nodes", "jobs", "actors", "tasks", "objects", "workers", "placement_groups"}

// SummaryKinds are the kinds with a summary.
var SummaryKinds = []string{"tasks", "actors", "objects"}

// Config configures the state API.
type Config struct {
	// NodeTimeout bounds each node daemon's answer (workers, objects);
	// 0: DefaultNodeTimeout.
	NodeTimeout time.Duration
}

// Register serves the state API on s with the default Config (the head's
// feature, internal/node/api.go).
func Register(s *api.Server, c *api.Cluster) (func(), error) { return Feature(Config{})(s, c) }

// Feature returns the state API's feature for cfg.
func Feature(cfg Config) api.Feature {
	return func(s *api.Server, c *api.Cluster) (func(), error) {
		if c == nil || c.GCS == nil || c.Pool == nil {
			return nil, errors.New("state: the state API needs the head's control store and a connection pool")
		}
		if cfg.NodeTimeout <= 0 {
			cfg.NodeTimeout = DefaultNodeTimeout
		}
		src := &sources{c: c, nodeTimeout: cfg.NodeTimeout}
		register(s, src)
		return nil, nil
	}
}

func register(s *api.Server, src *sources) {
	const p = "GET /api/v0/"
	s.Handle(p+"nodes", api.ScopeRead, listRoute("nodes", nodeColumns, func(ctx context.Context, _ Query) ([]nodeRow, listMeta, error) {
		rows, err := src.nodes(ctx)
		return rows, countMeta(len(rows)), err
	}))
	s.Handle(p+"nodes/{id}", api.ScopeRead, getRoute("node", nodeColumns, byID(func(r *nodeRow) string { return r.id }), src.nodes))

	s.Handle(p+"jobs", api.ScopeRead, listRoute("jobs", jobColumns, func(ctx context.Context, _ Query) ([]jobRow, listMeta, error) {
		rows, err := src.jobs(ctx)
		return rows, countMeta(len(rows)), err
	}))
	s.Handle(p+"jobs/{id}", api.ScopeRead, getRoute("job", jobColumns, findJob, src.jobs))

	s.Handle(p+"actors", api.ScopeRead, listRoute("actors", actorColumns, func(ctx context.Context, _ Query) ([]actorRow, listMeta, error) {
		rows, err := src.actors(ctx)
		return rows, countMeta(len(rows)), err
	}))
	s.Handle(p+"actors/summarize", api.ScopeRead, summaryRoute("actors", actorColumns, withCount(src.actors), func(rows []actorRow) any { return summarizeActors(rows) }))
	s.Handle(p+"actors/{id}", api.ScopeRead, getRoute("actor", actorColumns, byID(func(r *actorRow) string { return r.id }), src.actors))

	s.Handle(p+"placement_groups", api.ScopeRead, listRoute("placement_groups", groupColumns, func(ctx context.Context, _ Query) ([]groupRow, listMeta, error) {
		rows, err := src.groups(ctx)
		return rows, countMeta(len(rows)), err
	}))
	s.Handle(p+"placement_groups/{id}", api.ScopeRead, getRoute("placement group", groupColumns, byID(func(r *groupRow) string { return r.id }), src.groups))

	s.Handle(p+"workers", api.ScopeRead, listRoute("workers", workerColumns, func(ctx context.Context, _ Query) ([]workerRow, listMeta, error) {
		rows, warn, err := src.workers(ctx)
		m := countMeta(len(rows))
		m.PartialFailure = warn
		return rows, m, err
	}))
	s.Handle(p+"workers/{id}", api.ScopeRead, getRoute("worker", workerColumns, byID(func(r *workerRow) string { return r.id }), func(ctx context.Context) ([]workerRow, error) {
		rows, _, err := src.workers(ctx)
		return rows, err
	}))

	s.Handle(p+"objects", api.ScopeRead, listRoute("objects", objectColumns, func(ctx context.Context, q Query) ([]objectRow, listMeta, error) {
		// Without filters each node's largest limit objects are the
		// answer's; with filters every node sends all it may.
		perNode := q.Limit
		if len(q.Filters) > 0 {
			perNode = raylet.MaxListObjects
		}
		rows, total, warn, err := src.objects(ctx, perNode)
		return rows, listMeta{Total: total, NumAfterTruncation: len(rows), PartialFailure: warn}, err
	}))
	allObjects := func(ctx context.Context) ([]objectRow, listMeta, error) {
		rows, total, warn, err := src.objects(ctx, raylet.MaxListObjects)
		return rows, listMeta{Total: total, NumAfterTruncation: len(rows), PartialFailure: warn}, err
	}
	s.Handle(p+"objects/summarize", api.ScopeRead, summaryRoute("objects", objectColumns, allObjects, func(rows []objectRow) any { return summarizeObjects(rows) }))
	s.Handle(p+"objects/{id}", api.ScopeRead, getRoute("object", objectColumns, byID(func(r *objectRow) string { return r.id }), dropMeta(allObjects)))

	registerTasks(s, src)
	registerCluster(s, src)
}

// withCount adapts a source that returns every row to one with meta.
func withCount[T any](fetch func(context.Context) ([]T, error)) func(context.Context) ([]T, listMeta, error) {
	return func(ctx context.Context) ([]T, listMeta, error) {
		rows, err := fetch(ctx)
		return rows, countMeta(len(rows)), err
	}
}

// dropMeta adapts a source with meta to one without.
func dropMeta[T any](fetch func(context.Context) ([]T, listMeta, error)) func(context.Context) ([]T, error) {
	return func(ctx context.Context) ([]T, error) {
		rows, _, err := fetch(ctx)
		return rows, err
	}
}

// countMeta is the meta of a list whose source returned all n rows.
func countMeta(n int) listMeta { return listMeta{Total: n, NumAfterTruncation: n} }

// listRoute serves a list: parse the query, check the filters against
// the kind's columns (400 before any data is fetched), fetch, filter,
// limit, write.
func listRoute[T any](kind string, cols []column[T], fetch func(context.Context, Query) ([]T, listMeta, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := ParseQuery(r.URL.Query())
		if err != nil {
			api.WriteError(w, api.BadRequest("list %s: %v", kind, err))
			return
		}
		keep, err := compile(cols, q.Filters)
		if err != nil {
			api.WriteError(w, api.BadRequest("list %s: %v", kind, err))
			return
		}
		rows, m, err := fetch(r.Context(), q)
		if err != nil {
			api.WriteError(w, fmt.Errorf("list %s: %w", kind, err))
			return
		}
		rows, m.NumFiltered = apply(rows, keep, q.Limit)
		_ = writeList(w, cols, q.Detail, rows, m)
	}
}

// finder picks the row an id names among rows, or fails with errBadID,
// errNoSuchID or errAmbiguous.
type finder[T any] func(rows []T, q, what string) (*T, error)

// byID finds rows by their id column: a full id or an abbreviation
// (normalizeID, resolveID).
func byID[T any](idOf func(*T) string) finder[T] {
	return func(rows []T, q, what string) (*T, error) {
		q, err := normalizeID(q)
		if err != nil {
			return nil, err
		}
		cands := make([]string, len(rows))
		for i := range rows {
			cands[i] = idOf(&rows[i])
		}
		id, err := resolveID(cands, q, what)
		if err != nil {
			return nil, err
		}
		for i := range rows {
			if idOf(&rows[i]) == id {
				return &rows[i], nil
			}
		}
		return nil, fmt.Errorf("%w: no %s has id %s", errNoSuchID, what, q)
	}
}

// findJob finds a job by submission id (exactly) or by job id.
func findJob(rows []jobRow, q, what string) (*jobRow, error) {
	for i := range rows {
		if rows[i].submissionID != "" && rows[i].submissionID == q {
			return &rows[i], nil
		}
	}
	if _, err := normalizeID(q); err != nil {
		return nil, fmt.Errorf("%w: no job has submission id %q, and it is no job id: %v", errNoSuchID, q, err)
	}
	return byID(func(r *jobRow) string { return r.jobID })(rows, q, what)
}

// getRoute serves one row, with every column, by id.
func getRoute[T any](what string, cols []column[T], find finder[T], fetch func(context.Context) ([]T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Query()) > 0 {
			api.WriteError(w, api.BadRequest("get %s: no parameters are taken, got %s", what, r.URL.RawQuery))
			return
		}
		q := r.PathValue("id")
		rows, err := fetch(r.Context())
		if err != nil {
			api.WriteError(w, fmt.Errorf("get %s: %w", what, err))
			return
		}
		row, err := find(rows, q, what)
		if err != nil {
			api.WriteError(w, lookupError(err))
			return
		}
		_ = writeOne(w, cols, row)
	}
}

// lookupError maps an id lookup's error to the API's.
func lookupError(err error) error {
	switch {
	case errors.Is(err, errNoSuchID):
		return api.NotFound("%v", trimPrefix(err))
	case errors.Is(err, errBadID), errors.Is(err, errAmbiguous):
		return api.BadRequest("%v", trimPrefix(err))
	}
	return err
}

// trimPrefix drops the sentinel's text from a lookup error, which reads
// better to users ("no actor has id …").
func trimPrefix(err error) string {
	s := err.Error()
	for _, e := range []error{errNoSuchID, errBadID, errAmbiguous} {
		p := e.Error() + ": "
		if len(s) > len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}

// parseSummaryQuery reads a summary's parameters: only filters.
func parseSummaryQuery(v url.Values) ([]Filter, error) {
	for k := range v {
		if k != "filter" {
			return nil, fmt.Errorf("unknown parameter %q (a summary takes only filter)", k)
		}
	}
	q, err := ParseQuery(v)
	return q.Filters, err
}

// summaryAnswer is a summary's answer (Ray's SummaryApiResponse).
type summaryAnswer struct {
	Total                 int      `json:"total"`
	NumAfterTruncation    int      `json:"num_after_truncation"`
	NumFiltered           int      `json:"num_filtered"`
	PartialFailureWarning string   `json:"partial_failure_warning"`
	Warnings              []string `json:"warnings"`
	Result                struct {
		NodeIDToSummary map[string]any `json:"node_id_to_summary"`
	} `json:"result"`
}

func writeSummary(w http.ResponseWriter, m listMeta, summary any) {
	a := summaryAnswer{Total: m.Total, NumAfterTruncation: m.NumAfterTruncation, NumFiltered: m.NumFiltered,
		PartialFailureWarning: m.PartialFailure, Warnings: m.Warnings}
	if a.Warnings == nil {
		a.Warnings = []string{}
	}
	a.Result.NodeIDToSummary = map[string]any{"cluster": summary}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

// summaryRoute serves a summary of the rows that match the filters.
func summaryRoute[T any](kind string, cols []column[T], fetch func(context.Context) ([]T, listMeta, error), summarize func([]T) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		filters, err := parseSummaryQuery(r.URL.Query())
		if err != nil {
			api.WriteError(w, api.BadRequest("summarize %s: %v", kind, err))
			return
		}
		keep, err := compile(cols, filters)
		if err != nil {
			api.WriteError(w, api.BadRequest("summarize %s: %v", kind, err))
			return
		}
		rows, m, err := fetch(r.Context())
		if err != nil {
			api.WriteError(w, fmt.Errorf("summarize %s: %w", kind, err))
			return
		}
		rows, m.NumFiltered = apply(rows, keep, 0)
		writeSummary(w, m, summarize(rows))
	}
}
