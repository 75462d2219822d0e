package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/raygo/raygo/internal/apiclient"
)

// ListInput is the input of every list_* tool.
type ListInput struct {
	Filters []string `json:"filters,omitempty" jsonschema:"filters that must all hold, each \"key=value\" or \"key!=value\" on a field of the rows (e.g. \"state=ALIVE\", \"job_id=0a1b2c\"); strings compare case-insensitively, ids may be abbreviated; an unknown key is an error listing the valid ones"`
	Limit   int      `json:"limit,omitempty" jsonschema:"rows per page: default 100, at most 1000"`
	Cursor  string   `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page, with the same filters and detail; leave out for the first page"`
	Detail  bool     `json:"detail,omitempty" jsonschema:"return every field of each row instead of the main ones"`
}

// ListOutput is the output of every list_* tool.
type ListOutput struct {
	Kind string           `json:"kind" jsonschema:"what the rows are: nodes, actors, tasks, objects, jobs or placement_groups"`
	Rows []map[string]any `json:"rows" jsonschema:"this page's rows (fields as in Ray's state API)"`
	// NumFiltered and Total are the state API's counts.
	NumFiltered int      `json:"num_filtered" jsonschema:"rows that match the filters in all pages"`
	Total       int      `json:"total" jsonschema:"rows of this kind in the cluster, before filters"`
	NextCursor  string   `json:"next_cursor,omitempty" jsonschema:"pass as cursor (with the same filters and detail) for the next page; absent on the last page"`
	Warnings    []string `json:"warnings,omitempty" jsonschema:"what is known to be missing (nodes that did not answer, evicted task events)"`
}

// GetInput is the input of every get_* tool.
type GetInput struct {
	ID string `json:"id" jsonschema:"the id: in full, or at least 6 of its first or last hex digits (jobs also by submission id)"`
}

// GetOutput is the output of every get_* tool.
type GetOutput struct {
	Kind string         `json:"kind" jsonschema:"node, actor, task or job"`
	Row  map[string]any `json:"row" jsonschema:"every field of the row"`
}

// listKind describes one list tool and its get tool.
type listKind struct {
	kind  string // the state API's kind
	one   string // "actor"
	about string // what the rows are, for the description
	hint  string // where valid ids come from
	get   bool   // has a get_* tool
}

var listKinds = []listKind{
	{kind: "nodes", one: "node", get: true, about: "the cluster's nodes (alive and dead): id, address, state, resources, labels",
		hint: "list_nodes lists the nodes and their node_id"},
	{kind: "actors", one: "actor", get: true, about: "actors: id, class, state (ALIVE, PENDING_CREATION, RESTARTING, DEAD), job, node, pid; detail adds death_cause and required_resources",
		hint: "list_actors lists the actors and their actor_id (filter e.g. state=ALIVE)"},
	{kind: "tasks", one: "task", get: true, about: "task attempts, newest first: id, name, state (PENDING_NODE_ASSIGNMENT, RUNNING, FINISHED, FAILED, …), job, node, error_type; detail adds error_message, required_resources and events",
		hint: "list_tasks lists the tasks and their task_id (filter e.g. state=FAILED); old tasks' events may have been evicted"},
	{kind: "objects", one: "object", about: "objects in the nodes' object stores, largest first: id, size, state, node, pins"},
	{kind: "jobs", one: "job", get: true, about: "jobs: drivers and submissions, oldest first: job_id, submission_id, entrypoint, status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED), message",
		hint: "list_jobs lists the jobs with their submission_id and job_id"},
	{kind: "placement_groups", one: "placement group", about: "placement groups: id, name, state, strategy; detail adds bundles and pending_reason"},
}

// kindOf is the listKind of a state API kind.
func kindOf(kind string) listKind {
	for _, k := range listKinds {
		if k.kind == kind {
			return k
		}
	}
	panic("mcpserver: no list kind " + kind)
}

func (b *backend) addReadTools(s *mcp.Server) {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: boolPtr(false)}
	mcp.AddTool(s, &mcp.Tool{Name: "cluster_status", Title: "Cluster status", Annotations: readOnly,
		Description: "What `raygo status` shows: alive and dead nodes with their resources and use, the cluster's total and used resources, " +
			"and resource requests waiting for room (pending_demands) or that no node can hold (infeasible_demands). Start here."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, *apiclient.ClusterStatus, error) {
			c, err := b.client(ctx, req)
			if err != nil {
				return nil, nil, err
			}
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return nil, nil, b.apiError(err, "")
			}
			return nil, st, nil
		})
	for _, k := range listKinds {
		k := k
		mcp.AddTool(s, &mcp.Tool{Name: "list_" + k.kind, Title: "List " + k.kind, Annotations: readOnly,
			Description: "List " + k.about + ". Pages of `limit` rows (default 100, at most 1000): pass next_cursor back as cursor for the next."},
			func(ctx context.Context, req *mcp.CallToolRequest, in ListInput) (*mcp.CallToolResult, ListOutput, error) {
				out, err := b.list(ctx, req, k.kind, in)
				return nil, out, err
			})
		if !k.get {
			continue
		}
		desc := "Get one " + k.one + " by id, with every field."
		if k.kind == "jobs" {
			desc = "Get one job's status by submission id or job id: status, message, entrypoint, driver_exit_code, error_type, start and end times, metadata."
		}
		mcp.AddTool(s, &mcp.Tool{Name: "get_" + k.one, Title: "Get " + k.one, Annotations: readOnly, Description: desc},
			func(ctx context.Context, req *mcp.CallToolRequest, in GetInput) (*mcp.CallToolResult, GetOutput, error) {
				row, err := b.get(ctx, req, k, in.ID)
				return nil, GetOutput{Kind: k.one, Row: row}, err
			})
	}
	mcp.AddTool(s, &mcp.Tool{Name: "memory_summary", Title: "Object store memory", Annotations: readOnly,
		Description: "Summarize the objects in the nodes' object stores (what `raygo memory` shows): count and MiB per node and per state."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, MemoryOutput, error) {
			out, err := b.memory(ctx, req)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "metrics_summary", Title: "Key metrics", Annotations: readOnly,
		Description: "A compact summary of the cluster's key Prometheus metrics (the head's /metrics, summed over nodes): nodes, actors, tasks and jobs by state, " +
			"resources, object store use and spilling, workers, queued leases, OOM kills, CPU and memory use, task start latency."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, MetricsOutput, error) {
			out, err := b.metrics(ctx, req)
			return nil, out, err
		})
	mcp.AddTool(s, &mcp.Tool{Name: "job_logs", Title: "Job logs", Annotations: readOnly,
		Description: "Read a job submission's entrypoint log. With tail_lines (and no offset): its last lines. Otherwise a page from offset " +
			"(0 for the start; then next_offset of the previous call); with wait_seconds (at most 30) it waits that long for new output while the job runs. " +
			"Follow a job by calling again with next_offset until ended is true."},
		func(ctx context.Context, req *mcp.CallToolRequest, in JobLogsInput) (*mcp.CallToolResult, JobLogsOutput, error) {
			out, err := b.jobLogs(ctx, req, in)
			return nil, out, err
		})
}

