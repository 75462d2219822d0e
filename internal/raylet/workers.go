package raylet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/jobbinary"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/internal/workerlog"
)

// Environment variables a node daemon sets for the worker processes it
// starts. The ray package reads them to become a worker.
const (
	EnvWorker      = "RAYGO_WORKER"
	EnvNodeAddress = "RAYGO_NODE_ADDRESS"
	EnvGCSAddress  = "RAYGO_GCS_ADDRESS"
	EnvToken       = "RAYGO_TOKEN"
	EnvWorkerID    = "RAYGO_WORKER_ID"
	EnvNodeID      = "RAYGO_NODE_ID"
	EnvJobID       = "RAYGO_JOB_ID"
	EnvSessionDir  = "RAYGO_SESSION_DIR"
	EnvNodeIP      = "RAYGO_NODE_IP"          // the address workers are reached at (the node's)
	EnvListenHost  = "RAYGO_LISTEN_HOST"      // the interface workers listen on (the node's)
	EnvNamespace   = "RAYGO_NAMESPACE"        // the job's default namespace
	EnvInline      = "RAYGO_INLINE_THRESHOLD" // the job's inline threshold in bytes
)

// stderrTailBytes is how much of a worker's stderr is kept to explain a
// startup failure.
const stderrTailBytes = 4096

type worker struct {
	id         ids.ID
	key        poolKey
	cmd        *exec.Cmd
	pid        int
	started    time.Time     // just before the process started
	addr       string        // set at registration
	registered chan struct{} // closed at registration
	exited     chan struct{} // closed after the process is reaped
	exitCode   int
	lease      *lease // guarded by Raylet.mu; the lease of a dedicated worker
	hosted     int    // guarded by Raylet.mu; actors on a shared process
	idleSince  time.Time
	dead       bool   // guarded by Raylet.mu
	killReason string // guarded by Raylet.mu

	tailMu sync.Mutex
	tail   []byte
}

// gone reports whether the worker's process has exited, even if the
// daemon has not reaped it yet (a zombie; see proc.Alive for how each
// platform tells).
func (w *worker) gone() bool {
	select {
	case <-w.exited:
		return true
	default:
		return !proc.Alive(w.pid)
	}
}

func (w *worker) kill() {
	if w.cmd.Process != nil {
		_ = w.cmd.Process.Kill()
	}
}

// jobEndGrace is how long a worker of a job that ended, or of an owner
// that died, has after SIGTERM to report its last task events before it
// is killed (it exits as soon as it has: a few milliseconds).
const jobEndGrace = time.Second

// terminate asks the worker to stop (SIGTERM: it reports its buffered
// task events and exits) and kills it if it has not within grace.
func (w *worker) terminate(grace time.Duration) {
	if w.cmd.Process == nil {
		return
	}
	if err := proc.Signal(w.pid, proc.Terminate); err != nil {
		w.kill()
		return
	}
	time.AfterFunc(grace, func() {
		select {
		case <-w.exited:
		default:
			w.kill()
		}
	})
}

func (w *worker) stderrTail() string {
	w.tailMu.Lock()
	defer w.tailMu.Unlock()
	return string(w.tail)
}

// acquireWorker pops an idle worker of the job with the allocation's GPUs
// and runtime env (renv: the lease's own, nil: the job's), or starts one
// and waits for it to register.
func (r *Raylet) acquireWorker(ctx context.Context, job ids.ID, alloc resources.Allocation, actor bool, renv *pb.RuntimeEnv) (*worker, error) {
	key := poolKey{job: job, gpus: strings.Join(alloc.GPUIDs, ","), env: runtimeenv.Key(renv)}
	for {
		r.mu.Lock()
		if q := r.idle[key]; len(q) > 0 {
			w := q[len(q)-1]
			r.idle[key] = q[:len(q)-1]
			r.mu.Unlock()
			if w.gone() {
				continue // died idle, not reaped yet
			}
			return w, nil
		}
		r.mu.Unlock()
		w, err := r.startWorker(ctx, key, renv)
		if err != nil {
			return nil, err
		}
		select {
		case <-w.registered:
			r.mu.Lock()
			delete(r.failures, job)
			r.mu.Unlock()
			return w, nil
		case <-w.exited:
			r.mu.Lock()
			f := r.failures[job]
			if f == nil {
				f = &startupFailures{}
				r.failures[job] = f
			}
			f.count++
			f.lastCode = w.exitCode
			f.stderr = w.stderrTail()
			n := f.count
			serr := r.startupErrorLocked(job)
			r.mu.Unlock()
			if n >= r.cfg.MaxStartupFailures {
				r.failPendingForJob(job, serr)
				return nil, serr
			}
			// Back off before the next try: 100 ms, 200 ms, ...
			t := time.NewTimer(time.Duration(n) * 100 * time.Millisecond)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		case <-time.After(r.cfg.WorkerRegisterTimeout):
			w.kill()
			return nil, errs.Systemf("raylet: worker pid %d did not register within %s", w.pid, r.cfg.WorkerRegisterTimeout)
		case <-ctx.Done():
			w.kill()
			return nil, ctx.Err()
		}
	}
}

