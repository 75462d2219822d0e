package raylet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// Supervised replicas: the head asks a node daemon to run one replica
// process for as long as a RunReplica stream lasts. Two kinds share the
// supervision:
//
//   - "mcp": a hosted MCP server's replica (issue 14, internal/mcphost).
//     The stream carries the process's stdin (client to daemon) and
//     stdout (daemon to client) as raw bytes: the MCP stdio transport's
//     newline-delimited JSON-RPC is the client's business, not the
//     daemon's. Its stderr goes to <session>/logs/mcp-<server>-<id>.log.
//   - "serve": a replica of a Serve command deployment (docs/serve.md):
//     any program that listens on the TCP port its environment names
//     ($PORT unless the start says otherwise). The daemon picks the port,
//     answers with the host:port other nodes reach it at, and the proxy
//     talks HTTP to it there; nothing but the start and the end travels
//     on the stream. stdin is /dev/null; stdout and stderr go to
//     <session>/logs/serve-<deployment>-<id>.log.
//
// For both the daemon reserves the replica's resources in its ledger as
// a lease would, for the whole life of the process, unpacks the runtime
// env's working dir, and runs argv there in a process group of its own.
//
// How a Serve controller uses it: per replica it wants, it opens a
// RunReplica stream to a node with room (Kind "serve", Server the
// deployment, ReplicaId unique in the cluster, StopGraceMs its
// graceful_shutdown_timeout_s), reads the first message's HostPort, and
// health-checks and routes to http://HostPort once the program answers
// there (the daemon does not wait for the program to listen). The
// stream's end is the replica's: the controller cancels it to stop the
// replica; the stream ending with an error means the process exited (or
// its node stopped), and the controller starts another.
//
// Replicas die with the daemon: Stop (and a node declared dead) kills
// their process groups; a daemon that dies abruptly takes the process
// with it through Linux's Pdeathsig, and, for mcp, everywhere its stdin
// reaches end-of-file, on which MCP stdio servers exit.
//
// Picking a serve replica's port: the daemon binds port 0 on the
// interface it listens on, notes the port the kernel chose, closes it,
// and hands the number to the process, which binds it again. Between the
// close and the process's bind another program on the host may take the
// port (a small race: the kernel does not hand a just-closed ephemeral
// port out again at once); the replica then fails to listen, typically
// exits, and is replaced. Ports given to this node's running serve
// replicas are never handed out twice.
//
// Limits:
//   - mcp stdout goes to the client in chunks of at most ReplicaChunkBytes,
//     as the process wrote them (no framing, no coalescing);
//   - one mcp stdin message is at most what the transport accepts for a
//     ReplicaInput (wirecheck.SmallMessageBytes, 1 MiB);
//   - the error that ends a replica's stream quotes at most the last
//     ReplicaTailLines lines of its log (mcp: its stderr; serve: its
//     stdout and stderr), from its last ReplicaTailBytes bytes (the
//     whole output is in the log file);
//   - a replica whose stream is cancelled gets SIGTERM, and SIGKILL its
//     start's stop_grace_ms later (DefaultReplicaStopGrace when 0, at
//     most MaxReplicaStopGrace);
//   - once an mcp process exited, its output is read for at most
//     replicaDrainTimeout (2 s) more, after the rest of its process group
//     was killed (a descendant that left the group may hold them open);
//   - a serve port is picked in at most servePortTries binds.

// Replica kinds: ReplicaStart.kind, and the first part of a replica's
// log file name.
const (
	KindMCP   = "mcp"   // a hosted MCP server's replica: stdio on the stream
	KindServe = "serve" // a Serve command deployment's replica: HTTP on a port
)

