package raylet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/stopper"
)

// Job entrypoints (the job API's submissions, internal/jobs): the head
// asks a node daemon whose resources hold a submission's entrypoint
// resources to run it (StartEntrypoint). The daemon reserves them in its
// resource ledger as a lease would, unpacks the runtime env's working
// dir, and runs `/bin/sh -c ENTRYPOINT` there in a process group of its
// own, output to <session>/logs/job-driver-<submission_id>.log. When the
// shell exits, the daemon frees the resources and reports the exit to the
// control store (EntrypointExited), again until it answers.
//
// Entrypoints die with the daemon: Stop (and a node declared dead) kills
// their process groups; a daemon that dies abruptly takes the shell with
// it through Linux's Pdeathsig, and raygo drivers the entrypoint started
// through the parent-death pipe they inherit (ray.Init watches it in a
// driver started by an entrypoint). Other processes the shell started
// may outlive such a death (docs/jobs.md, Limits).

// Environment variables an entrypoint gets besides its runtime env's.
const (
	EnvSubmissionID = "RAYGO_SUBMISSION_ID"
	envClusterAddr  = "RAYGO_ADDRESS"
)

// DefaultStopGrace is how long StopEntrypoint waits after SIGTERM before
// SIGKILL when the request gives no grace.
const DefaultStopGrace = 3 * time.Second

// maxStopGrace bounds StopEntrypointRequest.grace_ms.
const maxStopGrace = 10 * time.Minute

// exitReportRetry bounds the wait between two reports of an exit the
// control store did not answer.
const exitReportRetry = 2 * time.Second

// JobLogName is the log file name of a submission's entrypoint, relative
// to the node's logs directory.
func JobLogName(submissionID string) string { return "job-driver-" + submissionID + ".log" }

// ValidSubmissionID reports whether id can name a submission (and its log
// file): 1 to 128 letters, digits, '-', '_' and '.', not starting with '.'.
func ValidSubmissionID(id string) error {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return fmt.Errorf("submission id %q: want 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("submission id %q: character %q is not allowed (letters, digits, '-', '_', '.')", id, c)
		}
	}
	return nil
}

// EntrypointResources is what a submission's entrypoint holds while it
// runs.
func EntrypointResources(job *pb.JobSubmission) resources.Set {
	want := resources.Set{}
	for k, v := range job.GetEntrypointResources() {
		want[k] = v
	}
	if c := job.GetEntrypointNumCpus(); c != 0 {
		want[resources.CPU] = c
	}
	if g := job.GetEntrypointNumGpus(); g != 0 {
		want[resources.GPU] = g
	}
	return want
}

// entrypoint is a running job entrypoint.
type entrypoint struct {
	id      string
	pid     int
	alloc   resources.Allocation
	done    chan struct{} // closed once the shell is reaped
	stopped bool          // guarded by runtimeState.mu: StopEntrypoint was called
	nodeEnd bool          // guarded by runtimeState.mu: the node is stopping
}

