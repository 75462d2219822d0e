package ray

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/coreworker"
	"github.com/raygo/raygo/internal/coreworker/groupops"
	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/wirecheck"
)

// Bundle is the resources one part of a placement group reserves on one
// node: {"CPU": 2, "GPU": 1}.
type Bundle = map[string]float64

// PlacementStrategy is how a placement group's bundles are spread over
// nodes.
type PlacementStrategy int

const (
	// PlacementPack puts the bundles on as few nodes as possible.
	PlacementPack PlacementStrategy = iota
	// PlacementSpread puts each bundle on a different node while nodes
	// with room remain, then doubles up.
	PlacementSpread
	// PlacementStrictPack puts every bundle on one node, or waits.
	PlacementStrictPack
	// PlacementStrictSpread puts every bundle on a different node, or
	// waits.
	PlacementStrictSpread
)

func (s PlacementStrategy) String() string {
	if n, ok := pb.PlacementStrategy_name[int32(s)]; ok {
		return n[len("PLACEMENT_STRATEGY_"):]
	}
	return fmt.Sprintf("PlacementStrategy(%d)", int(s))
}

// PlacementGroupState is where a placement group stands.
type PlacementGroupState string

// The states of a placement group, as Ray names them.
const (
	GroupPending      PlacementGroupState = "PENDING"      // waiting for room (Reason says why)
	GroupCreated      PlacementGroupState = "CREATED"      // every bundle reserved
	GroupRemoved      PlacementGroupState = "REMOVED"      // removed; its resources are free
	GroupRescheduling PlacementGroupState = "RESCHEDULING" // a node holding bundles died; they are placed again
)

func groupState(s pb.PlacementGroupState) PlacementGroupState {
	switch s {
	case pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED:
		return GroupCreated
	case pb.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED:
		return GroupRemoved
	case pb.PlacementGroupState_PLACEMENT_GROUP_STATE_RESCHEDULING:
		return GroupRescheduling
	}
	return GroupPending
}

// PlacementGroupOption is an option of PlacementGroup: Name, Namespace,
// Lifetime.
type PlacementGroupOption interface{ applyGroup(*options) }

// PlacementGroupHandle is a placement group: resources reserved together
// across nodes (gang scheduling), which tasks and actors then run in
// (InPlacementGroup). Copies refer to the same group.
type PlacementGroupHandle struct {
	id      ids.ID
	bundles []Bundle
	name    string
	// create is this process's create op (nil for a group found by
	// name); removal its remove op, once Removed.
	create  *groupops.Op
	removal atomic.Pointer[groupops.Op]
}

// ID is the group's id (hex).
func (g *PlacementGroupHandle) ID() string { return g.id.String() }

// Bundles returns the group's bundles, in order.
func (g *PlacementGroupHandle) Bundles() []Bundle { return g.bundles }

// PlacementGroupInfo is one row of the placement group table.
type PlacementGroupInfo struct {
	ID, Name, Namespace string
	Strategy            PlacementStrategy
	State               PlacementGroupState
	Bundles             []Bundle
	// BundleNodes holds, per bundle, the id of the node it is reserved on
	// ("" while it is not).
	BundleNodes []string
	// Reason says why a group waits; Infeasible, that no alive nodes
	// could ever hold it (it waits for nodes to join).
	Reason     string
	Infeasible bool
	Detached   bool
	Created    time.Time
}