// Environment variables a replica gets besides the daemon's own, its
// runtime env's and RAYGO_ADDRESS (the cluster's address). A replica does
// not get the cluster's token (RAYGO_TOKEN is taken out of the daemon's
// environment too): a hosted program is often someone else's. A program
// that is a raygo program is given a token of its own through its
// runtime env (`raygo mcp host --env RAYGO_TOKEN=…`, with a token made by
// `raygo token create`).
const (
	EnvMCPServer  = "RAYGO_MCP_SERVER"  // mcp: the hosted server's name
	EnvMCPReplica = "RAYGO_MCP_REPLICA" // mcp: the replica's id

	EnvServeDeployment = "RAYGO_SERVE_DEPLOYMENT" // serve: the deployment's name
	EnvServeReplica    = "RAYGO_SERVE_REPLICA"    // serve: the replica's id
	// EnvServeHost is the interface a serve replica should listen on: the
	// one the daemon listens on (0.0.0.0 on a node listening on every
	// interface). A program listening on every interface works too.
	EnvServeHost = "RAYGO_SERVE_HOST"
)

// DefaultPortEnv is the variable a serve replica's port is set in when
// its start names none (the usual convention of web servers and PaaS).
const DefaultPortEnv = "PORT"

// Limits of a replica's stream (see the Limits in this file's opening comment).
const (
	// ReplicaChunkBytes bounds one ReplicaOutput's stdout bytes (mcp).
	ReplicaChunkBytes = 64 << 10
	// ReplicaTailLines bounds the log lines an exit error quotes.
	ReplicaTailLines = 10
	// ReplicaTailBytes bounds the log bytes an exit error's lines come
	// from (the last ones the process wrote).
	ReplicaTailBytes = 2 << 10
	// DefaultReplicaStopGrace is how long a replica whose stream was
	// cancelled has between SIGTERM and SIGKILL to its process group when
	// its start's stop_grace_ms is 0. (A Serve controller passes its
	// deployment's graceful_shutdown_timeout_s instead: Ray's default
	// there is 20 s.)
	DefaultReplicaStopGrace = 2 * time.Second
	// MaxReplicaStopGrace bounds a start's stop_grace_ms: a stopping
	// replica holds its resources until it is gone.
	MaxReplicaStopGrace = 10 * time.Minute
	// maxPortEnvLen bounds a start's port_env.
	maxPortEnvLen = 128
)

// replicaDrainTimeout bounds how long an mcp replica's stdout and stderr
// are read after its process exited (and the rest of its group was
// killed): a grandchild that left the group may hold them open.
const replicaDrainTimeout = 2 * time.Second

// servePortTries bounds the binds spent looking for a port that no
// running serve replica of this node holds.
const servePortTries = 16

// ReplicaLogName is the log file name of a replica, relative to the
// node's logs directory: "<kind>-<server>-<replica>.log".
func ReplicaLogName(kind, server, replica string) string {
	return kind + "-" + server + "-" + replica + ".log"
}

// replicaSpec is what checkReplicaStart accepted of a start message.
type replicaSpec struct {
	kind, server, id string
	portEnv          string // serve: the variable the port goes in
	stopGrace        time.Duration
}

// what names the replica in errors and logs: "mcp replica ID (server S)"
// or "serve replica ID (deployment D)".
func (s replicaSpec) what() string {
	if s.kind == KindServe {
		return fmt.Sprintf("serve replica %s (deployment %s)", s.id, s.server)
	}
	return fmt.Sprintf("mcp replica %s (server %s)", s.id, s.server)
}

