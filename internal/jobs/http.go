package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// HTTP limits (docs/jobs.md).
const (
	// MaxLogBytes bounds GET /api/jobs/{id}/logs: a longer log is
	// answered with its last MaxLogBytes and a note saying so.
	MaxLogBytes = 16 << 20
	// tailDrain is how long the log tail keeps following after the job
	// ended, for the last output to be read (ReadLog polls every
	// raylet.LogFollowPoll).
	tailDrain = 3 * raylet.LogFollowPoll
)

// Register is the job API's feature (internal/node/api.go): it starts the
// head's Manager and serves Ray's job REST API and the package store.
func Register(s *api.Server, c *api.Cluster) (func(), error) {
	m, err := NewManager(context.Background(), Config{}, c.GCS, c.Pool, c.Address)
	if err != nil {
		return nil, err
	}
	h := &handler{s: s, c: c, m: m, maxPackage: runtimeenv.DefaultMaxPackageBytes}
	s.Handle("POST /api/jobs/{$}", api.ScopeWrite, h.submit)
	s.Handle("POST /api/jobs", api.ScopeWrite, h.submit)
	s.Handle("GET /api/jobs/{$}", api.ScopeRead, h.list)
	s.Handle("GET /api/jobs", api.ScopeRead, h.list)
	s.Handle("GET /api/jobs/{id}", api.ScopeRead, h.get)
	s.Handle("GET /api/jobs/{id}/logs", api.ScopeRead, h.logs)
	s.Handle("GET /api/jobs/{id}/logs/tail", api.ScopeRead, h.tail)
	s.Handle("POST /api/jobs/{id}/stop", api.ScopeWrite, h.stop)
	s.Handle("DELETE /api/jobs/{id}", api.ScopeWrite, h.delete)
	s.Handle("PUT /api/packages/{name}", api.ScopeWrite, h.putPackage)
	s.Handle("GET /api/packages/{name}", api.ScopeRead, h.getPackage)
	return m.Close, nil
}

type handler struct {
	s          *api.Server
	c          *api.Cluster
	m          *Manager
	maxPackage int64
}

// SubmitRequest is POST /api/jobs/'s body (Ray's JobSubmitRequest).
type SubmitRequest struct {
	Entrypoint          string             `json:"entrypoint"`
	SubmissionID        *string            `json:"submission_id,omitempty"`
	JobID               *string            `json:"job_id,omitempty"` // Ray's deprecated spelling of submission_id
	RuntimeEnv          *runtimeenv.Env    `json:"runtime_env,omitempty"`
	Metadata            map[string]string  `json:"metadata,omitempty"`
	EntrypointNumCPUs   float64            `json:"entrypoint_num_cpus,omitempty"`
	EntrypointNumGPUs   float64            `json:"entrypoint_num_gpus,omitempty"`
	EntrypointMemory    float64            `json:"entrypoint_memory,omitempty"`
	EntrypointResources map[string]float64 `json:"entrypoint_resources,omitempty"`
}

// Details is a submission as the job API shows it (Ray's JobDetails).
type Details struct {
	Type                string             `json:"type"` // "SUBMISSION"
	JobID               *string            `json:"job_id"`
	SubmissionID        string             `json:"submission_id"`
	Status              string             `json:"status"`
	Entrypoint          string             `json:"entrypoint"`
	Message             string             `json:"message"`
	StartTime           int64              `json:"start_time"`       // ms
	EndTime             *int64             `json:"end_time"`         // ms; null until it ends
	Metadata            map[string]string  `json:"metadata"`         //
	RuntimeEnv          runtimeenv.Env     `json:"runtime_env"`      //
	DriverExitCode      *int32             `json:"driver_exit_code"` // null until it ends
	DriverNodeID        string             `json:"driver_node_id"`   // where the entrypoint runs (ran)
	EntrypointNumCPUs   float64            `json:"entrypoint_num_cpus"`
	EntrypointNumGPUs   float64            `json:"entrypoint_num_gpus"`
	EntrypointResources map[string]float64 `json:"entrypoint_resources,omitempty"`
	SubmittedBy         string             `json:"submitted_by,omitempty"`
	DriverPID           int32              `json:"driver_pid,omitempty"`
}

// ToDetails is a submission's Details; jobID is its driver's job ("": none
// registered).
func ToDetails(s *pb.JobSubmission, jobID string) Details {
	d := Details{Type: "SUBMISSION", SubmissionID: s.GetSubmissionId(), Status: StatusName(s.GetStatus()), Entrypoint: s.GetEntrypoint(),
		Message: s.GetMessage(), StartTime: s.GetStartUnixMs(), Metadata: maps.Clone(s.GetMetadata()),
		RuntimeEnv: runtimeenv.FromProto(s.GetRuntimeEnv()), EntrypointNumCPUs: s.GetEntrypointNumCpus(),
		EntrypointNumGPUs: s.GetEntrypointNumGpus(), EntrypointResources: maps.Clone(s.GetEntrypointResources()),
		SubmittedBy: s.GetSubmittedBy(), DriverPID: s.GetPid()}
	if d.Metadata == nil {
		d.Metadata = map[string]string{}
	}
	if jobID != "" {
		d.JobID = &jobID
	}
	if id, ok := ids.FromBytes(s.GetNodeId()); ok {
		d.DriverNodeID = id.String()
	}
	if Terminal(s.GetStatus()) {
		end, code := s.GetEndUnixMs(), s.GetExitCode()
		d.EndTime = &end
		if len(s.GetNodeId()) > 0 && (s.GetStatus() != pb.JobStatus_JOB_STATUS_STOPPED || code != 0) { // it ran
			d.DriverExitCode = &code
		}
	}
	return d
}

