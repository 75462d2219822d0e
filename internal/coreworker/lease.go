package coreworker

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// leasedWorker is a worker leased from a node daemon, with the stream that
// carries tasks to it and replies back.
type leasedWorker struct {
	key        *schedKey
	leaseID    ids.ID
	workerID   ids.ID
	nodeID     ids.ID
	addr       string
	rayletAddr string
	stream     taskStream
	cancel     context.CancelFunc
	sendCh     chan *pb.TaskSpec
	inflight   map[ids.ID]*task // guarded by CoreWorker.mu
	lastUsed   time.Time        // guarded by CoreWorker.mu
	dead       bool             // guarded by CoreWorker.mu
	returned   bool             // guarded by CoreWorker.mu
}

// shortExec is the run time under which a class's tasks count as short:
// short tasks are pipelined deeper to each worker.
const shortExec = time.Millisecond

func (cw *CoreWorker) connectWorker(k *schedKey, reply *pb.LeaseReply, rayletAddr string) (*leasedWorker, error) {
	lw := &leasedWorker{
		key: k, leaseID: ids.MustFromBytes(reply.GetLeaseId()), workerID: ids.MustFromBytes(reply.GetWorkerId()),
		nodeID: ids.MustFromBytes(reply.GetNodeId()), addr: reply.GetWorkerAddress(), rayletAddr: rayletAddr,
		sendCh: make(chan *pb.TaskSpec, cw.cfg.MaxPipeline+1), inflight: map[ids.ID]*task{}, lastUsed: time.Now(),
	}
	ctx, cancel := context.WithCancel(cw.ctx)
	lw.cancel = cancel
	var err error
	if lw.stream, err = cw.openTaskStream(ctx, lw.addr); err != nil {
		cancel()
		cw.returnLeaseRPC(lw, true)
		return nil, err
	}
	cw.wg.Add(2)
	common := cw.streamCommon()
	common.Resources = k.req.Resources // one scheduling class: one resource shape
	go cw.sendLoop(lw.stream, lw.sendCh, common)
	go cw.recvLoop(lw)
	return lw, nil
}

// streamCommon returns what every task this process sends shares: the
// job and the owner (see TaskBatch.common).
func (cw *CoreWorker) streamCommon() *pb.TaskSpec {
	return &pb.TaskSpec{JobId: cw.jobIDWire, OwnerAddress: cw.address, OwnerId: cw.workerIDWire}
}

// fillFromCommon completes a spec received in a batch: fields the batch's
// tasks share, and the return ids (see TaskBatch.common).
func fillFromCommon(spec, common *pb.TaskSpec) {
	if common != nil {
		if spec.JobId == nil {
			spec.JobId = common.JobId
		}
		if spec.OwnerAddress == "" {
			spec.OwnerAddress = common.OwnerAddress
		}
		if spec.OwnerId == nil {
			spec.OwnerId = common.OwnerId
		}
		if spec.CallerId == nil {
			spec.CallerId = common.CallerId
		}
		if spec.ActorId == nil {
			spec.ActorId = common.ActorId
		}
		if spec.Resources == nil {
			spec.Resources = common.Resources
		}
	}
	if n := int(spec.NumReturns); len(spec.ReturnIds) == 0 && n > 0 && !spec.ActorCreation {
		tid, ok := ids.FromBytes(spec.TaskId)
		if !ok {
			return // malformed (this binary never sends one): no return ids
		}
		wire := make([]byte, n*ids.Size) // one allocation for all of them
		spec.ReturnIds = make([][]byte, n)
		for i := range n {
			rid := ids.ForReturn(tid, i)
			spec.ReturnIds[i] = wire[i*ids.Size : (i+1)*ids.Size : (i+1)*ids.Size]
			copy(spec.ReturnIds[i], rid[:])
		}
	}
}

// sendLoop batches specs from ch onto a stream until ch is closed; common
// goes with every batch.
func (cw *CoreWorker) sendLoop(stream taskStream, ch chan *pb.TaskSpec, common *pb.TaskSpec) {
	defer cw.wg.Done()
	batch := make([]*pb.TaskSpec, 0, 64)
	for spec := range ch {
		batch = append(batch[:0], spec)
	drain:
		for len(batch) < 1024 {
			select {
			case s, ok := <-ch:
				if !ok {
					break drain
				}
				batch = append(batch, s)
			default:
				break drain
			}
		}
		if err := stream.Send(&pb.TaskBatch{Tasks: batch, Common: common}); err != nil {
			for range ch { // the receiver sees the failure; drain until closed
			}
			return
		}
	}
	_ = stream.CloseSend()
}

