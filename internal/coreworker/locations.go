package coreworker

import (
	"context"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// The owner's side of the object directory (objdir): node daemons that
// pull a copy of an object this process owns report it, and pullers ask
// where copies are. See docs/objmgr.md.

// ownedInStore returns the primary location of an owned, in-scope object
// (or one rebuilt out of scope for a rebuild that reads it) whose value
// lives in a store; ok is false for objects this process does not own
// (or no longer has).
func (cw *CoreWorker) ownedInStore(id ids.ID) (primary string, size int64, ok bool) {
	e, live := cw.refs.Lookup(id)
	if !live && cw.isRevived(id) {
		e, live = cw.refs.LineageOnly(id) // rebuilt for a rebuild that reads it (rebuild.go)
	}
	if !live || !e.Owned() {
		return "", 0, false
	}
	if e.Slot() == nil {
		return "", 0, true
	}
	v := e.Slot().Value() // nil while the value has not arrived
	if !v.GetInStore() {
		return "", v.GetSize(), true
	}
	return v.GetStoreAddress(), v.GetSize(), true
}

// ObjectLocations answers where copies of owned objects are: the primary
// first, then the nodes that pulled one.
func (s service) ObjectLocations(_ context.Context, req *pb.ObjectLocationsRequest) (*pb.ObjectLocationsReply, error) {
	cw := s.cw
	out := &pb.ObjectLocationsReply{Objects: make([]*pb.ObjectLocations, 0, len(req.GetObjectIds()))}
	for _, b := range req.GetObjectIds() {
		id, ok := ids.FromBytes(b)
		if !ok {
			continue
		}
		primary, size, owned := cw.ownedInStore(id)
		loc := &pb.ObjectLocations{ObjectId: b, Unknown: !owned, Size: size}
		if owned {
			loc.Nodes = cw.dir.Locations(id, primary)
		}
		out.Objects = append(out.Objects, loc)
	}
	return out, nil
}

// UpdateObjectLocation records that a node gained (or dropped, or began
// pulling) a copy of an owned object; a node that begins a pull learns
// where to read from. A copy of an object this process no longer has is
// answered unknown: the node drops it.
func (s service) UpdateObjectLocation(_ context.Context, req *pb.UpdateObjectLocationRequest) (*pb.UpdateObjectLocationReply, error) {
	cw := s.cw
	id, ok := ids.FromBytes(req.GetObjectId())
	if !ok {
		return &pb.UpdateObjectLocationReply{Unknown: true}, nil
	}
	if req.GetRemoved() {
		cw.dir.Remove(id, req.GetNode())
		return &pb.UpdateObjectLocationReply{}, nil
	}
	var primary string
	alive := func() bool {
		var owned bool
		primary, _, owned = cw.ownedInStore(id)
		return owned
	}
	if req.GetPulling() {
		nodes, ok := cw.dir.StartPull(id, req.GetNode(), "", alive)
		if ok {
			nodes = append([]string{primary}, nodes...)
		}
		return &pb.UpdateObjectLocationReply{Unknown: !ok, Nodes: nodes}, nil
	}
	return &pb.UpdateObjectLocationReply{Unknown: !cw.dir.Add(id, req.GetNode(), alive)}, nil
}
