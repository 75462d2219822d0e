package raylet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// EnvRuntimeEnv carries a process's runtime environment, as JSON
// (runtimeenv.Env): set for a job entrypoint (its driver makes it the
// job's, see ray.Init) and for a worker started in a task's or actor's
// own environment (the tasks it submits inherit it).
const EnvRuntimeEnv = "RAYGO_RUNTIME_ENV"

// runtimeState is the node's runtime environments: the jobs' (from their
// JobInfo), the package cache, and the job entrypoints it runs
// (entrypoint.go).
type runtimeState struct {
	mu    sync.Mutex
	jobs  map[ids.ID]*pb.RuntimeEnv // guarded by mu; the job's, once its record was read
	cache *runtimeenv.Cache         // guarded by mu; made when first needed
	entry map[string]*entrypoint    // guarded by mu; running entrypoints by submission id
	reps  map[string]*replica       // guarded by mu; running MCP server and Serve replicas by replica id (replica.go)
}

func (s *runtimeState) setJob(job ids.ID, env *pb.RuntimeEnv) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs == nil {
		s.jobs = map[ids.ID]*pb.RuntimeEnv{}
	}
	s.jobs[job] = env
}

func (s *runtimeState) forgetJob(job ids.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, job)
}

func (s *runtimeState) job(job ids.ID) *pb.RuntimeEnv {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[job]
}

// workerRuntimeEnv resolves where a worker of job starts: own (a task's
// or actor's runtime env, nil for none) merged over the job's. It returns
// the variables to add to the worker's environment and its working
// directory ("" for the daemon's), the package fetched and unpacked first
// if this node has not yet.
func (r *Raylet) workerRuntimeEnv(ctx context.Context, job ids.ID, own *pb.RuntimeEnv) ([]string, string, error) {
	env := runtimeenv.Merge(runtimeenv.FromProto(r.rt.job(job)), runtimeenv.FromProto(own))
	if env.IsZero() {
		return nil, "", nil
	}
	if err := env.Validate(); err != nil {
		return nil, "", errs.Invalidf("raylet: runtime env: %v", err)
	}
	vars := envList(env)
	if own != nil {
		vars = append(vars, EnvRuntimeEnv+"="+runtimeenv.FromProto(own).JSON())
	}
	dir, err := r.workingDir(ctx, env.WorkingDir)
	if err != nil {
		return nil, "", err
	}
	return vars, dir, nil
}

// envList is env's variables as KEY=VALUE, sorted.
func envList(env runtimeenv.Env) []string {
	out := make([]string, 0, len(env.EnvVars))
	for k, v := range env.EnvVars {
		out = append(out, k+"="+v)
	}
	return out
}

// workingDir returns the directory package name is unpacked in on this
// node ("" for no package), fetching it from the control store once.
func (r *Raylet) workingDir(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", nil
	}
	digest, err := runtimeenv.ParseName(name)
	if err != nil {
		return "", errs.Invalidf("raylet: runtime env: %v", err)
	}
	if r.cfg.SessionDir == "" {
		return "", errs.Invalidf("raylet: runtime env working_dir %s: this node daemon has no session directory to unpack it in", name)
	}
	r.rt.mu.Lock()
	if r.rt.cache == nil {
		r.rt.cache = runtimeenv.NewCache(runtimeenv.CacheDir(r.cfg.SessionDir))
	}
	cache := r.rt.cache
	r.rt.mu.Unlock()
	dir, err := cache.Unpack(ctx, name, func(ctx context.Context, w io.Writer) error {
		stream, err := r.gcs.GetBinary(ctx, &pb.GetBinaryRequest{Hash: digest})
		if err != nil {
			return err
		}
		for {
			c, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := w.Write(c.GetData()); err != nil {
				return err
			}
		}
	})
	if err != nil {
		if errors.Is(err, errs.ErrNotFound) {
			return "", errs.NotFoundf("raylet: runtime env working_dir %s is not in the control store's package store (upload it first): %v", name, err)
		}
		return "", errs.Systemf("raylet: runtime env working_dir %s: %v", name, err)
	}
	return dir, nil
}

// errNoSession is the error of an entrypoint on a node without a session
// directory (its log has nowhere to go).
var errNoSession = fmt.Errorf("raylet: job entrypoints need a node daemon with a session directory")
