package ray

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/raygo/raygo/internal/jobbinary"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// RuntimeEnv is where a job's, task's or actor's workers run (Ray's
// runtime_env with env_vars and working_dir; docs/runtime-env.md).
//
// EnvVars are set in the workers' environment. WorkingDir is a local
// directory, packed into a zip (at most 100 MiB) and uploaded to the
// cluster once per directory per process, or the name of a package
// uploaded already ("sha256:…", as `raygo job submit` prints it); each
// node unpacks it once and starts the workers in it. Excludes leaves out
// paths of WorkingDir (path.Match patterns matched against each path
// relative to it and against base names; "dir/" for directories).
//
// Given to Init it is the job's environment, every worker's; given to a
// task or actor (Options), it is merged over the job's for that task's or
// actor's workers: its WorkingDir if set, else the job's, and the
// variables of both, its own winning. Workers are reused only within one
// environment. Tasks submitted by a task or actor with an environment of
// its own inherit it. A driver started by a job submission
// (`raygo job submit`) runs in the submission's environment, and it is
// its job's environment (merged under Init's).
type RuntimeEnv struct {
	EnvVars    map[string]string
	WorkingDir string
	Excludes   []string
}

// RuntimeEnvOption is an InitOption (the job's environment), a TaskOption
// and an ActorOption (theirs). Made by WithRuntimeEnv.
type RuntimeEnvOption struct{ opt }

func (o RuntimeEnvOption) applyInit(x *options)  { o.apply(x) }
func (o RuntimeEnvOption) applyTask(x *options)  { o.apply(x) }
func (o RuntimeEnvOption) applyActor(x *options) { o.apply(x) }

// WithRuntimeEnv sets the runtime environment of the job (in Init), or
// of a task's or actor's workers (in Options). A WorkingDir that cannot
// be packed or uploaded fails Init, or the task's or actor's submission,
// with an error naming the directory.
func WithRuntimeEnv(env RuntimeEnv) RuntimeEnvOption {
	env.EnvVars = maps.Clone(env.EnvVars)
	env.Excludes = append([]string(nil), env.Excludes...)
	return RuntimeEnvOption{opt{func(o *options) { o.runtimeEnv = &env }}}
}

// packages remembers the packages this process uploaded, by directory
// (and excludes), so that a directory is packed and uploaded once.
var packages struct {
	mu   sync.Mutex // held while one is packed and uploaded
	byID map[string]string
}

// resolveRuntimeEnv turns env into its wire form: its WorkingDir packed
// and uploaded through the control store c unless it names a package.
func resolveRuntimeEnv(ctx context.Context, c pb.ControlStoreClient, env RuntimeEnv) (runtimeenv.Env, error) {
	out := runtimeenv.Env{EnvVars: maps.Clone(env.EnvVars)}
	if len(out.EnvVars) == 0 {
		out.EnvVars = nil
	}
	wd := env.WorkingDir
	switch {
	case wd == "":
	case strings.HasPrefix(wd, runtimeenv.NamePrefix):
		digest, err := runtimeenv.ParseName(wd)
		if err != nil {
			return runtimeenv.Env{}, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
		}
		has, err := c.HasBinary(ctx, &pb.HasBinaryRequest{Hash: digest})
		if err != nil {
			return runtimeenv.Env{}, fmt.Errorf("ray: runtime env: check package %s: %w", wd, err)
		}
		if !has.GetFound() {
			return runtimeenv.Env{}, fmt.Errorf("%w: runtime env working dir %s: no such package in the cluster (upload it first)", ErrInvalidRequest, wd)
		}
		out.WorkingDir = wd
	default:
		name, err := uploadWorkingDir(ctx, c, wd, env.Excludes)
		if err != nil {
			return runtimeenv.Env{}, err
		}
		out.WorkingDir = name
	}
	if err := out.Validate(); err != nil {
		return runtimeenv.Env{}, fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	return out, nil
}

// uploadWorkingDir packs dir and uploads it unless the control store has
// it, once per process per directory and excludes.
func uploadWorkingDir(ctx context.Context, c pb.ControlStoreClient, dir string, excludes []string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w: runtime env working dir %s: %v", ErrInvalidRequest, dir, err)
	}
	key := abs + "\x00" + strings.Join(excludes, "\x00")
	packages.mu.Lock()
	defer packages.mu.Unlock()
	if name, ok := packages.byID[key]; ok {
		return name, nil
	}
	pkg, err := runtimeenv.Package(abs, runtimeenv.PackOptions{Excludes: excludes})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if err := uploadPackage(ctx, c, pkg); err != nil {
		return "", fmt.Errorf("ray: runtime env working dir %s: %w", dir, err)
	}
	if packages.byID == nil {
		packages.byID = map[string]string{}
	}
	packages.byID[key] = pkg.Name
	return pkg.Name, nil
}

