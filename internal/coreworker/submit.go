package coreworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Arg is one task argument: an encoded value, or a ref whose value the
// task receives (resolved before it runs).
type Arg struct {
	Data   []byte
	Nested []codec.Ref
	Ref    *Ref
}

// TaskOptions are the per-call options of a task or actor call.
type TaskOptions struct {
	Resources  resources.Set
	NumReturns int
	// MaxRetries counts retries after system failures (-1: forever).
	MaxRetries int
	// OOMRetries counts retries after the memory monitor killed the
	// worker (-1: forever); a separate counter from MaxRetries.
	OOMRetries int
	// RetryExceptions retries application errors too; RetryErrorTypes, if
	// set, limits that to errors whose registered type name is listed.
	RetryExceptions bool
	RetryErrorTypes []string
	Name            string
	Strategy        pb.SchedulingStrategy
	// FailIfInfeasible fails the task at once with an InfeasibleError when
	// no node can hold its resources; otherwise it waits for a node that
	// can (a warning is logged once per scheduling class).
	FailIfInfeasible bool
	// Key caches SchedulingKey(opts); empty means compute it.
	Key string
}

// task is an owned task from submission to its last reply.
type task struct {
	tid  ids.ID // the id; spec.TaskId is its bytes
	spec *pb.TaskSpec
	rets []*object // its return objects (gone once freed)

	// Storage for the common case, allocated with the task: its spec, and
	// its one return object's pointer.
	specBuf     pb.TaskSpec
	ret1        [1]*object
	seq         uint64   // submission order, for ordered retries
	holds       []ids.ID // ids whose submitted count this task holds
	retriesLeft int
	oomLeft     int // retries left after out-of-memory kills
	oomKills    int
	retryApp    bool
	retryTypes  []string
	cancelled   bool
	pendingDeps int
	resolved    bool // actor calls: arguments resolved, ready to send in order
	key         *schedKey
	lw          *leasedWorker
	actor       *actorClient
	depErr      *pb.ErrorInfo // an argument resolved to an error
}

func (t *task) id() ids.ID { return t.tid }

// returnCount is how many objects the task returns: none for an actor
// creation (its result is the actor). Return i's id is
// ids.ForReturn(t.id(), i).
func (t *task) returnCount() int {
	if t.spec.ActorCreation {
		return 0
	}
	return int(t.spec.NumReturns)
}

// schedKey queues tasks with the same resource shape and holds the
// workers leased for them.
type schedKey struct {
	name          string
	req           *pb.LeaseRequest
	queue         []*task
	leases        []*leasedWorker
	pendingLeases int
	depth         int // tasks in flight per worker: grows while tasks are short
	leaseCtx      context.Context
	cancelLeases  context.CancelFunc
	// warnedInfeasible: the user was told that no node can hold this
	// class's resources.
	warnedInfeasible bool
}

var taskSeq uint64

// SubmitTask submits a call of the registered function fn and returns
// handles on its return objects.
func (cw *CoreWorker) SubmitTask(fn string, args []Arg, opts TaskOptions) ([]*Ref, error) {
	if err := resources.Validate(opts.Resources); err != nil {
		return nil, errs.Invalidf("raygo: %s: %v", fn, err)
	}
	if opts.NumReturns <= 0 {
		opts.NumReturns = 1
	}
	if opts.NumReturns > ids.MaxReturns {
		return nil, errs.Invalidf("raygo: %s: %d returns exceed the limit of %d", fn, opts.NumReturns, ids.MaxReturns)
	}
	t := &task{tid: ids.New(), retriesLeft: opts.MaxRetries, oomLeft: opts.OOMRetries, retryApp: opts.RetryExceptions, retryTypes: opts.RetryErrorTypes}
	// The job, the owner and the resources travel once per batch on the
	// push stream (streamCommon); the return ids are derived from the id.
	t.spec = &t.specBuf
	t.spec.TaskId, t.spec.Function, t.spec.Name = t.tid[:], fn, opts.Name
	t.spec.NumReturns, t.spec.MaxRetries = int32(opts.NumReturns), int32(opts.MaxRetries)
	args, err := cw.storeLargeArgs(args, fn)
	if err != nil {
		return nil, err
	}
	refs := cw.buildTask(t, args)
	cw.mu.Lock()
	if err := cw.prepareLocked(t, args); err != nil {
		cw.mu.Unlock()
		return nil, err
	}
	t.key = cw.keyLocked(opts)
	if t.pendingDeps == 0 { // the common case: on its way under this one lock
		cw.inlineArgsLocked(t)
		cw.queueTaskLocked(t)
		cw.mu.Unlock()
		return refs, nil
	}
	cw.mu.Unlock()
	cw.resolveDeps(t, (*CoreWorker).queueTask)
	return refs, nil
}