// checkReplicaStart checks the kind-dependent parts of a start message
// (kind, names, port variable, stop grace; stdinBytes is how many stdin
// bytes the first message carried) and says what is wrong in the first
// that is not valid. The rest (argv, resources, runtime env) is checked
// where it is used.
func checkReplicaStart(st *pb.ReplicaStart, stdinBytes int) (replicaSpec, error) {
	s := replicaSpec{kind: st.GetKind(), server: st.GetServer(), id: st.GetReplicaId()}
	if s.kind != KindMCP && s.kind != KindServe {
		return s, fmt.Errorf("kind %q: want %q or %q", s.kind, KindMCP, KindServe)
	}
	name := "server name"
	if s.kind == KindServe {
		name = "deployment name"
	}
	if err := validReplicaName(name, s.server); err != nil {
		return s, err
	}
	if err := validReplicaName("replica id", s.id); err != nil {
		return s, fmt.Errorf("%s %s: %w", s.kind, s.server, err)
	}
	switch s.kind {
	case KindMCP:
		if st.GetPortEnv() != "" {
			return s, fmt.Errorf("%s: port_env %q is for serve replicas only", s.what(), st.GetPortEnv())
		}
	case KindServe:
		s.portEnv = st.GetPortEnv()
		if s.portEnv == "" {
			s.portEnv = DefaultPortEnv
		}
		if err := validPortEnv(s.portEnv); err != nil {
			return s, fmt.Errorf("%s: %w", s.what(), err)
		}
		if stdinBytes > 0 {
			return s, fmt.Errorf("%s: the start carries %d stdin bytes, but a serve replica's stdin is /dev/null", s.what(), stdinBytes)
		}
	}
	switch ms := st.GetStopGraceMs(); {
	case ms < 0:
		return s, fmt.Errorf("%s: stop_grace_ms %d is negative", s.what(), ms)
	case ms == 0:
		s.stopGrace = DefaultReplicaStopGrace
	case ms > MaxReplicaStopGrace.Milliseconds():
		return s, fmt.Errorf("%s: stop_grace_ms %d is over the maximum, %d (%v)", s.what(), ms, MaxReplicaStopGrace.Milliseconds(), MaxReplicaStopGrace)
	default:
		s.stopGrace = time.Duration(ms) * time.Millisecond
	}
	return s, nil
}

// validReplicaName checks a server or deployment name or a replica id:
// ValidSubmissionID's rule (it names a log file).
func validReplicaName(what, s string) error {
	if ValidSubmissionID(s) != nil {
		return fmt.Errorf("%s %q: want 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'", what, s)
	}
	return nil
}

// validPortEnv checks the name of a serve replica's port variable: a
// portable environment variable name (letters, digits, '_', not starting
// with a digit, at most maxPortEnvLen bytes), not one of raygo's own
// (RAYGO_…) and not PATH (which finds the command).
func validPortEnv(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("port_env %q: %s", name, why)
	}
	if len(name) > maxPortEnvLen {
		return bad(fmt.Sprintf("longer than %d bytes", maxPortEnvLen))
	}
	for i, c := range name {
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && !(i > 0 && '0' <= c && c <= '9') {
			return bad("want letters, digits and '_', not starting with a digit")
		}
	}
	if strings.HasPrefix(name, "RAYGO_") {
		return bad("RAYGO_ variables are raygo's own")
	}
	if name == "PATH" {
		return bad("PATH finds the command")
	}
	return nil
}

// replica is a running replica, in runtimeState.reps.
type replica struct {
	spec    replicaSpec
	pid     int
	port    int           // serve: the port it was given
	done    chan struct{} // closed once the process is reaped and its resources freed
	nodeEnd bool          // guarded by runtimeState.mu: the node is stopping
}

