package coreworker

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/raygo/raygo/internal/coreworker/memstore"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// connectStore connects to the local node's shared-memory store. A process
// whose node daemon is on another machine has none; it then moves objects
// through the daemon's gRPC endpoint (copies).
func (cw *CoreWorker) connectStore() {
	kind := "driver"
	if cw.cfg.Mode == Worker {
		kind = "worker"
	}
	name, err := objstore.SocketName(cw.cfg.NodeAddress)
	if err != nil {
		return // no local sockets here (windows): the daemon's gRPC path
	}
	// The hello names this process's job and worker id: the store frees
	// what it owns when it is gone (objstore.md, "Job end").
	c, err := objstore.DialAs(name, cw.cfg.Token,
		objstore.Who{Name: kind + " " + cw.cfg.WorkerID.Short(), Job: cw.cfg.JobID, Worker: cw.cfg.WorkerID})
	if err != nil {
		return
	}
	cw.store = c
}

// makeValue wraps an encoded value (the concatenation of parts) as a
// Value, putting large ones into the local node's store, owned by this
// process.
func (cw *CoreWorker) makeValue(ctx context.Context, id ids.ID, parts [][]byte, callSite string) (*pb.Value, error) {
	return cw.makeValueFor(ctx, id, parts, callSite, cw.cfg.WorkerID, cw.address)
}

// makeValueFor is makeValue for an object owned by another process (a
// task's return, owned by its caller): the store frees it when that owner
// is gone.
func (cw *CoreWorker) makeValueFor(ctx context.Context, id ids.ID, parts [][]byte, callSite string, owner ids.ID, ownerAddr string) (*pb.Value, error) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if size <= cw.cfg.InlineThreshold {
		data := parts[0]
		if len(parts) > 1 {
			data = make([]byte, 0, size)
			for _, p := range parts {
				data = append(data, p...)
			}
		}
		return &pb.Value{Data: data, Size: int64(size)}, nil
	}
	if cw.store != nil {
		if err := cw.store.Put(id, parts, objstore.Info{Owner: ownerAddr, OwnerID: owner, CallSite: callSite}); err != nil {
			return nil, err
		}
	} else {
		data := make([]byte, 0, size)
		for _, p := range parts {
			data = append(data, p...)
		}
		if _, err := cw.raylet.PutObject(ctx, &pb.PutObjectRequest{ObjectId: id.Bytes(), Data: data, OwnerId: owner.Bytes(), OwnerAddress: ownerAddr}); err != nil {
			return nil, err
		}
	}
	return &pb.Value{InStore: true, StoreAddress: cw.cfg.NodeAddress, Size: int64(size)}, nil
}

// PutFill creates an object of size encoded bytes directly in the local
// store, filled by fill (no intermediate copy), owned by this process.
// fill gets a Writer's view: writing it after fill returns faults.
func (cw *CoreWorker) PutFill(ctx context.Context, size int64, fill func([]byte) error, callSite string) (*Ref, error) {
	if cw.store == nil {
		buf := make([]byte, size)
		if err := fill(buf); err != nil {
			return nil, err
		}
		return cw.Put(ctx, [][]byte{buf}, nil, callSite)
	}
	id := ids.New()
	w, err := cw.store.Create(id, size, objstore.Info{Owner: cw.address, CallSite: callSite})
	if err != nil {
		return nil, err
	}
	if err := fill(w.Bytes()); err != nil {
		w.Abort()
		return nil, err
	}
	if err := w.Seal(); err != nil {
		return nil, err
	}
	h := cw.own(id, &pb.Value{InStore: true, StoreAddress: cw.cfg.NodeAddress, Size: size}, nil)
	cw.putBy(ctx, h)
	return h, nil
}

// valueBytes returns a value's encoded bytes. Objects in a store are read
// from the local store (zero-copy: the bytes alias shared memory until
// release is called) or fetched from the node that holds them.
func (cw *CoreWorker) valueBytes(ctx context.Context, r *Ref, v *pb.Value) (data []byte, release func(), err error) {
	data, release, err = cw.readValue(ctx, r, v)
	if nv, lost := cw.rebuilt(ctx, r, err); lost != nil {
		return nil, nil, lost
	} else if nv != nil {
		return cw.readValue(ctx, r, nv)
	}
	return data, release, err
}

// readValue is valueBytes without the rebuild of lost objects.
func (cw *CoreWorker) readValue(ctx context.Context, r *Ref, v *pb.Value) (data []byte, release func(), err error) {
	id := r.ID
	if v.GetError() != nil || !v.GetInStore() {
		return v.GetData(), nil, nil
	}
	if cw.store != nil {
		data, release, err := cw.store.Pin(id)
		if err == nil {
			return data, release, nil
		}
		if !errors.Is(err, objstore.ErrNotFound) {
			return nil, nil, err
		}
		if v.GetStoreAddress() == cw.cfg.NodeAddress {
			return nil, nil, lostInStore(id, v)
		}
		// Fetch a copy into this node's store (a secondary copy, evictable).
		if err := cw.fetchToStore(ctx, r, v); err != nil {
			return nil, nil, err
		}
		data, release, err = cw.store.Pin(id)
		if errors.Is(err, objstore.ErrNotFound) { // evicted at once: the store is very busy
			err = lostInStore(id, v)
		}
		return data, release, err
	}
	data, err = cw.fetch(ctx, id, v, nil)
	return data, nil, err
}

