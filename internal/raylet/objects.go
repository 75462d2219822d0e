package raylet

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
)

// fetchChunk is the size of the pieces FetchObject streams.
const fetchChunk = 4 << 20

// newStore creates the node's shared-memory object store, serving its
// socket next to the daemon's gRPC address.
func newStore(cfg Config, addr string) (*objstore.Store, error) {
	capacity := cfg.ObjectStoreBytes
	if capacity <= 0 {
		var err error
		if capacity, err = objstore.DefaultCapacity(); err != nil {
			return nil, err
		}
	}
	spill := cfg.SpillDir
	if spill == "" && cfg.SessionDir != "" {
		spill = filepath.Join(cfg.SessionDir, "spill")
	}
	sock, err := objstore.SocketName(addr)
	if err != nil {
		return nil, fmt.Errorf("raylet: object store socket: %w", err)
	}
	// A file-backed region (darwin) is made in the session directory.
	return objstore.New(objstore.Config{Capacity: capacity, SpillDir: spill, Prefault: cfg.PrefaultObjectStore,
		PutTimeout: cfg.ObjectPutTimeout, NodeID: cfg.NodeID, Token: cfg.Token, SocketName: sock, RegionDir: cfg.SessionDir})
}

// PutObject stores an object sent by a process without a local store.
func (r *Raylet) PutObject(_ context.Context, req *pb.PutObjectRequest) (*pb.PutObjectReply, error) {
	id, ok := ids.FromBytes(req.GetObjectId())
	if !ok {
		return nil, errs.Invalidf("raylet: PutObject needs an object id")
	}
	if err := r.store.Put(id, req.GetData(), req.GetOwnerAddress(), ids.MustFromBytes(req.GetOwnerId())); err != nil {
		return nil, err
	}
	return &pb.PutObjectReply{}, nil
}

// GetObject returns a whole object (bounded by the gRPC message size;
// FetchObject streams any size).
func (r *Raylet) GetObject(_ context.Context, req *pb.GetObjectRequest) (*pb.GetObjectReply, error) {
	id, ok := ids.FromBytes(req.GetObjectId())
	if !ok {
		return nil, errs.Invalidf("raylet: GetObject needs an object id")
	}
	var data []byte
	found, err := r.store.Read(id, func(b []byte) error {
		data = append([]byte(nil), b...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &pb.GetObjectReply{Data: data, Found: found}, nil
}

// FetchObject streams an object in chunks; the first carries its size.
func (r *Raylet) FetchObject(req *pb.GetObjectRequest, stream pb.NodeDaemon_FetchObjectServer) error {
	id, ok := ids.FromBytes(req.GetObjectId())
	if !ok {
		return errs.Invalidf("raylet: FetchObject needs an object id")
	}
	found, err := r.store.Read(id, func(b []byte) error {
		total := int64(len(b))
		for off := 0; ; off += fetchChunk {
			end := min(off+fetchChunk, len(b))
			msg := &pb.ObjectChunk{Data: b[off:end]}
			if off == 0 {
				msg.Total = total
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
			if end == len(b) {
				return nil
			}
		}
	})
	if err != nil {
		return err
	}
	if !found {
		return errs.NotFoundf("raylet: object %s is not in the store of node %s", id, r.nodeID)
	}
	return nil
}

// FreeObjects deletes objects whose owners hold no more references.
func (r *Raylet) FreeObjects(_ context.Context, req *pb.FreeObjectsRequest) (*pb.FreeObjectsReply, error) {
	for _, b := range req.GetObjectIds() {
		if id, ok := ids.FromBytes(b); ok {
			r.store.Delete(id)
		}
	}
	return &pb.FreeObjectsReply{}, nil
}

// FreeOwned frees the objects of owners that are gone and, for finished
// jobs, stops their workers now (see jobFinished); the control store sends
// it when a job ends and when a worker dies anywhere in the cluster.
func (r *Raylet) FreeOwned(_ context.Context, req *pb.FreeOwnedRequest) (*pb.FreeOwnedReply, error) {
	keep := map[ids.ID]bool{}
	for _, b := range req.GetKeepOwnerIds() {
		keep[ids.MustFromBytes(b)] = true
	}
	for _, b := range req.GetFinishedJobIds() {
		r.jobFinished(ids.MustFromBytes(b), func(l *lease) bool { return !keep[l.owner] && !keep[l.w.id] })
	}
	dead := make([]ids.ID, 0, len(req.GetDeadOwnerIds()))
	for _, b := range req.GetDeadOwnerIds() {
		dead = append(dead, ids.MustFromBytes(b))
	}
	r.store.FreeOwners(dead...)
	if len(dead) > 0 {
		r.ownersGone(func(owner, _ ids.ID) bool { return slices.Contains(dead, owner) }, "the process that leased it died")
	}
	return &pb.FreeOwnedReply{}, nil
}
