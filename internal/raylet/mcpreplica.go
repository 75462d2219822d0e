package raylet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
)

// Hosted MCP server replicas (issue 14, internal/mcphost): the head asks a
// node daemon to run one replica of a hosted MCP server for as long as a
// RunMCPReplica stream lasts. The daemon reserves the replica's resources
// in its ledger as a lease would, for the whole life of the process,
// unpacks the runtime env's working dir, and runs argv there in a process
// group of its own, its stderr appended to
// <session>/logs/mcp-<server>-<replica_id>.log (MCPLogName). The stream
// carries the process's stdin (client to daemon) and stdout (daemon to
// client) as raw bytes: the MCP stdio transport's newline-delimited
// JSON-RPC is the client's business, not the daemon's.
//
// Replicas die with the daemon: Stop (and a node declared dead) kills
// their process groups; a daemon that dies abruptly takes the process
// with it through Linux's Pdeathsig, and everywhere its stdin reaches
// end-of-file, on which MCP stdio servers exit.
//
// Limits:
//   - stdout goes to the client in chunks of at most MCPChunkBytes, as the
//     process wrote them (no framing, no coalescing);
//   - one stdin message is at most what the transport accepts for an
//     MCPReplicaInput (wirecheck.SmallMessageBytes, 1 MiB);
//   - the error that ends a replica's stream quotes at most the last
//     MCPStderrTailLines lines of its stderr, from its last
//     MCPStderrTailBytes bytes (the whole stderr is in the log file);
//   - a replica whose stream is cancelled gets SIGTERM, and SIGKILL
//     MCPStopGrace later;
//   - once the process exited, its output is read for at most
//     mcpDrainTimeout (2 s) more, after the rest of its process group was
//     killed (a descendant that left the group may hold them open).

// Environment variables a replica gets besides the daemon's own, its
// runtime env's and RAYGO_ADDRESS (the cluster's address). A replica does
// not get the cluster's token (RAYGO_TOKEN is taken out of the daemon's
// environment too): a hosted server is often someone else's program. A
// server that is a raygo program is given a token of its own through its
// runtime env (`raygo mcp host --env RAYGO_TOKEN=…`, with a token made by
// `raygo token create`).
const (
	EnvMCPServer  = "RAYGO_MCP_SERVER"  // the hosted server's name
	EnvMCPReplica = "RAYGO_MCP_REPLICA" // the replica's id
)

// Limits of a replica's stream (see the Limits in this file's opening comment).
const (
	// MCPChunkBytes bounds one MCPReplicaOutput's stdout bytes.
	MCPChunkBytes = 64 << 10
	// MCPStderrTailLines bounds the stderr lines an exit error quotes.
	MCPStderrTailLines = 10
	// MCPStderrTailBytes bounds the stderr bytes an exit error's lines
	// come from (the last ones the process wrote).
	MCPStderrTailBytes = 2 << 10
	// MCPStopGrace is how long a replica whose stream was cancelled has
	// between SIGTERM and SIGKILL to its process group.
	MCPStopGrace = 2 * time.Second
)

// mcpDrainTimeout bounds how long a replica's stdout and stderr are read
// after its process exited (and the rest of its group was killed): a
// grandchild that left the group may hold them open.
const mcpDrainTimeout = 2 * time.Second

// MCPLogName is the log file name of a replica's stderr, relative to the
// node's logs directory.
func MCPLogName(server, replica string) string { return "mcp-" + server + "-" + replica + ".log" }

// validMCPName checks a server name or replica id: ValidSubmissionID's
// rule (it names a log file).
func validMCPName(what, s string) error {
	if ValidSubmissionID(s) != nil {
		return fmt.Errorf("%s %q: want 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'", what, s)
	}
	return nil
}

// mcpReplica is a running replica, in runtimeState.mcp.
type mcpReplica struct {
	server, id string
	pid        int
	done       chan struct{} // closed once the process is reaped and its resources freed
	nodeEnd    bool          // guarded by runtimeState.mu: the node is stopping
}

