package coreworker

import (
	"context"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// service is the CoreWorker gRPC endpoint of a process; it delegates to
// the core worker's parts.
type service struct {
	pb.UnimplementedCoreWorkerServer
	cw *CoreWorker
}

// PushTasks serves a push stream over gRPC (owners on other machines).
func (s service) PushTasks(stream pb.CoreWorker_PushTasksServer) error {
	if s.cw.exec == nil {
		return errs.Invalidf("coreworker: this process is a driver and runs no tasks")
	}
	return s.cw.exec.Serve(stream)
}

// WatchObjects serves a borrower asking for owned objects' values.
func (s service) WatchObjects(stream pb.CoreWorker_WatchObjectsServer) error {
	return s.cw.watchObjects(stream)
}

// Borrow adds or removes a borrower of owned objects. An empty request is
// a liveness check (the control store's, of a job's driver).
func (s service) Borrow(_ context.Context, req *pb.BorrowRequest) (*pb.BorrowReply, error) {
	list := make([]ids.ID, 0, len(req.GetObjectIds()))
	for _, b := range req.GetObjectIds() {
		if id, ok := ids.FromBytes(b); ok {
			list = append(list, id)
		}
	}
	if len(list) == 0 {
		return &pb.BorrowReply{}, nil
	}
	if req.GetRemove() {
		s.cw.refs.RemoveBorrower(req.GetBorrowerAddress(), list)
	} else {
		s.cw.refs.AddBorrower(req.GetBorrowerAddress(), list)
	}
	return &pb.BorrowReply{}, nil
}

// CancelTask cancels a task running (or queued) in this worker, and with
// recursive the tasks it submitted.
func (s service) CancelTask(ctx context.Context, req *pb.CancelTaskRequest) (*pb.CancelTaskReply, error) {
	tid, ok := ids.FromBytes(req.GetTaskId())
	if !ok {
		return nil, errs.Invalidf("coreworker: CancelTask: malformed task id")
	}
	if req.GetAsOwner() {
		return &pb.CancelTaskReply{Found: true}, s.cw.cancelTask(ctx, tid, req.GetForce(), req.GetRecursive())
	}
	found := false
	if s.cw.exec != nil {
		found = s.cw.exec.Cancel(tid)
	}
	if req.GetRecursive() {
		s.cw.cancelChildren(ctx, tid)
	}
	return &pb.CancelTaskReply{Found: found}, nil
}

// CreateActor runs an actor's constructor in this worker, which then
// hosts the actor.
func (s service) CreateActor(ctx context.Context, req *pb.CreateActorTaskRequest) (*pb.CreateActorTaskReply, error) {
	if s.cw.exec == nil {
		return nil, errs.Invalidf("coreworker: a driver cannot host an actor")
	}
	return &pb.CreateActorTaskReply{Error: s.cw.exec.HostActor(ctx, req.GetSpec())}, nil
}

// Exit stops this worker process (the core worker closes, and the
// process exits once it has), or with an actor id drops that actor from a
// process shared with others.
func (s service) Exit(_ context.Context, req *pb.ExitRequest) (*pb.ExitReply, error) {
	if s.cw.exec == nil {
		return nil, errs.Invalidf("coreworker: Exit is for workers")
	}
	if id, ok := ids.FromBytes(req.GetActorId()); ok {
		if s.cw.exec.DropActor(id) {
			s.cw.freeActorObjects(id) // what it put goes with it, as with a process of its own
		}
		return &pb.ExitReply{}, nil
	}
	s.cw.exitSoon()
	return &pb.ExitReply{}, nil
}
