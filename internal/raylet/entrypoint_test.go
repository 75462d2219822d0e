package raylet_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/jobbinary"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/runtimeenv"
)

// exits records the entrypoint exits a control store hears of: the job
// manager's side of EntrypointExited (internal/jobs), kept to what these
// tests look at.
type exits struct {
	mu   sync.Mutex
	got  map[string]*pb.EntrypointExitedRequest
	seen chan struct{} // closed and replaced on each report
}

func (e *exits) EntrypointExited(_ context.Context, req *pb.EntrypointExitedRequest) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got[req.GetSubmissionId()] = req
	close(e.seen)
	e.seen = make(chan struct{})
	return nil
}
func (e *exits) Submission(string) (*pb.JobSubmission, bool) { return nil, false }
func (e *exits) Submissions() []*pb.JobSubmission            { return nil }

// wait returns the exit of submission id once reported.
func (e *exits) wait(t *testing.T, id string) *pb.EntrypointExitedRequest {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		e.mu.Lock()
		r, seen := e.got[id], e.seen
		e.mu.Unlock()
		if r != nil {
			return r
		}
		select {
		case <-seen:
		case <-deadline:
			t.Fatalf("no exit report for %s", id)
		}
	}
}

// epNode is a control store and one node daemon with 2 CPUs, started for
// an entrypoint test, with the control store's exit reports recorded.
type epNode struct {
	gcs     *gcs.Server
	gcsConn pb.ControlStoreClient
	r       *raylet.Raylet
	node    pb.NodeDaemonClient
	session string
	exits   *exits
	stop    func()
}

func startEpNode(t *testing.T) *epNode {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	pool := rpc.NewPool(token)
	g := gcs.New(gcs.DefaultConfig(), pool)
	ex := &exits{got: map[string]*pb.EntrypointExitedRequest{}, seen: make(chan struct{})}
	g.SetJobSubmissions(ex)
	lis, err := rpc.ListenOn("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(srv, g)
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{"CPU": 2}
	rc.SessionDir = t.TempDir()
	rc.GCSAddress, rc.Token = lis.Addr(), token
	r, err := raylet.Start(rc)
	if err != nil {
		t.Fatal(err)
	}
	n := &epNode{gcs: g, r: r, session: rc.SessionDir, exits: ex}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			r.Stop()
			srv.Stop()
			wg.Wait()
			g.Close()
			pool.Close()
		})
	}
	t.Cleanup(n.stop)
	n.gcsConn = pb.NewControlStoreClient(dial(t, lis.Addr()))
	n.node = pb.NewNodeDaemonClient(dial(t, r.Address()))
	return n
}

