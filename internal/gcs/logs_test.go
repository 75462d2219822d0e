package gcs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func logLine(job ids.ID, text string) *pb.LogLine {
	return &pb.LogLine{JobId: job.Bytes(), WorkerId: ids.New().Bytes(), Pid: 7, Name: "f", Text: text}
}

// subscribe opens a SubscribeLogs stream and waits until it is in place.
func subscribe(t *testing.T, ctx context.Context, c pb.ControlStoreClient, job ids.ID) pb.ControlStore_SubscribeLogsClient {
	t.Helper()
	req := &pb.SubscribeLogsRequest{}
	if !job.IsNil() {
		req.JobId = job.Bytes()
	}
	st, err := c.SubscribeLogs(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	return st
}

// recvTexts reads batches until n lines came; it returns their texts and
// the dropped counts seen.
func recvTexts(t *testing.T, st pb.ControlStore_SubscribeLogsClient, n int) ([]string, int64) {
	t.Helper()
	var texts []string
	var dropped int64
	for len(texts) < n {
		b, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		dropped += b.GetDropped()
		for _, l := range b.GetLines() {
			texts = append(texts, l.GetText())
		}
	}
	return texts, dropped
}

func TestLogsFanOutByJob(t *testing.T) {
	c := startGCS(t, gcs.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	jobA, jobB := ids.New(), ids.New()
	subA := subscribe(t, ctx, c, jobA)
	subB := subscribe(t, ctx, c, jobB)
	subAll := subscribe(t, ctx, c, ids.Nil)
	node := ids.New()
	_, err := c.PublishLogs(ctx, &pb.LogBatch{NodeId: node.Bytes(), NodeIp: "10.0.0.1", Lines: []*pb.LogLine{
		logLine(jobA, "a1"), logLine(jobB, "b1"), logLine(jobA, "a2"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := recvTexts(t, subA, 2); strings.Join(got, ",") != "a1,a2" {
		t.Fatalf("job A's subscriber got %v", got)
	}
	if got, _ := recvTexts(t, subB, 1); strings.Join(got, ",") != "b1" {
		t.Fatalf("job B's subscriber got %v", got)
	}
	if got, _ := recvTexts(t, subAll, 3); strings.Join(got, ",") != "a1,b1,a2" {
		t.Fatalf("the subscriber to every job got %v", got)
	}
}

// TestLogsSlowSubscriber: a subscriber that reads nothing loses lines
// beyond its queue and is told how many; publishers never wait for it,
// and a subscriber that reads keeps getting everything.
func TestLogsSlowSubscriber(t *testing.T) {
	c := startGCS(t, gcs.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	job := ids.New()
	slow := subscribe(t, ctx, c, job)
	fast := subscribe(t, ctx, c, job)
	text := strings.Repeat("x", 8<<10)
	const batches, perBatch = 40, 100 // 32 MB: far over a subscriber's 8 MiB queue and the stream's windows
	total := batches * perBatch
	// The reading subscriber takes each batch before the next is
	// published, so only the stalled one overflows.
	for i := range batches {
		lines := make([]*pb.LogLine, perBatch)
		for j := range lines {
			lines[j] = logLine(job, text)
		}
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := c.PublishLogs(pctx, &pb.LogBatch{NodeId: ids.New().Bytes(), Lines: lines})
		pcancel()
		if err != nil {
			t.Fatalf("publish %d (a slow subscriber must not block publishers): %v", i, err)
		}
		for n := 0; n < perBatch; {
			b, err := fast.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if b.GetDropped() != 0 {
				t.Fatalf("the reading subscriber lost %d lines", b.GetDropped())
			}
			n += len(b.GetLines())
		}
	}
	// Now the slow subscriber reads: it got some lines, and the rest are
	// counted as dropped.
	got, dropped := 0, int64(0)
	for int64(got)+dropped < int64(total) {
		b, err := slow.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got += len(b.GetLines())
		dropped += b.GetDropped()
	}
	if dropped == 0 || got == 0 || int64(got)+dropped != int64(total) {
		t.Fatalf("slow subscriber: %d lines, %d dropped, want both > 0 adding up to %d", got, dropped, total)
	}
}

func TestPublishLogsChecksSizes(t *testing.T) {
	c := startGCS(t, gcs.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, job := ids.New().Bytes(), ids.New()
	many := make([]*pb.LogLine, gcs.MaxPublishLines+1)
	for i := range many {
		many[i] = logLine(job, "x")
	}
	for _, tc := range []struct {
		name string
		b    *pb.LogBatch
		want string
	}{
		{"no node", &pb.LogBatch{Lines: []*pb.LogLine{logLine(job, "x")}}, "node id"},
		{"long line", &pb.LogBatch{NodeId: node, Lines: []*pb.LogLine{logLine(job, strings.Repeat("x", gcs.MaxPublishLineBytes+1))}}, "bytes (at most"},
		{"too many lines", &pb.LogBatch{NodeId: node, Lines: many}, "lines (at most"},
		{"bad job", &pb.LogBatch{NodeId: node, Lines: []*pb.LogLine{{JobId: []byte{1}, Text: "x"}}}, "job id"},
		{"long name", &pb.LogBatch{NodeId: node, Lines: []*pb.LogLine{{JobId: job.Bytes(), Name: strings.Repeat("n", 2000)}}}, "name"},
		{"negative dropped", &pb.LogBatch{NodeId: node, Dropped: -1}, "negative"},
	} {
		_, err := c.PublishLogs(ctx, tc.b)
		if !errors.Is(err, errs.ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an invalid request naming %q", tc.name, err, tc.want)
		}
	}
	st, err := c.SubscribeLogs(ctx, &pb.SubscribeLogsRequest{JobId: []byte{1, 2}})
	if err == nil {
		_, err = st.Recv()
	}
	if !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("subscribe with a 2-byte job id: %v, want an invalid request", err)
	}
}
