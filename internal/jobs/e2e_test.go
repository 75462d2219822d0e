//go:build !windows

package jobs_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/runtimeenv"
	"github.com/raygo/raygo/ray"
)

// Roles of the test binary when a job's entrypoint runs it (set through
// the submission's runtime env, so the role arriving proves the env did).
const (
	envRole = "RAYGO_JOBS_TEST_ROLE"
	// roleDriver: join the cluster, run probe in a task, print what it
	// saw, exit 0.
	roleDriver = "driver"
	// roleLong: create an actor, write its worker's pid to envPidFile,
	// then wait to be stopped.
	roleLong   = "long"
	envPidFile = "RAYGO_JOBS_TEST_PIDFILE"
)

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	switch os.Getenv(envRole) {
	case roleDriver:
		os.Exit(runDriver())
	case roleLong:
		os.Exit(runLong())
	}
	os.Exit(m.Run())
}

// probe reports what a worker of the job sees: a variable of the
// runtime env and a file of its working dir (read by relative path).
func probe(ctx context.Context) (string, error) {
	b, err := os.ReadFile("data.txt")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("greeting=%s data=%s", os.Getenv("JOB_GREETING"), strings.TrimSpace(string(b))), nil
}

var Probe = ray.Func0(probe)

type Sleeper struct{}

func NewSleeper(ctx context.Context) (*Sleeper, error)  { return &Sleeper{}, nil }
func (s *Sleeper) Pid(ctx context.Context) (int, error) { return os.Getpid(), nil }

var (
	SleeperActor = ray.Actor0(NewSleeper)
	SleeperPid   = ray.Method0(SleeperActor, (*Sleeper).Pid)
)

func runDriver() int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "driver:", err)
		return 2
	}
	defer ray.Shutdown()
	got, err := Probe.Remote(ctx).Get(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "driver: probe:", err)
		return 3
	}
	fmt.Println("probe saw:", got)
	return 0
}

func runLong() int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "long:", err)
		return 2
	}
	a := SleeperActor.Remote(ctx)
	pid, err := SleeperPid.Remote(ctx, a).Get(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "long: actor:", err)
		return 3
	}
	if err := os.WriteFile(os.Getenv(envPidFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return 4
	}
	fmt.Println("actor ready in pid", pid)
	select {} // until stopped
}