// storeLargeArgs puts arguments larger than the inline threshold into the
// object store and passes them by ref, so task specs stay small. The task
// holds the refs until it finishes.
func (cw *CoreWorker) storeLargeArgs(args []Arg, fn string) ([]Arg, error) {
	var out []Arg
	for i, a := range args {
		if a.Ref != nil || len(a.Data) <= cw.cfg.InlineThreshold {
			continue
		}
		if out == nil {
			out = append([]Arg(nil), args...)
		}
		h, err := cw.Put(cw.ctx, [][]byte{a.Data}, a.Nested, fmt.Sprintf("argument %d of %s", i, fn))
		if err != nil {
			return nil, fmt.Errorf("raygo: store argument %d: %w", i, err)
		}
		out[i] = Arg{Ref: h}
	}
	if out == nil {
		return args, nil
	}
	return out, nil
}

// prepare readies a task for submission: its wire arguments and its
// return objects and handles (made outside the lock: a handle's GC cleanup
// is the costliest part), then, under the lock, counts the refs it holds
// and adds its return objects to the object table.
func (cw *CoreWorker) prepare(t *task, args []Arg) ([]*Ref, error) {
	refs := cw.buildTask(t, args)
	cw.mu.Lock()
	defer cw.mu.Unlock()
	return refs, cw.prepareLocked(t, args)
}

// buildTask fills the spec's arguments and makes the task's return
// objects (t.rets) with one handle each; nothing is shared yet.
func (cw *CoreWorker) buildTask(t *task, args []Arg) []*Ref {
	spec := t.spec
	spec.Args = make([]*pb.Arg, len(args))
	for i, a := range args {
		if a.Ref != nil {
			spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Ref{Ref: a.Ref.Proto()}}
			continue
		}
		v := &pb.Value{Data: a.Data, Size: int64(len(a.Data))}
		for _, n := range a.Nested {
			v.Nested = append(v.Nested, &pb.ObjectRef{Id: n.ID, OwnerId: n.OwnerID, OwnerAddress: n.OwnerAddress})
		}
		spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Value{Value: v}}
	}
	n := t.returnCount()
	refs := make([]*Ref, n)
	if n == 1 {
		t.rets = t.ret1[:]
	} else {
		t.rets = make([]*object, n)
	}
	for i := range n {
		o, h := cw.newOwned(ids.ForReturn(t.tid, i))
		o.task = t
		t.rets[i], refs[i] = o, h
	}
	return refs
}

// prepareLocked counts the refs the task holds (its ref arguments and the
// refs inside its value arguments), notes the arguments not ready yet, and
// adds its return objects to the object table.
func (cw *CoreWorker) prepareLocked(t *task, args []Arg) error {
	if cw.closed {
		return errs.Systemf("raygo: not connected (Shutdown was called)")
	}
	taskSeq++
	t.seq = taskSeq
	for _, a := range args {
		if a.Ref != nil {
			o, ok := cw.objects[a.Ref.ID]
			if !ok {
				cw.releaseHoldsLocked(t) // what earlier arguments took
				return errObjectFreed(a.Ref.ID)
			}
			o.submitted++
			t.holds = append(t.holds, a.Ref.ID)
			if !o.ready {
				t.pendingDeps++
			}
			continue
		}
		for _, n := range a.Nested {
			id, _ := ids.FromBytes(n.ID)
			if o, ok := cw.objects[id]; ok {
				o.submitted++
				t.holds = append(t.holds, id)
			}
		}
	}
	for _, o := range t.rets {
		cw.objects[o.id] = o
	}
	return nil
}