// RunReplica runs one replica here for as long as the stream lasts (its
// limits: ReplicaChunkBytes, ReplicaTailLines, ReplicaTailBytes,
// DefaultReplicaStopGrace, MaxReplicaStopGrace, and this file's opening
// comment).
//
// The first message must carry start; the daemon checks it (kind "mcp"
// or "serve"; server name and replica id as ValidSubmissionID; for
// serve, port_env a valid variable name and no stdin bytes; for mcp no
// port_env; stop_grace_ms from 0 to MaxReplicaStopGrace; a non-empty
// argv whose argv[0] is found on PATH, the runtime env's PATH when it
// sets one; valid resources and runtime env), reserves the resources,
// for serve picks a free port, starts the process and answers with its
// pid and log file name (and, for serve, host_port: this node's
// advertised address and the port). Errors before the start: an
// invalid-request error naming what was wrong (a command not found names
// the command and the node); an *errs.InfeasibleError when the resources
// exceed this node's totals; an unavailable-kind error when they are
// only not free now (the head tries another node); an already-exists
// error when a replica of that id runs here.
//
// mcp: later messages' stdin bytes go to the process's stdin, in order;
// the client closing its side (CloseSend) closes the process's stdin.
// The process's stdout comes back in messages of at most
// ReplicaChunkBytes. serve: a later message carrying anything is an
// invalid-request error that ends the replica; the client closing its
// side changes nothing.
//
// The process exiting ends the stream (for mcp once its stdout is
// drained) with an unavailable-kind error (errs.ErrUnavailable: this
// replica is gone, start another) whose message says how it ended and
// quotes the end of its log: "raylet: mcp replica memory-1a2b (server
// memory) on node 3f2a9c1d exited: exit status 3; last stderr: …" or
// "raylet: serve replica shop-2 (deployment shop) on node 3f2a9c1d
// exited: exit status 1; last output: …". The node stopping ends it the
// same way, saying so. The stream's context ending (the client cancelled
// or went away) closes stdin and stops the process group: SIGTERM, then
// SIGKILL after the stop grace. However the replica ends, its whole
// process group is killed, the process reaped and its resources freed,
// once.
func (r *Raylet) RunReplica(stream pb.NodeDaemon_RunReplicaServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return errs.Invalidf("raylet: RunReplica: the stream closed before its start message")
	}
	if err != nil {
		return err
	}
	st := first.GetStart()
	if st == nil {
		return errs.Invalidf("raylet: RunReplica: the first message must carry start (it carries %d stdin bytes and no start)", len(first.GetStdin()))
	}
	rep, run, err := r.startReplica(stream, st, first.GetStdin())
	if err != nil {
		return err
	}
	return rep.pump(r, stream, run)
}

// replicaRun is what a started replica's pump works with.
type replicaRun struct {
	cmd      *exec.Cmd
	alloc    resources.Allocation
	hostPort string   // serve: where it is to listen, as other nodes reach it
	stdin    *os.File // mcp: write end of the process's stdin
	stdout   *os.File // mcp: read end of its stdout
	stderr   *os.File // mcp: read end of its stderr
	log      *os.File // its log, appended to
	logPath  string
	logStart int64  // serve: the log's size when the process started
	preStdin []byte // mcp: stdin bytes the start message carried
}

// startReplica checks a start message, reserves its resources and
// starts the process (registered in r.rt.reps). On error nothing is left
// reserved or running.
func (r *Raylet) startReplica(stream pb.NodeDaemon_RunReplicaServer, st *pb.ReplicaStart, preStdin []byte) (*replica, *replicaRun, error) {
	spec, err := checkReplicaStart(st, len(preStdin))
	if err != nil {
		return nil, nil, errs.Invalidf("raylet: RunReplica: %v", err)
	}
	what := spec.what()
	argv := st.GetArgv()
	if len(argv) == 0 || argv[0] == "" {
		return nil, nil, errs.Invalidf("raylet: %s: empty argv (want the command and its arguments)", what)
	}
	env := runtimeenv.FromProto(st.GetRuntimeEnv())
	if err := env.Validate(); err != nil {
		return nil, nil, errs.Invalidf("raylet: %s: %v", what, err)
	}
	want := resources.Set(st.GetResources()).Clone()
	if err := resources.Validate(want); err != nil {
		return nil, nil, errs.Invalidf("raylet: %s: resources: %v", what, err)
	}
	if r.cfg.SessionDir == "" {
		return nil, nil, errs.Invalidf("raylet: %s: replicas need a node daemon with a session directory (for their logs)", what)
	}
	node := r.nodeID.Short()
	r.mu.Lock()
	fitsTotal, total := r.res.FitsTotal(want), r.res.Total()
	r.mu.Unlock()
	if !fitsTotal {
		return nil, nil, &errs.InfeasibleError{Function: what, Request: want.String(), Cluster: "node " + node + ": " + total.String()}
	}
	ctx := stream.Context()
	dir, err := r.workingDir(ctx, env.WorkingDir)
	if err != nil {
		return nil, nil, err
	}
	pathEnv, ok := env.EnvVars["PATH"]
	if !ok {
		pathEnv = os.Getenv("PATH")
	}
	path, err := lookCommand(argv[0], pathEnv, dir)
	if err != nil {
		return nil, nil, errs.Invalidf("raylet: %s: command %q not found on node %s: %v", what, argv[0], node, err)
	}

	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return nil, nil, errStopping()
	}
	alloc, ok := r.res.Allocate(want)
	avail := r.res.Available()
	r.mu.Unlock()
	if !ok {
		return nil, nil, &errs.Status{Kind: errs.KindUnavailable, Message: fmt.Sprintf(
			"raylet: %s: node %s has no room for %v now (free of those: %v); another node may", what, node, want, availableOf(avail, want))}
	}
	rep, run, err := r.spawnReplica(spec, path, argv, dir, env, st.GetClusterAddress(), alloc)
	if err != nil {
		r.releaseAlloc(alloc)
		return nil, nil, err
	}
	run.preStdin = preStdin
	return rep, run, nil
}

