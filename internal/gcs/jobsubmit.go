package gcs

import (
	"context"
	"sync"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// JobSubmissions is the head's job manager (internal/jobs) as the control
// store and the HTTP API's other features see it. The manager lives
// outside this package (it uses the control store; the control store
// must not import it) and is set with SetJobSubmissions.
type JobSubmissions interface {
	// EntrypointExited records that a submission's entrypoint ended
	// (a node daemon reports it). An unknown submission is an error
	// matching errs.ErrNotFound.
	EntrypointExited(ctx context.Context, req *pb.EntrypointExitedRequest) error
	// Submission returns one submission (a copy), by id.
	Submission(id string) (*pb.JobSubmission, bool)
	// Submissions lists them, newest first (copies).
	Submissions() []*pb.JobSubmission
}

// submissions holds the manager set on a Server.
type submissions struct {
	mu sync.Mutex
	m  JobSubmissions // guarded by mu; nil until the head's API starts
}

// SetJobSubmissions sets the head's job manager (nil: none).
func (s *Server) SetJobSubmissions(m JobSubmissions) {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	s.subs.m = m
}

// JobSubmissions is the head's job manager, or nil when none runs (the
// HTTP API is off, or not started yet).
func (s *Server) JobSubmissions() JobSubmissions {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	return s.subs.m
}

// EntrypointExited is a node daemon's report that a job entrypoint it ran
// has ended. Without a job manager (the head is starting) it answers
// Unavailable, so that the node reports again.
func (s *Server) EntrypointExited(ctx context.Context, req *pb.EntrypointExitedRequest) (*pb.EntrypointExitedReply, error) {
	if req.GetSubmissionId() == "" {
		return nil, errs.Invalidf("gcs: EntrypointExited without a submission id")
	}
	m := s.JobSubmissions()
	if m == nil {
		return nil, &errs.Status{Kind: errs.KindUnavailable, Message: "gcs: the job manager is not running yet"}
	}
	if err := m.EntrypointExited(ctx, req); err != nil {
		return nil, err
	}
	return &pb.EntrypointExitedReply{}, nil
}

// Delete removes key from the namespace (nothing when it is not there).
// Durable, as Put.
func (k *KVNamespace) Delete(ctx context.Context, key string) error {
	s := k.s
	full := k.ns + "\x00" + key
	s.mu.Lock()
	if _, ok := s.kv[full]; !ok {
		s.mu.Unlock()
		return nil
	}
	delete(s.kv, full)
	var mark uint64
	if s.persist != nil {
		mark = s.persist.mark(tableKV, full, nil)
	}
	s.mu.Unlock()
	return s.durable(ctx, mark)
}

// Keys lists the namespace's keys (unordered).
func (k *KVNamespace) Keys() []string {
	s := k.s
	prefix := k.ns + "\x00"
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for full := range s.kv {
		if len(full) > len(prefix) && full[:len(prefix)] == prefix {
			out = append(out, full[len(prefix):])
		}
	}
	return out
}