// resolveDeps waits for the task's ref arguments, inlines the small ones,
// then calls next. Tasks whose arguments are all ready go straight on.
// (next takes the core worker as an argument so that the common callers
// pass a static function, not a closure made per call.)
func (cw *CoreWorker) resolveDeps(t *task, next func(*CoreWorker, *task)) {
	if t.pendingDeps == 0 {
		cw.inlineArgs(t)
		next(cw, t)
		return
	}
	cw.wg.Add(1)
	go func() {
		defer cw.wg.Done()
		for _, a := range t.spec.Args {
			r := a.GetRef()
			if r == nil {
				continue
			}
			ref := &Ref{ID: ids.MustFromBytes(r.Id), OwnerAddr: r.OwnerAddress, OwnerID: ids.MustFromBytes(r.OwnerId)}
			cw.mu.Lock()
			o, ok := cw.objects[ref.ID]
			cw.mu.Unlock()
			if !ok {
				continue
			}
			if _, err := cw.waitValue(cw.ctx, ref, true, o); err != nil {
				cw.mu.Lock()
				if t.depErr == nil {
					t.depErr = errs.ToInfo(err)
				}
				cw.mu.Unlock()
			}
		}
		cw.inlineArgs(t)
		next(cw, t)
	}()
}

// inlineArgs replaces ref arguments whose values are ready and inline with
// the values themselves, so the worker need not ask the owner.
func (cw *CoreWorker) inlineArgs(t *task) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.inlineArgsLocked(t)
}

func (cw *CoreWorker) inlineArgsLocked(t *task) {
	for i, a := range t.spec.Args {
		r := a.GetRef()
		if r == nil {
			continue
		}
		o, ok := cw.objects[ids.MustFromBytes(r.Id)]
		if !ok || !o.ready {
			continue
		}
		if o.value.GetError() != nil {
			if t.depErr == nil {
				t.depErr = o.value.GetError()
			}
			continue
		}
		if !o.value.GetInStore() {
			t.spec.Args[i] = &pb.Arg{Kind: &pb.Arg_Value{Value: o.value}}
		}
	}
}

// SchedulingKey names the scheduling class of tasks with these options:
// their resource shape and strategy. Callers that submit many tasks with
// the same options compute it once (TaskOptions.Key).
func SchedulingKey(opts TaskOptions) string {
	names := make([]string, 0, len(opts.Resources))
	for n, v := range opts.Resources {
		if v != 0 {
			names = append(names, fmt.Sprintf("%s=%g", n, v))
		}
	}
	sort.Strings(names)
	key := strings.Join(names, ",") + "|" + opts.Strategy.String()
	if !retriable(opts) {
		key += "|once" // leases of retriable work are the memory monitor's first choice
	}
	if opts.FailIfInfeasible {
		key += "|failfast"
	}
	return key
}

func retriable(opts TaskOptions) bool { return opts.MaxRetries != 0 || opts.OOMRetries != 0 }

func (cw *CoreWorker) keyLocked(opts TaskOptions) *schedKey {
	name := opts.Key
	if name == "" {
		name = SchedulingKey(opts)
	}
	if k, ok := cw.keys[name]; ok {
		return k
	}
	k := &schedKey{name: name, depth: 1, req: &pb.LeaseRequest{
		JobId: cw.cfg.JobID.Bytes(), Resources: &pb.Resources{Amounts: opts.Resources}, SchedulingKey: name, Strategy: opts.Strategy,
		OwnerId: cw.workerID.Bytes(), Retriable: retriable(opts), FailIfInfeasible: opts.FailIfInfeasible,
	}}
	cw.keys[name] = k
	return k
}

// queueTask puts a task whose arguments are resolved in its class's queue.
func (cw *CoreWorker) queueTask(t *task) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.queueTaskLocked(t)
}

func (cw *CoreWorker) queueTaskLocked(t *task) {
	if t.cancelled {
		cw.finishLocked(t, errs.ToInfo(&errs.CancelledError{Function: t.spec.Function, TaskID: t.id().String()}))
		return
	}
	if t.depErr != nil {
		cw.finishLocked(t, t.depErr)
		return
	}
	t.key.queue = append(t.key.queue, t)
	cw.pumpLocked(t.key)
}

