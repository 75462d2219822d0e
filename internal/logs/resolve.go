package logs

import (
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/ids"
)

// MinIDDigits is the fewest hex digits an abbreviated id may have (as in
// the state API): the start of the id or its end (ids.Short's form).
const MinIDDigits = ids.MinAbbrev

// MaxTailLines bounds lines=.
const MaxTailLines = 10_000_000

// fileQuery is a parsed GET /api/v0/logs/file request: exactly one
// target (a file name, an actor, a task, a worker, a pid or a job
// submission) and how to read it.
type fileQuery struct {
	NodeID       string // normalized id or abbreviation; "" for any node
	Filename     string
	ActorID      string
	TaskID       string
	WorkerID     string
	Pid          int
	SubmissionID string
	Suffix       string // "out" or "err"
	Attempt      int    // task attempt; -1: the latest
	Lines        int64  // > 0: the last lines; 0: the whole file
	Follow       bool
}

// targets are the query parameters that name a log, in the order errors
// list them.
var targets = []string{"filename", "actor_id", "task_id", "worker_id", "pid", "submission_id"}

// parseFileQuery reads and checks a file request's parameters: unknown
// parameters, conflicting targets and malformed values are errors that
// say what was wrong.
func parseFileQuery(q url.Values) (fileQuery, error) {
	fq := fileQuery{Suffix: "out", Attempt: -1}
	known := map[string]bool{"node_id": true, "suffix": true, "lines": true, "follow": true, "attempt_number": true, "media_type": true}
	for _, t := range targets {
		known[t] = true
	}
	for k, v := range q {
		if !known[k] {
			return fq, fmt.Errorf("unknown parameter %q (known: node_id, %s, suffix, lines, follow, attempt_number)", k, strings.Join(targets, ", "))
		}
		if len(v) > 1 {
			return fq, fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	var given []string
	for _, t := range targets {
		if q.Has(t) {
			given = append(given, t)
		}
	}
	switch len(given) {
	case 0:
		return fq, fmt.Errorf("name the log: give one of %s", strings.Join(targets, ", "))
	case 1:
	default:
		return fq, fmt.Errorf("conflicting parameters %s: give only one of %s", strings.Join(given, " and "), strings.Join(targets, ", "))
	}
	var err error
	if v := q.Get("node_id"); v != "" {
		if fq.NodeID, err = normalizeID(v, "node_id"); err != nil {
			return fq, err
		}
	}
	switch given[0] {
	case "filename":
		fq.Filename = q.Get("filename")
		if fq.Filename == "" {
			return fq, fmt.Errorf("filename is empty")
		}
		if fq.NodeID == "" {
			return fq, fmt.Errorf("filename needs node_id: the node whose file it is")
		}
	case "actor_id":
		fq.ActorID, err = normalizeID(q.Get("actor_id"), "actor_id")
	case "task_id":
		fq.TaskID, err = normalizeID(q.Get("task_id"), "task_id")
	case "worker_id":
		fq.WorkerID, err = normalizeID(q.Get("worker_id"), "worker_id")
	case "pid":
		fq.Pid, err = strconv.Atoi(q.Get("pid"))
		if err != nil || fq.Pid <= 0 {
			return fq, fmt.Errorf("pid %q: want a process id", q.Get("pid"))
		}
		if fq.NodeID == "" {
			return fq, fmt.Errorf("pid needs node_id: process ids are per node")
		}
	case "submission_id":
		fq.SubmissionID = q.Get("submission_id")
		if fq.SubmissionID == "" || strings.ContainsAny(fq.SubmissionID, "/\\*?[") || len(fq.SubmissionID) > 256 {
			return fq, fmt.Errorf("submission_id %q: want a job submission id", fq.SubmissionID)
		}
	}
	if err != nil {
		return fq, err
	}
	if v := q.Get("suffix"); v != "" {
		if v != "out" && v != "err" {
			return fq, fmt.Errorf("suffix %q: want out or err", v)
		}
		if given[0] == "filename" || given[0] == "submission_id" {
			return fq, fmt.Errorf("suffix applies to worker logs (actor_id, task_id, worker_id, pid), not %s", given[0])
		}
		fq.Suffix = v
	}
	if v := q.Get("attempt_number"); v != "" {
		if given[0] != "task_id" {
			return fq, fmt.Errorf("attempt_number applies to task_id only")
		}
		if fq.Attempt, err = strconv.Atoi(v); err != nil || fq.Attempt < 0 {
			return fq, fmt.Errorf("attempt_number %q: want 0 or more", v)
		}
	}
	if v := q.Get("lines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < -1 || n > MaxTailLines {
			return fq, fmt.Errorf("lines %q: want -1 (the whole file) to %d", v, MaxTailLines)
		}
		fq.Lines = max(n, 0)
	}
	if v := q.Get("follow"); v != "" {
		if fq.Follow, err = strconv.ParseBool(v); err != nil {
			return fq, fmt.Errorf("follow %q: want true or false", v)
		}
	}
	switch q.Get("media_type") { // Ray's way to ask for a follow
	case "", "file":
	case "stream":
		fq.Follow = true
	default:
		return fq, fmt.Errorf("media_type %q: want file or stream", q.Get("media_type"))
	}
	return fq, nil
}

// normalizeID checks an id given by a caller (ids.NormalizeAbbrev: 32
// hex digits, or at least MinIDDigits of its first or last ones). It
// returns it in lower case.
func normalizeID(v, param string) (string, error) {
	q, err := ids.NormalizeAbbrev(v)
	if err != nil {
		return "", fmt.Errorf("%s %q: %v", param, v, err)
	}
	return q, nil
}

// idMatches and pickID: ids.MatchesAbbrev, ids.PickAbbrev.
func idMatches(id, q string) bool { return ids.MatchesAbbrev(id, q) }

func pickID(candidates []string, q string) (string, []string) { return ids.PickAbbrev(candidates, q) }

// workerGlob is the ListLogs glob of a worker's .out or .err file given
// its id, full or abbreviated: file names carry the id's short form (its
// last ids.ShortLen digits), so an abbreviation must be of the id's end.
func workerGlob(workerID string, pid int, suffix string) string {
	id := "*"
	if workerID != "" {
		id = "*" + workerID
		if len(workerID) >= ids.ShortLen {
			id = workerID[len(workerID)-ids.ShortLen:]
		}
	}
	p := "*"
	if pid > 0 {
		p = strconv.Itoa(pid)
	}
	return "worker-" + id + "-" + p + "." + suffix
}

// JobDriverLog is the name of a job submission's entrypoint log.
func JobDriverLog(submissionID string) string { return "job-driver-" + submissionID + ".log" }

// category sorts a log file into Ray's categories (`ray logs`).
func category(name string) string {
	base := path.Base(name)
	trim := strings.TrimRightFunc(base, func(r rune) bool { return r == '.' || '0' <= r && r <= '9' }) // rotated: .out.1
	switch {
	case strings.HasPrefix(base, "worker-") && strings.HasSuffix(trim, ".out"):
		return "worker_out"
	case strings.HasPrefix(base, "worker-") && strings.HasSuffix(trim, ".err"):
		return "worker_err"
	case strings.HasPrefix(base, "job-driver-"):
		return "job_driver"
	case strings.HasPrefix(base, "mcp-"):
		return "mcp_server" // hosted MCP servers' replicas (internal/mcphost)
	case strings.HasPrefix(base, "serve-"):
		return "serve_replica" // Serve command deployments' replicas (internal/raylet/replica.go)
	case strings.HasPrefix(base, "audit.log"):
		return "audit"
	case strings.HasPrefix(base, "raylet"):
		return "raylet"
	case strings.HasPrefix(base, "gcs"):
		return "gcs_server"
	}
	return "misc"
}

// isAudit reports whether a log file is the head's audit log, which only
// admin tokens may read.
func isAudit(name string) bool { return strings.HasPrefix(path.Base(name), "audit.log") }
