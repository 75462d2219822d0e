package coreworker

import (
	"context"
	"sync"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/wirecheck"
)

// resolver fetches the values of borrowed objects from their owners. It
// keeps one WatchObjects stream per owner, asks for each object once, and
// hands each value to the callbacks waiting for it: no goroutine per
// object or per waiter, one per owner stream. When an owner's stream
// breaks, everything asked of it fails with OwnerDied.
type resolver struct {
	cw *CoreWorker

	mu     sync.Mutex
	owners map[string]*ownerConn // guarded by mu
	closed bool                  // guarded by mu
}

// ownerConn is the stream to one owner.
type ownerConn struct {
	addr    string
	stream  pb.CoreWorker_WatchObjectsClient
	cancel  context.CancelFunc
	sendMu  sync.Mutex                   // serializes Send
	pending map[ids.ID][]func(*pb.Value) // guarded by resolver.mu
}

func newResolver(cw *CoreWorker) *resolver {
	return &resolver{cw: cw, owners: map[string]*ownerConn{}}
}

// fill asks the owner at owner for the value of slot's object and fills
// the slot with it (the slot object itself: if the slot has left the
// memory store meanwhile, nothing is stored).
func (r *resolver) fill(slot *memstore.Slot, owner string) {
	r.request([]ids.ID{slot.ID()}, owner, func(_ int, v *pb.Value) { r.cw.mem.Fill(slot, v) })
}

// request asks owner for the values of list; cb gets each one with its
// index in list, from the owner stream's goroutine (or this one, on
// failure). cb must not block.
func (r *resolver) request(list []ids.ID, owner string, cb func(i int, v *pb.Value)) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		failAll(list, cb, ownerDied(owner, "this process is shutting down"))
		return
	}
	c, ok := r.owners[owner]
	if !ok {
		var err error
		if c, err = r.open(owner); err != nil {
			r.mu.Unlock()
			failAll(list, cb, ownerDied(owner, err.Error()))
			return
		}
		r.owners[owner] = c
	}
	var ask [][]byte
	for i, id := range list {
		i := i
		f := func(v *pb.Value) { cb(i, v) }
		if _, asked := c.pending[id]; !asked {
			ask = append(ask, id.Bytes())
		}
		c.pending[id] = append(c.pending[id], f)
	}
	r.mu.Unlock()
	if len(ask) == 0 {
		return
	}
	c.sendMu.Lock()
	err := c.stream.Send(&pb.WatchObjectsRequest{ObjectIds: ask})
	c.sendMu.Unlock()
	if err != nil {
		c.cancel() // the receiver fails what is pending
	}
}

func failAll(list []ids.ID, cb func(int, *pb.Value), v *pb.Value) {
	for i := range list {
		cb(i, v)
	}
}

func ownerDied(owner, why string) *pb.Value {
	return &pb.Value{Error: errs.ToInfo(&errs.ObjectError{Kind: errs.KindOwnerDied,
		Detail: "its owner at " + owner + " is unreachable: " + why})}
}