// pumpLocked sends queued tasks to leased workers with room, and asks for
// more leases while tasks wait.
func (cw *CoreWorker) pumpLocked(k *schedKey) {
	n := 0
	for ; n < len(k.queue); n++ {
		var best *leasedWorker
		for _, lw := range k.leases {
			if !lw.dead && !lw.returned && len(lw.inflight) < k.depth && (best == nil || len(lw.inflight) < len(best.inflight)) {
				best = lw
			}
		}
		if best == nil {
			break
		}
		t := k.queue[n]
		t.lw = best
		best.inflight[t.id()] = t
		best.lastUsed = time.Now()
		best.sendCh <- t.spec
	}
	k.queue = dropFront(k.queue, n)
	if len(k.queue) == 0 {
		if k.pendingLeases > 0 && k.cancelLeases != nil {
			k.cancelLeases()
			k.cancelLeases, k.leaseCtx = nil, nil
		}
		return
	}
	want := min(cw.cfg.MaxPendingLeases, len(k.queue)) - k.pendingLeases
	if cw.closed || want <= 0 {
		return
	}
	if k.leaseCtx == nil {
		k.leaseCtx, k.cancelLeases = context.WithCancel(cw.ctx)
	}
	for range want {
		k.pendingLeases++
		ctx := k.leaseCtx
		cw.wg.Add(1)
		go func() { defer cw.wg.Done(); cw.requestLease(ctx, k) }()
	}
}

// requestLease asks the local node daemon (then, on spillback, another
// node) for a worker, and starts pushing tasks to it.
func (cw *CoreWorker) requestLease(ctx context.Context, k *schedKey) {
	addr := cw.rayletAddr
	base := proto.Clone(k.req).(*pb.LeaseRequest)
	req := base
	backoff := 20 * time.Millisecond
	for attempt := 0; ; attempt++ {
		// Each call gets its own id, for CancelLease should it be abandoned.
		req = proto.Clone(req).(*pb.LeaseRequest)
		req.RequestId = ids.New().Bytes()
		conn, err := cw.pool.Get(addr)
		var reply *pb.LeaseReply
		if err == nil {
			reply, err = pb.NewNodeDaemonClient(conn).RequestLease(ctx, req)
		}
		if err == nil && reply.GetSpillbackAddress() != "" {
			addr = reply.GetSpillbackAddress()
			req.GrantOrReject = true
			continue
		}
		if err == nil && reply.GetInfeasible() != nil {
			// No node can hold the request now: warn once for the class and
			// ask again to wait, reported as an infeasible demand, for a
			// node that can hold it (the wire contract in raygo.proto).
			cw.warnInfeasible(k, errs.FromInfo(reply.GetInfeasible()))
			base.QueueIfInfeasible = true
			req.QueueIfInfeasible = true
			continue
		}
		if err == nil && reply.GetCanceled() {
			cw.leaseDone(k, nil)
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				// Abandoned (the class's queue drained) with no reply seen:
				// withdraw it, so that a grant lost in transit is given back.
				if cw.ctx.Err() == nil && conn != nil {
					cctx, cancel := context.WithTimeout(cw.ctx, time.Second)
					_, _ = pb.NewNodeDaemonClient(conn).CancelLease(cctx, &pb.CancelLeaseRequest{RequestId: req.RequestId})
					cancel()
				}
				cw.leaseDone(k, nil)
				return
			}
			retryable := isUnavailable(err) && attempt < 50
			if !retryable {
				cw.leaseDone(k, err)
				return
			}
			if addr != cw.rayletAddr {
				addr, req = cw.rayletAddr, base
			}
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				cw.leaseDone(k, nil)
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		lw, err := cw.connectWorker(k, reply, addr)
		if err != nil {
			cw.leaseDone(k, nil)
			return
		}
		cw.mu.Lock()
		k.pendingLeases--
		if cw.closed {
			lw.returned = true
			cw.mu.Unlock()
			cw.returnLease(lw, false)
			return
		}
		k.leases = append(k.leases, lw)
		cw.pumpLocked(k)
		cw.mu.Unlock()
		return
	}
}

// warnInfeasible logs, once per scheduling class, that its tasks wait for
// a node that can hold them.
func (cw *CoreWorker) warnInfeasible(k *schedKey, err error) {
	cw.mu.Lock()
	warned := k.warnedInfeasible
	k.warnedInfeasible = true
	fn := ""
	if len(k.queue) > 0 {
		fn = k.queue[0].spec.Function
	}
	cw.mu.Unlock()
	if !warned {
		slog.Warn("raygo: tasks wait for a node that can hold their resources; no node in the cluster can now (add one, or lower the request)",
			"function", fn, "error", err)
	}
}

