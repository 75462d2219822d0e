// Package logs is the HTTP API's log feature (docs/logs.md), Ray's
// `ray logs` endpoints:
//
//	GET /api/v0/logs?node_id=ID&glob=GLOB
//	    the log files of one node, or of every alive node, by category
//	GET /api/v0/logs/file?node_id=ID&filename=NAME&lines=N&follow=true
//	GET /api/v0/logs/file?actor_id=ID | task_id=ID | worker_id=ID |
//	    pid=PID&node_id=ID | submission_id=ID  [&suffix=out|err]
//	    one log, streamed as text/plain (the last N lines, then, with
//	    follow, what is appended until the caller hangs up)
//
// The files are read on their nodes with NodeDaemon.ListLogs and ReadLog;
// actors are found in the control store's actor table, tasks in its task
// events, job submissions in the job manager. Ids may be abbreviated to
// at least MinIDDigits of their first or last hex digits.
package logs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/taskevents"
)

// NodeTimeout bounds each node's answer to a listing or a search (a node
// that does not answer in time is named in partial_failure_warning).
const NodeTimeout = 2 * time.Second

// Register serves the log endpoints (the head's feature,
// internal/node/api.go).
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	if c == nil || c.GCS == nil || c.Pool == nil {
		return nil, errors.New("logs: the log API needs the head's control store and a connection pool")
	}
	f := &feature{c: c}
	s.Handle("GET /api/v0/logs", api.ScopeRead, f.list)
	s.Handle("GET /api/v0/logs/file", api.ScopeRead, f.file)
	return nil, nil
}

type feature struct{ c *api.Cluster }

// node is an alive node as the handlers need it.
type node struct {
	id   string // 32 hex digits
	addr string
}

// LogFile is a file in a listing.
type LogFile struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	ModTimeMs int64  `json:"mod_time_ms"`
}

// ListReply answers GET /api/v0/logs: per node id, file names by
// category (Ray's shape: worker_out, worker_err, job_driver, audit, misc
// …), and the files with their sizes.
type ListReply struct {
	Result                map[string]map[string][]string `json:"result"`
	Files                 map[string][]LogFile           `json:"files"`
	PartialFailureWarning string                         `json:"partial_failure_warning,omitempty"`
}

