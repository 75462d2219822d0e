package coreworker

import (
	"context"

	"github.com/raygo/raygo/internal/pb"
)

// service is the CoreWorker gRPC endpoint of a process; it delegates to
// the core worker.
type service struct {
	pb.UnimplementedCoreWorkerServer
	cw *CoreWorker
}

func (s service) PushTasks(stream pb.CoreWorker_PushTasksServer) error { return s.cw.pushTasks(stream) }

func (s service) WaitObject(ctx context.Context, req *pb.WaitObjectRequest) (*pb.WaitObjectReply, error) {
	return s.cw.waitObject(ctx, req)
}

func (s service) Borrow(ctx context.Context, req *pb.BorrowRequest) (*pb.BorrowReply, error) {
	return s.cw.borrow(ctx, req)
}

func (s service) CancelTask(ctx context.Context, req *pb.CancelTaskRequest) (*pb.CancelTaskReply, error) {
	return s.cw.cancelTask(ctx, req)
}

func (s service) CreateActor(ctx context.Context, req *pb.CreateActorTaskRequest) (*pb.CreateActorTaskReply, error) {
	return s.cw.hostActor(ctx, req)
}

func (s service) Exit(ctx context.Context, req *pb.ExitRequest) (*pb.ExitReply, error) {
	return s.cw.exit(ctx, req)
}