// PlacementGroup reserves bundles of resources across the cluster's nodes
// as strategy says, atomically: every bundle or none (Ray's
// ray.util.placement_group). An unnamed group is sent to the control
// store on the process's ordered stream of group ops and PlacementGroup
// returns at once; a named one returns once the control store has
// recorded it (so that a taken name fails here). Placing follows at once,
// and Ready or Wait tell when it is created. A group that cannot be
// placed yet waits (PlacementGroups shows why). Options: Name (unique
// among the live groups of its Namespace), Lifetime(Detached) to outlive
// the job (by default a group is removed when its job ends).
//
// What this process does with the group afterwards (tasks and actors in
// it, Wait, Info, RemovePlacementGroup) follows the create in order.
//
// Limits: 1–4096 bundles, each holding at least one resource, named so
// that its bundle resources ("CPU_group_0_<id>") are at most 64
// characters.
func PlacementGroup(ctx context.Context, bundles []Bundle, strategy PlacementStrategy, opts ...PlacementGroupOption) (*PlacementGroupHandle, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	o := &options{}
	for _, op := range opts {
		op.applyGroup(o)
	}
	if _, ok := pb.PlacementStrategy_name[int32(strategy)]; !ok {
		return nil, fmt.Errorf("%w: PlacementGroup: unknown strategy %d", ErrInvalidRequest, int(strategy))
	}
	switch o.lifetime {
	case 0, NonDetached, Detached:
	default:
		return nil, fmt.Errorf("%w: PlacementGroup: Lifetime(%d): want Detached or NonDetached", ErrInvalidRequest, int(o.lifetime))
	}
	ns := o.namespace
	if ns == "" {
		ns = cw.Namespace()
	}
	id := ids.New()
	info := &pb.PlacementGroupInfo{GroupId: id.Bytes(), Name: o.name, Namespace: ns, Strategy: pb.PlacementStrategy(strategy),
		JobId: cw.JobID().Bytes(), Detached: o.lifetime == Detached, CreatorId: cw.WorkerID().Bytes()}
	kept := make([]Bundle, len(bundles))
	for i, b := range bundles {
		if err := resources.Validate(b); err != nil {
			return nil, fmt.Errorf("%w: PlacementGroup: bundle %d: %v", ErrInvalidRequest, i, err)
		}
		kept[i] = resources.Set(b).Clone()
		info.Bundles = append(info.Bundles, &pb.Bundle{Resources: &pb.Resources{Amounts: kept[i]}})
	}
	if err := wirecheck.PlacementGroup(info); err != nil {
		return nil, fmt.Errorf("%w: PlacementGroup: %v", ErrInvalidRequest, err)
	}
	op := cw.Groups().Create(info)
	if o.name != "" {
		if err := op.Err(ctx); err != nil {
			return nil, err
		}
	}
	return &PlacementGroupHandle{id: id, bundles: kept, name: o.name, create: op}, nil
}

// ordered waits until the control store has applied what this process
// asked of the group: its create (an error if that failed) and its
// removal.
func (g *PlacementGroupHandle) ordered(ctx context.Context) error {
	if g.create != nil {
		if err := g.create.Err(ctx); err != nil {
			return fmt.Errorf("placement group %s was not created: %w", g.id.Short(), err)
		}
	}
	if r := g.removal.Load(); r != nil {
		if err := r.Err(ctx); err != nil && !errors.Is(err, errs.ErrNotFound) {
			return err
		}
	}
	return nil
}

// Ready waits until the group is created (every bundle reserved). It
// fails with ErrPlacementGroupRemoved if the group is removed first, and
// with ctx's error when ctx ends.
func (g *PlacementGroupHandle) Ready(ctx context.Context) error {
	for {
		ok, err := g.Wait(ctx, maxGroupWait)
		if err != nil || ok {
			return err
		}
	}
}

// maxGroupWait is the longest single wait the control store holds.
const maxGroupWait = time.Minute

// Wait waits up to timeout for the group to be created and reports
// whether it is (Ray's pg.wait). A removed group is an
// ErrPlacementGroupRemoved error.
func (g *PlacementGroupHandle) Wait(ctx context.Context, timeout time.Duration) (bool, error) {
	cw, err := current()
	if err != nil {
		return false, err
	}
	if err := g.ordered(ctx); err != nil {
		return false, err
	}
	deadline := time.Now().Add(timeout)
	if ok, err, known := g.waitWatched(ctx, cw, deadline); known {
		return ok, err
	}
	for {
		left := min(time.Until(deadline), maxGroupWait)
		reply, err := cw.GCS().WaitPlacementGroup(ctx, &pb.WaitPlacementGroupRequest{GroupId: g.id.Bytes(), TimeoutMs: max(left.Milliseconds(), 0)})
		if err != nil {
			return false, err
		}
		switch reply.GetGroup().GetState() {
		case pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED:
			return true, nil
		case pb.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED:
			return false, &errs.PlacementGroupRemovedError{GroupID: g.id.String(), Name: g.name}
		}
		if time.Until(deadline) <= 0 {
			return false, nil
		}
	}
}