// jobIDs maps submission ids to their drivers' job ids (the control
// store's jobs registered with a submission id).
func (h *handler) jobIDs(ctx context.Context) map[string]string {
	reply, err := h.c.GCS.ListJobs(ctx, &pb.ListJobsRequest{})
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, j := range reply.GetJobs() {
		if sid := j.GetSubmissionId(); sid != "" {
			if id, ok := ids.FromBytes(j.GetJobId()); ok {
				out[sid] = id.String()
			}
		}
	}
	return out
}

// apiError maps the manager's errors to the API's.
func apiError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return api.NotFound("%v", err)
	case errors.Is(err, ErrExists):
		return api.Conflict("%v", err)
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNotEnded):
		return api.BadRequest("%v", err)
	case errors.Is(err, ErrTooMany):
		return api.Errorf(http.StatusTooManyRequests, "too_many", "%v", err)
	}
	return err
}

func (h *handler) submit(w http.ResponseWriter, r *http.Request) {
	who := api.Who(r.Context())
	var req SubmitRequest
	if err := h.s.ReadJSON(w, r, &req); err != nil {
		h.s.Audit().Record(r, who, "job.submit", "", "refused: "+err.Error())
		api.WriteError(w, err)
		return
	}
	mr := Request{Entrypoint: req.Entrypoint, Metadata: req.Metadata, EntrypointNumCPUs: req.EntrypointNumCPUs,
		EntrypointNumGPUs: req.EntrypointNumGPUs, EntrypointMemory: req.EntrypointMemory, EntrypointResources: req.EntrypointResources,
		SubmittedBy: who.Name}
	switch {
	case req.SubmissionID != nil && *req.SubmissionID != "":
		mr.SubmissionID = *req.SubmissionID
	case req.JobID != nil:
		mr.SubmissionID = *req.JobID
	}
	if req.RuntimeEnv != nil {
		mr.RuntimeEnv = *req.RuntimeEnv
	}
	id, err := h.m.Submit(r.Context(), mr)
	if err != nil {
		h.s.Audit().Record(r, who, "job.submit", mr.SubmissionID, "refused: "+err.Error())
		api.WriteError(w, apiError(err))
		return
	}
	h.s.Audit().Record(r, who, "job.submit", id, "ok: "+req.Entrypoint)
	api.WriteJSON(w, map[string]string{"submission_id": id, "job_id": id})
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	jobs := h.jobIDs(r.Context())
	subs := h.m.Submissions()
	out := make([]Details, 0, len(subs))
	for _, s := range subs {
		out = append(out, ToDetails(s, jobs[s.GetSubmissionId()]))
	}
	api.WriteJSON(w, out)
}

func (h *handler) lookup(r *http.Request) (*pb.JobSubmission, error) {
	id := r.PathValue("id")
	s, ok := h.m.Submission(id)
	if !ok {
		return nil, api.NotFound("no job submission %q (`raygo job list` lists them)", id)
	}
	return s, nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	s, err := h.lookup(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, ToDetails(s, h.jobIDs(r.Context())[s.GetSubmissionId()]))
}

func (h *handler) stop(w http.ResponseWriter, r *http.Request) {
	who := api.Who(r.Context())
	id := r.PathValue("id")
	stopped, err := h.m.Stop(r.Context(), id, who.Name)
	if err != nil {
		h.s.Audit().Record(r, who, "job.stop", id, "error: "+err.Error())
		api.WriteError(w, apiError(err))
		return
	}
	h.s.Audit().Record(r, who, "job.stop", id, fmt.Sprintf("ok: stopped=%t", stopped))
	api.WriteJSON(w, map[string]bool{"stopped": stopped})
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) {
	who := api.Who(r.Context())
	id := r.PathValue("id")
	if err := h.m.Delete(r.Context(), id); err != nil {
		h.s.Audit().Record(r, who, "job.delete", id, "error: "+err.Error())
		api.WriteError(w, apiError(err))
		return
	}
	h.s.Audit().Record(r, who, "job.delete", id, "ok")
	api.WriteJSON(w, map[string]bool{"deleted": true})
}

