package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Resources.
const (
	// jobsURI lists the jobs.
	jobsURI = "raygo://jobs"
	// resourceLogLines is how many lines of a job's log its logs
	// resource holds (at most DefaultLogPageBytes of them).
	resourceLogLines = 1000
	// MaxListedJobs bounds the jobs resources/list names, newest first.
	MaxListedJobs = 1000
)

func (b *backend) addResources(s *mcp.Server) {
	s.AddResource(&mcp.Resource{URI: jobsURI, Name: "jobs", Title: "Jobs", MIMEType: "application/json",
		Description: "Every job submission with its status (the job API's list)."}, b.readResource)
	for _, t := range []*mcp.ResourceTemplate{
		{URITemplate: "raygo://jobs/{id}", Name: "job", Title: "Job status", MIMEType: "application/json",
			Description: "A job's status, message, entrypoint, exit code and times, by submission id or job id."},
		{URITemplate: "raygo://jobs/{id}/logs", Name: "job-logs", Title: "Job log", MIMEType: "text/plain",
			Description: "The last 1000 lines (at most 64 KiB) of a job submission's entrypoint log; job_logs pages through all of it."},
		{URITemplate: "raygo://nodes/{id}", Name: "node", Title: "Node", MIMEType: "application/json",
			Description: "A node's every field: address, state, resources total and available, labels, workers."},
		{URITemplate: "raygo://actors/{id}", Name: "actor", Title: "Actor", MIMEType: "application/json",
			Description: "An actor's every field: class, state, node, pid, restarts, death cause."},
	} {
		s.AddResourceTemplate(t, b.readResource)
	}
	// resources/list also names each job, so that clients that only list
	// resources see them.
	s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			res, err := next(ctx, method, req)
			if method != "resources/list" || err != nil {
				return res, err
			}
			lr, ok := res.(*mcp.ListResourcesResult)
			if !ok || lr.NextCursor != "" {
				return res, nil // the jobs follow the last page
			}
			lr.Resources = append(lr.Resources, b.jobResources(ctx, req)...)
			return lr, nil
		}
	})
}

// jobResources names each job (newest first, at most MaxListedJobs); none
// when the jobs cannot be listed (the list is a convenience: reading
// raygo://jobs says why).
func (b *backend) jobResources(ctx context.Context, req mcp.Request) []*mcp.Resource {
	c, err := b.client(ctx, req)
	if err != nil {
		return nil
	}
	jobs, err := c.ListJobs(ctx)
	if err != nil {
		return nil
	}
	var out []*mcp.Resource
	for i := len(jobs) - 1; i >= 0 && len(out) < MaxListedJobs; i-- {
		j := jobs[i]
		out = append(out, &mcp.Resource{URI: jobsURI + "/" + url.PathEscape(j.SubmissionID), Name: "job " + j.SubmissionID,
			MIMEType: "application/json", Description: fmt.Sprintf("%s: %s", j.Status, truncate(j.Entrypoint, 120))})
	}
	return out
}

// resourceError is a resource read's error.
func resourceError(uri string, err error) error {
	return &jsonrpc.Error{Code: mcp.CodeResourceNotFound, Message: fmt.Sprintf("%s: %v", uri, err)}
}

// readResource reads every raygo:// resource.
func (b *backend) readResource(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "raygo" {
		return nil, resourceError(uri, fmt.Errorf("not a raygo:// URI"))
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if u.Path == "" {
		parts = nil
	}
	for i := range parts {
		if parts[i], err = url.PathUnescape(parts[i]); err != nil {
			return nil, resourceError(uri, err)
		}
	}
	c, err := b.client(ctx, req)
	if err != nil {
		return nil, err
	}
	asJSON := func(v any) (*mcp.ReadResourceResult, error) {
		raw, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, err
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(raw)}}}, nil
	}
	switch {
	case u.Host == "jobs" && len(parts) == 0:
		jobs, err := c.ListJobs(ctx)
		if err != nil {
			return nil, resourceError(uri, b.apiError(err, ""))
		}
		return asJSON(jobs)
	case u.Host == "jobs" && len(parts) == 1:
		row, err := b.get(ctx, req, kindOf("jobs"), parts[0])
		if err != nil {
			return nil, resourceError(uri, err)
		}
		return asJSON(row)
	case u.Host == "jobs" && len(parts) == 2 && parts[1] == "logs":
		out, err := b.jobLogs(ctx, req, JobLogsInput{SubmissionID: parts[0], TailLines: resourceLogLines})
		if err != nil {
			return nil, resourceError(uri, err)
		}
		return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "text/plain", Text: out.Text}}}, nil
	case (u.Host == "nodes" || u.Host == "actors") && len(parts) == 1:
		row, err := b.get(ctx, req, kindOf(u.Host), parts[0])
		if err != nil {
			return nil, resourceError(uri, err)
		}
		return asJSON(row)
	}
	return nil, resourceError(uri, fmt.Errorf("no such resource: raygo serves %s, %s/{id}, %s/{id}/logs, raygo://nodes/{id} and raygo://actors/{id}", jobsURI, jobsURI, jobsURI))
}

// truncate shortens s to n bytes (at a character), with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	b := []byte(s[:n])
	return string(b[:wholeRunes(b)]) + "…"
}
