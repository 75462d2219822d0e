package raylet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/raylet"
)

// readLog reads a whole ReadLog stream.
func readLog(ctx context.Context, c pb.NodeDaemonClient, req *pb.ReadLogRequest) (string, error) {
	st, err := c.ReadLog(ctx, req)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for {
		ch, err := st.Recv()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		b.Write(ch.GetData())
	}
}

func TestListAndReadLogs(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	dir := raylet.LogsDir(c.sessionDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("worker-aaaaaaaaaaaa-11.out", "one\ntwo\nthree\n")
	write("worker-aaaaaaaaaaaa-11.err", "")
	write("job-driver-raysubmit_1.log", "driver\n")
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("token"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "escape.log")); err != nil {
		t.Fatal(err)
	}

	list, err := c.raylet.ListLogs(ctx, &pb.ListLogsRequest{Glob: "worker-*"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list.GetFiles() {
		names = append(names, f.GetName())
	}
	if strings.Join(names, ",") != "worker-aaaaaaaaaaaa-11.err,worker-aaaaaaaaaaaa-11.out" {
		t.Fatalf("ListLogs(worker-*) = %v", names)
	}
	if list.GetFiles()[1].GetSize() != 14 {
		t.Fatalf("size %d, want 14", list.GetFiles()[1].GetSize())
	}
	if _, err := c.raylet.ListLogs(ctx, &pb.ListLogsRequest{Glob: "[x"}); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("ListLogs with a bad glob: %v, want an invalid-request error", err)
	}

	got, err := readLog(ctx, c.raylet, &pb.ReadLogRequest{Name: "worker-aaaaaaaaaaaa-11.out", TailLines: 2})
	if err != nil || got != "two\nthree\n" {
		t.Fatalf("tail 2 = %q, %v", got, err)
	}
	got, err = readLog(ctx, c.raylet, &pb.ReadLogRequest{Name: "job-driver-raysubmit_1.log"})
	if err != nil || got != "driver\n" {
		t.Fatalf("whole file = %q, %v", got, err)
	}
	for _, name := range []string{"../token", "/etc/passwd", "escape.log", "a/../../token"} {
		_, err := readLog(ctx, c.raylet, &pb.ReadLogRequest{Name: name})
		if !errors.Is(err, errs.ErrInvalidRequest) || !strings.Contains(err.Error(), "outside the node's logs directory") {
			t.Errorf("ReadLog(%q) = %v, want refused as outside the logs directory", name, err)
		}
	}
	if _, err := readLog(ctx, c.raylet, &pb.ReadLogRequest{Name: "nope.log"}); !errors.Is(err, errs.ErrNotFound) {
		t.Fatalf("ReadLog of a missing file: %v, want not found", err)
	}

	// Follow: what is appended arrives until the caller cancels.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.raylet.ReadLog(fctx, &pb.ReadLogRequest{Name: "job-driver-raysubmit_1.log", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := st.Recv(); err != nil || string(ch.GetData()) != "driver\n" {
		t.Fatalf("first chunk %q, %v", ch.GetData(), err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "job-driver-raysubmit_1.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "more")
	f.Close()
	if ch, err := st.Recv(); err != nil || string(ch.GetData()) != "more\n" {
		t.Fatalf("followed chunk %q, %v", ch.GetData(), err)
	}
	cancel()
}

// TestWorkerOutputPublished checks the path of a worker's print: its log
// file, and a batch at the control store for the job's subscribers with
// the worker's name, pid and stream.
func TestWorkerOutputPublished(t *testing.T) {
	c := startHead(t)
	ctx := testCtx(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.gcs.RegisterJob(ctx, &pb.RegisterJobRequest{Job: &pb.JobInfo{BinaryPath: exe, Env: []string{"RAYGO_TEST_PRINT=hello from a worker"}}})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.gcs.SubscribeLogs(ctx, &pb.SubscribeLogsRequest{JobId: reg.GetJobId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); err != nil { // the subscription is in place
		t.Fatal(err)
	}
	lease, err := c.raylet.RequestLease(ctx, &pb.LeaseRequest{JobId: reg.GetJobId(), Resources: cpus(1), SchedulingKey: "f"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[bool]*pb.LogLine{}
	for len(seen) < 2 {
		b, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ids.MustFromBytes(b.GetNodeId()) != c.head.Raylet().NodeID() {
			t.Fatalf("batch from node %x", b.GetNodeId())
		}
		for _, l := range b.GetLines() {
			seen[l.GetStderr()] = l
		}
	}
	out, errl := seen[false], seen[true]
	if out.GetText() != "hello from a worker" || errl.GetText() != "hello from a worker on stderr" {
		t.Fatalf("lines %q, %q", out.GetText(), errl.GetText())
	}
	if out.GetName() != "test.Printer" || out.GetPid() != lease.GetWorkerPid() ||
		ids.MustFromBytes(out.GetWorkerId()) != ids.MustFromBytes(lease.GetWorkerId()) ||
		ids.MustFromBytes(out.GetJobId()) != ids.MustFromBytes(reg.GetJobId()) {
		t.Fatalf("line %v: want name test.Printer, the lease's worker %x pid %d, job %x", out, lease.GetWorkerId(), lease.GetWorkerPid(), reg.GetJobId())
	}
	wid := ids.MustFromBytes(lease.GetWorkerId())
	name := fmt.Sprintf("worker-%s-%d.out", wid.Short(), lease.GetWorkerPid())
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := readLog(ctx, c.raylet, &pb.ReadLogRequest{Name: name})
		if err == nil && got == "hello from a worker\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log file %s = %q, %v", name, got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The subscriber can have the lines before PublishLogs has returned
	// to the node and been counted: wait for the count.
	for {
		sent, dropped := c.head.Raylet().LogStats()
		if dropped != 0 {
			t.Fatalf("LogStats = %d sent, %d dropped", sent, dropped)
		}
		if sent >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LogStats = %d sent, want 2", sent)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