func lostInStore(id ids.ID, v *pb.Value) error {
	return &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost, Detail: "not in the object store of " + v.GetStoreAddress()}
}

// fetchToStore has the node daemon make a remote object local: its
// object manager pulls it (merged with other pulls of it on this node,
// from any node holding a copy, under the store's pull budget) as a
// secondary copy owned by the object's owner (freed when it is gone).
func (cw *CoreWorker) fetchToStore(ctx context.Context, r *Ref, v *pb.Value) error {
	req := &pb.PullObjectRequest{ObjectId: r.ID.Bytes(), Size: v.GetSize(), OwnerAddress: r.OwnerAddr,
		Locations: []string{v.GetStoreAddress()}}
	if !r.OwnerID.IsNil() {
		req.OwnerId = r.OwnerID.Bytes()
	}
	_, err := cw.raylet.PullObject(ctx, req)
	if err != nil && ctx.Err() != nil {
		return ctxErr(ctx, "object "+r.ID.String())
	}
	return err
}

// fetch streams an object from the node daemon holding it, into dst when
// given (it must be the object's size), else into a new buffer.
func (cw *CoreWorker) fetch(ctx context.Context, id ids.ID, v *pb.Value, dst []byte) ([]byte, error) {
	conn, err := cw.pool.Get(v.GetStoreAddress())
	if err != nil {
		return nil, err
	}
	stream, err := pb.NewNodeDaemonClient(conn).FetchObject(ctx, &pb.GetObjectRequest{ObjectId: id.Bytes()})
	if err != nil {
		return nil, cw.fetchErr(id, v, err)
	}
	var n int64
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, cw.fetchErr(id, v, err)
		}
		if dst == nil {
			dst = make([]byte, chunk.GetTotal())
		}
		if n+int64(len(chunk.GetData())) > int64(len(dst)) {
			return nil, errs.Systemf("raygo: object %s from %s is larger than its recorded size %d", id, v.GetStoreAddress(), len(dst))
		}
		n += int64(copy(dst[n:], chunk.GetData()))
	}
	if n != int64(len(dst)) {
		return nil, errs.Systemf("raygo: object %s from %s: got %d of %d bytes", id, v.GetStoreAddress(), n, len(dst))
	}
	return dst, nil
}

func (cw *CoreWorker) fetchErr(id ids.ID, v *pb.Value, err error) error {
	if rpc.IsUnavailable(err) {
		return &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost, Detail: "its node at " + v.GetStoreAddress() + " is unreachable"}
	}
	if errors.Is(err, errs.ErrNotFound) {
		return lostInStore(id, v)
	}
	return fmt.Errorf("raygo: fetch object %s from %s: %w", id, v.GetStoreAddress(), err)
}

// Buffer is a zero-copy view of an object: Data aliases shared memory
// until Release (see objstore.Buffer). Inline objects are plain memory.
type Buffer struct {
	Data    []byte
	release func()
}

// Release ends the view.
func (b *Buffer) Release() {
	if b.release != nil {
		b.release()
	}
}

// GetBuffer waits for an object and returns a zero-copy view of its
// encoded bytes (with error values reported as errors): one pin in the
// local store, the object fetched into it first if it lives elsewhere.
func (cw *CoreWorker) GetBuffer(ctx context.Context, r *Ref) (*Buffer, error) {
	slot, err := cw.slotFor(r)
	if err != nil {
		return nil, err
	}
	blocking, done := cw.blockingFor(ctx)
	vals, err := cw.mem.Get(ctx, []*memstore.Slot{slot}, blocking)
	done()
	if err != nil {
		return nil, ctxErr(ctx, "object "+r.ID.String())
	}
	v := vals[0]
	if e := v.GetError(); e != nil {
		return nil, errs.FromInfo(e)
	}
	if !v.GetInStore() || cw.store == nil {
		data, release, err := cw.valueBytes(ctx, r, v) // inline, or copied from a remote node
		if err != nil {
			return nil, err
		}
		return &Buffer{Data: data, release: release}, nil
	}
	b, err := cw.storeBuffer(ctx, r, v)
	if nv, lost := cw.rebuilt(ctx, r, err); lost != nil {
		return nil, lost
	} else if nv != nil {
		return cw.storeBuffer(ctx, r, nv)
	}
	return b, err
}

// storeBuffer is a zero-copy view of an in-store object, fetched into the
// local store first if it lives elsewhere.
func (cw *CoreWorker) storeBuffer(ctx context.Context, r *Ref, v *pb.Value) (*Buffer, error) {
	b, err := cw.store.Get(r.ID)
	if errors.Is(err, objstore.ErrNotFound) && v.GetStoreAddress() != cw.cfg.NodeAddress {
		if err = cw.fetchToStore(ctx, r, v); err == nil {
			b, err = cw.store.Get(r.ID)
		}
	}
	if err != nil {
		if errors.Is(err, objstore.ErrNotFound) {
			return nil, lostInStore(r.ID, v)
		}
		return nil, err
	}
	return &Buffer{Data: b.Bytes(), release: b.Release}, nil
}
