package coreworker

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/raygo/raygo/internal/framed"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/pb"
)

// Tasks and actor calls go from an owner to a worker on one stream per
// lease (or actor). Between processes on the same machine the stream is a
// framed unix socket (package framed); otherwise it is gRPC's PushTasks.
// Both carry the same messages, and the code on either end sees only
// these interfaces.

// taskStream is the owner's end of a push stream.
type taskStream interface {
	Send(*pb.TaskBatch) error
	Recv() (*pb.ReplyBatch, error)
	CloseSend() error
}

// taskServerStream is the worker's end.
type taskServerStream interface {
	Recv() (*pb.TaskBatch, error)
	Send(*pb.ReplyBatch) error
	Context() context.Context
}

// Push transports (Config.PushTransport).
const (
	// PushAuto uses a framed socket to workers on this machine, gRPC to
	// the others.
	PushAuto = ""
	// PushGRPC always uses gRPC (tests of that path; environment
	// RAYGO_PUSH_TRANSPORT=grpc).
	PushGRPC = "grpc"
)

// taskSocketName is the framed socket a worker serving at addr listens on
// (package localsock); an error where there are no local sockets.
func taskSocketName(addr string) (string, error) { return localsock.Name(addr, localsock.Tasks) }

const pushPurpose = "push-tasks"

// openTaskStream opens a push stream to the worker at addr: framed if it
// is on this machine, gRPC otherwise. Cancelling ctx breaks it.
func (cw *CoreWorker) openTaskStream(ctx context.Context, addr string) (taskStream, error) {
	if name, err := taskSocketName(addr); err == nil && cw.cfg.PushTransport != PushGRPC {
		if c, err := framed.Dial(ctx, name, cw.cfg.Token, pushPurpose, cw.workerID.String()); err == nil {
			c.SetSpin(cw.cfg.PushSpin)
			return &framedClient{c: c, stop: context.AfterFunc(ctx, func() { c.Close() })}, nil
		}
	}
	conn, err := cw.pool.Get(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewCoreWorkerClient(conn).PushTasks(ctx)
}

type framedClient struct {
	c    *framed.Conn
	stop func() bool
}

func (s *framedClient) Send(b *pb.TaskBatch) error { return s.c.Write(b) }

func (s *framedClient) Recv() (*pb.ReplyBatch, error) {
	r := &pb.ReplyBatch{}
	if err := s.c.Read(r); err != nil {
		s.stop()
		s.c.Close()
		return nil, err
	}
	return r, nil
}

func (s *framedClient) CloseSend() error { return s.c.CloseWrite() }

// taskServer serves framed push streams (worker mode).
type taskServer struct {
	cw  *CoreWorker
	lis *framed.Listener

	mu     sync.Mutex
	conns  map[*framed.Conn]struct{} // guarded by mu
	closed bool                      // guarded by mu
}

func (cw *CoreWorker) serveTasks() error {
	name, err := taskSocketName(cw.address)
	if err != nil {
		return err
	}
	lis, err := framed.Listen(name, cw.cfg.Token)
	if err != nil {
		return err
	}
	cw.pushSrv = &taskServer{cw: cw, lis: lis, conns: map[*framed.Conn]struct{}{}}
	cw.wg.Add(1)
	go cw.pushSrv.accept()
	return nil
}

func (ts *taskServer) accept() {
	defer ts.cw.wg.Done()
	for {
		c, err := ts.lis.Accept()
		if err != nil {
			return
		}
		ts.mu.Lock()
		if ts.closed {
			ts.mu.Unlock()
			c.Close()
			return
		}
		ts.conns[c] = struct{}{}
		ts.mu.Unlock()
		ts.cw.wg.Add(1)
		go ts.serve(c)
	}
}

func (ts *taskServer) serve(c *framed.Conn) {
	defer ts.cw.wg.Done()
	defer func() {
		c.Close()
		ts.mu.Lock()
		delete(ts.conns, c)
		ts.mu.Unlock()
	}()
	peer, err := ts.lis.Hello(c)
	if err != nil || peer.Purpose != pushPurpose {
		return
	}
	c.SetSpin(ts.cw.cfg.PushSpin)
	ctx, cancel := context.WithCancel(ts.cw.ctx)
	defer cancel()
	_ = ts.cw.pushTasks(&framedServer{c: c, ctx: ctx, cancel: cancel})
}

// close stops accepting and breaks every open stream.
func (ts *taskServer) close() {
	ts.mu.Lock()
	ts.closed = true
	for c := range ts.conns {
		c.Close()
	}
	ts.mu.Unlock()
	ts.lis.Close()
}

type framedServer struct {
	c      *framed.Conn
	ctx    context.Context
	cancel context.CancelFunc
}

func (s *framedServer) Recv() (*pb.TaskBatch, error) {
	b := &pb.TaskBatch{}
	if err := s.c.Read(b); err != nil {
		if !errors.Is(err, io.EOF) {
			s.cancel() // the caller went away
		}
		return nil, err
	}
	return b, nil
}

func (s *framedServer) Send(b *pb.ReplyBatch) error { return s.c.Write(b) }

func (s *framedServer) Context() context.Context { return s.ctx }