// StartEntrypoint runs a submission's entrypoint here, if its resources
// are free now (started false otherwise, and no error). Starting one that
// runs already answers with it again.
func (r *Raylet) StartEntrypoint(ctx context.Context, req *pb.StartEntrypointRequest) (*pb.StartEntrypointReply, error) {
	job := req.GetJob()
	id := job.GetSubmissionId()
	if err := ValidSubmissionID(id); err != nil {
		return nil, errs.Invalidf("raylet: StartEntrypoint: %v", err)
	}
	if strings.TrimSpace(job.GetEntrypoint()) == "" {
		return nil, errs.Invalidf("raylet: StartEntrypoint %s: empty entrypoint", id)
	}
	env := runtimeenv.FromProto(job.GetRuntimeEnv())
	if err := env.Validate(); err != nil {
		return nil, errs.Invalidf("raylet: StartEntrypoint %s: %v", id, err)
	}
	want := EntrypointResources(job)
	if err := resources.Validate(want); err != nil {
		return nil, errs.Invalidf("raylet: StartEntrypoint %s: entrypoint resources: %v", id, err)
	}
	if r.cfg.SessionDir == "" {
		return nil, errs.Invalidf("%v", errNoSession)
	}
	logName := JobLogName(id)
	r.rt.mu.Lock()
	if e := r.rt.entry[id]; e != nil {
		r.rt.mu.Unlock()
		return &pb.StartEntrypointReply{Started: true, Pid: int32(e.pid), LogFile: logName}, nil
	}
	r.rt.mu.Unlock()

	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return nil, errStopping()
	}
	if !r.res.Fits(want) {
		r.mu.Unlock()
		return &pb.StartEntrypointReply{Started: false}, nil
	}
	alloc, ok := r.res.Allocate(want)
	r.mu.Unlock()
	if !ok {
		return &pb.StartEntrypointReply{Started: false}, nil
	}
	e, err := r.runEntrypoint(ctx, req, env, alloc)
	if err != nil {
		r.releaseAlloc(alloc)
		return &pb.StartEntrypointReply{Error: errs.ToInfo(err)}, nil
	}
	return &pb.StartEntrypointReply{Started: true, Pid: int32(e.pid), LogFile: logName}, nil
}

// runEntrypoint starts the shell and the goroutine that waits for it.
func (r *Raylet) runEntrypoint(ctx context.Context, req *pb.StartEntrypointRequest, env runtimeenv.Env, alloc resources.Allocation) (*entrypoint, error) {
	job := req.GetJob()
	id := job.GetSubmissionId()
	dir, err := r.workingDir(ctx, env.WorkingDir)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(r.cfg.SessionDir, "logs", JobLogName(id))
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, errs.Systemf("raylet: entrypoint log: %v", err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, errs.Systemf("raylet: entrypoint log: %v", err)
	}
	cmd := exec.Command("/bin/sh", "-c", job.GetEntrypoint())
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), envList(env)...)
	cmd.Env = append(cmd.Env,
		envClusterAddr+"="+req.GetClusterAddress(),
		EnvToken+"="+r.cfg.Token,
		EnvSubmissionID+"="+id,
		EnvRuntimeEnv+"="+env.JSON(),
		EnvWorker+"=", // a driver, not a worker, whatever this daemon's own environment says
	)
	if len(alloc.GPUIDs) > 0 {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+strings.Join(alloc.GPUIDs, ","))
	}
	proc.Child(cmd, !r.cfg.LifelineOnly) // own process group; Pdeathsig on Linux
	r.lifeline.Attach(cmd)               // raygo drivers watch it (ray.Init)
	e := &entrypoint{id: id, alloc: alloc, done: make(chan struct{})}
	// Started and recorded under r.mu: a Stop that begins (r.stopping)
	// either comes first, or finds the entrypoint to kill.
	r.mu.Lock()
	r.rt.mu.Lock()
	running := r.rt.entry[id]
	r.rt.mu.Unlock()
	if r.stopping || running != nil {
		r.mu.Unlock()
		logf.Close()
		if running != nil {
			return nil, errs.AlreadyExistsf("raylet: entrypoint %s was started here meanwhile", id)
		}
		return nil, errStopping()
	}
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		logf.Close()
		return nil, errs.Systemf("raylet: start entrypoint %s: %v", id, err)
	}
	e.pid = cmd.Process.Pid
	r.rt.mu.Lock()
	if r.rt.entry == nil {
		r.rt.entry = map[string]*entrypoint{}
	}
	r.rt.entry[id] = e
	r.rt.mu.Unlock()
	r.mu.Unlock()
	r.log.Info("job entrypoint started", "submission", id, "pid", e.pid, "entrypoint", job.GetEntrypoint())
	r.wg.Add(1)
	go func() { // owned by r.wg; ends when the shell is reaped and its exit reported
		defer r.wg.Done()
		werr := cmd.Wait()
		logf.Close()
		r.rt.mu.Lock()
		delete(r.rt.entry, id)
		stopped, nodeEnd := e.stopped, e.nodeEnd
		r.rt.mu.Unlock()
		close(e.done)
		r.releaseAlloc(alloc)
		code, msg := exitOf(werr)
		switch {
		case stopped:
			msg = "stopped (" + msg + ")"
		case nodeEnd:
			msg = "its node daemon stopped (" + msg + ")"
		}
		r.log.Info("job entrypoint exited", "submission", id, "pid", e.pid, "how", msg)
		r.reportEntrypointExit(&pb.EntrypointExitedRequest{SubmissionId: id, NodeId: r.nodeID.Bytes(),
			ExitCode: int32(code), Message: msg, Stopped: stopped})
	}()
	return e, nil
}