// readLog opens the entrypoint log of s on its node.
func (h *handler) readLog(ctx context.Context, s *pb.JobSubmission, follow bool) (pb.NodeDaemon_ReadLogClient, error) {
	if len(s.GetNodeId()) == 0 {
		return nil, nil // not started: no log yet
	}
	addr, alive := h.m.nodeAddress(ctx, s.GetNodeId())
	if !alive {
		return nil, api.Errorf(http.StatusGone, "node_gone", "the log of %s was on node %s, which is gone", s.GetSubmissionId(), shortHex(s.GetNodeId()))
	}
	conn, err := h.c.Pool.Get(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewNodeDaemonClient(conn).ReadLog(ctx, &pb.ReadLogRequest{Name: raylet.JobLogName(s.GetSubmissionId()), Follow: follow})
}

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	s, err := h.lookup(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	stream, err := h.readLog(r.Context(), s, false)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	var (
		buf   []byte
		total int64
	)
	for stream != nil {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			api.WriteError(w, fmt.Errorf("read the log of %s: %w", s.GetSubmissionId(), err))
			return
		}
		total += int64(len(c.GetData()))
		buf = append(buf, c.GetData()...)
		if len(buf) > 2*MaxLogBytes { // keep the tail, bounded
			buf = append(buf[:0:0], buf[len(buf)-MaxLogBytes:]...)
		}
	}
	if len(buf) > MaxLogBytes {
		buf = buf[len(buf)-MaxLogBytes:]
	}
	out := string(buf)
	if total > int64(len(buf)) {
		out = fmt.Sprintf("[raygo: the log has %d bytes; this is its last %d (the limit); GET /api/jobs/%s/logs/tail or `raygo logs --submission-id %s` for all of it]\n",
			total, len(buf), s.GetSubmissionId(), s.GetSubmissionId()) + out
	}
	api.WriteJSON(w, map[string]string{"logs": out})
}

// tail streams the log as text/plain, following it until the job ends
// (and tailDrain after, for its last output), or the client goes.
func (h *handler) tail(w http.ResponseWriter, r *http.Request) {
	s, err := h.lookup(r)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	id := s.GetSubmissionId()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Wait for the job to start (a pending one has no log yet).
	for len(s.GetNodeId()) == 0 && !Terminal(s.GetStatus()) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(h.m.cfg.RetryPeriod):
		}
		if s, _ = h.m.Submission(id); s == nil {
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	stream, err := h.readLog(ctx, s, true)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	if stream == nil {
		return
	}
	done := make(chan struct{})
	defer close(done)
	go func() { // ends with this handler (done) or the job: cancels the follow
		t := time.NewTicker(h.m.cfg.RetryPeriod)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if cur, ok := h.m.Submission(id); !ok || Terminal(cur.GetStatus()) {
				select {
				case <-time.After(tailDrain):
				case <-done:
				}
				cancel()
				return
			}
		}
	}()
	for {
		c, err := stream.Recv()
		if err != nil {
			return // the job ended (cancelled), the client left, or the node went
		}
		if _, err := w.Write(c.GetData()); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// readBody reads a request body of at most limit bytes, into one buffer
// of its announced length when it has one.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if r.ContentLength > 0 {
		data := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(body, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	return io.ReadAll(body)
}

// putPackage stores an uploaded working-dir package: the body's SHA-256
// must be the name's, at most maxPackage bytes.
func (h *handler) putPackage(w http.ResponseWriter, r *http.Request) {
	who := api.Who(r.Context())
	name := r.PathValue("name")
	digest, err := runtimeenv.ParseName(name)
	if err != nil {
		h.s.Audit().Record(r, who, "package.upload", name, "refused: bad name")
		api.WriteError(w, api.BadRequest("%v", err))
		return
	}
	if h.c.GCS.HasPackage(digest) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, h.maxPackage))
		h.s.Audit().Record(r, who, "package.upload", name, "ok: had it")
		api.WriteJSON(w, map[string]any{"name": name, "stored": false})
		return
	}
	data, err := readBody(w, r, h.maxPackage)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = api.Errorf(http.StatusRequestEntityTooLarge, "too_large", "package %s is over the %d-byte limit", name, h.maxPackage)
		} else {
			err = api.BadRequest("package %s: read the body: %v", name, err)
		}
		h.s.Audit().Record(r, who, "package.upload", name, "refused: "+err.Error())
		api.WriteError(w, err)
		return
	}
	// PutPackage checks the content against the name (one hash).
	if err := h.c.GCS.PutPackage(r.Context(), digest, data); err != nil {
		if errors.Is(err, errs.ErrInvalidRequest) {
			err = api.BadRequest("package %s: %v", name, err)
		}
		h.s.Audit().Record(r, who, "package.upload", name, "refused: "+err.Error())
		api.WriteError(w, err)
		return
	}
	h.s.Audit().Record(r, who, "package.upload", name, fmt.Sprintf("ok: %d bytes", len(data)))
	api.WriteJSON(w, map[string]any{"name": name, "stored": true})
}

func (h *handler) getPackage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	digest, err := runtimeenv.ParseName(name)
	if err != nil {
		api.WriteError(w, api.BadRequest("%v", err))
		return
	}
	if !h.c.GCS.HasPackage(digest) {
		api.WriteError(w, api.NotFound("no package %s on the head", name))
		return
	}
	api.WriteJSON(w, map[string]any{"name": name, "exists": true})
}
