package logstream_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/logstream"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "tok"

// startGCS serves a real control store on loopback.
func startGCS(t *testing.T) (string, pb.ControlStoreClient) {
	t.Helper()
	pool := rpc.NewPool(token)
	g := gcs.New(gcs.Config{}, pool)
	srv := rpc.NewServer(token)
	pb.RegisterControlStoreServer(srv, g)
	lis, err := rpc.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	lis.Serve(srv, &wg)
	t.Cleanup(func() { g.Close(); srv.Stop(); wg.Wait(); pool.Close() })
	conn, err := rpc.Dial(lis.Addr(), token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return lis.Addr(), pb.NewControlStoreClient(conn)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publish(t *testing.T, c pb.ControlStoreClient, node ids.ID, lines ...*pb.LogLine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.PublishLogs(ctx, &pb.LogBatch{NodeId: node.Bytes(), Lines: lines}); err != nil {
		t.Fatal(err)
	}
}

func line(job ids.ID, pid int32, name, text string) *pb.LogLine {
	return &pb.LogLine{JobId: job.Bytes(), WorkerId: ids.New().Bytes(), Pid: pid, Name: name, Text: text}
}

func TestStreamPrintsAndDeduplicates(t *testing.T) {
	addr, c := startGCS(t)
	job, other, node := ids.New(), ids.New(), ids.New()
	var out syncBuffer
	s, err := logstream.Start(logstream.Config{GCSAddress: addr, Token: token, Job: job, Out: &out, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	publish(t, c, node,
		line(job, 11, "main.work", "starting 11"),
		line(job, 12, "main.work", "starting 12"),
		line(job, 13, "main.work", "starting 13"),
		line(other, 14, "main.work", "another job's line"),
		line(job, 11, "", "unnamed"),
	)
	n := node.Short()
	eventually(t, "the first line and the repeat count", func() bool {
		s := out.String()
		return strings.Contains(s, "(main.work pid=11, node="+n+") starting 11\n") &&
			strings.Contains(s, "(pid=11, node="+n+") unnamed\n") &&
			strings.Contains(s, "(main.work pid=13, node="+n+") starting 13 [repeated 2x across cluster]")
	})
	got := out.String()
	if strings.Contains(got, "another job") || strings.Contains(got, "starting 12") {
		t.Fatalf("printed another job's line or a held duplicate:\n%s", got)
	}
	if !strings.Contains(got, "RAYGO_DEDUP_LOGS=0") {
		t.Fatalf("no note on how to turn deduplication off:\n%s", got)
	}
}

func TestStreamNoDedupAndDrainAtClose(t *testing.T) {
	addr, c := startGCS(t)
	job, node := ids.New(), ids.New()
	var out syncBuffer
	s, err := logstream.Start(logstream.Config{GCSAddress: addr, Token: token, Job: job, Out: &out, NoDedup: true})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, c, node, line(job, 1, "f", "same"), line(job, 2, "f", "same"), line(job, 3, "f", "same"))
	s.Close() // waits for what is arriving
	if got := strings.Count(out.String(), ") same\n"); got != 3 {
		t.Fatalf("printed %d of 3 lines without deduplication:\n%s", got, out.String())
	}
}

// blockedWriter holds every Write until released: a terminal that does
// not take output.
type blockedWriter struct {
	release chan struct{}
	syncBuffer
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	<-w.release
	return w.syncBuffer.Write(p)
}

func TestStreamSlowTerminalDropsAndSays(t *testing.T) {
	addr, c := startGCS(t)
	job, node := ids.New(), ids.New()
	w := &blockedWriter{release: make(chan struct{})}
	s, err := logstream.Start(logstream.Config{GCSAddress: addr, Token: token, Job: job, Out: w, NoDedup: true})
	if err != nil {
		t.Fatal(err)
	}
	// More batches than the driver queues: publishing never waits for
	// the stalled terminal.
	for i := range logstream.QueueBatches + 50 {
		publish(t, c, node, line(job, int32(i), "f", "x"))
	}
	eventually(t, "lines dropped while the terminal is stalled", func() bool { return s.Dropped() > 0 })
	close(w.release)
	eventually(t, "the note on dropped lines", func() bool {
		return strings.Contains(w.String(), "lines of worker output were dropped")
	})
	s.Close()
}