// list serves a list_* tool: one page of the state API's rows.
func (b *backend) list(ctx context.Context, req mcp.Request, kind string, in ListInput) (ListOutput, error) {
	out := ListOutput{Kind: kind, Rows: []map[string]any{}}
	p, err := planPage(kind, in.Filters, in.Detail, in.Limit, in.Cursor)
	if err != nil {
		return out, inputError(err)
	}
	c, err := b.client(ctx, req)
	if err != nil {
		return out, err
	}
	res, err := c.List(ctx, kind, apiclient.ListOptions{Filters: in.Filters, Limit: p.Limit, Detail: in.Detail})
	if err != nil {
		return out, b.apiError(err, "")
	}
	rows, next := page(res.Rows, p, kind, in.Filters, in.Detail)
	for _, raw := range rows {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return out, fmt.Errorf("list %s: a row is not a JSON object: %v", kind, err)
		}
		out.Rows = append(out.Rows, m)
	}
	out.NumFiltered, out.Total, out.NextCursor = res.NumFiltered, res.Total, next
	if res.PartialFailureWarning != "" {
		out.Warnings = append(out.Warnings, res.PartialFailureWarning)
	}
	out.Warnings = append(out.Warnings, res.Warnings...)
	return out, nil
}

// get serves a get_* tool.
func (b *backend) get(ctx context.Context, req mcp.Request, k listKind, id string) (map[string]any, error) {
	if id == "" {
		return nil, fmt.Errorf("get %s: id is empty; %s", k.one, k.hint)
	}
	c, err := b.client(ctx, req)
	if err != nil {
		return nil, err
	}
	raw, err := c.Get(ctx, k.kind, id)
	if err != nil {
		return nil, b.apiError(err, k.hint+".")
	}
	var row map[string]any
	if err := json.Unmarshal(raw, &row); err != nil {
		return nil, fmt.Errorf("get %s %s: the answer is not a JSON object: %v", k.one, id, err)
	}
	return row, nil
}

// MemoryOutput is memory_summary's output.
type MemoryOutput struct {
	TotalObjects int          `json:"total_objects"`
	TotalSizeMB  float64      `json:"total_size_mb"`
	Nodes        []NodeMemory `json:"nodes" jsonschema:"per node: objects and MiB by state"`
	Warnings     []string     `json:"warnings,omitempty"`
}

// NodeMemory is one node's objects in MemoryOutput.
type NodeMemory struct {
	NodeID       string             `json:"node_id"`
	TotalObjects int                `json:"total_objects"`
	TotalSizeMB  float64            `json:"total_size_mb"`
	StateCounts  map[string]int     `json:"state_counts"`
	StateSizeMB  map[string]float64 `json:"state_size_mb"`
}

func (b *backend) memory(ctx context.Context, req mcp.Request) (MemoryOutput, error) {
	out := MemoryOutput{Nodes: []NodeMemory{}}
	c, err := b.client(ctx, req)
	if err != nil {
		return out, err
	}
	res, raw, err := c.Summary(ctx, "objects")
	if err != nil {
		return out, b.apiError(err, "")
	}
	var sum struct {
		Summary      map[string]*NodeMemory `json:"summary"`
		TotalObjects int                    `json:"total_objects"`
		TotalSizeMB  float64                `json:"total_size_mb"`
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		return out, fmt.Errorf("memory summary: unexpected answer: %v", err)
	}
	out.TotalObjects, out.TotalSizeMB = sum.TotalObjects, sum.TotalSizeMB
	for _, n := range sum.Summary {
		out.Nodes = append(out.Nodes, *n)
	}
	sortBy(out.Nodes, func(n NodeMemory) string { return n.NodeID })
	if res.PartialFailureWarning != "" {
		out.Warnings = append(out.Warnings, res.PartialFailureWarning)
	}
	out.Warnings = append(out.Warnings, res.Warnings...)
	return out, nil
}
