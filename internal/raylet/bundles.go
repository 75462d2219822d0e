package raylet

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Placement-group bundles on this node: the control store reserves a
// group's bundles in two phases across nodes (gcs/placement.go).
// PrepareBundles allocates their resources, all or none; CommitBundles
// turns each allocation into the bundle's own resources
// (resources.AddBundle), which the group's tasks and actors ask for;
// CancelBundles rolls a prepare back or, for a removed group, stops what
// runs in its bundles and gives their resources back.

// maxRemembered bounds the removed groups a node remembers (requests for
// them fail here without asking the control store).
const maxRemembered = 4096

type bundleRef struct {
	group ids.ID
	index int
}

// bundleTable is the node's bundle state, guarded by Raylet.mu.
type bundleTable struct {
	prepared map[bundleRef]resources.Allocation
	// epoch: the control store incarnation that prepared each bundle
	// held here, prepared or committed (see ReleaseUnused).
	epoch   map[bundleRef]uint64
	removed map[ids.ID]bool
	order   []ids.ID // removed, oldest first
}

func (t *bundleTable) remember(group ids.ID) {
	if t.removed == nil {
		t.removed = map[ids.ID]bool{}
	}
	if t.removed[group] {
		return
	}
	t.removed[group] = true
	t.order = append(t.order, group)
	if len(t.order) > maxRemembered {
		delete(t.removed, t.order[0])
		t.order = t.order[1:]
	}
}