// waitWatched waits on the states the control store reports on the
// process's group stream, for a group created through it; known is false
// when the stream does not follow the group (the caller asks the control
// store).
func (g *PlacementGroupHandle) waitWatched(ctx context.Context, cw *coreworker.CoreWorker, deadline time.Time) (ok bool, err error, known bool) {
	var timer *time.Timer
	for {
		state, changed, followed := cw.Groups().Watch(g.id)
		if !followed {
			return false, nil, false
		}
		if state == pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED {
			return true, nil, true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil, true
		}
		if timer == nil {
			timer = time.NewTimer(left)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			return false, nil, true
		case <-ctx.Done():
			return false, ctx.Err(), true
		}
	}
}

// RemovePlacementGroup removes a group: its actors die, the workers
// running its tasks are stopped (the tasks fail with a
// PlacementGroupRemovedError, after their retries), work waiting for it
// fails, and its resources are free again.
//
// As Ray's remove_placement_group, it is asynchronous: it queues the
// removal on the process's ordered stream of group ops and returns. What
// this process does next sees the removal (Wait, Info, PlacementGroups
// and tasks into the group wait for it to be applied); other processes
// see it a round trip later. The error is for a group this process
// failed to create, or a process shutting down.
func RemovePlacementGroup(ctx context.Context, g *PlacementGroupHandle) error {
	cw, err := current()
	if err != nil {
		return err
	}
	if g.create != nil {
		if err, done := g.create.Result(); done && err != nil {
			return fmt.Errorf("placement group %s was not created: %w", g.id.Short(), err)
		}
	}
	op := cw.Groups().Remove(g.id)
	g.removal.Store(op)
	if err, done := op.Result(); done && err != nil {
		return err
	}
	return nil
}

// GetPlacementGroup finds a live placement group by name, in the job's
// namespace or the one given with Namespace.
func GetPlacementGroup(ctx context.Context, name string, opts ...GetActorOption) (*PlacementGroupHandle, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	o := &options{}
	for _, op := range opts {
		op.applyGetActor(o)
	}
	ns := o.namespace
	if ns == "" {
		ns = cw.Namespace()
	}
	if err := cw.Groups().Flush(ctx); err != nil {
		return nil, err
	}
	reply, err := cw.GCS().GetPlacementGroup(ctx, &pb.GetPlacementGroupRequest{Name: name, Namespace: ns})
	if err != nil {
		return nil, err
	}
	return handleOf(reply.GetGroup()), nil
}

func handleOf(g *pb.PlacementGroupInfo) *PlacementGroupHandle {
	h := &PlacementGroupHandle{id: ids.MustFromBytes(g.GetGroupId()), name: g.GetName()}
	for _, b := range g.GetBundles() {
		h.bundles = append(h.bundles, resources.Set(b.GetResources().GetAmounts()).Clone())
	}
	return h
}

// PlacementGroups returns the placement group table: every live group and
// the recently removed ones, in creation order (Ray's
// placement_group_table).
func PlacementGroups(ctx context.Context) ([]PlacementGroupInfo, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	if err := cw.Groups().Flush(ctx); err != nil {
		return nil, err
	}
	reply, err := cw.GCS().ListPlacementGroups(ctx, &pb.ListPlacementGroupsRequest{})
	if err != nil {
		return nil, err
	}
	out := make([]PlacementGroupInfo, 0, len(reply.GetGroups()))
	for _, g := range reply.GetGroups() {
		out = append(out, groupInfo(g))
	}
	return out, nil
}

