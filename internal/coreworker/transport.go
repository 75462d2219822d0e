package coreworker

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/raygo/raygo/internal/coreworker/push"
	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/framed"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/pb"
)

// Tasks and actor calls go from an owner to a worker on one stream per
// lease (or actor). Between processes on the same machine the stream is a
// framed unix socket (package framed); otherwise it is gRPC's PushTasks.
// Both carry the same messages, and the code on either end sees only the
// submitters' Stream and the executor's ServerStream.

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

// pushStream is the owner's end of a push stream, framed or gRPC.
type pushStream struct {
	send      func(*pb.TaskBatch) error
	recv      func() (*pb.ReplyBatch, error)
	closeSend func() error
	close     func()
}

func (s *pushStream) Send(b *pb.TaskBatch) error    { return s.send(b) }
func (s *pushStream) Recv() (*pb.ReplyBatch, error) { return s.recv() }
func (s *pushStream) CloseSend() error              { return s.closeSend() }
func (s *pushStream) Close()                        { s.close() }

var _ push.Stream = (*pushStream)(nil)

// dialPush opens a push stream to the worker at addr: framed if it is on
// this machine, gRPC otherwise. Close breaks it.
func (cw *CoreWorker) dialPush(ctx context.Context, addr string) (*pushStream, error) {
	if name, err := taskSocketName(addr); err == nil && cw.cfg.PushTransport != PushGRPC {
		if c, err := framed.Dial(ctx, name, cw.cfg.Token, pushPurpose, cw.cfg.WorkerID.String()); err == nil {
			c.SetSpin(cw.cfg.PushSpin)
			return &pushStream{
				send: func(b *pb.TaskBatch) error { return c.Write(b) },
				recv: func() (*pb.ReplyBatch, error) {
					r := &pb.ReplyBatch{}
					if err := c.Read(r); err != nil {
						c.Close()
						return nil, err
					}
					return r, nil
				},
				closeSend: c.CloseWrite,
				close:     func() { c.Close() },
			}, nil
		}
	}
	conn, err := cw.pool.Get(addr)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(cw.stop.Ctx())
	st, err := pb.NewCoreWorkerClient(conn).PushTasks(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	return &pushStream{send: st.Send, recv: st.Recv, closeSend: st.CloseSend, close: cancel}, nil
}

// clients implements the submitters' RPCs.
type clients struct{ cw *CoreWorker }

func (c *clients) daemon(addr string) (pb.NodeDaemonClient, error) {
	conn, err := c.cw.pool.Get(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewNodeDaemonClient(conn), nil
}

func (c *clients) RequestLease(ctx context.Context, raylet string, req *pb.LeaseRequest) (*pb.LeaseReply, error) {
	d, err := c.daemon(raylet)
	if err != nil {
		return nil, err
	}
	return d.RequestLease(ctx, req)
}

func (c *clients) CancelLease(ctx context.Context, raylet string, requestID []byte) error {
	d, err := c.daemon(raylet)
	if err != nil {
		return err
	}
	_, err = d.CancelLease(ctx, &pb.CancelLeaseRequest{RequestId: requestID})
	return err
}

func (c *clients) ReturnLease(ctx context.Context, raylet string, leaseID []byte, exiting bool) error {
	d, err := c.daemon(raylet)
	if err != nil {
		return err
	}
	_, err = d.ReturnLease(ctx, &pb.ReturnLeaseRequest{LeaseId: leaseID, WorkerExiting: exiting})
	return err
}

func (c *clients) WorkerDeathCause(ctx context.Context, raylet string, worker []byte) (*pb.ErrorInfo, error) {
	d, err := c.daemon(raylet)
	if err != nil {
		return nil, err
	}
	reply, err := d.WorkerDeathCause(ctx, &pb.WorkerDeathCauseRequest{WorkerId: worker})
	if err != nil {
		return nil, err
	}
	return reply.GetCause(), nil
}

func (c *clients) KillWorker(ctx context.Context, raylet string, worker []byte, reason string) error {
	d, err := c.daemon(raylet)
	if err != nil {
		return err
	}
	_, err = d.KillWorker(ctx, &pb.KillWorkerRequest{WorkerId: worker, Reason: reason})
	return err
}

func (c *clients) Dial(ctx context.Context, worker string) (tasksubmit.Stream, error) {
	s, err := c.cw.dialPush(ctx, worker)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *clients) CancelTask(ctx context.Context, worker string, req *pb.CancelTaskRequest) error {
	conn, err := c.cw.pool.Get(worker)
	if err != nil {
		return err
	}
	_, err = pb.NewCoreWorkerClient(conn).CancelTask(ctx, req)
	return err
}

func (c *clients) WaitActor(ctx context.Context, actor ids.ID, since uint64) (*pb.ActorInfo, error) {
	reply, err := c.cw.gcs.WaitActor(ctx, &pb.WaitActorRequest{ActorId: actor.Bytes(), SinceVersion: since, TimeoutMs: 10000})
	if err != nil {
		return nil, err
	}
	return reply.GetActor(), nil
}

// ---------------------------------------------------------------- worker side

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
	return cw.stop.Go("coreworker.accept", func(context.Context) { cw.pushSrv.accept() })
}

func (ts *taskServer) accept() {
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
		if err := ts.cw.stop.Go("coreworker.push", func(ctx context.Context) { ts.serve(ctx, c) }); err != nil {
			c.Close()
		}
	}
}

func (ts *taskServer) serve(ctx context.Context, c *framed.Conn) {
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
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_ = ts.cw.exec.Serve(&framedServer{c: c, ctx: sctx, cancel: cancel})
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