// uploadPackage sends pkg to the control store's package store unless it
// is there, with a progress bar on a terminal.
func uploadPackage(ctx context.Context, c pb.ControlStoreClient, pkg *runtimeenv.Pkg) error {
	has, err := c.HasBinary(ctx, &pb.HasBinaryRequest{Hash: pkg.Hex})
	if err != nil {
		return fmt.Errorf("check package: %w", err)
	}
	if has.GetFound() {
		return nil
	}
	stream, err := c.PutBinary(ctx)
	if err != nil {
		return err
	}
	bar := runtimeenv.NewProgress(int64(len(pkg.Data)), "upload "+pkg.Name[:len(runtimeenv.NamePrefix)+12])
	defer bar.Done()
	send := func(ch *pb.BinaryChunk) error {
		bar.Add(len(ch.GetData()))
		return stream.Send(ch)
	}
	// io.EOF from Send: the control store refused, CloseAndRecv says why.
	if err := jobbinary.Send(bytes.NewReader(pkg.Data), pkg.Hex, int64(len(pkg.Data)), send); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("upload package: %w", err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return fmt.Errorf("upload package: %w", err)
	}
	return nil
}

// jobRuntimeEnv is the job's runtime env at Init: the submission's
// (RAYGO_RUNTIME_ENV, for a driver a job entrypoint started) merged under
// Init's own.
func jobRuntimeEnv(ctx context.Context, c pb.ControlStoreClient, own *RuntimeEnv) (*pb.RuntimeEnv, error) {
	var base runtimeenv.Env
	if s := os.Getenv(raylet.EnvRuntimeEnv); s != "" {
		e, err := runtimeenv.ParseJSON(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidRequest, raylet.EnvRuntimeEnv, err)
		}
		base = e
	}
	if own == nil {
		return base.Proto(), nil
	}
	mine, err := resolveRuntimeEnv(ctx, c, *own)
	if err != nil {
		return nil, err
	}
	return runtimeenv.Merge(base, mine).Proto(), nil
}

// inherited is the runtime env a worker started in a task's or actor's
// own environment passes to the tasks and actors it submits without one
// (RAYGO_RUNTIME_ENV, set by the node daemon); nil elsewhere.
var inherited = sync.OnceValue(func() *pb.RuntimeEnv {
	if !IsWorker() {
		return nil
	}
	e, err := runtimeenv.ParseJSON(os.Getenv(raylet.EnvRuntimeEnv))
	if err != nil || e.IsZero() {
		return nil
	}
	return e.Proto()
})

// callRuntimeEnv is the runtime env of a task's or actor's submission:
// its option's (resolved: uploaded once), else the inherited one, else nil
// (the job's).
func callRuntimeEnv(ctx context.Context, c pb.ControlStoreClient, own *RuntimeEnv) (*pb.RuntimeEnv, error) {
	if own == nil {
		return inherited(), nil
	}
	e, err := resolveRuntimeEnv(ctx, c, *own)
	if err != nil {
		return nil, err
	}
	return e.Proto(), nil
}

// watchEntrypointNode makes a driver that a job entrypoint started exit
// when the node daemon that started it dies (the entrypoint dies with its
// node, as workers do): it watches the parent-death pipe the daemon
// passed to the entrypoint's shell, which this process inherited. Once
// per process; nothing for other drivers.
func watchEntrypointNode() {
	entrypointWatch.Do(func() {
		if os.Getenv(raylet.EnvSubmissionID) == "" {
			return
		}
		gone, err := proc.WatchParent()
		if err != nil {
			return // started by hand with the variable set: nothing to watch
		}
		go func() { // for the life of the process
			<-gone
			fmt.Fprintln(os.Stderr, "raygo: the node daemon that ran this job's entrypoint is gone; exiting")
			os.Exit(1)
		}()
	})
}

var entrypointWatch sync.Once
