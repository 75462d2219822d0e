// Package logstream shows a job's worker output on its driver's terminal,
// as Ray's driver does: it subscribes to the job's lines at the control
// store (ControlStore.SubscribeLogs, fed by every node's log publisher),
// deduplicates them (Dedup) and prints each with its worker's prefix,
//
//	(Name pid=123, node=1a2b3c4d5e6f) text
//
// Every driver runs one from Init to Shutdown, for an embedded cluster as
// for a standalone one (ray.LogWorkers(false) turns it off):
//
//	s, err := logstream.Start(logstream.Config{GCSAddress: addr, Token: tok, Job: job})
//	...
//	s.Close() // prints what is still coming (up to DrainMax), then stops
//
// See docs/logs.md for the whole path of a line.
package logstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/workerlog"
)

// Environment variables read by ConfigFromEnv (Ray's RAY_DEDUP_LOGS and
// RAY_DEDUP_LOGS_AGG_WINDOW_S).
const (
	// EnvDedup set to 0 (or false) prints every line as it comes.
	EnvDedup = "RAYGO_DEDUP_LOGS"
	// EnvDedupWindow is the deduplication window in whole seconds.
	EnvDedupWindow = "RAYGO_DEDUP_LOGS_AGG_WINDOW_S"
)

// Limits and timings (docs/logs.md).
const (
	// DefaultWindow is the deduplication window (Ray's 5 s).
	DefaultWindow = 5 * time.Second
	// MaxWindow bounds EnvDedupWindow.
	MaxWindow = time.Hour
	// QueueBatches bounds the batches received and not printed yet (a
	// slow terminal): batches beyond it are dropped and counted, so the
	// subscription keeps up and the control store never waits for this
	// driver.
	QueueBatches = 256
	// DrainQuiet and DrainMax: Close prints what arrives until no batch
	// has come for DrainQuiet (twice a node's publish interval), at most
	// DrainMax, so lines printed just before Shutdown are shown.
	DrainQuiet = 200 * time.Millisecond
	DrainMax   = 2 * time.Second
	// subscribeWait bounds how long Start waits for the subscription to
	// be in place before going on (it keeps trying in the background).
	subscribeWait = 2 * time.Second
	// flushPeriod is how often held duplicate lines are checked.
	flushPeriod = 250 * time.Millisecond
	// writeWait bounds how long Close waits for a terminal that does not
	// take output.
	writeWait = 2 * time.Second
)

// Config configures a Stream.
type Config struct {
	GCSAddress string
	Token      string
	// Job is the job whose workers' output is shown (Nil: every job's).
	Job ids.ID
	// Out receives the lines (default os.Stderr); each batch is one Write
	// of whole lines.
	Out io.Writer
	// NoDedup prints every line as it comes.
	NoDedup bool
	// Window is the deduplication window (0: DefaultWindow).
	Window time.Duration
}

// ConfigFromEnv reads EnvDedup and EnvDedupWindow into cfg.
func ConfigFromEnv(cfg Config) (Config, error) {
	if v := os.Getenv(EnvDedup); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return cfg, fmt.Errorf("logstream: %s=%q: want 0 or 1", EnvDedup, v)
		}
		cfg.NoDedup = !on
	}
	if v := os.Getenv(EnvDedupWindow); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || time.Duration(n)*time.Second > MaxWindow {
			return cfg, fmt.Errorf("logstream: %s=%q: want whole seconds from 1 to %d", EnvDedupWindow, v, int(MaxWindow/time.Second))
		}
		cfg.Window = time.Duration(n) * time.Second
	}
	return cfg, nil
}

// Stream is a running subscription that prints. Close stops it.
type Stream struct {
	cfg    Config
	conn   *grpc.ClientConn
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *pb.LogBatch
	ready  chan struct{} // closed once subscribed the first time

	lastBatch atomic.Int64 // unix nanos of the last batch with lines
	dropped   atomic.Int64 // lines lost (control store, nodes, queue), not reported yet
	lost      atomic.Int64 // lines lost in all

	recvDone, printDone chan struct{}
	closeOnce           sync.Once
}