// exitOf describes how a process ended: its exit code (-1 when a signal
// ended it) and a message.
func exitOf(err error) (int, string) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, "exited with code 0"
	case errors.As(err, &ee):
		if ee.ExitCode() >= 0 {
			return ee.ExitCode(), fmt.Sprintf("exited with code %d", ee.ExitCode())
		}
		return -1, "ended by a signal (" + ee.String() + ")"
	}
	return -1, err.Error()
}

// reportEntrypointExit tells the control store, again until it answers
// or this daemon stops (a head that restarts from storage hears of it
// when it is back).
func (r *Raylet) reportEntrypointExit(req *pb.EntrypointExitedRequest) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, exitReportRetry) {
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		_, err := r.gcs.EntrypointExited(ctx, req)
		cancel()
		if err == nil || !noAnswer(err) {
			if err != nil {
				r.log.Warn("the control store refused an entrypoint's exit report", "submission", req.GetSubmissionId(), "err", err)
			}
			return
		}
		if !stopper.Sleep(r.ctx, wait) {
			return
		}
	}
}

// StopEntrypoint stops a running entrypoint: SIGTERM to its process
// group, SIGKILL after grace_ms (default DefaultStopGrace). found is
// false when none runs here under that id. It returns at once; the exit
// is reported as stopped.
func (r *Raylet) StopEntrypoint(_ context.Context, req *pb.StopEntrypointRequest) (*pb.StopEntrypointReply, error) {
	grace := DefaultStopGrace
	if g := req.GetGraceMs(); g > 0 {
		grace = min(time.Duration(g)*time.Millisecond, maxStopGrace)
	}
	r.rt.mu.Lock()
	e := r.rt.entry[req.GetSubmissionId()]
	if e != nil {
		e.stopped = true
	}
	r.rt.mu.Unlock()
	if e == nil {
		return &pb.StopEntrypointReply{Found: false}, nil
	}
	signalGroup(e.pid, proc.Terminate)
	r.wg.Add(1)
	go func() { // owned by r.wg: SIGKILL after the grace unless it ended
		defer r.wg.Done()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-e.done:
		case <-t.C:
		case <-r.ctx.Done():
		}
		// Also what the shell left behind in its group.
		signalGroup(e.pid, proc.Kill)
	}()
	return &pb.StopEntrypointReply{Found: true}, nil
}

// stopEntrypoints kills every entrypoint's process group and waits for
// the shells (the node is stopping).
func (r *Raylet) stopEntrypoints() {
	killGroupsAndWait(&r.rt.mu, r.rt.entry, func(e *entrypoint) (int, <-chan struct{}) {
		e.nodeEnd = true
		return e.pid, e.done
	})
}

// killGroupsAndWait stops the process groups the daemon started for the
// head (entrypoints, replicas) when the node stops: under mu, end marks
// each as ending with its node and names its group leader and the
// channel closed once it is reaped; then every group is killed and each
// waited for.
func killGroupsAndWait[T any](mu *sync.Mutex, running map[string]T, end func(T) (pid int, reaped <-chan struct{})) {
	type group struct {
		pid    int
		reaped <-chan struct{}
	}
	mu.Lock()
	all := make([]group, 0, len(running))
	for _, x := range running {
		pid, reaped := end(x)
		all = append(all, group{pid, reaped})
	}
	mu.Unlock()
	for _, g := range all {
		signalGroup(g.pid, proc.Kill)
	}
	for _, g := range all {
		<-g.reaped
	}
}