// head starts a head with the HTTP API and returns a client with the
// cluster token.
func head(t *testing.T) (*node.Head, *apiclient.Client) {
	t.Helper()
	t.Setenv("RAYGO_TMPDIR", t.TempDir())
	rc := raylet.DefaultConfig()
	rc.Resources = resources.Set{resources.CPU: 2, resources.Memory: 4 << 30}
	rc.SessionDir = t.TempDir()
	h, err := node.StartHead(node.HeadConfig{Raylet: rc, Token: "jobs-test-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Stop)
	c, err := apiclient.New(h.APIURL(), h.Token())
	if err != nil {
		t.Fatal(err)
	}
	return h, c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitStatus polls a submission until done says so.
func waitStatus(t *testing.T, c *apiclient.Client, id string, done func(apiclient.JobDetails) bool) apiclient.JobDetails {
	t.Helper()
	ctx := ctxFor(t, 90*time.Second)
	for {
		d, err := c.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if done(d) {
			return d
		}
		select {
		case <-ctx.Done():
			logs, _ := c.JobLogs(context.Background(), id)
			t.Fatalf("job %s stays %s (%s); log:\n%s", id, d.Status, d.Message, logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ended(d apiclient.JobDetails) bool { return d.Terminal() }

func upload(t *testing.T, c *apiclient.Client, dir string) string {
	t.Helper()
	pkg, err := runtimeenv.Package(dir, runtimeenv.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadPackage(ctxFor(t, 30*time.Second), pkg.Name, pkg.Data, nil); err != nil {
		t.Fatal(err)
	}
	return pkg.Name
}

func TestJobsEndToEnd(t *testing.T) {
	h, c := head(t)
	ctx := ctxFor(t, 3*time.Minute)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "data.txt"), []byte("payload-123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgName := upload(t, c, wd)
	if has, err := c.HasPackage(ctx, pkgName); err != nil || !has {
		t.Fatalf("package on the head: %v %v", has, err)
	}

	// A driver program with a working dir and an env var: it SUCCEEDS,
	// its task saw both, the log has its output.
	id, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: exe + " -test.run=^$", SubmissionID: "e2e-ok",
		Metadata:   map[string]string{"owner": "tests"},
		RuntimeEnv: &apiclient.JobRuntimeEnv{EnvVars: map[string]string{envRole: roleDriver, "JOB_GREETING": "hello"}, WorkingDir: pkgName}})
	if err != nil || id != "e2e-ok" {
		t.Fatalf("submit: %q %v", id, err)
	}
	var tail strings.Builder
	if err := c.TailJobLogs(ctx, id, &tail); err != nil {
		t.Fatalf("tail: %v", err)
	}
	d := waitStatus(t, c, id, ended)
	logs, err := c.JobLogs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "SUCCEEDED" || d.DriverExitCode == nil || *d.DriverExitCode != 0 {
		t.Fatalf("job: %+v\nlog:\n%s", d, logs)
	}
	if !strings.Contains(logs, "probe saw: greeting=hello data=payload-123") {
		t.Fatalf("log lacks the task's view:\n%s", logs)
	}
	if !strings.Contains(tail.String(), "probe saw:") {
		t.Fatalf("the followed log lacks the output:\n%s", tail.String())
	}
	if d.JobID == nil || d.Metadata["owner"] != "tests" || d.RuntimeEnv.WorkingDir != pkgName || d.DriverNodeID == "" || d.EndTime == nil {
		t.Fatalf("details: %+v", d)
	}
	if _, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "true", SubmissionID: "e2e-ok"}); err == nil ||
		!strings.Contains(err.Error(), "exists") {
		t.Fatalf("duplicate id: %v", err)
	}

	// A failing entrypoint FAILS with its exit code.
	id, err = c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "echo about to fail; exit 3"})
	if err != nil || !strings.HasPrefix(id, "raysubmit_") {
		t.Fatalf("submit: %q %v", id, err)
	}
	d = waitStatus(t, c, id, ended)
	if d.Status != "FAILED" || d.DriverExitCode == nil || *d.DriverExitCode != 3 || !strings.Contains(d.Message, "code 3") {
		t.Fatalf("failing job: %+v", d)
	}

	// A long job with an actor: stop → STOPPED, its actor's worker gone.
	pidFile := filepath.Join(t.TempDir(), "actor.pid")
	long, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: exe + " -test.run=^$",
		RuntimeEnv: &apiclient.JobRuntimeEnv{EnvVars: map[string]string{envRole: roleLong, envPidFile: pidFile}}})
	if err != nil {
		t.Fatal(err)
	}
	var actorPid int
	for actorPid == 0 {
		if b, err := os.ReadFile(pidFile); err == nil {
			actorPid, _ = strconv.Atoi(string(b))
		}
		if d, _ := c.GetJob(ctx, long); d.Terminal() {
			t.Fatalf("long job ended: %+v", d)
		}
		select {
		case <-ctx.Done():
			t.Fatal("the long job's actor never started")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := c.DeleteJob(ctx, long); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("delete of a running job: %v", err)
	}
	if stopped, err := c.StopJob(ctx, long); err != nil || !stopped {
		t.Fatalf("stop: %v %v", stopped, err)
	}
	d = waitStatus(t, c, long, ended)
	if d.Status != "STOPPED" || !strings.Contains(d.Message, "stopped by cluster") {
		t.Fatalf("stopped job: %+v", d)
	}
	deadline := time.Now().Add(30 * time.Second)
	for proc.Alive(actorPid) {
		if time.Now().After(deadline) {
			t.Fatalf("the stopped job's actor worker (pid %d) still runs", actorPid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stopped, err := c.StopJob(ctx, long); err != nil || stopped {
		t.Fatalf("stop again: %v %v", stopped, err)
	}

	// List (newest first), delete.
	list, err := c.ListJobs(ctx)
	if err != nil || len(list) != 3 || list[0].SubmissionID != long || list[2].SubmissionID != "e2e-ok" {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := c.DeleteJob(ctx, "e2e-ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetJob(ctx, "e2e-ok"); !apiclient.IsNotFound(err) {
		t.Fatalf("deleted job: %v", err)
	}

	// A read-only token may look, not submit; a write token may submit,
	// and the audit log says who did.
	ro, err := h.API().Tokens().Create(ctx, "viewer", api.ScopeRead, false)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := h.API().Tokens().Create(ctx, "ci", api.ScopeWrite, false)
	if err != nil {
		t.Fatal(err)
	}
	roc, _ := apiclient.New(h.APIURL(), ro)
	if _, err := roc.ListJobs(ctx); err != nil {
		t.Fatalf("read token list: %v", err)
	}
	_, err = roc.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "true"})
	if e, ok := err.(*apiclient.Error); !ok || e.Status != 403 {
		t.Fatalf("read token submit: %v, want a 403", err)
	}
	rwc, _ := apiclient.New(h.APIURL(), rw)
	ci, err := rwc.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if d := waitStatus(t, c, ci, ended); d.SubmittedBy != "ci" || d.Status != "SUCCEEDED" {
		t.Fatalf("ci's job: %+v", d)
	}
	found := false
	for _, e := range h.API().Audit().Recent() {
		if e.Action == "job.submit" && e.Target == ci && e.Who == "ci" && strings.HasPrefix(e.Outcome, "ok") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the audit log lacks ci's submission: %+v", h.API().Audit().Recent())
	}
}

// TestJobRefusals: bad submissions get clear errors.
func TestJobRefusals(t *testing.T) {
	_, c := head(t)
	ctx := ctxFor(t, time.Minute)
	for _, tc := range []struct {
		req  apiclient.JobSubmitRequest
		want string
	}{
		{apiclient.JobSubmitRequest{Entrypoint: ""}, "entrypoint is empty"},
		{apiclient.JobSubmitRequest{Entrypoint: "true", SubmissionID: "a/b"}, "not allowed"},
		{apiclient.JobSubmitRequest{Entrypoint: "true", EntrypointNumCPUs: -1}, "entrypoint_num_cpus"},
		{apiclient.JobSubmitRequest{Entrypoint: "true", RuntimeEnv: &apiclient.JobRuntimeEnv{WorkingDir: "./local"}}, "uploaded package"},
		{apiclient.JobSubmitRequest{Entrypoint: "true", RuntimeEnv: &apiclient.JobRuntimeEnv{WorkingDir: runtimeenv.NameOf(strings.Repeat("ab", 32))}}, "PUT /api/packages"},
	} {
		_, err := c.SubmitJob(ctx, tc.req)
		if e, ok := err.(*apiclient.Error); !ok || e.Status != 400 || !strings.Contains(e.Message, tc.want) {
			t.Errorf("%+v: %v, want a 400 naming %q", tc.req, err, tc.want)
		}
	}
	// Infeasible: FAILED with a message naming the resources.
	id, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "true", EntrypointNumGPUs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if d := waitStatus(t, c, id, ended); d.Status != "FAILED" || !strings.Contains(d.Message, "GPU: 4") || d.DriverExitCode != nil {
		t.Fatalf("infeasible: %+v", d)
	}
	// Busy: PENDING with a message, then RUNNING once room frees.
	hold, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "sleep 60", EntrypointNumCPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, hold, func(d apiclient.JobDetails) bool { return d.Status == "RUNNING" })
	wait, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "echo ran", EntrypointNumCPUs: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, wait, func(d apiclient.JobDetails) bool {
		return d.Status == "PENDING" && strings.Contains(d.Message, "waiting")
	})
	if _, err := c.StopJob(ctx, hold); err != nil {
		t.Fatal(err)
	}
	if d := waitStatus(t, c, wait, ended); d.Status != "SUCCEEDED" {
		t.Fatalf("waiting job: %+v", d)
	}
	// Package uploads are checked against their names.
	bad := runtimeenv.NameOf(strings.Repeat("0", 64))
	if err := c.UploadPackage(ctx, bad, []byte("not that"), nil); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("mismatched upload: %v", err)
	}
}

