package raylet

import (
	"context"
	"fmt"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Worker states ListWorkers reports (pb.WorkerInfo.state).
const (
	WorkerStarting = "STARTING" // started, not registered yet
	WorkerIdle     = "IDLE"     // registered, in the idle pool
	WorkerLeased   = "LEASED"   // running a lease's tasks
	WorkerActor    = "ACTOR"    // hosting one actor (dedicated) or several (shared)
)

// Object states ListObjects reports (pb.ObjectInfo.state).
const (
	ObjectInMemory  = "IN_MEMORY" // a primary copy in shared memory
	ObjectSecondary = "SECONDARY" // a copy of another node's object, evictable
	ObjectSpilled   = "SPILLED"   // on disk: spilled, or larger than the store
	ObjectCreating  = "CREATING"  // being written
)

// DefaultListObjects is how many objects ListObjects returns when the
// request names no limit; MaxListObjects is the most it returns at all.
const (
	DefaultListObjects = 10_000
	MaxListObjects     = 100_000
)

// ListWorkers lists this node's worker processes (for the state API):
// starting, idle, leased and actor-hosting ones. Actor ids are not known
// here (the control store's actor table has them); actor_ids stays empty.
func (r *Raylet) ListWorkers(context.Context, *pb.ListWorkersRequest) (*pb.ListWorkersReply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	held := map[*worker]resources.Set{}
	for _, l := range r.leases {
		s := held[l.w]
		if s == nil {
			s = resources.Set{}
			held[l.w] = s
		}
		s.Add(l.alloc.Resources)
	}
	out := &pb.ListWorkersReply{Workers: make([]*pb.WorkerInfo, 0, len(r.workers))}
	for _, w := range r.workers {
		if w.dead {
			continue
		}
		info := &pb.WorkerInfo{WorkerId: w.id.Bytes(), Pid: int32(w.pid), JobId: w.key.job.Bytes(),
			State: workerStateLocked(w), StartUnixMs: w.started.UnixMilli(), Address: w.addr}
		if s := held[w]; len(s) > 0 {
			info.Held = &pb.Resources{Amounts: s.Clone()}
		}
		info.StdoutFile, info.StderrFile = workerLogFiles(w.id, w.pid)
		out.Workers = append(out.Workers, info)
	}
	return out, nil
}

// workerStateLocked names what w is doing; r.mu is held.
func workerStateLocked(w *worker) string {
	switch {
	case w.addr == "":
		return WorkerStarting
	case w.hosted > 0 || (w.lease != nil && w.lease.actor):
		return WorkerActor
	case w.lease != nil:
		return WorkerLeased
	}
	return WorkerIdle
}

// workerLogFiles are the names, in the node's logs directory, of a
// worker's stdout and stderr files (startWorker makes them).
func workerLogFiles(id ids.ID, pid int) (stdout, stderr string) {
	base := fmt.Sprintf("worker-%s-%d", id.Short(), pid)
	return base + ".out", base + ".err"
}

// ListObjects lists the objects in this node's store, largest first: at
// most req.limit (0: DefaultListObjects; at most MaxListObjects), and how
// many the store holds in all. Owner ids are not reported (the store keeps
// owners' addresses, not their ids, in its reports).
func (r *Raylet) ListObjects(_ context.Context, req *pb.ListObjectsRequest) (*pb.ListObjectsReply, error) {
	limit := int(req.GetLimit())
	switch {
	case limit <= 0:
		limit = DefaultListObjects
	case limit > MaxListObjects:
		limit = MaxListObjects
	}
	st := r.store.Stats(limit)
	out := &pb.ListObjectsReply{Total: st.GetObjects(), Objects: make([]*pb.ObjectInfo, 0, len(st.GetLargest()))}
	for _, o := range st.GetLargest() {
		out.Objects = append(out.Objects, &pb.ObjectInfo{ObjectId: o.GetObjectId(), Size: o.GetSize(),
			State: objectState(o.GetState(), o.GetSecondary()), Pins: o.GetReaders()})
	}
	return out, nil
}

// objectState maps the store's state of an object to ListObjects' names.
func objectState(s pb.StoreObjectState, secondary bool) string {
	switch s {
	case pb.StoreObjectState_STORE_OBJECT_STATE_CREATING:
		return ObjectCreating
	case pb.StoreObjectState_STORE_OBJECT_STATE_SPILLED, pb.StoreObjectState_STORE_OBJECT_STATE_FILE:
		return ObjectSpilled
	}
	if secondary {
		return ObjectSecondary
	}
	return ObjectInMemory
}