// upload packs dir and puts it in the control store's package store.
func (n *epNode) upload(t *testing.T, dir string) string {
	t.Helper()
	pkg, err := runtimeenv.Package(dir, runtimeenv.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := n.gcsConn.PutBinary(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := jobbinary.Send(bytes.NewReader(pkg.Data), pkg.Hex, int64(len(pkg.Data)), stream.Send); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	return pkg.Name
}

func (n *epNode) available(t *testing.T) resources.Set {
	t.Helper()
	st, err := n.node.NodeStats(testCtx(t), &pb.NodeStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resources.Set(st.GetNode().GetAvailable().GetAmounts())
}

func TestEntrypointRunsInItsRuntimeEnv(t *testing.T) {
	n := startEpNode(t)
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "input.txt"), []byte("from the working dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := n.upload(t, wd)
	ctx := testCtx(t)
	release := filepath.Join(t.TempDir(), "release")
	job := &pb.JobSubmission{SubmissionId: "sub-1", EntrypointNumCpus: 2,
		Entrypoint: `echo "greeting=$GREETING id=$RAYGO_SUBMISSION_ID addr=$RAYGO_ADDRESS"; cat input.txt; pwd; ` +
			`echo "env=$RAYGO_RUNTIME_ENV"; test -n "$RAYGO_TOKEN" && echo token-set; ` +
			`while [ ! -e ` + release + ` ]; do sleep 0.05; done; echo done >&2; exit 7`,
		RuntimeEnv: &pb.RuntimeEnv{EnvVars: map[string]string{"GREETING": "hello"}, WorkingDir: name}}
	reply, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: job, ClusterAddress: "10.1.2.3:6380"})
	if err != nil || !reply.GetStarted() || reply.GetPid() == 0 || reply.GetLogFile() != "job-driver-sub-1.log" {
		t.Fatalf("start: %v %v", reply, err)
	}
	// Its 2 CPUs are held: another entrypoint needing a CPU does not start now.
	if got := n.available(t)[resources.CPU]; got != 0 {
		t.Fatalf("available CPU while it runs: %v, want 0", got)
	}
	other := &pb.JobSubmission{SubmissionId: "sub-2", Entrypoint: "true", EntrypointNumCpus: 1}
	if r2, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: other}); err != nil || r2.GetStarted() || r2.GetError() != nil {
		t.Fatalf("second entrypoint without room: %v %v", r2, err)
	}
	// Starting the same submission again answers with the running one.
	if again, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: job}); err != nil || again.GetPid() != reply.GetPid() {
		t.Fatalf("start again: %v %v", again, err)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ex := n.exits.wait(t, "sub-1")
	if ex.GetExitCode() != 7 || ex.GetStopped() || !strings.Contains(ex.GetMessage(), "code 7") {
		t.Fatalf("exit: %v", ex)
	}
	log, err := os.ReadFile(filepath.Join(n.session, "logs", "job-driver-sub-1.log"))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := runtimeenv.ParseName(name)
	for _, want := range []string{"greeting=hello id=sub-1 addr=10.1.2.3:6380", "from the working dir",
		filepath.Join(runtimeenv.CacheDir(n.session), digest), `"env_vars":{"GREETING":"hello"}`, "token-set", "done"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// Its resources are free again.
	deadline := time.Now().Add(10 * time.Second)
	for n.available(t)[resources.CPU] != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("CPU not given back: %v", n.available(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEntrypointRefusals(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	for _, tc := range []struct {
		job  *pb.JobSubmission
		want string
	}{
		{&pb.JobSubmission{SubmissionId: "../x", Entrypoint: "true"}, "want 1 to 128 letters"},
		{&pb.JobSubmission{SubmissionId: "ok", Entrypoint: " "}, "empty entrypoint"},
		{&pb.JobSubmission{SubmissionId: "ok", Entrypoint: "true", RuntimeEnv: &pb.RuntimeEnv{WorkingDir: "/tmp"}}, "uploaded package"},
		{&pb.JobSubmission{SubmissionId: "ok", Entrypoint: "true", EntrypointNumCpus: -1}, "CPU"},
	} {
		_, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: tc.job})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.job, err, tc.want)
		}
	}
	// A package the control store does not have: an error in the reply,
	// and the resources are free again.
	missing := runtimeenv.NameOf(strings.Repeat("0", 64))
	reply, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: &pb.JobSubmission{SubmissionId: "nopkg", Entrypoint: "true",
		EntrypointNumCpus: 1, RuntimeEnv: &pb.RuntimeEnv{WorkingDir: missing}}})
	if err != nil || reply.GetStarted() || reply.GetError() == nil || !strings.Contains(reply.GetError().GetMessage(), "package store") {
		t.Fatalf("missing package: %v %v", reply, err)
	}
	if got := n.available(t)[resources.CPU]; got != 2 {
		t.Fatalf("CPU after a failed start: %v", got)
	}
}

// childPid waits for the entrypoint to write its child's pid to path.
func childPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("the entrypoint did not write %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for proc.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStopEntrypointKillsItsGroup(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	// A shell that ignores SIGTERM, with a child that does too: only the
	// SIGKILL after the grace ends them.
	pidFile := filepath.Join(dir, "child.pid")
	job := &pb.JobSubmission{SubmissionId: "stubborn", Entrypoint: `trap '' TERM; sleep 300 & echo $! > ` + pidFile + `; wait; wait; wait`}
	if r, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: job}); err != nil || !r.GetStarted() {
		t.Fatalf("start: %v %v", r, err)
	}
	child := childPid(t, pidFile)
	stop, err := n.node.StopEntrypoint(ctx, &pb.StopEntrypointRequest{SubmissionId: "stubborn", GraceMs: 300})
	if err != nil || !stop.GetFound() {
		t.Fatalf("stop: %v %v", stop, err)
	}
	ex := n.exits.wait(t, "stubborn")
	if !ex.GetStopped() || ex.GetExitCode() != -1 || !strings.Contains(ex.GetMessage(), "killed") {
		t.Fatalf("exit: %v", ex)
	}
	waitGone(t, child)
	if r, err := n.node.StopEntrypoint(ctx, &pb.StopEntrypointRequest{SubmissionId: "stubborn"}); err != nil || r.GetFound() {
		t.Fatalf("stop after the end: %v %v", r, err)
	}
}

func TestEntrypointDiesWithItsNode(t *testing.T) {
	n := startEpNode(t)
	ctx := testCtx(t)
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	job := &pb.JobSubmission{SubmissionId: "long", Entrypoint: `sleep 300 & echo $! > ` + pidFile + `; wait`}
	r, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: job})
	if err != nil || !r.GetStarted() {
		t.Fatalf("start: %v %v", r, err)
	}
	child := childPid(t, pidFile)
	n.stop()
	waitGone(t, int(r.GetPid()))
	waitGone(t, child)
}