// RunMCPReplica runs one replica of a hosted MCP server here for as long
// as the stream lasts (its limits: MCPChunkBytes, MCPStderrTailLines,
// MCPStderrTailBytes, MCPStopGrace, and this file's opening comment).
//
// The first message must carry start; the daemon checks it (server name
// and replica id as ValidSubmissionID, a non-empty argv whose argv[0] is
// found on PATH, the runtime env's PATH when it sets one, valid
// resources and runtime env), reserves the resources, starts the process
// and answers with its pid and log file name. Errors before the start:
// an invalid-request error naming what was wrong (a command not found
// names the command and the node); an *errs.InfeasibleError when the
// resources exceed this node's totals; an unavailable-kind error when
// they are only not free now (the head tries another node); an
// already-exists error when a replica of that id runs here.
//
// Later messages' stdin bytes go to the process's stdin, in order; the
// client closing its side (CloseSend) closes the process's stdin. The
// process's stdout comes back in messages of at most MCPChunkBytes.
//
// The process exiting ends the stream, once its stdout is drained, with
// an unavailable-kind error (errs.ErrUnavailable: this replica is gone,
// start another) whose message says how it ended and quotes the end of
// its stderr: "raylet: mcp replica memory-1a2b (server memory) on node
// 3f2a9c1d exited: exit status 3; last stderr: …". The node stopping ends
// it the same way, saying so. The stream's context ending (the client
// cancelled or went away) closes stdin and stops the process group:
// SIGTERM, then SIGKILL after MCPStopGrace. However the replica ends, its
// whole process group is killed, the process reaped and its resources
// freed, once.
func (r *Raylet) RunMCPReplica(stream pb.NodeDaemon_RunMCPReplicaServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return errs.Invalidf("raylet: RunMCPReplica: the stream closed before its start message")
	}
	if err != nil {
		return err
	}
	st := first.GetStart()
	if st == nil {
		return errs.Invalidf("raylet: RunMCPReplica: the first message must carry start (it carries %d stdin bytes and no start)", len(first.GetStdin()))
	}
	rep, run, err := r.startMCPReplica(stream, st, first.GetStdin())
	if err != nil {
		return err
	}
	return rep.pump(r, stream, run)
}

// mcpRun is what a started replica's pump works with.
type mcpRun struct {
	cmd      *exec.Cmd
	alloc    resources.Allocation
	stdin    *os.File // write end of the process's stdin
	stdout   *os.File // read end of its stdout
	stderr   *os.File // read end of its stderr
	log      *os.File // its stderr log, appended to
	preStdin []byte   // stdin bytes the start message carried
}

// startMCPReplica checks a start message, reserves its resources and
// starts the process (registered in r.rt.mcp). On error nothing is left
// reserved or running.
func (r *Raylet) startMCPReplica(stream pb.NodeDaemon_RunMCPReplicaServer, st *pb.MCPReplicaStart, preStdin []byte) (*mcpReplica, *mcpRun, error) {
	server, id := st.GetServer(), st.GetReplicaId()
	if err := validMCPName("server name", server); err != nil {
		return nil, nil, errs.Invalidf("raylet: RunMCPReplica: %v", err)
	}
	if err := validMCPName("replica id", id); err != nil {
		return nil, nil, errs.Invalidf("raylet: RunMCPReplica %s: %v", server, err)
	}
	what := fmt.Sprintf("mcp replica %s (server %s)", id, server)
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
		return nil, nil, errs.Invalidf("raylet: %s: mcp replicas need a node daemon with a session directory (for their logs)", what)
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
	rep, run, err := r.spawnMCPReplica(server, id, path, argv, dir, env, st.GetClusterAddress(), alloc)
	if err != nil {
		r.releaseAlloc(alloc)
		return nil, nil, err
	}
	run.preStdin = preStdin
	return rep, run, nil
}