// TestSubmitLargeWorkingDir measures submitting a job with a 50 MiB
// working dir of incompressible data: package, upload, submit (the
// figure is logged, not asserted), and checks the job sees it whole.
func TestSubmitLargeWorkingDir(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 50 MiB")
	}
	_, c := head(t)
	ctx := ctxFor(t, 2*time.Minute)
	wd := t.TempDir()
	data := make([]byte, 50<<20)
	_, _ = rand.Read(data)
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(wd, fmt.Sprintf("blob%d.bin", i)), data[i*10<<20:(i+1)*10<<20], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	pkg, err := runtimeenv.Package(wd, runtimeenv.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	packed := time.Since(start)
	if err := c.UploadPackage(ctx, pkg.Name, pkg.Data, nil); err != nil {
		t.Fatal(err)
	}
	uploaded := time.Since(start)
	id, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: "cat blob*.bin | wc -c",
		RuntimeEnv: &apiclient.JobRuntimeEnv{WorkingDir: pkg.Name}})
	if err != nil {
		t.Fatal(err)
	}
	total := time.Since(start)
	t.Logf("50 MiB working dir: packed to %d bytes in %v, uploaded by %v, submitted by %v", len(pkg.Data), packed, uploaded, total)
	d := waitStatus(t, c, id, ended)
	logs, _ := c.JobLogs(ctx, id)
	if d.Status != "SUCCEEDED" || !strings.Contains(logs, strconv.Itoa(50<<20)) {
		t.Fatalf("job: %+v, log %q", d, logs)
	}
}