// TestRuntimeEnvFetchOnce: concurrent entrypoints needing one package
// unpack it once, into the session's cache.
func TestRuntimeEnvFetchOnce(t *testing.T) {
	n := startEpNode(t)
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := n.upload(t, wd)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := "same-pkg-" + strconv.Itoa(i)
			r, err := n.node.StartEntrypoint(ctx, &pb.StartEntrypointRequest{Job: &pb.JobSubmission{SubmissionId: id,
				Entrypoint: "cat f", RuntimeEnv: &pb.RuntimeEnv{WorkingDir: name}}})
			if err == nil && !r.GetStarted() {
				err = errors.New(id + " did not start")
			}
			errc <- err
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if ex := n.exits.wait(t, "same-pkg-"+strconv.Itoa(i)); ex.GetExitCode() != 0 {
			t.Fatalf("exit: %v", ex)
		}
	}
	entries, err := os.ReadDir(runtimeenv.CacheDir(n.session))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("cache holds %v, want the one package", names)
	}
}

// TestWorkersRunInTheirRuntimeEnv: workers start in the job's runtime
// env, or a lease's own merged over it, and are reused only within one.
func TestWorkersRunInTheirRuntimeEnv(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("reads a worker's environment and directory from /proc")
	}
	n := startEpNode(t)
	ctx := testCtx(t)
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	name := n.upload(t, wd)
	digest, _ := runtimeenv.ParseName(name)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := n.gcsConn.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{BinaryPath: exe,
		RuntimeEnv: &pb.RuntimeEnv{EnvVars: map[string]string{"JOBVAR": "job", "BOTH": "job"}, WorkingDir: name}}})
	if err != nil {
		t.Fatal(err)
	}
	own := &pb.RuntimeEnv{EnvVars: map[string]string{"TASKVAR": "task", "BOTH": "task"}}
	lease := func(env *pb.RuntimeEnv) *pb.LeaseReply {
		t.Helper()
		r, err := n.node.RequestLease(ctx, &pb.LeaseRequest{JobId: reg.GetJobId(), Resources: cpus(1), SchedulingKey: "k", RuntimeEnv: env})
		if err != nil || len(r.GetLeaseId()) == 0 {
			t.Fatalf("lease: %v %v", r, err)
		}
		return r
	}
	give := func(r *pb.LeaseReply) {
		t.Helper()
		if _, err := n.node.ReturnLease(ctx, &pb.ReturnLeaseRequest{LeaseId: r.GetLeaseId()}); err != nil {
			t.Fatal(err)
		}
	}
	environ := func(pid int32) map[string]string {
		t.Helper()
		b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, kv := range strings.Split(string(b), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	cwd := func(pid int32) string {
		t.Helper()
		d, err := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/cwd")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	want := filepath.Join(runtimeenv.CacheDir(n.session), digest)

	l1 := lease(nil)
	if env := environ(l1.GetWorkerPid()); env["JOBVAR"] != "job" || env["BOTH"] != "job" || env["TASKVAR"] != "" {
		t.Errorf("job env worker: JOBVAR=%q BOTH=%q TASKVAR=%q", env["JOBVAR"], env["BOTH"], env["TASKVAR"])
	}
	if d := cwd(l1.GetWorkerPid()); d != want {
		t.Errorf("job env worker runs in %s, want %s", d, want)
	}
	l2 := lease(own) // l1 is busy; a lease of its own env could not take it anyway
	if env := environ(l2.GetWorkerPid()); env["JOBVAR"] != "job" || env["BOTH"] != "task" || env["TASKVAR"] != "task" ||
		!strings.Contains(env[raylet.EnvRuntimeEnv], `"TASKVAR":"task"`) {
		t.Errorf("own env worker: %v", env)
	}
	if d := cwd(l2.GetWorkerPid()); d != want {
		t.Errorf("own env worker runs in %s, want the job's working dir %s", d, want)
	}
	give(l1)
	give(l2)
	// Reused within an env, never across.
	l3 := lease(own)
	if !bytes.Equal(l3.GetWorkerId(), l2.GetWorkerId()) {
		t.Errorf("a lease of the same env got another worker")
	}
	l4 := lease(nil)
	if !bytes.Equal(l4.GetWorkerId(), l1.GetWorkerId()) {
		t.Errorf("a lease of the job's env got another worker")
	}
	give(l3)
	give(l4)
	l5 := lease(&pb.RuntimeEnv{EnvVars: map[string]string{"OTHER": "1"}})
	if bytes.Equal(l5.GetWorkerId(), l1.GetWorkerId()) || bytes.Equal(l5.GetWorkerId(), l2.GetWorkerId()) {
		t.Errorf("a lease of a third env reused a worker of another")
	}
	give(l5)
}