func (f *feature) aliveNodes(ctx context.Context) ([]node, error) {
	reply, err := f.c.GCS.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, err
	}
	var out []node
	for _, n := range reply.GetNodes() {
		if n.GetState() == pb.NodeState_NODE_STATE_ALIVE {
			out = append(out, node{id: ids.MustFromBytes(n.GetNodeId()).String(), addr: n.GetAddress()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out, nil
}

// pickNode finds the alive node q names.
func (f *feature) pickNode(ctx context.Context, q string) (node, error) {
	nodes, err := f.aliveNodes(ctx)
	if err != nil {
		return node{}, err
	}
	all := make([]string, len(nodes))
	for i, n := range nodes {
		all[i] = n.id
	}
	id, amb := pickID(all, q)
	switch {
	case id != "":
		return nodes[slices.Index(all, id)], nil
	case len(amb) > 1:
		return node{}, api.BadRequest("node_id %s matches %d nodes: give more digits", q, len(amb))
	}
	return node{}, api.NotFound("no alive node has id %s", q)
}

func (f *feature) nodeByID(ctx context.Context, id ids.ID) (node, error) {
	nodes, err := f.aliveNodes(ctx)
	if err != nil {
		return node{}, err
	}
	for _, n := range nodes {
		if n.id == id.String() {
			return n, nil
		}
	}
	return node{}, api.NotFound("node %s is not alive: its logs cannot be read", id.Short())
}

func (f *feature) daemon(n node) (pb.NodeDaemonClient, error) {
	conn, err := f.c.Pool.Get(n.addr)
	if err != nil {
		return nil, err
	}
	return pb.NewNodeDaemonClient(conn), nil
}

// listEach runs ListLogs(glob) on nodes in parallel, each bounded by
// NodeTimeout; it returns the files per node id and a warning naming the
// nodes that failed.
func (f *feature) listEach(ctx context.Context, nodes []node, glob string) (map[string][]*pb.LogFile, string, error) {
	type answer struct {
		files []*pb.LogFile
		err   error
	}
	answers := make([]answer, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() { // ends within NodeTimeout
			defer wg.Done()
			d, err := f.daemon(n)
			if err != nil {
				answers[i].err = err
				return
			}
			cctx, cancel := context.WithTimeout(ctx, NodeTimeout)
			defer cancel()
			reply, err := d.ListLogs(cctx, &pb.ListLogsRequest{Glob: glob})
			answers[i] = answer{reply.GetFiles(), err}
		}()
	}
	wg.Wait()
	out := map[string][]*pb.LogFile{}
	var failed []string
	for i, a := range answers {
		if a.err != nil {
			if errors.Is(a.err, errs.ErrInvalidRequest) {
				return nil, "", api.BadRequest("%s", a.err.Error())
			}
			failed = append(failed, fmt.Sprintf("node %s: %v", ids.ShortString(nodes[i].id), a.err))
			continue
		}
		out[nodes[i].id] = a.files
	}
	warn := ""
	if len(failed) > 0 {
		warn = fmt.Sprintf("%d of %d nodes did not answer: %s", len(failed), len(nodes), strings.Join(failed, "; "))
	}
	return out, warn, nil
}

func (f *feature) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "node_id" && k != "glob" {
			api.WriteError(w, api.BadRequest("unknown parameter %q (known: node_id, glob)", k))
			return
		}
	}
	ctx := r.Context()
	var nodes []node
	if v := q.Get("node_id"); v != "" {
		id, err := normalizeID(v, "node_id")
		if err != nil {
			api.WriteError(w, api.BadRequest("%v", err))
			return
		}
		n, err := f.pickNode(ctx, id)
		if err != nil {
			api.WriteError(w, err)
			return
		}
		nodes = []node{n}
	} else {
		var err error
		if nodes, err = f.aliveNodes(ctx); err != nil {
			api.WriteError(w, err)
			return
		}
	}
	files, warn, err := f.listEach(ctx, nodes, q.Get("glob"))
	if err != nil {
		api.WriteError(w, err)
		return
	}
	out := ListReply{Result: map[string]map[string][]string{}, Files: map[string][]LogFile{}, PartialFailureWarning: warn}
	for id, list := range files {
		cats := map[string][]string{}
		rows := make([]LogFile, 0, len(list))
		for _, lf := range list {
			cats[category(lf.GetName())] = append(cats[category(lf.GetName())], lf.GetName())
			rows = append(rows, LogFile{Name: lf.GetName(), Size: lf.GetSize(), ModTimeMs: lf.GetModUnixMs()})
		}
		out.Result[id], out.Files[id] = cats, rows
	}
	api.WriteJSON(w, out)
}

// located is a resolved log: a file on an alive node.
type located struct {
	node node
	name string
}

func (f *feature) file(w http.ResponseWriter, r *http.Request) {
	fq, err := parseFileQuery(r.URL.Query())
	if err != nil {
		api.WriteError(w, api.BadRequest("%v", err))
		return
	}
	ctx := r.Context()
	loc, err := f.locate(ctx, fq)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	if isAudit(loc.name) && api.Who(ctx).Scope < api.ScopeAdmin {
		api.WriteError(w, api.Errorf(http.StatusForbidden, "forbidden", "the audit log needs the cluster token"))
		return
	}
	d, err := f.daemon(loc.node)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	st, err := d.ReadLog(ctx, &pb.ReadLogRequest{Name: loc.name, TailLines: fq.Lines, Follow: fq.Follow})
	var first *pb.LogChunk
	if err == nil {
		first, err = st.Recv()
	}
	if err != nil && err != io.EOF {
		api.WriteError(w, nodeError(err, loc))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Raygo-Node-Id", loc.node.id)
	w.Header().Set("X-Raygo-Log-File", loc.name)
	w.Header().Set("Cache-Control", "no-store")
	flusher, _ := w.(http.Flusher)
	for err == nil {
		if _, werr := w.Write(first.GetData()); werr != nil {
			return // the caller hung up
		}
		if flusher != nil {
			flusher.Flush()
		}
		first, err = st.Recv()
	}
	if flusher != nil {
		flusher.Flush()
	}
}

// nodeError maps a node daemon's error reading a log to the API's.
func nodeError(err error, loc located) error {
	switch {
	case errors.Is(err, errs.ErrNotFound):
		return api.NotFound("no log file %s on node %s", loc.name, ids.ShortString(loc.node.id))
	case errors.Is(err, errs.ErrInvalidRequest):
		return api.BadRequest("%s", err.Error())
	}
	return api.Errorf(http.StatusBadGateway, "node_error", "node %s: %v", ids.ShortString(loc.node.id), err)
}

// locate finds the log file a query names.
func (f *feature) locate(ctx context.Context, fq fileQuery) (located, error) {
	var pinned *node
	if fq.NodeID != "" {
		n, err := f.pickNode(ctx, fq.NodeID)
		if err != nil {
			return located{}, err
		}
		pinned = &n
	}
	switch {
	case fq.Filename != "":
		return located{*pinned, fq.Filename}, nil
	case fq.Pid > 0:
		return f.findFile(ctx, []node{*pinned}, workerGlob("", fq.Pid, fq.Suffix), fmt.Sprintf("worker with pid %d", fq.Pid))
	case fq.WorkerID != "":
		nodes, err := f.nodesOr(ctx, pinned)
		if err != nil {
			return located{}, err
		}
		return f.findFile(ctx, nodes, workerGlob(fq.WorkerID, 0, fq.Suffix), "worker "+fq.WorkerID)
	case fq.ActorID != "":
		return f.actorLog(ctx, fq)
	case fq.TaskID != "":
		return f.taskLog(ctx, fq)
	case fq.SubmissionID != "":
		return f.submissionLog(ctx, fq, pinned)
	}
	return located{}, api.BadRequest("name the log: give one of %s", strings.Join(targets, ", "))
}

func (f *feature) nodesOr(ctx context.Context, pinned *node) ([]node, error) {
	if pinned != nil {
		return []node{*pinned}, nil
	}
	return f.aliveNodes(ctx)
}

// findFile looks for the one file matching glob on nodes.
func (f *feature) findFile(ctx context.Context, nodes []node, glob, what string) (located, error) {
	files, warn, err := f.listEach(ctx, nodes, glob)
	if err != nil {
		return located{}, err
	}
	var found []located
	for _, n := range nodes {
		for _, lf := range files[n.id] {
			found = append(found, located{n, lf.GetName()})
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		msg := fmt.Sprintf("no log file of %s (%s) on %d alive nodes", what, glob, len(nodes))
		if warn != "" {
			msg += "; " + warn
		}
		return located{}, api.NotFound("%s", msg)
	}
	names := make([]string, 0, min(len(found), 5))
	for _, l := range found[:min(len(found), 5)] {
		names = append(names, l.name+" on "+ids.ShortString(l.node.id))
	}
	return located{}, api.BadRequest("%d log files match %s (%s): give more digits or node_id", len(found), what, strings.Join(names, ", "))
}

func (f *feature) actorLog(ctx context.Context, fq fileQuery) (located, error) {
	reply, err := f.c.GCS.ListActors(ctx, &pb.ListActorsRequest{})
	if err != nil {
		return located{}, err
	}
	all := make([]string, 0, len(reply.GetActors()))
	byID := map[string]*pb.ActorInfo{}
	for _, a := range reply.GetActors() {
		id := ids.MustFromBytes(a.GetActorId()).String()
		all = append(all, id)
		byID[id] = a
	}
	id, amb := pickID(all, fq.ActorID)
	if id == "" {
		if len(amb) > 1 {
			return located{}, api.BadRequest("actor_id %s matches %d actors: give more digits", fq.ActorID, len(amb))
		}
		return located{}, api.NotFound("no actor has id %s", fq.ActorID)
	}
	a := byID[id]
	nodeID, ok1 := ids.FromBytes(a.GetNodeId())
	workerID, ok2 := ids.FromBytes(a.GetWorkerId())
	if !ok1 || !ok2 || nodeID.IsNil() || workerID.IsNil() {
		return located{}, api.NotFound("actor %s has not run on a worker yet (state %s)", ids.ShortString(id), a.GetState())
	}
	return f.workerFile(ctx, nodeID, workerID, int(a.GetPid()), fq.Suffix, "actor "+ids.ShortString(id))
}

func (f *feature) taskLog(ctx context.Context, fq fileQuery) (located, error) {
	store := f.c.GCS.TaskEvents()
	if store == nil {
		return located{}, api.NotFound("this head keeps no task events")
	}
	// Find the task's full id: the one whose id the query names.
	seen := map[string]bool{}
	var cands []string
	if len(fq.TaskID) == 2*ids.Size && len(store.Get(fq.TaskID)) > 0 {
		cands = []string{fq.TaskID}
	} else {
		store.Tasks(func(t *taskevents.Task) bool {
			if idMatches(t.TaskID, fq.TaskID) && !seen[t.TaskID] {
				seen[t.TaskID] = true
				cands = append(cands, t.TaskID)
			}
			return false
		}, 0)
	}
	id, amb := pickID(cands, fq.TaskID)
	if id == "" {
		if len(amb) > 1 {
			return located{}, api.BadRequest("task_id %s matches %d tasks: give more digits", fq.TaskID, len(amb))
		}
		return located{}, api.NotFound("no task has id %s (the head keeps the latest %d tasks)", fq.TaskID, store.MaxTasks())
	}
	attempts := store.Get(id)
	var pick *taskevents.Task
	for i := range attempts {
		a := &attempts[i]
		if fq.Attempt >= 0 && int(a.Attempt) != fq.Attempt {
			continue
		}
		if a.WorkerID != "" && (pick == nil || a.Attempt > pick.Attempt) {
			pick = a
		}
	}
	if pick == nil {
		if fq.Attempt >= 0 {
			return located{}, api.NotFound("attempt %d of task %s has not run on a worker", fq.Attempt, ids.ShortString(id))
		}
		return located{}, api.NotFound("task %s has not run on a worker yet", ids.ShortString(id))
	}
	nodeID, ok1 := ids.Parse(pick.NodeID)
	workerID, ok2 := ids.Parse(pick.WorkerID)
	if !ok1 || !ok2 {
		return located{}, api.NotFound("task %s: no node or worker recorded", ids.ShortString(id))
	}
	return f.workerFile(ctx, nodeID, workerID, int(pick.WorkerPID), fq.Suffix, "task "+ids.ShortString(id))
}

// workerFile is the .out or .err file of a worker on its node.
func (f *feature) workerFile(ctx context.Context, nodeID, workerID ids.ID, pid int, suffix, what string) (located, error) {
	n, err := f.nodeByID(ctx, nodeID)
	if err != nil {
		return located{}, api.NotFound("%s ran on node %s, which is not alive: its logs cannot be read", what, nodeID.Short())
	}
	if pid > 0 {
		return located{n, fmt.Sprintf("worker-%s-%d.%s", workerID.Short(), pid, suffix)}, nil
	}
	return f.findFile(ctx, []node{n}, workerGlob(workerID.String(), 0, suffix), what)
}

func (f *feature) submissionLog(ctx context.Context, fq fileQuery, pinned *node) (located, error) {
	name := JobDriverLog(fq.SubmissionID)
	if pinned != nil {
		return located{*pinned, name}, nil
	}
	if m := f.c.GCS.JobSubmissions(); m != nil {
		if sub, ok := m.Submission(fq.SubmissionID); ok {
			if nodeID, ok := ids.FromBytes(sub.GetNodeId()); ok && !nodeID.IsNil() {
				n, err := f.nodeByID(ctx, nodeID)
				if err != nil {
					return located{}, api.NotFound("job %s ran on node %s, which is not alive: its log cannot be read", fq.SubmissionID, nodeID.Short())
				}
				return located{n, name}, nil
			}
			return located{}, api.NotFound("job %s has not started on a node yet (status %s)", fq.SubmissionID, sub.GetStatus())
		}
	}
	nodes, err := f.aliveNodes(ctx)
	if err != nil {
		return located{}, err
	}
	return f.findFile(ctx, nodes, name, "job "+fq.SubmissionID)
}