// PrepareBundles allocates the bundles' resources here, all or none. A
// bundle prepared or committed already is left as it is (a retried call).
func (r *Raylet) PrepareBundles(_ context.Context, req *pb.PrepareBundlesRequest) (*pb.PrepareBundlesReply, error) {
	group, ok := ids.FromBytes(req.GetGroupId())
	if !ok {
		return nil, errs.Invalidf("raylet: PrepareBundles needs a group id")
	}
	for _, b := range req.GetBundles() {
		if err := resources.Validate(b.GetResources().GetAmounts()); err != nil {
			return nil, errs.Invalidf("raylet: bundle %d: %v", b.GetIndex(), err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return nil, errStopping()
	}
	if r.bundles.removed[group] {
		return nil, &errs.PlacementGroupRemovedError{GroupID: group.String()}
	}
	if r.bundles.prepared == nil {
		r.bundles.prepared = map[bundleRef]resources.Allocation{}
	}
	var done []bundleRef
	for _, b := range req.GetBundles() {
		ref := bundleRef{group, int(b.GetIndex())}
		if _, have := r.bundles.prepared[ref]; have || r.committedLocked(ref) {
			continue
		}
		a, ok := r.res.Allocate(b.GetResources().GetAmounts())
		if !ok {
			for _, d := range done {
				_ = r.res.Release(r.bundles.prepared[d])
				delete(r.bundles.prepared, d)
				delete(r.bundles.epoch, d)
			}
			ask := resources.Set(b.GetResources().GetAmounts())
			return nil, errs.Systemf("raylet: node %s has no room for bundle %d %v of placement group %s now (available of those: %v)",
				r.nodeID.Short(), b.GetIndex(), ask, group.Short(), availableOf(r.res.Available(), ask))
		}
		r.bundles.prepared[ref] = a
		if r.bundles.epoch == nil {
			r.bundles.epoch = map[bundleRef]uint64{}
		}
		r.bundles.epoch[ref] = req.GetControlStoreEpoch()
		done = append(done, ref)
	}
	if req.GetCommit() {
		for _, ref := range done {
			a := r.bundles.prepared[ref]
			delete(r.bundles.prepared, ref)
			if err := r.res.AddBundle(group.String(), ref.index, a); err != nil {
				return nil, errs.Systemf("raylet: commit bundle %d of %s: %v", ref.index, group.Short(), err)
			}
		}
		r.dispatchLocked()
	}
	return &pb.PrepareBundlesReply{}, nil
}

func (r *Raylet) committedLocked(ref bundleRef) bool {
	return r.res.HasBundle(ref.group.String(), ref.index)
}

// CommitBundles makes prepared bundles the group's resources here.
// Committing a bundle that is committed already does nothing; one never
// prepared is an error.
func (r *Raylet) CommitBundles(_ context.Context, req *pb.CommitBundlesRequest) (*pb.CommitBundlesReply, error) {
	group, ok := ids.FromBytes(req.GetGroupId())
	if !ok {
		return nil, errs.Invalidf("raylet: CommitBundles needs a group id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, i := range req.GetIndexes() {
		ref := bundleRef{group, int(i)}
		a, have := r.bundles.prepared[ref]
		if !have {
			if r.committedLocked(ref) {
				continue
			}
			return nil, errs.NotFoundf("raylet: bundle %d of placement group %s was not prepared here", i, group.Short())
		}
		delete(r.bundles.prepared, ref)
		if err := r.res.AddBundle(group.String(), ref.index, a); err != nil {
			return nil, errs.Systemf("raylet: commit bundle %d of %s: %v", i, group.Short(), err)
		}
	}
	r.dispatchLocked() // queued work for the group may fit now
	return &pb.CommitBundlesReply{}, nil
}

// CancelBundles gives back the group's bundles here (the listed ones, or
// all): prepared ones are released; committed ones first have the workers
// leased with their resources stopped. With removed, the group is gone:
// lease requests waiting for it here fail, and so do later ones.
func (r *Raylet) CancelBundles(_ context.Context, req *pb.CancelBundlesRequest) (*pb.CancelBundlesReply, error) {
	group, ok := ids.FromBytes(req.GetGroupId())
	if !ok {
		return nil, errs.Invalidf("raylet: CancelBundles needs a group id")
	}
	r.mu.Lock()
	stop := r.cancelBundlesLocked(group, req.GetIndexes(), req.GetRemoved())
	for _, b := range req.GetMoreRemoved() {
		if g, ok := ids.FromBytes(b); ok {
			stop = append(stop, r.cancelBundlesLocked(g, nil, true)...)
		}
	}
	r.dispatchLocked()
	r.mu.Unlock()
	for _, w := range stop {
		w.kill()
	}
	return &pb.CancelBundlesReply{}, nil
}

// cancelBundlesLocked gives back bundles indexes of group (none: all of
// them) and returns the workers leased with them, to stop; removed: the
// group is gone, and lease requests for it fail.
func (r *Raylet) cancelBundlesLocked(group ids.ID, indexes []int32, removed bool) (stop []*worker) {
	want := map[int]bool{}
	for _, i := range indexes {
		want[int(i)] = true
	}
	all := len(want) == 0
	name := group.String()
	for ref, a := range r.bundles.prepared {
		if ref.group == group && (all || want[ref.index]) {
			_ = r.res.Release(a)
			delete(r.bundles.prepared, ref)
			delete(r.bundles.epoch, ref)
		}
	}
	for _, i := range r.res.Bundles(name) {
		if !all && !want[i] {
			continue
		}
		suffix := "_group_" + strconv.Itoa(i) + "_" + name
		for _, l := range r.leases {
			if usesBundle(l.alloc, suffix) && !l.w.dead {
				l.w.killReason = "its placement group's bundle was removed"
				stop = append(stop, l.w)
			}
		}
		_ = r.res.RemoveBundle(name, i)
		delete(r.bundles.epoch, bundleRef{group, i})
	}
	if all {
		// Leases of the group's wildcard resources are in its bundles too.
		for _, l := range r.leases {
			if usesBundle(l.alloc, "_group_"+name) && !l.w.dead && l.w.killReason == "" {
				l.w.killReason = "its placement group was removed"
				stop = append(stop, l.w)
			}
		}
	}
	if removed {
		r.bundles.remember(group)
		gone := &errs.PlacementGroupRemovedError{GroupID: name}
		r.failQueuedLocked(func(p *pendingLease) bool { return inGroup(p.req, group) }, gone)
	}
	return stop
}

// availableOf is the part of avail that names the resources of ask.
func availableOf(avail, ask resources.Set) resources.Set {
	out := resources.Set{}
	for k := range ask {
		out[k] = avail[k]
	}
	return out
}

// usesBundle reports whether a lease holds resources whose names end in
// suffix (a bundle's "_group_<i>_<group>", a group's "_group_<group>").
func usesBundle(a resources.Allocation, suffix string) bool {
	for k := range a.Resources {
		if strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

func inGroup(req *pb.LeaseRequest, group ids.ID) bool {
	g, ok := ids.FromBytes(req.GetScheduling().GetPlacementGroupId())
	return ok && g == group
}

// groupRemoved reports whether a lease request is for a placement group
// that is gone: removed here already, or unknown to (or removed in) the
// control store. It asks the control store only for requests that no
// node can hold now (a group not created yet, or removed).
func (r *Raylet) groupRemoved(ctx context.Context, req *pb.LeaseRequest) error {
	g, ok := ids.FromBytes(req.GetScheduling().GetPlacementGroupId())
	if !ok {
		return nil
	}
	r.mu.Lock()
	known := r.bundles.removed[g]
	r.mu.Unlock()
	if !known {
		reply, err := r.gcs.GetPlacementGroup(ctx, &pb.GetPlacementGroupRequest{GroupId: g.Bytes()})
		switch {
		case errors.Is(err, errs.ErrNotFound):
		case err != nil:
			return nil // cannot tell: let it wait
		case reply.GetGroup().GetState() != pb.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED:
			return nil
		default:
			r.mu.Lock()
			r.bundles.remember(g)
			r.mu.Unlock()
			return &errs.PlacementGroupRemovedError{GroupID: g.String(), Function: req.GetSchedulingKey(), Name: reply.GetGroup().GetName()}
		}
	}
	return &errs.PlacementGroupRemovedError{GroupID: g.String(), Function: req.GetSchedulingKey()}
}

// ReleaseUnused gives back what a control store that restarted from
// storage (incarnation req.epoch) no longer uses here: the actor leases
// granted to its earlier incarnations and not in keep_leases (their
// workers stop; an actor in a shared process leaves it), and the bundles
// its earlier incarnations prepared that are not in keep_bundles (their
// workers stop too). Those of actors and groups it is placing again were
// lost with the old incarnation's unwritten changes. Leases and bundles
// of epoch and later are not touched.
func (r *Raylet) ReleaseUnused(_ context.Context, req *pb.ReleaseUnusedRequest) (*pb.ReleaseUnusedReply, error) {
	if req.GetEpoch() == 0 {
		return nil, errs.Invalidf("raylet: ReleaseUnused needs the control store's epoch")
	}
	keepLease := map[ids.ID]bool{}
	for _, b := range req.GetKeepLeases() {
		if id, ok := ids.FromBytes(b); ok {
			keepLease[id] = true
		}
	}
	keepBundle := map[bundleRef]bool{}
	for _, b := range req.GetKeepBundles() {
		if g, ok := ids.FromBytes(b.GetGroupId()); ok {
			keepBundle[bundleRef{g, int(b.GetIndex())}] = true
		}
	}
	r.mu.Lock()
	var stop []*worker
	reply := &pb.ReleaseUnusedReply{}
	for id, l := range r.leases {
		if !l.actor || !l.owner.IsNil() || l.epoch >= req.GetEpoch() || keepLease[id] {
			continue
		}
		if w := r.returnLeaseLocked(id, false); w != nil {
			if w.killReason == "" {
				w.killReason = "its actor was placed again by the restarted control store"
			}
			stop = append(stop, w)
		}
		reply.LeasesReleased++
	}
	byGroup := map[ids.ID][]int32{}
	for ref, e := range r.bundles.epoch {
		if e < req.GetEpoch() && !keepBundle[ref] {
			byGroup[ref.group] = append(byGroup[ref.group], int32(ref.index))
			reply.BundlesReleased++
		}
	}
	for g, idx := range byGroup {
		stop = append(stop, r.cancelBundlesLocked(g, idx, false)...)
	}
	r.dispatchLocked()
	r.mu.Unlock()
	for _, w := range stop {
		w.kill()
	}
	if reply.LeasesReleased > 0 || reply.BundlesReleased > 0 {
		r.log.Info("gave back what the restarted control store no longer uses", "epoch", req.GetEpoch(),
			"leases", reply.LeasesReleased, "bundles", reply.BundlesReleased)
	}
	return reply, nil
}