func (cw *CoreWorker) recvLoop(lw *leasedWorker) {
	defer cw.wg.Done()
	for {
		batch, err := lw.stream.Recv()
		if err != nil {
			cw.leaseFailed(lw, err)
			return
		}
		cw.mu.Lock()
		for _, r := range batch.GetReplies() {
			cw.handleReplyLocked(lw, r)
		}
		cw.pumpLocked(lw.key)
		cw.mu.Unlock()
	}
}

func (cw *CoreWorker) handleReplyLocked(lw *leasedWorker, r *pb.TaskReply) {
	tid := ids.MustFromBytes(r.GetTaskId())
	t, ok := lw.inflight[tid]
	if !ok {
		return
	}
	delete(lw.inflight, tid)
	lw.lastUsed = time.Now()
	k := lw.key
	if time.Duration(r.GetExecMicros())*time.Microsecond < shortExec {
		k.depth = min(2*k.depth, cw.cfg.MaxPipeline)
	} else {
		k.depth = 1
	}
	t.lw = nil
	cw.replyLocked(t, r)
}

// replyLocked completes (or retries) a task from its worker's reply.
func (cw *CoreWorker) replyLocked(t *task, r *pb.TaskReply) {
	if info := r.GetError(); info != nil {
		switch {
		case t.cancelled:
			cw.finishLocked(t, errs.ToInfo(&errs.CancelledError{Function: t.spec.Function, TaskID: t.id().String()}))
		case info.Kind == errs.KindTask && t.retryApp && t.retriesLeft != 0 && retryableType(t.retryTypes, info.TypeName):
			cw.retryLocked(t)
		default:
			cw.finishLocked(t, info)
		}
		return
	}
	cw.completeLocked(t, r.GetReturns())
}

func retryableType(types []string, name string) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == name || "sentinel:"+t == name {
			return true
		}
	}
	return false
}

// retryLocked resubmits a task for another attempt.
func (cw *CoreWorker) retryLocked(t *task) {
	if t.retriesLeft > 0 {
		t.retriesLeft--
	}
	t.spec.Attempt++
	t.lw = nil
	if t.actor != nil {
		t.actor.requeueLocked(t)
		return
	}
	k := t.key
	k.queue = append([]*task{t}, k.queue...)
}

// leaseFailed handles a broken stream: the worker (or its node) died, or
// the lease was returned and the stream closed normally.
func (cw *CoreWorker) leaseFailed(lw *leasedWorker, cause error) {
	cw.mu.Lock()
	if lw.returned && len(lw.inflight) == 0 {
		cw.mu.Unlock()
		return
	}
	var oom *pb.ErrorInfo
	if len(lw.inflight) > 0 {
		cw.mu.Unlock()
		oom = cw.deathCause(lw)
		cw.mu.Lock()
	}
	lw.dead = true
	k := lw.key
	for i, x := range k.leases {
		if x == lw {
			k.leases = append(k.leases[:i], k.leases[i+1:]...)
			break
		}
	}
	failed := make([]*task, 0, len(lw.inflight))
	for _, t := range lw.inflight {
		failed = append(failed, t)
	}
	lw.inflight = map[ids.ID]*task{}
	sortBySeqDesc(failed)
	for _, t := range failed { // newest first, so requeued tasks keep their order at the front
		t.lw = nil
		switch {
		case t.cancelled:
			cw.finishLocked(t, errs.ToInfo(&errs.CancelledError{Function: t.spec.Function, TaskID: t.id().String()}))
		case oom != nil:
			cw.oomLocked(t, oom)
		case t.retriesLeft != 0:
			cw.retryLocked(t)
		default:
			cw.finishLocked(t, errs.ToInfo(&errs.WorkerCrashedError{
				Function: t.spec.Function, NodeID: lw.nodeID.String(), WorkerID: lw.workerID.String(),
				Attempts: int(t.spec.Attempt) + 1, Reason: fmt.Sprintf("the worker's connection broke: %v", cause),
			}))
		}
	}
	wasReturned := lw.returned
	if !wasReturned {
		lw.returned = true
		close(lw.sendCh)
	}
	cw.pumpLocked(k)
	cw.mu.Unlock()
	if !wasReturned {
		lw.cancel()
		cw.returnLeaseRPC(lw, true)
	}
}