// Info returns the group's row of the placement group table.
func (g *PlacementGroupHandle) Info(ctx context.Context) (PlacementGroupInfo, error) {
	cw, err := current()
	if err != nil {
		return PlacementGroupInfo{}, err
	}
	if err := g.ordered(ctx); err != nil {
		return PlacementGroupInfo{}, err
	}
	reply, err := cw.GCS().GetPlacementGroup(ctx, &pb.GetPlacementGroupRequest{GroupId: g.id.Bytes()})
	if err != nil {
		return PlacementGroupInfo{}, err
	}
	return groupInfo(reply.GetGroup()), nil
}

func groupInfo(g *pb.PlacementGroupInfo) PlacementGroupInfo {
	info := PlacementGroupInfo{ID: ids.MustFromBytes(g.GetGroupId()).String(), Name: g.GetName(), Namespace: g.GetNamespace(),
		Strategy: PlacementStrategy(g.GetStrategy()), State: groupState(g.GetState()), Reason: g.GetPendingReason(),
		Infeasible: g.GetInfeasible(), Detached: g.GetDetached(), Created: time.UnixMilli(g.GetCreatedUnixMs())}
	for _, b := range g.GetBundles() {
		info.Bundles = append(info.Bundles, resources.Set(b.GetResources().GetAmounts()).Clone())
		node := ""
		if id, ok := ids.FromBytes(b.GetNodeId()); ok {
			node = id.String()
		}
		info.BundleNodes = append(info.BundleNodes, node)
	}
	return info
}

// AnyBundle, as InPlacementGroup's bundle, lets a task or actor run in
// any bundle of the group that has room.
const AnyBundle = -1

// InPlacementGroup runs a task or actor in a bundle of placement group g
// (AnyBundle: any of them), with its resources taken from the bundle's
// (Ray's PlacementGroupSchedulingStrategy). A request larger than the
// bundle can never run there; it waits (or fails, with
// FailIfInfeasible) as an infeasible request. A task for a group not yet
// created waits for it; one for a removed group fails with a
// PlacementGroupRemovedError.
func InPlacementGroup(g *PlacementGroupHandle, bundle int) StrategyOption {
	return StrategyOption{opt{func(o *options) { o.group, o.bundle = g, bundle }}}
}

// CaptureChildTasks makes the tasks and actors that a task or actor in a
// placement group submits run in the same group (any bundle), unless they
// say where to run themselves.
func CaptureChildTasks() StrategyOption {
	return StrategyOption{opt{func(o *options) { o.capture = true }}}
}

// inGroup rewrites res for the group option, or says what is wrong.
func (o *options) inGroup(what string, res resources.Set) (resources.Set, *pb.SchedulingOptions, error) {
	g := o.group
	if g == nil {
		if o.capture {
			return nil, nil, fmt.Errorf("%w: %s: CaptureChildTasks needs InPlacementGroup", ErrInvalidRequest, what)
		}
		return res, nil, nil
	}
	if o.bundle < AnyBundle || o.bundle >= len(g.bundles) {
		return nil, nil, fmt.Errorf("%w: %s: InPlacementGroup: bundle %d of a group of %d bundles", ErrInvalidRequest, what, o.bundle, len(g.bundles))
	}
	out := resources.InBundle(res, g.id.String(), o.bundle)
	if err := resources.Validate(out); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: in placement group: %v", ErrInvalidRequest, what, err)
	}
	return out, &pb.SchedulingOptions{PlacementGroupId: g.id.Bytes(), BundleIndex: int32(o.bundle), CaptureChildTasks: o.capture}, nil
}

// captured puts a task submitted without placement options by a task or
// actor that captures child tasks into that one's placement group (any
// bundle), as Ray does.
func captured(ctx context.Context, topts coreworker.TaskOptions) coreworker.TaskOptions {
	capture := coreworker.CaptureFrom(ctx)
	if capture == nil {
		return topts
	}
	g, _ := ids.FromBytes(capture.GetPlacementGroupId())
	topts.Resources = resources.InBundle(topts.Resources, g.String(), AnyBundle)
	topts.Placement = tasksubmit.Placement{Options: capture}
	topts.Key = coreworker.SchedulingKey(topts)
	return topts
}
