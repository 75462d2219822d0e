package apiclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// CloseIdle closes the client's idle connections (a client made for one
// call closes them when done, so that no connection outlives it).
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// StateKinds are the kinds the state API lists, as its paths name them.
var StateKinds = []string{"nodes", "jobs", "actors", "tasks", "objects", "workers", "placement_groups"}

// StateSummaryKinds are the kinds with a summary.
var StateSummaryKinds = []string{"tasks", "actors", "objects"}

// NormalizeKind reads a kind as users write it: Ray's spellings
// ("placement-groups", "placement_groups"), singular or plural, any case.
func NormalizeKind(kind string) (string, error) {
	k := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(kind)), "-", "_")
	for _, want := range StateKinds {
		if k == want || k+"s" == want {
			return want, nil
		}
	}
	return "", fmt.Errorf("unknown kind %q: want one of %s", kind, strings.Join(StateKinds, ", "))
}

// ListOptions narrow a list.
type ListOptions struct {
	// Filters are "key=value" or "key!=value"; all must hold. Keys are the
	// rows' JSON field names.
	Filters []string
	// Limit is the most rows to return (0: the server's default, 100; at
	// most 100,000).
	Limit int
	// Detail asks for every column.
	Detail bool
}

func (o ListOptions) query() string {
	v := url.Values{}
	for _, f := range o.Filters {
		v.Add("filter", f)
	}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Detail {
		v.Set("detail", "true")
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// ListResult is a list's answer. Rows are left as JSON for the caller to
// decode into its own types (DecodeRows).
type ListResult struct {
	// Total is how many rows the cluster has; NumAfterTruncation how
	// many its sources returned; NumFiltered how many matched the
	// filters (Rows has at most the limit of them).
	Total              int               `json:"total"`
	NumAfterTruncation int               `json:"num_after_truncation"`
	NumFiltered        int               `json:"num_filtered"`
	Rows               []json.RawMessage `json:"result"`
	// PartialFailureWarning names the nodes that did not answer; their
	// rows are missing.
	PartialFailureWarning string `json:"partial_failure_warning"`
	// Warnings say what else is known to be missing (evicted or dropped
	// task events).
	Warnings []string `json:"warnings"`
}

// DecodeRows decodes the rows into out, a pointer to a slice.
func (r *ListResult) DecodeRows(out any) error {
	raw, err := json.Marshal(r.Rows)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// List lists kind (see StateKinds; NormalizeKind's spellings are taken).
func (c *Client) List(ctx context.Context, kind string, o ListOptions) (*ListResult, error) {
	k, err := NormalizeKind(kind)
	if err != nil {
		return nil, err
	}
	out := &ListResult{}
	if err := c.Do(ctx, http.MethodGet, "/api/v0/"+k+o.query(), nil, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListTo lists kind and decodes the answer straight into out (a pointer
// to a struct with a "result" field, or to ListResult), without holding
// the rows twice: what a list of 100,000 tasks wants.
func (c *Client) ListTo(ctx context.Context, kind string, o ListOptions, out any) error {
	k, err := NormalizeKind(kind)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodGet, "/api/v0/"+k+o.query(), nil, out)
}

// ListRaw lists kind and returns the answer's body as it came (JSON), for
// callers that print or forward it. The caller closes it.
func (c *Client) ListRaw(ctx context.Context, kind string, o ListOptions) (io.ReadCloser, error) {
	k, err := NormalizeKind(kind)
	if err != nil {
		return nil, err
	}
	resp, err := c.Request(ctx, http.MethodGet, "/api/v0/"+k+o.query(), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Get returns one row of kind, with every column, by id: a full id or at
// least 6 of its first or last hex digits (jobs also by submission id).
// A missing one is an error for which IsNotFound holds.
func (c *Client) Get(ctx context.Context, kind, id string) (json.RawMessage, error) {
	k, err := NormalizeKind(kind)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, fmt.Errorf("get %s: no id given", k)
	}
	var out struct {
		Result json.RawMessage `json:"result"`
	}
	if err := c.Do(ctx, http.MethodGet, "/api/v0/"+k+"/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return out.Result, nil
}

// SummaryResult is a summary's answer: Summary is the cluster's summary
// (Ray's TaskSummaries, ActorSummaries, or raygo's ObjectSummaries by
// node), as JSON.
type SummaryResult struct {
	Total                 int      `json:"total"`
	NumAfterTruncation    int      `json:"num_after_truncation"`
	NumFiltered           int      `json:"num_filtered"`
	PartialFailureWarning string   `json:"partial_failure_warning"`
	Warnings              []string `json:"warnings"`
	Result                struct {
		NodeIDToSummary map[string]json.RawMessage `json:"node_id_to_summary"`
	} `json:"result"`
}

// Summary returns the cluster's summary of kind (tasks, actors or
// objects) over the rows that match filters.
func (c *Client) Summary(ctx context.Context, kind string, filters ...string) (*SummaryResult, json.RawMessage, error) {
	k, err := NormalizeKind(kind)
	if err != nil {
		return nil, nil, err
	}
	ok := false
	for _, s := range StateSummaryKinds {
		ok = ok || s == k
	}
	if !ok {
		return nil, nil, fmt.Errorf("no summary of %s: want one of %s", k, strings.Join(StateSummaryKinds, ", "))
	}
	q := ListOptions{Filters: filters}.query()
	out := &SummaryResult{}
	if err := c.Do(ctx, http.MethodGet, "/api/v0/"+k+"/summarize"+q, nil, out); err != nil {
		return nil, nil, err
	}
	return out, out.Result.NodeIDToSummary["cluster"], nil
}