func (r *Raylet) startupErrorLocked(job ids.ID) error {
	f := r.failures[job]
	return &errs.WorkerStartupError{Binary: r.binaries[job], ExitCode: f.lastCode, Attempts: f.count, Stderr: f.stderr}
}

// failPendingForJob fails the waiting leases of a job whose workers cannot start.
func (r *Raylet) failPendingForJob(job ids.ID, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failQueuedLocked(func(p *pendingLease) bool { return p.jobOf() == job }, err)
}

// startWorker execs the job's binary as a worker process, in the runtime
// env renv merged over the job's (runtimeenv.go).
func (r *Raylet) startWorker(ctx context.Context, key poolKey, renv *pb.RuntimeEnv) (*worker, error) {
	bin, err := r.jobBinary(ctx, key.job)
	if err != nil {
		return nil, err
	}
	envVars, dir, err := r.workerRuntimeEnv(ctx, key.job, renv)
	if err != nil {
		return nil, err
	}
	w := &worker{id: ids.New(), key: key, registered: make(chan struct{}), exited: make(chan struct{})}
	cmd := exec.Command(bin)
	cmd.Dir = dir
	r.mu.Lock()
	jobEnv := r.jobEnv[key.job]
	r.mu.Unlock()
	cmd.Env = append(os.Environ(), jobEnv...)
	cmd.Env = append(cmd.Env, envVars...) // before raygo's own, which win
	cmd.Env = append(cmd.Env,
		EnvNodeIP+"="+r.nodeIP(),
		EnvListenHost+"="+r.listenHost(),
		EnvWorker+"=1",
		EnvNodeAddress+"="+r.address,
		EnvGCSAddress+"="+r.cfg.GCSAddress,
		EnvToken+"="+r.cfg.Token,
		EnvWorkerID+"="+w.id.String(),
		EnvNodeID+"="+r.nodeID.String(),
		EnvJobID+"="+key.job.String(),
		EnvSessionDir+"="+r.cfg.SessionDir,
		"CUDA_VISIBLE_DEVICES="+key.gpus,
		"RAYGO_ADDRESS=",
	)
	// The worker dies with this daemon: it watches the daemon's
	// parent-death pipe (every platform), and on Linux it also gets
	// Pdeathsig.
	proc.Child(cmd, !r.cfg.LifelineOnly)
	r.lifeline.Attach(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return nil, errStopping()
	}
	w.started = time.Now()
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		return nil, &errs.WorkerStartupError{Binary: bin, ExitCode: -1, Attempts: 1, Stderr: err.Error()}
	}
	w.cmd, w.pid = cmd, cmd.Process.Pid
	r.workers[w.id] = w
	r.mu.Unlock()

	logBase := filepath.Join(r.cfg.SessionDir, "logs", fmt.Sprintf("worker-%s-%d", w.id.Short(), w.pid))
	var pipes sync.WaitGroup
	pipes.Add(2)
	r.wg.Add(1)
	go func() { defer pipes.Done(); r.pump(w, stdout, logBase+".out", false) }()
	go func() { defer pipes.Done(); r.pump(w, stderr, logBase+".err", true) }()
	go func() {
		defer r.wg.Done()
		pipes.Wait()
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		w.exitCode = code
		r.workerExited(w)
		close(w.exited)
	}()
	return w, nil
}

// maxPumpLine is the longest line a pump handles whole: a longer one is
// written and published in pieces of this size.
const maxPumpLine = 1 << 20