// Start subscribes to cfg.Job's worker output and prints it until Close.
// It waits (up to a couple of seconds) for the subscription to be in
// place, so that what the job's workers print from then on is shown; a
// control store that cannot be reached is tried again in the background.
func Start(cfg Config) (*Stream, error) {
	if cfg.Out == nil {
		cfg.Out = os.Stderr
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	conn, err := rpc.Dial(cfg.GCSAddress, cfg.Token)
	if err != nil {
		return nil, fmt.Errorf("logstream: connect to %s: %w", cfg.GCSAddress, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{cfg: cfg, conn: conn, ctx: ctx, cancel: cancel, queue: make(chan *pb.LogBatch, QueueBatches),
		ready: make(chan struct{}), recvDone: make(chan struct{}), printDone: make(chan struct{})}
	go s.receive()
	go s.print()
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	select {
	case <-s.ready:
	case <-t.C:
	}
	return s, nil
}

// receive subscribes, and again after a failure (the head restarting),
// and queues what comes. It owns s.queue and closes it.
func (s *Stream) receive() {
	defer close(s.recvDone)
	defer close(s.queue)
	client := pb.NewControlStoreClient(s.conn)
	readyOnce := sync.Once{}
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		req := &pb.SubscribeLogsRequest{}
		if !s.cfg.Job.IsNil() {
			req.JobId = s.cfg.Job.Bytes()
		}
		st, err := client.SubscribeLogs(s.ctx, req)
		for err == nil {
			var b *pb.LogBatch
			if b, err = st.Recv(); err != nil {
				break
			}
			readyOnce.Do(func() { close(s.ready) })
			backoff = 100 * time.Millisecond
			if len(b.Lines) == 0 && b.Dropped == 0 {
				continue
			}
			s.lastBatch.Store(time.Now().UnixNano())
			select {
			case s.queue <- b:
			default:
				s.dropped.Add(int64(len(b.Lines)) + b.Dropped)
				s.lost.Add(int64(len(b.Lines)) + b.Dropped)
			}
		}
		// Lines published while not subscribed are not shown.
		t := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// print deduplicates and writes what receive queued until the queue
// closes, then what the deduplicator still holds.
func (s *Stream) print() {
	defer close(s.printDone)
	var d *Dedup
	if !s.cfg.NoDedup {
		d = NewDedup(s.cfg.Window)
	}
	t := time.NewTicker(flushPeriod)
	defer t.Stop()
	var buf bytes.Buffer
	warned := false
	lastDropNote := time.Time{}
	emit := func(lines []Line) {
		for _, l := range lines {
			buf.WriteString(workerlog.Prefix(l.Name, l.Pid, l.Node))
			buf.WriteString(l.Text)
			if l.Repeated > 1 {
				fmt.Fprintf(&buf, " [repeated %dx across cluster]", l.Repeated)
				if !warned {
					warned = true
					buf.WriteString(" (raygo deduplicates worker output by default; set " + EnvDedup + "=0 to turn it off)")
				}
			}
			buf.WriteByte('\n')
		}
	}
	write := func(final bool) {
		if n := s.dropped.Load(); n > 0 && (final || time.Since(lastDropNote) >= time.Second) {
			s.dropped.Add(-n)
			lastDropNote = time.Now()
			fmt.Fprintf(&buf, "(raygo) %d lines of worker output were dropped (the driver, the head or a node could not keep up); the log files have them: `raygo logs`\n", n)
		}
		if buf.Len() > 0 {
			_, _ = s.cfg.Out.Write(buf.Bytes())
			buf.Reset()
		}
	}
	for {
		select {
		case b, ok := <-s.queue:
			if !ok {
				if d != nil {
					emit(d.FlushAll())
				}
				write(true)
				return
			}
			s.dropped.Add(b.Dropped)
			s.lost.Add(b.Dropped)
			node := ids.MustFromBytes(b.NodeId).Short()
			now := time.Now()
			for _, l := range b.Lines {
				line := Line{Node: node, Pid: int(l.Pid), Name: l.Name, Stderr: l.Stderr, Text: l.Text}
				if d == nil {
					emit([]Line{line})
				} else {
					emit(d.Add(now, line))
				}
			}
		case now := <-t.C:
			if d != nil {
				emit(d.Flush(now))
			}
		}
		write(false)
	}
}

// Dropped is how many lines of the job's output this driver did not
// print: dropped by nodes or the control store (reported to it), or here
// because the terminal did not keep up.
func (s *Stream) Dropped() int64 { return s.lost.Load() }

// Close prints what is still arriving (until no batch came for
// DrainQuiet, at most DrainMax) and what deduplication holds, then stops
// the subscription. It waits at most a couple of seconds more for a
// terminal that does not take output. Calls after the first do nothing.
func (s *Stream) Close() {
	s.closeOnce.Do(func() {
		start := time.Now()
		for time.Since(start) < DrainMax {
			quietSince := time.Unix(0, max(s.lastBatch.Load(), start.UnixNano()))
			wait := DrainQuiet - time.Since(quietSince)
			if wait <= 0 {
				break
			}
			time.Sleep(min(wait, 50*time.Millisecond))
		}
		s.cancel()
		<-s.recvDone
		t := time.NewTimer(writeWait)
		defer t.Stop()
		select {
		case <-s.printDone:
		case <-t.C: // a terminal that takes nothing: leave the printer to it
		}
		_ = s.conn.Close()
	})
}
