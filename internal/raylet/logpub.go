package raylet

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/workerlog"
)

// Limits of the log publisher, which sends the node's worker output to
// the control store for the drivers that subscribed to it (docs/logs.md).
const (
	// LogPublishInterval is how often buffered lines are sent: it bounds
	// the delay between a worker's print and its driver seeing it.
	LogPublishInterval = 100 * time.Millisecond
	// LogBatchLines and LogBatchBytes bound one PublishLogs call; a
	// buffer that reaches either is sent at once.
	LogBatchLines = 5000
	LogBatchBytes = 1 << 20
	// LogBufferLines and LogBufferBytes bound the lines waiting to be
	// sent (each line counted as its text plus logLineOverhead bytes);
	// lines beyond them are dropped and counted (LogBatch.dropped), so a
	// slow or unreachable control store never blocks a worker's output
	// (which still goes whole to its files).
	LogBufferLines = 50000
	LogBufferBytes = 8 << 20
	// logLineOverhead is what a buffered line costs besides its text.
	logLineOverhead = 64
	// logPublishTimeout bounds one PublishLogs call.
	logPublishTimeout = 2 * time.Second
)

// logPublisher batches worker output lines and sends them to the control
// store (ControlStore.PublishLogs). add never blocks.
type logPublisher struct {
	r    *Raylet
	kick chan struct{} // capacity 1: a batch is full

	mu      sync.Mutex
	lines   []*pb.LogLine // guarded by mu
	bytes   int           // guarded by mu; text bytes in lines, plus logLineOverhead each
	dropped int64         // guarded by mu; lines lost since the last batch sent

	sent, lost atomic.Int64 // totals, for tests and stats
}

// startLogPublisher starts r's publisher; it stops when r.ctx ends, after
// sending what its buffer holds then.
func startLogPublisher(r *Raylet) *logPublisher {
	p := &logPublisher{r: r, kick: make(chan struct{}, 1)}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		p.loop()
	}()
	return p
}

// add queues a line, or drops and counts it when the buffer is full.
func (p *logPublisher) add(l *pb.LogLine) {
	p.mu.Lock()
	if len(p.lines) >= LogBufferLines || p.bytes+len(l.Text)+logLineOverhead > LogBufferBytes {
		p.dropped++
		p.mu.Unlock()
		p.lost.Add(1)
		return
	}
	p.lines = append(p.lines, l)
	p.bytes += len(l.Text) + logLineOverhead
	full := len(p.lines) >= LogBatchLines || p.bytes >= LogBatchBytes
	p.mu.Unlock()
	if full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *logPublisher) loop() {
	t := time.NewTicker(LogPublishInterval)
	defer t.Stop()
	for {
		select {
		case <-p.r.ctx.Done():
			// The daemon stops: its workers are gone and their pipes
			// drained; send what is left while the connection lasts.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			p.flush(ctx)
			cancel()
			return
		case <-t.C:
		case <-p.kick:
		}
		p.flush(p.r.ctx)
	}
}

// flush sends the buffered lines in batches; a batch the control store
// did not take is counted as dropped, and the rest wait for the next
// round.
func (p *logPublisher) flush(ctx context.Context) {
	for {
		batch := p.take()
		if batch == nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, logPublishTimeout)
		_, err := p.r.gcs.PublishLogs(cctx, batch)
		cancel()
		if err != nil {
			p.mu.Lock()
			p.dropped += int64(len(batch.Lines)) + batch.Dropped
			p.mu.Unlock()
			p.lost.Add(int64(len(batch.Lines)))
			return
		}
		p.sent.Add(int64(len(batch.Lines)))
	}
}

// take removes the next batch from the buffer: nil when there is
// nothing to send.
func (p *logPublisher) take() *pb.LogBatch {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 && p.dropped == 0 {
		return nil
	}
	n, size := 0, 0
	for n < len(p.lines) && n < LogBatchLines && (n == 0 || size+len(p.lines[n].Text)+logLineOverhead <= LogBatchBytes) {
		size += len(p.lines[n].Text) + logLineOverhead
		n++
	}
	b := &pb.LogBatch{NodeId: p.r.nodeID.Bytes(), NodeIp: p.r.nodeIP(), Lines: p.lines[:n:n], Dropped: p.dropped}
	p.lines = append([]*pb.LogLine(nil), p.lines[n:]...)
	p.bytes -= size
	p.dropped = 0
	return b
}

// LogStats reports how many worker output lines this node sent to the
// control store and how many it dropped (its buffer was full, or the
// control store did not take them).
func (r *Raylet) LogStats() (sent, dropped int64) {
	if r.logs == nil {
		return 0, 0
	}
	return r.logs.sent.Load(), r.logs.lost.Load()
}

// capLine cuts a line's text for publishing at workerlog.MaxLineBytes.
func capLine(b []byte) string { return workerlog.CapLine(b) }