// pump copies one of a worker's output streams to its log file (rotated,
// see rotatingFile), to the node's log publisher (for drivers, see
// logpub.go) and, with Config.EchoWorkerOutput, to this process's stderr
// with the worker's prefix (workerlog.Prefix). It never blocks on
// anything but the file.
func (r *Raylet) pump(w *worker, src io.Reader, path string, isErr bool) {
	var file *rotatingFile
	if r.cfg.SessionDir != "" {
		limit, backups := r.logRotation()
		file = openRotating(path, limit, backups)
		defer file.close()
	}
	node, name := r.nodeID.Short(), ""
	job, wid := w.key.job.Bytes(), w.id.Bytes()
	rd := bufio.NewReaderSize(src, 64<<10)
	var line []byte
	for {
		chunk, err := rd.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull && len(line) < maxPumpLine {
			continue
		}
		if len(line) == 0 {
			break // the stream ended (or failed) on a line boundary
		}
		text := bytes.TrimSuffix(line, []byte{'\n'})
		if n, ok := workerlog.ParseName(text); ok {
			name = n
		} else {
			if file != nil {
				if len(text) == len(line) {
					line = append(line, '\n')
				}
				file.write(line)
			}
			if r.logs != nil {
				r.logs.add(&pb.LogLine{JobId: job, WorkerId: wid, Pid: int32(w.pid), Name: name, Stderr: isErr, Text: capLine(text)})
			}
			if r.cfg.EchoWorkerOutput {
				out := r.cfg.EchoTo
				if out == nil {
					out = os.Stderr
				}
				_, _ = out.Write([]byte(workerlog.Prefix(name, w.pid, node) + string(text) + "\n"))
			}
			if isErr {
				w.tailMu.Lock()
				w.tail = append(w.tail, text...)
				w.tail = append(w.tail, '\n')
				if len(w.tail) > stderrTailBytes {
					w.tail = w.tail[len(w.tail)-stderrTailBytes:]
				}
				w.tailMu.Unlock()
			}
		}
		line = line[:0]
		if err != nil && err != bufio.ErrBufferFull {
			break
		}
	}
	_, _ = io.Copy(io.Discard, src)
}

// workerExited frees what the worker held and reports its death.
func (r *Raylet) workerExited(w *worker) {
	r.mu.Lock()
	w.dead = true
	delete(r.workers, w.id)
	q := r.idle[w.key]
	for i, x := range q {
		if x == w {
			r.idle[w.key] = append(q[:i], q[i+1:]...)
			break
		}
	}
	for id, l := range r.leases { // its own lease, or its actors' on a shared process
		if l.w == w {
			delete(r.leases, id)
			r.freeLeaseLocked(l)
		}
	}
	w.lease = nil
	r.removeHostLocked(w)
	r.dispatchLocked()
	registered := w.addr != ""
	reason := w.killReason
	// Leases the dead worker held (for tasks it submitted) have no owner
	// any more: stop those workers so their resources come back.
	orphans := r.ownersGoneLocked(func(owner, _ ids.ID) bool { return owner == w.id }, "the process that leased it died")
	stopping := r.stopping
	r.mu.Unlock()
	for _, o := range orphans {
		o.kill()
	}
	// What it owned has no owner any more, here or anywhere (the control
	// store tells the other nodes when it hears of the death).
	r.store.FreeOwners(w.id)
	// Socket files (darwin) of a process that died without closing them:
	// by name once it had told its address, else those no one listens on
	// any more that appeared since it started (killed between binding its
	// sockets and registering).
	if registered {
		localsock.Forget(w.addr, localsock.GRPC, localsock.Tasks)
	} else {
		localsock.ForgetSince(w.started)
	}
	if !registered || stopping {
		return
	}
	if reason == "" {
		reason = fmt.Sprintf("worker process pid %d exited with code %d", w.pid, w.exitCode)
		if w.exitCode == -1 {
			reason = fmt.Sprintf("worker process pid %d was killed by a signal", w.pid)
		}
	}
	r.reportDeath(&pb.WorkerDiedRequest{NodeId: r.nodeID.Bytes(), WorkerId: w.id.Bytes(),
		Address: w.addr, ExitCode: int32(w.exitCode), Reason: reason})
}

// maxUnreported bounds the worker deaths kept to report to a control
// store that could not be reached (oldest dropped first).
const maxUnreported = 10000

// reportDeath tells the control store a worker died. A report the
// control store did not get (it is restarting) is kept and sent again
// after the next heartbeat it answers (resendDeaths): its actors must
// not stay alive in a control store that restarted from storage.
func (r *Raylet) reportDeath(req *pb.WorkerDiedRequest) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	if _, err := r.gcs.WorkerDied(ctx, req); noAnswer(err) && r.ctx.Err() == nil {
		r.mu.Lock()
		r.unreported = append(r.unreported, req)
		if len(r.unreported) > maxUnreported {
			r.unreported = r.unreported[1:]
		}
		r.mu.Unlock()
	}
}

// resendDeaths sends the reports reportDeath kept.
func (r *Raylet) resendDeaths() {
	r.mu.Lock()
	list := r.unreported
	r.unreported = nil
	r.mu.Unlock()
	for _, req := range list {
		r.reportDeath(req)
	}
}

