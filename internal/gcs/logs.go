package gcs

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/workerlog"
)

// Limits of the worker-output fan-out (docs/logs.md).
const (
	// MaxPublishLines bounds the lines of one PublishLogs batch.
	MaxPublishLines = 10000
	// MaxPublishLineBytes bounds one line's text: a node cuts lines at
	// workerlog.MaxLineBytes and adds a short note.
	MaxPublishLineBytes = workerlog.MaxLineBytes + 256
	// MaxLogNameBytes bounds a line's announced name and a batch's node ip.
	MaxLogNameBytes = 1024
	// LogSubscriberQueueBytes bounds what waits to be sent to one
	// subscriber (each line counted as its text plus logLineOverhead
	// bytes): what does not fit is dropped, counted and reported to it in
	// its next batch's dropped, so a slow subscriber never slows the
	// publishers or the other subscribers.
	LogSubscriberQueueBytes = 8 << 20
	// logLineOverhead is what a queued line costs besides its text.
	logLineOverhead = 64
	// MaxLogSubscribers bounds the SubscribeLogs streams open at once.
	MaxLogSubscribers = 1024
	// maxSendLines bounds the lines of one batch sent to a subscriber.
	maxSendLines = 2000
)

// logHub fans published lines out to subscribers. Its zero value is
// ready.
type logHub struct {
	mu   sync.Mutex
	subs map[*logSub]struct{} // guarded by mu

	published, dropped atomic.Int64
}

// logSub is one SubscribeLogs stream.
type logSub struct {
	job   ids.ID        // Nil: every job
	ready chan struct{} // capacity 1: something is queued

	mu      sync.Mutex
	queue   []*pb.LogBatch // guarded by mu
	bytes   int            // guarded by mu
	dropped int64          // guarded by mu; lines lost since the last batch sent
}

func (h *logHub) subscribe(job ids.ID) (*logSub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= MaxLogSubscribers {
		return nil, errs.Invalidf("gcs: %d log subscribers already (at most %d)", len(h.subs), MaxLogSubscribers)
	}
	if h.subs == nil {
		h.subs = map[*logSub]struct{}{}
	}
	s := &logSub{job: job, ready: make(chan struct{}, 1)}
	h.subs[s] = struct{}{}
	return s, nil
}

func (h *logHub) unsubscribe(s *logSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
}

// publish hands b's lines to every subscriber of their jobs; it never
// blocks on a subscriber.
func (h *logHub) publish(b *pb.LogBatch) {
	h.published.Add(int64(len(b.Lines)))
	h.mu.Lock()
	subs := make([]*logSub, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		var lines []*pb.LogLine
		if s.job.IsNil() {
			lines = b.Lines
		} else {
			for _, l := range b.Lines {
				if ids.MustFromBytes(l.JobId) == s.job {
					lines = append(lines, l)
				}
			}
		}
		if len(lines) == 0 && b.Dropped == 0 {
			continue
		}
		h.dropped.Add(s.offer(&pb.LogBatch{NodeId: b.NodeId, NodeIp: b.NodeIp, Lines: lines, Dropped: b.Dropped}))
	}
}

// offer queues b, dropping the lines that do not fit the subscriber's
// queue; it returns how many it dropped.
func (s *logSub) offer(b *pb.LogBatch) int64 {
	s.mu.Lock()
	n := 0
	for _, l := range b.Lines {
		if s.bytes+len(l.Text)+logLineOverhead > LogSubscriberQueueBytes {
			break
		}
		s.bytes += len(l.Text) + logLineOverhead
		n++
	}
	lost := int64(len(b.Lines) - n)
	s.dropped += lost + b.Dropped
	if n > 0 {
		b.Lines, b.Dropped = b.Lines[:n:n], 0
		s.queue = append(s.queue, b)
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return lost
}

// next takes the next batch to send (at most maxSendLines lines, the
// dropped count since the last one), or nil.
func (s *logSub) next() *pb.LogBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		if s.dropped == 0 {
			return nil
		}
		b := &pb.LogBatch{Dropped: s.dropped}
		s.dropped = 0
		return b
	}
	b := s.queue[0]
	if len(b.Lines) > maxSendLines {
		head := &pb.LogBatch{NodeId: b.NodeId, NodeIp: b.NodeIp, Lines: b.Lines[:maxSendLines:maxSendLines]}
		b.Lines = b.Lines[maxSendLines:]
		b = head
	} else {
		s.queue[0] = nil
		s.queue = s.queue[1:]
	}
	for _, l := range b.Lines {
		s.bytes -= len(l.Text) + logLineOverhead
	}
	b.Dropped, s.dropped = s.dropped, 0
	return b
}