// spawnMCPReplica opens the log and pipes and starts the process, under
// r.mu so that a Stop that begins either comes first or finds it.
func (r *Raylet) spawnMCPReplica(server, id, path string, argv []string, dir string, env runtimeenv.Env, cluster string, alloc resources.Allocation) (*mcpReplica, *mcpRun, error) {
	logPath := filepath.Join(r.cfg.SessionDir, "logs", MCPLogName(server, id))
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return nil, nil, errs.Systemf("raylet: mcp replica %s log: %v", id, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, errs.Systemf("raylet: mcp replica %s log: %v", id, err)
	}
	var files []*os.File // every end, closed on failure
	fail := func(err error) (*mcpReplica, *mcpRun, error) {
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
	inR, inW, err := pipe()
	if err != nil {
		return fail(errs.Systemf("raylet: mcp replica %s stdin: %v", id, err))
	}
	outR, outW, err := pipe()
	if err != nil {
		return fail(errs.Systemf("raylet: mcp replica %s stdout: %v", id, err))
	}
	errR, errW, err := pipe()
	if err != nil {
		return fail(errs.Systemf("raylet: mcp replica %s stderr: %v", id, err))
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: dir, Stdin: inR, Stdout: outW, Stderr: errW}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvToken+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, envList(env)...)
	cmd.Env = append(cmd.Env,
		envClusterAddr+"="+cluster,
		EnvMCPServer+"="+server,
		EnvMCPReplica+"="+id,
		EnvWorker+"=", // not a worker, whatever this daemon's own environment says
	)
	if len(alloc.GPUIDs) > 0 {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+strings.Join(alloc.GPUIDs, ","))
	}
	proc.Child(cmd, !r.cfg.LifelineOnly) // own process group; Pdeathsig on Linux
	rep := &mcpReplica{server: server, id: id, done: make(chan struct{})}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return fail(errStopping())
	}
	r.rt.mu.Lock()
	running := r.rt.mcp[id] != nil
	r.rt.mu.Unlock()
	if running {
		return fail(errs.AlreadyExistsf("raylet: mcp replica %s runs on node %s already", id, r.nodeID.Short()))
	}
	if err := cmd.Start(); err != nil {
		return fail(errs.Systemf("raylet: start mcp replica %s (%s): %v", id, path, err))
	}
	// The child holds its ends now.
	inR.Close()
	outW.Close()
	errW.Close()
	rep.pid = cmd.Process.Pid
	r.rt.mu.Lock()
	if r.rt.mcp == nil {
		r.rt.mcp = map[string]*mcpReplica{}
	}
	r.rt.mcp[id] = rep
	r.rt.mu.Unlock()
	// Added under r.mu while not stopping: Stop's r.wg.Wait comes later.
	r.wg.Add(1)
	r.log.Info("mcp replica started", "server", server, "replica", id, "pid", rep.pid, "argv", argv)
	return rep, &mcpRun{cmd: cmd, alloc: alloc, stdin: inW, stdout: outR, stderr: errR, log: logf}, nil
}