// deathCause asks the node daemon whether it killed the worker, and why
// (the memory monitor); nil when it did not say.
func (cw *CoreWorker) deathCause(lw *leasedWorker) *pb.ErrorInfo {
	conn, err := cw.pool.Get(lw.rayletAddr)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(cw.ctx, 2*time.Second)
	defer cancel()
	reply, err := pb.NewNodeDaemonClient(conn).WorkerDeathCause(ctx, &pb.WorkerDeathCauseRequest{WorkerId: lw.workerID.Bytes()})
	if err != nil || reply.GetCause().GetKind() != errs.KindOutOfMemory {
		return nil
	}
	return reply.GetCause()
}

// oomLocked handles a task whose worker the memory monitor killed: retry
// it on its own counter after a growing pause, or fail it with an
// out-of-memory error.
func (cw *CoreWorker) oomLocked(t *task, cause *pb.ErrorInfo) {
	t.oomKills++
	if t.oomLeft == 0 {
		cw.finishLocked(t, errs.ToInfo(&errs.OutOfMemoryError{Function: t.spec.Function, NodeID: cause.GetNodeId(),
			WorkerID: cause.GetWorkerId(), Attempts: t.oomKills, Message: cause.GetMessage()}))
		return
	}
	if t.oomLeft > 0 {
		t.oomLeft--
	}
	t.spec.Attempt++
	t.lw = nil
	delay := min(time.Duration(t.oomKills)*time.Second, 10*time.Second)
	cw.wg.Add(1)
	go func() {
		defer cw.wg.Done()
		select {
		case <-time.After(delay):
		case <-cw.ctx.Done():
		}
		cw.mu.Lock()
		defer cw.mu.Unlock()
		if cw.closed {
			cw.finishLocked(t, errs.ToInfo(&errs.OutOfMemoryError{Function: t.spec.Function, NodeID: cause.GetNodeId(),
				WorkerID: cause.GetWorkerId(), Attempts: t.oomKills, Message: cause.GetMessage()}))
			return
		}
		t.key.queue = append([]*task{t}, t.key.queue...)
		cw.pumpLocked(t.key)
	}()
}

// returnIdleLeases gives back workers that have had nothing to do for
// LeaseIdleTimeout.
func (cw *CoreWorker) returnIdleLeases() {
	now := time.Now()
	var idle []*leasedWorker
	cw.mu.Lock()
	for _, k := range cw.keys {
		if len(k.queue) > 0 {
			continue
		}
		kept := k.leases[:0]
		for _, lw := range k.leases {
			if lw.returned { // returned by Close meanwhile
				continue
			}
			if len(lw.inflight) == 0 && now.Sub(lw.lastUsed) >= cw.cfg.LeaseIdleTimeout {
				lw.returned = true
				close(lw.sendCh)
				idle = append(idle, lw)
				continue
			}
			kept = append(kept, lw)
		}
		k.leases = kept
	}
	cw.mu.Unlock()
	for _, lw := range idle {
		cw.returnLeaseRPC(lw, false)
	}
}

// returnLease closes a lease's stream and gives the worker back (used at
// shutdown).
func (cw *CoreWorker) returnLease(lw *leasedWorker, exiting bool) {
	cw.mu.Lock()
	if !lw.returned {
		lw.returned = true
		close(lw.sendCh)
	}
	cw.mu.Unlock()
	cw.returnLeaseRPC(lw, exiting)
}

func (cw *CoreWorker) returnLeaseRPC(lw *leasedWorker, exiting bool) {
	conn, err := cw.pool.Get(lw.rayletAddr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = pb.NewNodeDaemonClient(conn).ReturnLease(ctx, &pb.ReturnLeaseRequest{LeaseId: lw.leaseID.Bytes(), WorkerExiting: exiting})
}

func sortBySeqDesc(ts []*task) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].seq > ts[j].seq })
}
