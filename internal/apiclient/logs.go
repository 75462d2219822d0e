package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// LogFile is a log file of a node.
type LogFile struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	ModTimeMs int64  `json:"mod_time_ms"`
}

// LogList answers ListLogs: per node id, file names by category
// (worker_out, worker_err, job_driver, audit, misc…) and the files with
// their sizes; PartialFailureWarning names the nodes that did not answer.
type LogList struct {
	Result                map[string]map[string][]string `json:"result"`
	Files                 map[string][]LogFile           `json:"files"`
	PartialFailureWarning string                         `json:"partial_failure_warning,omitempty"`
}

// ListLogs lists the log files of a node (nodeID, full or at least 6 of
// its first or last hex digits) or, with nodeID empty, of every alive
// node; glob (path.Match) filters names.
func (c *Client) ListLogs(ctx context.Context, nodeID, glob string) (*LogList, error) {
	q := url.Values{}
	if nodeID != "" {
		q.Set("node_id", nodeID)
	}
	if glob != "" {
		q.Set("glob", glob)
	}
	var out LogList
	err := c.Do(ctx, http.MethodGet, "/api/v0/logs?"+q.Encode(), nil, &out)
	return &out, err
}

// LogQuery names one log (set exactly one of Filename, ActorID, TaskID,
// WorkerID, Pid, SubmissionID; Filename and Pid need NodeID) and how to
// read it. Ids may be abbreviated to at least 6 of their first or last hex
// digits (a worker's to its last ones).
type LogQuery struct {
	NodeID       string
	Filename     string
	ActorID      string
	TaskID       string
	WorkerID     string
	Pid          int
	SubmissionID string
	// Err reads a worker's stderr file instead of its stdout.
	Err bool
	// Attempt selects a task's attempt (nil: the latest that ran).
	Attempt *int
	// Lines > 0 starts that many lines before the end; else the whole
	// file.
	Lines int64
	// Follow keeps the body open with what is appended, until ctx ends.
	Follow bool
}

func (q LogQuery) values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("node_id", q.NodeID)
	set("filename", q.Filename)
	set("actor_id", q.ActorID)
	set("task_id", q.TaskID)
	set("worker_id", q.WorkerID)
	set("submission_id", q.SubmissionID)
	if q.Pid != 0 {
		v.Set("pid", strconv.Itoa(q.Pid))
	}
	if q.Err {
		v.Set("suffix", "err")
	}
	if q.Attempt != nil {
		v.Set("attempt_number", strconv.Itoa(*q.Attempt))
	}
	if q.Lines > 0 {
		v.Set("lines", strconv.FormatInt(q.Lines, 10))
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	return v
}

// Log is an open log: its text in Body, and where it is.
type Log struct {
	Body   io.ReadCloser
	NodeID string // the node holding the file
	File   string // its name in the node's logs directory
}

// GetLog opens the log q names; the caller reads and closes its Body.
// Errors (no such actor, file or node; conflicting fields) come before
// any text, as *Error.
func (c *Client) GetLog(ctx context.Context, q LogQuery) (*Log, error) {
	resp, err := c.Request(ctx, http.MethodGet, "/api/v0/logs/file?"+q.values().Encode(), nil, "")
	if err != nil {
		return nil, err
	}
	return &Log{Body: resp.Body, NodeID: resp.Header.Get("X-Raygo-Node-Id"), File: resp.Header.Get("X-Raygo-Log-File")}, nil
}