// leaseDone ends a lease request that produced no lease; err, if set, can
// never be satisfied and fails the class's queued tasks.
func (cw *CoreWorker) leaseDone(k *schedKey, err error) {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	k.pendingLeases--
	if err != nil {
		var ie *errs.InfeasibleError
		if errors.As(err, &ie) && len(k.queue) > 0 {
			ie.Function = k.queue[0].spec.Function
		}
		info := errs.ToInfo(err)
		q := k.queue
		k.queue = nil
		for _, t := range q {
			cw.finishLocked(t, info)
		}
		return
	}
	cw.pumpLocked(k)
}

// finishLocked completes a task with one error for all its returns.
func (cw *CoreWorker) finishLocked(t *task, info *pb.ErrorInfo) {
	vals := make([]*pb.Value, t.returnCount())
	for i := range vals {
		vals[i] = &pb.Value{Error: info}
	}
	cw.completeLocked(t, vals)
}

// completeLocked stores a task's return values and releases its holds.
func (cw *CoreWorker) completeLocked(t *task, vals []*pb.Value) {
	for i, o := range t.rets {
		if o.gone || i >= len(vals) { // freed: every handle was dropped
			continue
		}
		if n := vals[i].GetNested(); len(n) > 0 {
			wire := make([]codec.Ref, len(n))
			for j, r := range n {
				wire[j] = codec.Ref{ID: r.Id, OwnerID: r.OwnerId, OwnerAddress: r.OwnerAddress}
			}
			o.nested = cw.addContainedLocked(wire)
			for _, id := range o.nested {
				if c := cw.objects[id]; c != nil && !c.owned {
					c.registered = true // the executing worker registered us with the owner
				}
			}
		}
		cw.setReadyLocked(o, vals[i])
	}
	cw.releaseHoldsLocked(t)
}

func (cw *CoreWorker) releaseHoldsLocked(t *task) {
	for _, id := range t.holds {
		if o, ok := cw.objects[id]; ok && o.submitted > 0 {
			o.submitted--
			cw.maybeFreeLocked(o)
		}
	}
	t.holds = nil
}

// Cancel stops the task that produces ref. A queued task is dropped; a
// running one has its context cancelled, or with force its worker killed.
// Cancelled tasks are never retried. Cancelling a finished task does
// nothing.
func (cw *CoreWorker) Cancel(ctx context.Context, ref *Ref, force bool) error {
	if ref.OwnerID != cw.workerID {
		return errs.Invalidf("raygo: Cancel: only the owner of a ref (the process that submitted the task) can cancel it")
	}
	cw.mu.Lock()
	o, ok := cw.objects[ref.ID]
	if !ok || o.task == nil {
		cw.mu.Unlock()
		return nil
	}
	t := o.task
	t.cancelled = true
	if t.actor != nil && force {
		cw.mu.Unlock()
		return errs.Invalidf("raygo: Cancel: force is not supported for actor calls; use Kill")
	}
	if t.lw == nil && t.actor == nil {
		if k := t.key; k != nil {
			for i, q := range k.queue {
				if q == t {
					k.queue = append(k.queue[:i], k.queue[i+1:]...)
					cw.finishLocked(t, errs.ToInfo(&errs.CancelledError{Function: t.spec.Function, TaskID: t.id().String()}))
					cw.pumpLocked(k) // withdraws lease requests nothing waits for now
					break
				}
			}
		}
		cw.mu.Unlock()
		return nil
	}
	addr := ""
	if t.lw != nil {
		addr = t.lw.addr
	} else if t.actor != nil {
		addr = t.actor.addr
	}
	cw.mu.Unlock()
	if addr == "" {
		return nil
	}
	conn, err := cw.pool.Get(addr)
	if err != nil {
		return err
	}
	_, err = pb.NewCoreWorkerClient(conn).CancelTask(ctx, &pb.CancelTaskRequest{TaskId: t.spec.TaskId, Force: force})
	if err != nil && isUnavailable(err) {
		return nil // the worker is gone; the failure path reports Cancelled
	}
	return err
}