// spawnReplica opens the log (and, for mcp, the pipes), picks a serve
// replica's port and starts the process, under r.mu so that a Stop that
// begins either comes first or finds it.
func (r *Raylet) spawnReplica(spec replicaSpec, path string, argv []string, dir string, env runtimeenv.Env, cluster string, alloc resources.Allocation) (*replica, *replicaRun, error) {
	id, what := spec.id, spec.what()
	logName := ReplicaLogName(spec.kind, spec.server, id)
	logPath := filepath.Join(r.cfg.SessionDir, "logs", logName)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, nil, errs.Systemf("raylet: %s log: %v", what, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, errs.Systemf("raylet: %s log: %v", what, err)
	}
	run := &replicaRun{alloc: alloc, log: logf, logPath: logPath}
	var files []*os.File // every pipe end, closed on failure
	fail := func(err error) (*replica, *replicaRun, error) {
		for _, f := range files {
			f.Close()
		}
		logf.Close()
		return nil, nil, err
	}
	pipe := func() (rd, wr *os.File, err error) {
		rd, wr, err = os.Pipe()
		if err == nil {
			files = append(files, rd, wr)
		}
		return rd, wr, err
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: dir}
	var childEnds []*os.File // the pipe ends the child holds once started
	if spec.kind == KindMCP {
		inR, inW, err := pipe()
		if err != nil {
			return fail(errs.Systemf("raylet: %s stdin: %v", what, err))
		}
		outR, outW, err := pipe()
		if err != nil {
			return fail(errs.Systemf("raylet: %s stdout: %v", what, err))
		}
		errR, errW, err := pipe()
		if err != nil {
			return fail(errs.Systemf("raylet: %s stderr: %v", what, err))
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
		run.stdin, run.stdout, run.stderr = inW, outR, errR
		childEnds = []*os.File{inR, outW, errW}
	} else {
		// Stdin nil: /dev/null. The process writes its log itself, so its
		// output never waits on the daemon.
		cmd.Stdout, cmd.Stderr = logf, logf
		fi, err := logf.Stat()
		if err != nil {
			return fail(errs.Systemf("raylet: %s log: %v", what, err))
		}
		run.logStart = fi.Size()
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvToken+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envList(env)...)
	cmd.Env = append(cmd.Env,
		envClusterAddr+"="+cluster,
		EnvWorker+"=", // not a worker, whatever this daemon's own environment says
	)
	if spec.kind == KindMCP {
		cmd.Env = append(cmd.Env, EnvMCPServer+"="+spec.server, EnvMCPReplica+"="+id)
	} else {
		cmd.Env = append(cmd.Env, EnvServeDeployment+"="+spec.server, EnvServeReplica+"="+id, EnvServeHost+"="+r.listenHost())
	}
	if len(alloc.GPUIDs) > 0 {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+strings.Join(alloc.GPUIDs, ","))
	}
	proc.Child(cmd, !r.cfg.LifelineOnly) // own process group; Pdeathsig on Linux
	rep := &replica{spec: spec, done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return fail(errStopping())
	}
	r.rt.mu.Lock()
	running := r.rt.reps[id] != nil
	r.rt.mu.Unlock()
	if running {
		return fail(errs.AlreadyExistsf("raylet: %s runs on node %s already", what, r.nodeID.Short()))
	}
	if spec.kind == KindServe {
		// Picked under r.mu, so that no two starts pick the same port.
		port, err := r.pickServePortLocked()
		if err != nil {
			return fail(errs.Systemf("raylet: %s: no free port on node %s: %v", what, r.nodeID.Short(), err))
		}
		rep.port = port
		run.hostPort = net.JoinHostPort(r.nodeIP(), strconv.Itoa(port))
		cmd.Env = append(cmd.Env, spec.portEnv+"="+strconv.Itoa(port))
	}
	if err := cmd.Start(); err != nil {
		return fail(errs.Systemf("raylet: start %s (%s): %v", what, path, err))
	}
	for _, f := range childEnds {
		f.Close() // the child holds them now
	}
	run.cmd = cmd
	rep.pid = cmd.Process.Pid
	r.rt.mu.Lock()
	if r.rt.reps == nil {
		r.rt.reps = map[string]*replica{}
	}
	r.rt.reps[id] = rep
	r.rt.mu.Unlock()
	// Added under r.mu while not stopping: Stop's r.wg.Wait comes later.
	r.wg.Add(1)
	r.log.Info("replica started", "kind", spec.kind, "server", spec.server, "replica", id, "pid", rep.pid, "argv", argv, "host_port", run.hostPort)
	return rep, run, nil
}