// RegisterWorker is called by a worker process once it serves its
// CoreWorker endpoint.
func (r *Raylet) RegisterWorker(_ context.Context, req *pb.RegisterWorkerRequest) (*pb.RegisterWorkerReply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.workers[ids.MustFromBytes(req.GetWorkerId())]
	if !ok {
		return nil, errs.NotFoundf("raylet: unknown worker %x", req.GetWorkerId())
	}
	if w.addr == "" {
		w.addr = req.GetAddress()
		close(w.registered)
	}
	return &pb.RegisterWorkerReply{NodeId: r.nodeID.Bytes()}, nil
}

// jobBinary returns the path of the job's executable on this node: the
// driver's own path when it is on this host with the same content, or a
// copy fetched from the control store by content hash into the session's
// binary cache.
func (r *Raylet) jobBinary(ctx context.Context, job ids.ID) (string, error) {
	r.mu.Lock()
	if p, ok := r.binaries[job]; ok {
		r.mu.Unlock()
		return p, nil
	}
	r.mu.Unlock()
	reply, err := r.gcs.GetJob(ctx, &pb.GetJobRequest{JobId: job.Bytes()})
	if err != nil {
		return "", fmt.Errorf("raylet: look up job %s: %w", job, err)
	}
	j := reply.GetJob()
	env := []string{EnvNamespace + "=" + j.GetNamespace()}
	if j.GetInlineThreshold() > 0 {
		env = append(env, fmt.Sprintf("%s=%d", EnvInline, j.GetInlineThreshold()))
	}
	env = append(env, j.GetEnv()...)
	path := j.GetBinaryPath()
	if j.GetBinaryHash() != "" {
		if h, err := fileSHA256(path); err != nil || h != j.GetBinaryHash() {
			path, err = r.fetchBinary(ctx, j.GetBinaryHash())
			if err != nil {
				return "", err
			}
		}
	}
	r.mu.Lock()
	r.binaries[job] = path
	r.jobEnv[job] = env
	r.mu.Unlock()
	r.rt.setJob(job, j.GetRuntimeEnv())
	return path, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return jobbinary.Hash(f)
}