// checkLogBatch checks a published batch's sizes and ids.
func checkLogBatch(b *pb.LogBatch) error {
	if _, ok := ids.FromBytes(b.GetNodeId()); !ok {
		return errs.Invalidf("gcs: log batch: node id of %d bytes (want %d)", len(b.GetNodeId()), ids.Size)
	}
	if len(b.GetNodeIp()) > MaxLogNameBytes {
		return errs.Invalidf("gcs: log batch: node ip of %d bytes (at most %d)", len(b.GetNodeIp()), MaxLogNameBytes)
	}
	if n := len(b.GetLines()); n > MaxPublishLines {
		return errs.Invalidf("gcs: log batch of %d lines (at most %d)", n, MaxPublishLines)
	}
	if b.GetDropped() < 0 {
		return errs.Invalidf("gcs: log batch: dropped %d is negative", b.GetDropped())
	}
	for i, l := range b.GetLines() {
		switch {
		case l == nil:
			return errs.Invalidf("gcs: log batch: line %d is empty", i)
		case len(l.JobId) != ids.Size:
			return errs.Invalidf("gcs: log batch: line %d: job id of %d bytes (want %d)", i, len(l.JobId), ids.Size)
		case len(l.WorkerId) != 0 && len(l.WorkerId) != ids.Size:
			return errs.Invalidf("gcs: log batch: line %d: worker id of %d bytes (want %d)", i, len(l.WorkerId), ids.Size)
		case len(l.Text) > MaxPublishLineBytes:
			return errs.Invalidf("gcs: log batch: line %d of %d bytes (at most %d)", i, len(l.Text), MaxPublishLineBytes)
		case len(l.Name) > MaxLogNameBytes:
			return errs.Invalidf("gcs: log batch: line %d: name of %d bytes (at most %d)", i, len(l.Name), MaxLogNameBytes)
		}
	}
	return nil
}

// PublishLogs takes a node's worker output and hands it to the drivers
// (and others) subscribed to its jobs. It never waits for a subscriber.
func (s *Server) PublishLogs(_ context.Context, b *pb.LogBatch) (*pb.PublishLogsReply, error) {
	if err := checkLogBatch(b); err != nil {
		return nil, err
	}
	s.logs.publish(b)
	return &pb.PublishLogsReply{}, nil
}

// SubscribeLogs streams the worker output of a job (every job's when
// job_id is empty) from now on until the caller cancels or the control
// store stops. Lines the subscriber was too slow to take are dropped and
// counted in the dropped of the next batch it gets, which also carries
// the lines nodes could not publish.
func (s *Server) SubscribeLogs(req *pb.SubscribeLogsRequest, stream pb.ControlStore_SubscribeLogsServer) error {
	job := ids.Nil
	if len(req.GetJobId()) != 0 {
		var ok bool
		if job, ok = ids.FromBytes(req.GetJobId()); !ok {
			return errs.Invalidf("gcs: subscribe to logs: job id of %d bytes (want %d)", len(req.GetJobId()), ids.Size)
		}
	}
	sub, err := s.logs.subscribe(job)
	if err != nil {
		return err
	}
	defer s.logs.unsubscribe(sub)
	// An empty batch first: the subscription is in place when the
	// caller reads it, so nothing published after that is missed.
	if err := stream.Send(&pb.LogBatch{}); err != nil {
		return err
	}
	ctx := stream.Context()
	for {
		stopping := false
		select {
		case <-ctx.Done():
			return nil
		case <-s.ctx.Done():
			stopping = true // send what is queued, then end
		case <-sub.ready:
		}
		for b := sub.next(); b != nil; b = sub.next() {
			if err := stream.Send(b); err != nil {
				return err
			}
		}
		if stopping {
			return nil
		}
	}
}

// LogStats reports how many worker output lines the control store took
// from nodes and how many of them it dropped for slow subscribers (once
// per subscriber that lost them).
func (s *Server) LogStats() (published, dropped int64) {
	return s.logs.published.Load(), s.logs.dropped.Load()
}