// pump moves the stream's stdin to the process and its stdout to the
// stream until the process exits or the stream ends, then cleans up.
// r.wg holds one count for it (spawnMCPReplica), handed to the stream
// reader, which gRPC ends when the handler returns.
func (rep *mcpReplica) pump(r *Raylet, stream pb.NodeDaemon_RunMCPReplicaServer, run *mcpRun) error {
	ctx := stream.Context()
	var stdinOnce sync.Once
	closeStdin := func() { stdinOnce.Do(func() { run.stdin.Close() }) }

	var wg sync.WaitGroup // the goroutines below but the stream reader
	exited := make(chan struct{})
	var werr error
	wg.Add(1)
	go func() { // owned by wg: reaps the process
		defer wg.Done()
		werr = run.cmd.Wait()
		close(exited)
	}()

	tail := &tailBuffer{max: MCPStderrTailBytes}
	stderrDone := make(chan struct{})
	wg.Add(1)
	go func() { // owned by wg: stderr to the log file and the tail
		defer wg.Done()
		defer close(stderrDone)
		_, _ = io.Copy(io.MultiWriter(run.log, tail), run.stderr)
	}()

	sendFailed := make(chan struct{})
	stdoutDone := make(chan struct{})
	wg.Add(1)
	go func() { // owned by wg: the first message, then stdout to the stream, as read
		defer wg.Done()
		defer close(stdoutDone)
		if err := stream.Send(&pb.MCPReplicaOutput{Pid: int32(rep.pid), LogFile: MCPLogName(rep.server, rep.id)}); err != nil {
			close(sendFailed)
			return
		}
		buf := make([]byte, MCPChunkBytes)
		for {
			n, err := run.stdout.Read(buf)
			if n > 0 {
				// A copy: the message must not change once sent.
				if serr := stream.Send(&pb.MCPReplicaOutput{Stdout: bytes.Clone(buf[:n])}); serr != nil {
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
				closeStdin()
				return
			}
			if err != nil {
				return
			}
			if msg.GetStart() != nil {
				badInput <- errs.Invalidf("raylet: mcp replica %s: a second start message (start goes in the first message only)", rep.id)
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
		endErr = errs.Systemf("raylet: mcp replica %s: sending its output failed (the client is gone)", rep.id)
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
	delete(r.rt.mcp, rep.id)
	nodeEnd := rep.nodeEnd
	r.rt.mu.Unlock()
	r.releaseAlloc(run.alloc)
	close(rep.done)

	drain, cancel := context.WithTimeout(context.Background(), mcpDrainTimeout)
	select {
	case <-stdoutDone:
	case <-drain.Done():
	}
	select {
	case <-stderrDone:
	case <-drain.Done():
	}
	cancel()
	// Unblocks a read that a leftover outside the group holds open; a
	// stdout pump in Send waits for the client to read or leave.
	run.stdout.Close()
	run.stderr.Close()
	wg.Wait()
	run.log.Close()

	how := "exit status 0"
	if werr != nil {
		how = werr.Error()
	}
	r.log.Info("mcp replica exited", "server", rep.server, "replica", rep.id, "pid", rep.pid, "how", how, "cancelled", endErr != nil)
	if endErr != nil {
		return endErr
	}
	msg := fmt.Sprintf("raylet: mcp replica %s (server %s) on node %s exited: %s", rep.id, rep.server, r.nodeID.Short(), how)
	if nodeEnd {
		msg = fmt.Sprintf("raylet: mcp replica %s (server %s) on node %s exited: its node daemon stopped (%s)", rep.id, rep.server, r.nodeID.Short(), how)
	}
	if t := stderrTail(tail.bytes(), MCPStderrTailLines); t != "" {
		msg += "; last stderr:\n" + t
	}
	return &errs.Status{Kind: errs.KindUnavailable, Message: msg}
}

// stop ends a replica whose stream ended: its stdin closed, SIGTERM to
// its group, SIGKILL after MCPStopGrace; it returns once the process is
// reaped.
func (rep *mcpReplica) stop(closeStdin func(), exited <-chan struct{}) {
	closeStdin()
	signalGroup(rep.pid, proc.Terminate)
	t := time.NewTimer(MCPStopGrace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		signalGroup(rep.pid, proc.Kill)
		<-exited
	}
}

// stopMCPReplicas kills every replica's process group and waits until
// each is reaped and its resources freed (the node is stopping). Their
// streams end with an error saying so.
func (r *Raylet) stopMCPReplicas() {
	r.rt.mu.Lock()
	var all []*mcpReplica
	for _, rep := range r.rt.mcp {
		rep.nodeEnd = true
		all = append(all, rep)
	}
	r.rt.mu.Unlock()
	for _, rep := range all {
		signalGroup(rep.pid, proc.Kill)
	}
	for _, rep := range all {
		<-rep.done
	}
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