func (r *Raylet) fetchBinary(ctx context.Context, hash string) (string, error) {
	dir := filepath.Join(r.cfg.SessionDir, "binaries")
	dst := filepath.Join(dir, hash)
	if h, err := fileSHA256(dst); err == nil && h == hash {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	stream, err := r.gcs.GetBinary(ctx, &pb.GetBinaryRequest{Hash: hash})
	if err != nil {
		return "", fmt.Errorf("raylet: fetch binary %s: %w", hash, err)
	}
	tmp, err := os.CreateTemp(dir, hash+".*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tmp.Close()
			return "", fmt.Errorf("raylet: fetch binary %s: %w", hash, err)
		}
		_, _ = h.Write(c.GetData())
		if _, err := tmp.Write(c.GetData()); err != nil {
			tmp.Close()
			return "", err
		}
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return "", errs.Systemf("raylet: binary %s arrived with hash %s", hash, got)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return dst, nil
}

// reapIdleWorkers stops workers idle longer than IdleWorkerTimeout and the
// idle workers of jobs that have finished.
func (r *Raylet) reapIdleWorkers() {
	now := time.Now()
	var stop []*worker
	jobs := map[ids.ID]bool{}
	r.mu.Lock()
	for key, q := range r.idle {
		jobs[key.job] = true
		kept := q[:0]
		for _, w := range q {
			if now.Sub(w.idleSince) > r.cfg.IdleWorkerTimeout {
				w.killReason = "idle"
				stop = append(stop, w)
				continue
			}
			kept = append(kept, w)
		}
		r.idle[key] = kept
	}
	r.mu.Unlock()
	for job := range jobs {
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		reply, err := r.gcs.GetJob(ctx, &pb.GetJobRequest{JobId: job.Bytes()})
		cancel()
		if err != nil || reply.GetJob().GetState() != pb.JobState_JOB_STATE_FINISHED {
			continue
		}
		// Without the control store's notice this daemon does not know
		// which processes live on (detached actors'): it stops the idle
		// workers and those the driver leased.
		driver := ids.MustFromBytes(reply.GetJob().GetDriverId())
		r.jobFinished(job, func(l *lease) bool { return l.owner == driver && !driver.IsNil() })
	}
	for _, w := range stop {
		w.kill()
	}
}

// ownersGone is fate sharing, as Ray's: the task leases whose owner
// (the process that asked for them, or its node) match gone are stopped
// (their workers killed, so their resources come back) and queued
// requests from such owners are dropped. Actor leases are the control
// store's (it kills the actors of a dead owner).
func (r *Raylet) ownersGone(gone func(owner, ownerNode ids.ID) bool, why string) {
	r.mu.Lock()
	stop := r.ownersGoneLocked(gone, why)
	r.mu.Unlock()
	for _, w := range stop {
		w.terminate(jobEndGrace) // it reports its last task events first
	}
}

// ownersGoneLocked is ownersGone's work under r.mu; it returns the
// workers to kill.
func (r *Raylet) ownersGoneLocked(gone func(owner, ownerNode ids.ID) bool, why string) []*worker {
	var stop []*worker
	for _, l := range r.leases {
		if !l.actor && !l.w.dead && gone(l.owner, l.ownerNode) {
			l.w.killReason = why
			stop = append(stop, l.w)
		}
	}
	r.failQueuedLocked(func(p *pendingLease) bool {
		owner, _ := ids.FromBytes(p.req.GetOwnerId())
		node, _ := ids.FromBytes(p.req.GetOwnerNodeId())
		return !p.req.GetActor() && gone(owner, node)
	}, errs.Systemf("raylet: lease request dropped: %s", why))
	return stop
}

// jobFinished stops a finished job's idle workers and the workers leased
// for its tasks that stop says to (the control store's notice: all but
// those leased by the processes of the job's detached actors, which live
// on); actor processes are the control store's to stop. The objects the stopped workers owned are freed as
// they exit (workerExited). The control store's FreeOwned calls it as soon
// as the job ends; reapIdleWorkers calls it too, for a notice that was
// lost.
func (r *Raylet) jobFinished(job ids.ID, stopLease func(*lease) bool) {
	var stop []*worker
	r.mu.Lock()
	for key, q := range r.idle {
		if key.job == job {
			for _, w := range q {
				w.killReason = "its job finished"
			}
			stop = append(stop, q...)
			delete(r.idle, key)
		}
	}
	for _, l := range r.leases {
		if !l.actor && l.w.key.job == job && stopLease(l) {
			l.w.killReason = "its job finished while it was leased"
			stop = append(stop, l.w)
		}
	}
	delete(r.binaries, job)
	delete(r.jobEnv, job)
	delete(r.failures, job)
	r.mu.Unlock()
	r.rt.forgetJob(job)
	for _, w := range stop {
		w.terminate(jobEndGrace)
	}
}

// nodeIP is the interface this node's workers listen on: the host of the
// daemon's own address (loopback unless the node was started on another
// interface).
func (r *Raylet) nodeIP() string {
	host, _, err := net.SplitHostPort(r.address) // advertised: never unspecified
	if err != nil {
		return "127.0.0.1"
	}
	return host
}

// listenHost is the interface the daemon listens on, where its workers
// listen too (0.0.0.0 for a node listening on every interface).
func (r *Raylet) listenHost() string {
	host, _, err := net.SplitHostPort(r.cfg.ListenAddress)
	if err != nil || host == "" {
		return r.nodeIP()
	}
	return host
}

// acquireHost returns a worker process of the job that hosts shared actors
// and has room for one more (counting it), starting one if none has.
// Concurrent requests wait for a host being started rather than each
// starting their own.
func (r *Raylet) acquireHost(ctx context.Context, job ids.ID) (*worker, error) {
	for {
		r.mu.Lock()
		for _, w := range r.hosts[job] {
			if !w.dead && w.hosted < r.cfg.MaxActorsPerProcess && !w.gone() {
				w.hosted++
				r.mu.Unlock()
				return w, nil
			}
		}
		if starting := r.hostStarting[job]; starting != nil {
			r.mu.Unlock()
			select {
			case <-starting:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		starting := make(chan struct{})
		r.hostStarting[job] = starting
		r.mu.Unlock()
		w, err := r.acquireWorker(ctx, job, resources.Allocation{}, true, nil)
		r.mu.Lock()
		delete(r.hostStarting, job)
		close(starting)
		if err != nil {
			r.mu.Unlock()
			return nil, err
		}
		w.hosted++
		r.hosts[job] = append(r.hosts[job], w)
		r.mu.Unlock()
		return w, nil
	}
}

// removeHostLocked forgets w as a host of shared actors.
func (r *Raylet) removeHostLocked(w *worker) {
	q := r.hosts[w.key.job]
	for i, x := range q {
		if x == w {
			r.hosts[w.key.job] = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(r.hosts[w.key.job]) == 0 {
		delete(r.hosts, w.key.job)
	}
}