// open starts a stream to owner and its receiving goroutine; r.mu is held.
func (r *resolver) open(owner string) (*ownerConn, error) {
	conn, err := r.cw.pool.Get(owner)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(r.cw.stop.Ctx())
	stream, err := pb.NewCoreWorkerClient(conn).WatchObjects(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	c := &ownerConn{addr: owner, stream: stream, cancel: cancel, pending: map[ids.ID][]func(*pb.Value){}}
	if err := r.cw.stop.Go("resolver.recv", func(context.Context) { r.recv(c) }); err != nil {
		cancel()
		return nil, err
	}
	return c, nil
}

func (r *resolver) recv(c *ownerConn) {
	for {
		reply, err := c.stream.Recv()
		if err == nil {
			err = wirecheck.WatchObjectsReply(reply)
		}
		if err != nil {
			r.broken(c, err)
			return
		}
		for _, ov := range reply.GetValues() {
			id, ok := ids.FromBytes(ov.GetObjectId())
			if !ok {
				continue
			}
			r.mu.Lock()
			cbs := c.pending[id]
			delete(c.pending, id)
			r.mu.Unlock()
			v := ov.GetValue()
			if v.GetError() != nil && v.GetError().GetObjectId() == "" {
				v.Error.ObjectId = id.String()
			}
			for _, cb := range cbs {
				cb(v)
			}
		}
	}
}

// broken fails everything asked of a stream that ended.
func (r *resolver) broken(c *ownerConn, cause error) {
	c.cancel()
	r.mu.Lock()
	if r.owners[c.addr] == c {
		delete(r.owners, c.addr)
	}
	pending := c.pending
	c.pending = map[ids.ID][]func(*pb.Value){}
	r.mu.Unlock()
	for id, cbs := range pending {
		v := ownerDied(c.addr, cause.Error())
		v.Error.ObjectId = id.String()
		for _, cb := range cbs {
			cb(v)
		}
	}
}

// close breaks every owner stream (their goroutines end with the core
// worker's stopper).
func (r *resolver) close() {
	r.mu.Lock()
	r.closed = true
	conns := make([]*ownerConn, 0, len(r.owners))
	for _, c := range r.owners {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.cancel()
	}
}

// ---------------------------------------------------------------- owner side

// watchObjects serves a borrower's WatchObjects stream: each asked object's
// value goes back once it is ready.
func (cw *CoreWorker) watchObjects(stream pb.CoreWorker_WatchObjectsServer) error {
	w := &watchOut{stream: stream}
	w.cond = sync.NewCond(&w.mu)
	done := make(chan error, 1)
	if err := cw.stop.Go("coreworker.watchsend", func(context.Context) { done <- w.send() }); err != nil {
		return errs.Systemf("coreworker: shutting down")
	}
	var err error
	for {
		req, rerr := stream.Recv()
		if rerr != nil {
			break
		}
		for _, b := range req.GetObjectIds() {
			id, ok := ids.FromBytes(b)
			if !ok {
				continue
			}
			slot := cw.ownedSlot(id)
			if slot == nil {
				w.push(id, memstore.FreedValue(id))
				continue
			}
			cw.mem.OnReady(slot, func(v *pb.Value) { w.push(id, v) })
		}
	}
	w.close()
	if serr := <-done; serr != nil {
		err = serr
	}
	return err
}

// ownedSlot returns the value slot of an object this process owns and
// still has in scope (or has rebuilt, out of scope, for a rebuild that
// reads it); nil otherwise.
func (cw *CoreWorker) ownedSlot(id ids.ID) *memstore.Slot {
	e, ok := cw.refs.Lookup(id)
	if !ok && cw.isRevived(id) {
		e, ok = cw.refs.LineageOnly(id) // rebuilt for a rebuild that reads it (rebuild.go)
	}
	if !ok || !e.Owned() {
		return nil
	}
	return e.Slot()
}

// knownSlot returns the value slot of an object in scope here (owned, or
// borrowed and read before); nil otherwise.
func (cw *CoreWorker) knownSlot(id ids.ID) *memstore.Slot {
	e, ok := cw.refs.Lookup(id)
	if !ok {
		return nil
	}
	return e.Slot()
}

// watchOut queues values for one WatchObjects stream.
type watchOut struct {
	stream pb.CoreWorker_WatchObjectsServer
	mu     sync.Mutex
	cond   *sync.Cond
	queue  []*pb.ObjectValue
	closed bool
}

func (w *watchOut) push(id ids.ID, v *pb.Value) {
	w.mu.Lock()
	if !w.closed {
		w.queue = append(w.queue, &pb.ObjectValue{ObjectId: id.Bytes(), Value: v})
	}
	w.mu.Unlock()
	w.cond.Signal()
}

func (w *watchOut) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cond.Signal()
}

func (w *watchOut) send() error {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed {
			w.cond.Wait()
		}
		if w.closed {
			w.mu.Unlock()
			return nil
		}
		batch := w.queue
		if len(batch) > wirecheck.MaxBatchTasks {
			batch = batch[:wirecheck.MaxBatchTasks:wirecheck.MaxBatchTasks]
			w.queue = w.queue[wirecheck.MaxBatchTasks:]
		} else {
			w.queue = nil
		}
		w.mu.Unlock()
		if err := w.stream.Send(&pb.WatchObjectsReply{Values: batch}); err != nil {
			w.mu.Lock()
			w.closed = true
			w.queue = nil
			w.mu.Unlock()
			return err
		}
	}
}