// pickServePortLocked picks a TCP port free now on the interface the
// daemon listens on and given to none of this node's running serve
// replicas (see the opening comment for the race this leaves). r.mu is
// held: every serve start picks and registers its port under it.
func (r *Raylet) pickServePortLocked() (int, error) {
	host := r.listenHost()
	r.rt.mu.Lock()
	taken := map[int]bool{}
	for _, rep := range r.rt.reps {
		if rep.port != 0 {
			taken[rep.port] = true
		}
	}
	r.rt.mu.Unlock()
	for range servePortTries {
		lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		port := lis.Addr().(*net.TCPAddr).Port
		lis.Close()
		if !taken[port] {
			return port, nil
		}
	}
	return 0, fmt.Errorf("%d binds on %s gave only ports running serve replicas hold", servePortTries, host)
}

// pump moves an mcp replica's stdin and stdout between the stream and
// the process, or just watches a serve replica, until the process exits
// or the stream ends, then cleans up. r.wg holds one count for it
// (spawnReplica), handed to the stream reader, which gRPC ends when the
// handler returns.
func (rep *replica) pump(r *Raylet, stream pb.NodeDaemon_RunReplicaServer, run *replicaRun) error {
	ctx := stream.Context()
	spec := rep.spec
	mcp := spec.kind == KindMCP
	var stdinOnce sync.Once
	closeStdin := func() {
		if run.stdin != nil {
			stdinOnce.Do(func() { run.stdin.Close() })
		}
	}

	var wg sync.WaitGroup // the goroutines below but the stream reader
	exited := make(chan struct{})
	var werr error
	wg.Add(1)
	go func() { // owned by wg: reaps the process
		defer wg.Done()
		werr = run.cmd.Wait()
		close(exited)
	}()

	tail := &tailBuffer{max: ReplicaTailBytes}
	stderrDone := make(chan struct{})
	if mcp {
		wg.Add(1)
		go func() { // owned by wg: stderr to the log file and the tail
			defer wg.Done()
			defer close(stderrDone)
			_, _ = io.Copy(io.MultiWriter(run.log, tail), run.stderr)
		}()
	} else {
		close(stderrDone) // the process writes its log itself
	}

	sendFailed := make(chan struct{})
	stdoutDone := make(chan struct{})
	wg.Add(1)
	go func() { // owned by wg: the first message, then (mcp) stdout to the stream, as read
		defer wg.Done()
		defer close(stdoutDone)
		firstMsg := &pb.ReplicaOutput{Pid: int32(rep.pid), LogFile: ReplicaLogName(spec.kind, spec.server, spec.id), HostPort: run.hostPort}
		if err := stream.Send(firstMsg); err != nil {
			close(sendFailed)
			return
		}
		if !mcp {
			return
		}
		buf := make([]byte, ReplicaChunkBytes)
		for {
			n, err := run.stdout.Read(buf)
			if n > 0 {
				// A copy: the message must not change once sent.
				if serr := stream.Send(&pb.ReplicaOutput{Stdout: bytes.Clone(buf[:n])}); serr != nil {
					close(sendFailed)
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()

	// The stream reader: the only caller of stream.Recv from here on. It
	// cannot be waited for before the handler returns (Recv blocks until
	// the client sends or the stream ends, which the handler's return
	// does), so it holds r.wg's count instead.
	badInput := make(chan error, 1)
	go func() { // owned by r.wg: ends when the stream does
		defer r.wg.Done()
		if len(run.preStdin) > 0 {
			if _, err := run.stdin.Write(run.preStdin); err != nil {
				return
			}
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				closeStdin() // serve: nothing to close; the replica runs on
				return
			}
			if err != nil {
				return
			}
			if msg.GetStart() != nil {
				badInput <- errs.Invalidf("raylet: %s: a second start message (start goes in the first message only)", spec.what())
				return
			}
			if !mcp {
				badInput <- errs.Invalidf("raylet: %s: a message after the start carrying %d stdin bytes (a serve replica's stream carries nothing after its start)", spec.what(), len(msg.GetStdin()))
				return
			}
			if _, err := run.stdin.Write(msg.GetStdin()); err != nil {
				return // the process closed its stdin or is gone; the pump ends it
			}
		}
	}()

	var endErr error
	select {
	case <-exited:
	case <-ctx.Done():
		endErr = ctx.Err()
		rep.stop(closeStdin, exited)
	case <-sendFailed:
		endErr = errs.Systemf("raylet: %s: sending its output failed (the client is gone)", spec.what())
		rep.stop(closeStdin, exited)
	case err := <-badInput:
		endErr = err
		rep.stop(closeStdin, exited)
	}
	// Whatever of its group is left goes too: it would hold resources no
	// longer counted, and its pipes open.
	killGroupAfterReap(rep.pid)
	closeStdin()
	r.rt.mu.Lock()
	delete(r.rt.reps, spec.id)
	nodeEnd := rep.nodeEnd
	r.rt.mu.Unlock()
	r.releaseAlloc(run.alloc)
	close(rep.done)

	drain, cancel := context.WithTimeout(context.Background(), replicaDrainTimeout)
	select {
	case <-stdoutDone:
	case <-drain.Done():
	}
	select {
	case <-stderrDone:
	case <-drain.Done():
	}
	cancel()
	if mcp {
		// Unblocks a read that a leftover outside the group holds open; a
		// stdout pump in Send waits for the client to read or leave.
		run.stdout.Close()
		run.stderr.Close()
	}
	wg.Wait()
	run.log.Close()

	how := "exit status 0"
	if werr != nil {
		how = werr.Error()
	}
	r.log.Info("replica exited", "kind", spec.kind, "server", spec.server, "replica", spec.id, "pid", rep.pid, "how", how, "cancelled", endErr != nil)
	if endErr != nil {
		return endErr
	}
	msg := fmt.Sprintf("raylet: %s on node %s exited: %s", spec.what(), r.nodeID.Short(), how)
	if nodeEnd {
		msg = fmt.Sprintf("raylet: %s on node %s exited: its node daemon stopped (%s)", spec.what(), r.nodeID.Short(), how)
	}
	last, lastWhat := tail.bytes(), "last stderr"
	if !mcp {
		last, lastWhat = logTail(run.logPath, run.logStart, ReplicaTailBytes), "last output"
	}
	if t := stderrTail(last, ReplicaTailLines); t != "" {
		msg += "; " + lastWhat + ":\n" + t
	}
	return &errs.Status{Kind: errs.KindUnavailable, Message: msg}
}

// stop ends a replica whose stream ended: its stdin closed, SIGTERM to
// its group, SIGKILL after its stop grace; it returns once the process
// is reaped.
func (rep *replica) stop(closeStdin func(), exited <-chan struct{}) {
	closeStdin()
	signalGroup(rep.pid, proc.Terminate)
	t := time.NewTimer(rep.spec.stopGrace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		signalGroup(rep.pid, proc.Kill)
		<-exited
	}
}

// stopReplicas kills every replica's process group and waits until each
// is reaped and its resources freed (the node is stopping). Their
// streams end with an error saying so.
func (r *Raylet) stopReplicas() {
	killGroupsAndWait(&r.rt.mu, r.rt.reps, func(rep *replica) (int, <-chan struct{}) {
		rep.nodeEnd = true
		return rep.pid, rep.done
	})
}

// logTail is at most the last max bytes of the log file at path written
// after offset from (nil when it cannot be read: the tail only adorns an
// error).
func logTail(path string, from int64, max int64) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	start := fi.Size() - max
	if start < from {
		start = from
	}
	if start >= fi.Size() {
		return nil
	}
	b := make([]byte, fi.Size()-start)
	n, _ := f.ReadAt(b, start)
	return b[:n]
}

// lookCommand finds the executable a replica's argv[0] names: a name
// with a path separator as is (relative to dir, or the daemon's working
// directory when dir is empty), a bare name in pathList's absolute
// directories, in order (relative and empty entries are skipped: what
// they name would depend on the working dir).
func lookCommand(name, pathList, dir string) (string, error) {
	if strings.ContainsRune(name, '/') || strings.ContainsRune(name, filepath.Separator) {
		p := name
		if !filepath.IsAbs(p) {
			base := dir
			if base == "" {
				wd, err := os.Getwd()
				if err != nil {
					return "", err
				}
				base = wd
			}
			p = filepath.Join(base, p)
		}
		return exec.LookPath(p)
	}
	for _, d := range filepath.SplitList(pathList) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		if p, err := exec.LookPath(filepath.Join(d, name)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not in PATH=%s", pathList)
}

// tailBuffer keeps the last max bytes written to it. Safe for one writer
// and readers after the writer is done.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tailBuffer) bytes() []byte { return t.buf }

// stderrTail is the last at most n non-blank lines of b, joined by
// newlines, each without trailing space; a first line cut by the byte
// bound is kept as it is.
func stderrTail(b []byte, n int) string {
	lines := bytes.Split(b, []byte("\n"))
	var keep []string
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		l := strings.TrimRight(string(lines[i]), " \t\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		keep = append(keep, l)
	}
	for i, j := 0, len(keep)-1; i < j; i, j = i+1, j-1 {
		keep[i], keep[j] = keep[j], keep[i]
	}
	return strings.Join(keep, "\n")
}

// ServeUpstreamToken is this cluster's ServeUpstreamToken, which the
// Serve controller tells the Go replicas it starts.
func (r *Raylet) ServeUpstreamToken() string { return ServeUpstreamToken(r.cfg.Token) }
