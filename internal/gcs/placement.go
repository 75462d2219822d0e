package gcs

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/wirecheck"
)

// Placement groups.
//
// The control store owns the table of groups and places them: a pure
// decision (scheduler.PlaceBundles) over its view of the nodes, then a
// reservation that is atomic across nodes, in two phases: PrepareBundles
// on every node the group uses (each allocates its bundles, all or
// none), then CommitBundles on each (the bundles become resources of
// their own there). A prepare that fails on any node is rolled back on
// the others (CancelBundles) and the group waits for the next attempt. A
// group that lands on one node is reserved in one call (prepare with
// commit). Attempts run as soon as a group is created, and then, for
// groups still waiting, when a node joins or dies, and every
// groupRetryPeriod; up to maxPlacing groups are reserved at once.
//
// Removing a group kills its actors (they die with
// ActorGroupRemoved), and tells every node (CancelBundles with removed):
// those holding its bundles stop the workers leased with them and give
// the resources back; all fail lease requests waiting for the group. A
// node's death sends the groups with bundles there to RESCHEDULING: those
// bundles are placed again, the others stay. A group not created
// Detached is removed when its job ends.

const (
	// groupRetryPeriod is how often waiting groups are tried again.
	groupRetryPeriod = 200 * time.Millisecond
	// maxWaitGroup bounds WaitPlacementGroup's timeout.
	maxWaitGroup = time.Minute
	// maxRemovedGroups bounds the removed groups kept for listing.
	maxRemovedGroups = 10000
	// bundleCallTimeout bounds each prepare, commit and cancel call.
	bundleCallTimeout = 10 * time.Second
)

// Group states, as short names.
const (
	GroupPending      = pb.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING
	GroupCreated      = pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED
	GroupRemoved      = pb.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED
	GroupRescheduling = pb.PlacementGroupState_PLACEMENT_GROUP_STATE_RESCHEDULING
)

// groupTable is the control store's placement groups; guarded by
// Server.mu.
type groupTable struct {
	byID    map[ids.ID]*groupEntry
	live    map[ids.ID]*groupEntry // the groups not removed (scans skip the removed ones kept for listing)
	names   map[string]ids.ID      // live groups: namespace + "\x00" + name
	removed []ids.ID               // removed groups kept for listing, oldest first
	seq     uint64                 // groups created so far (creation order)
	kick    chan struct{}          // buffered(1): try waiting groups now
	cancels chan cancelJob         // bundles to give back, in order (cancelLoop)
}

type groupEntry struct {
	info    *pb.PlacementGroupInfo
	changed chan struct{} // closed and replaced on every change
	placing bool          // an attempt is reserving bundles now
	seq     uint64        // creation order
	watcher *groupWatcher // the ops stream that created it, told of its changes of state
	pushed  pb.PlacementGroupState
	mark    uint64 // its creation's storage mark (persist.go)
}

// cancelJob asks node addr to give back bundles of a group.
type cancelJob struct {
	addr string
	req  *pb.CancelBundlesRequest
}

func (t *groupTable) init() {
	t.byID = map[ids.ID]*groupEntry{}
	t.live = map[ids.ID]*groupEntry{}
	t.names = map[string]ids.ID{}
	t.kick = make(chan struct{}, 1)
	t.cancels = make(chan cancelJob, 1<<14)
}

func (s *Server) kickGroups() {
	select {
	case s.groups.kick <- struct{}{}:
	default:
	}
}

// bumpGroupLocked publishes a change of the group's record (and writes it
// to storage, with storage).
func (s *Server) bumpGroupLocked(e *groupEntry) {
	s.markGroupLocked(e)
	close(e.changed)
	e.changed = make(chan struct{})
	if e.watcher != nil && e.pushed != e.info.State {
		e.pushed = e.info.State
		e.watcher.push(e.info.GetGroupId(), e.info.State)
	}
}

func cloneGroup(g *pb.PlacementGroupInfo) *pb.PlacementGroupInfo {
	return proto.Clone(g).(*pb.PlacementGroupInfo)
}

// CreatePlacementGroup records a group, PENDING, and has it placed (by
// groupLoop, which reserves many groups at once while their creators go
// on). A name taken by a live group of the namespace is refused.
func (s *Server) CreatePlacementGroup(ctx context.Context, req *pb.CreatePlacementGroupRequest) (*pb.CreatePlacementGroupReply, error) {
	if err := wirecheck.PlacementGroup(req.GetGroup()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, err := s.createGroupLocked(req.GetGroup(), nil)
	var reply *pb.CreatePlacementGroupReply
	if err == nil {
		reply = &pb.CreatePlacementGroupReply{Group: cloneGroup(e.info)}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.kickGroups()
	if err := s.durable(ctx, e.mark); err != nil {
		return nil, err
	}
	return reply, nil
}

// createGroupLocked records group g (checked by the caller), PENDING. A
// group created on an ops stream (w) is created again idempotently (the
// stream resends what it did not see answered) and w hears of its
// changes of state.
func (s *Server) createGroupLocked(req *pb.PlacementGroupInfo, w *groupWatcher) (*groupEntry, error) {
	id := ids.MustFromBytes(req.GetGroupId())
	if e, dup := s.groups.byID[id]; dup {
		if w != nil {
			e.watcher, e.pushed = w, e.info.State
			w.push(e.info.GetGroupId(), e.info.State)
			return e, nil
		}
		return nil, errs.AlreadyExistsf("gcs: placement group %s exists", id)
	}
	g := cloneGroup(req)
	g.State, g.PendingReason, g.Infeasible = GroupPending, "not placed yet", false
	g.CreatedUnixMs = time.Now().UnixMilli()
	for _, b := range g.Bundles {
		b.NodeId, b.NodeAddress = nil, ""
	}
	if g.GetName() != "" {
		key := nameKey(g.GetNamespace(), g.GetName())
		if _, taken := s.groups.names[key]; taken {
			return nil, errs.AlreadyExistsf("gcs: a placement group named %q exists in namespace %q", g.GetName(), g.GetNamespace())
		}
		s.groups.names[key] = id
	}
	s.groups.seq++
	e := &groupEntry{info: g, changed: make(chan struct{}), seq: s.groups.seq, watcher: w, pushed: GroupPending}
	s.groups.byID[id] = e
	s.groups.live[id] = e
	e.mark = s.markGroupLocked(e)
	return e, nil
}

// GetPlacementGroup finds a group by id, or a live one by name.
func (s *Server) GetPlacementGroup(_ context.Context, req *pb.GetPlacementGroupRequest) (*pb.GetPlacementGroupReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.findGroupLocked(req)
	if err != nil {
		return nil, err
	}
	return &pb.GetPlacementGroupReply{Group: cloneGroup(e.info)}, nil
}

func (s *Server) findGroupLocked(req *pb.GetPlacementGroupRequest) (*groupEntry, error) {
	if id, ok := ids.FromBytes(req.GetGroupId()); ok {
		if e := s.groups.byID[id]; e != nil {
			return e, nil
		}
		return nil, errs.NotFoundf("gcs: no placement group %s", id)
	}
	if id, ok := s.groups.names[nameKey(req.GetNamespace(), req.GetName())]; ok {
		return s.groups.byID[id], nil
	}
	return nil, errs.NotFoundf("gcs: no placement group named %q in namespace %q", req.GetName(), req.GetNamespace())
}

// ListPlacementGroups returns every group, live and recently removed, in
// creation order.
func (s *Server) ListPlacementGroups(context.Context, *pb.ListPlacementGroupsRequest) (*pb.ListPlacementGroupsReply, error) {
	s.mu.Lock()
	entries := make([]*groupEntry, 0, len(s.groups.byID))
	for _, e := range s.groups.byID {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *groupEntry) int { return int(a.seq) - int(b.seq) })
	out := &pb.ListPlacementGroupsReply{}
	for _, e := range entries {
		out.Groups = append(out.Groups, cloneGroup(e.info))
	}
	s.mu.Unlock()
	return out, nil
}

// WaitPlacementGroup answers when the group is created or removed, or
// when the timeout (at most maxWaitGroup) passes, with its state then.
func (s *Server) WaitPlacementGroup(ctx context.Context, req *pb.WaitPlacementGroupRequest) (*pb.WaitPlacementGroupReply, error) {
	id := ids.MustFromBytes(req.GetGroupId())
	timeout := min(time.Duration(req.GetTimeoutMs())*time.Millisecond, maxWaitGroup)
	timer := time.NewTimer(max(timeout, 0))
	defer timer.Stop()
	for {
		s.mu.Lock()
		e := s.groups.byID[id]
		if e == nil {
			s.mu.Unlock()
			return nil, errs.NotFoundf("gcs: no placement group %s", id)
		}
		info, changed := e.info, e.changed
		if st := info.GetState(); st == GroupCreated || st == GroupRemoved || timeout <= 0 {
			reply := &pb.WaitPlacementGroupReply{Group: cloneGroup(info)}
			s.mu.Unlock()
			return reply, nil
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			timeout = 0
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, errs.Systemf("gcs: stopping")
		}
	}
}

// RemovePlacementGroup removes a group: its actors die, its bundles are
// given back and waiting requests for it fail (on every node, in the
// background). Removing a removed group does nothing.
func (s *Server) RemovePlacementGroup(_ context.Context, req *pb.RemovePlacementGroupRequest) (*pb.RemovePlacementGroupReply, error) {
	if err := s.removeGroup(ids.MustFromBytes(req.GetGroupId())); err != nil {
		return nil, err
	}
	return &pb.RemovePlacementGroupReply{}, nil
}

// removeGroup removes group id and kills its actors.
func (s *Server) removeGroup(id ids.ID) error {
	s.mu.Lock()
	e := s.groups.byID[id]
	if e == nil {
		s.mu.Unlock()
		return errs.NotFoundf("gcs: no placement group %s", id)
	}
	actors := s.removeGroupLocked(id, e)
	s.mu.Unlock()
	for _, aid := range actors {
		s.killActor(aid, "its placement group "+id.Short()+" was removed", errs.ActorGroupRemoved)
	}
	return nil
}

// removeGroupLocked marks e removed, queues the notice to every node and
// returns the group's live actors, for the caller to kill.
func (s *Server) removeGroupLocked(id ids.ID, e *groupEntry) []ids.ID {
	if e.info.State == GroupRemoved {
		return nil
	}
	if e.info.GetName() != "" {
		delete(s.groups.names, nameKey(e.info.GetNamespace(), e.info.GetName()))
	}
	e.info.State, e.info.PendingReason = GroupRemoved, ""
	delete(s.groups.live, id)
	s.bumpGroupLocked(e)
	if !e.placing { // else the attempt in flight gives back what it took
		s.releaseGroupLocked(id, e)
	}
	for _, n := range s.nodes {
		if n.info.State == pb.NodeState_NODE_STATE_ALIVE {
			s.queueCancel(n.info.GetAddress(), &pb.CancelBundlesRequest{GroupId: id.Bytes(), Removed: true})
		}
	}
	s.groups.removed = append(s.groups.removed, id)
	if len(s.groups.removed) > maxRemovedGroups {
		delete(s.groups.byID, s.groups.removed[0])
		s.forgetGroupLocked(s.groups.removed[0].Bytes())
		s.groups.removed = s.groups.removed[1:]
	}
	var actors []ids.ID
	for aid, a := range s.actors {
		if a.info.State != StateDead && sameGroup(a.info.GetCreation(), id) {
			actors = append(actors, aid)
		}
	}
	return actors
}

func sameGroup(spec *pb.TaskSpec, id ids.ID) bool {
	g, ok := ids.FromBytes(spec.GetScheduling().GetPlacementGroupId())
	return ok && g == id
}

// releaseGroupLocked takes the group's committed bundles out of the view
// of their nodes (they report the truth at their next heartbeat) and
// forgets where they were.
func (s *Server) releaseGroupLocked(id ids.ID, e *groupEntry) {
	for i, b := range e.info.Bundles {
		if nid, ok := ids.FromBytes(b.GetNodeId()); ok {
			if n := s.nodes[nid]; n != nil {
				viewRelease(n.info, b.GetResources().GetAmounts(), id, i)
				s.touchLocked(n)
			}
		}
		b.NodeId, b.NodeAddress = nil, ""
	}
}

// viewCommit and viewRelease keep the control store's view of a node in
// step with the bundles it reserves there, until the node reports.
func viewCommit(n *pb.NodeInfo, res resources.Set, group ids.ID, index int) {
	add := resources.BundleTotals(res, group.String(), index)
	addTo(&n.Total, add, 1)
	addTo(&n.Available, add, 1)
}

func viewRelease(n *pb.NodeInfo, res resources.Set, group ids.ID, index int) {
	gone := resources.BundleTotals(res, group.String(), index)
	addTo(&n.Total, gone, -1)
	addTo(&n.Available, gone, -1)
	addTo(&n.Available, res, 1)
}

// addTo adds sign×b to *r in place, dropping bundle resources that reach
// zero. The control store's node records are its own (GetNodes hands out
// copies), so they are changed under Server.mu without copying.
func addTo(r **pb.Resources, b resources.Set, sign float64) {
	if *r == nil {
		*r = &pb.Resources{}
	}
	if (*r).Amounts == nil {
		(*r).Amounts = map[string]float64{}
	}
	m := (*r).Amounts
	for k, v := range b {
		m[k] += sign * v
		if sign < 0 && m[k] <= resources.Epsilon && resources.IsBundleResource(k) {
			delete(m, k)
		}
	}
}

// queueCancel hands a CancelBundles call to cancelLoop (which sends them
// in order, off the caller's path).
func (s *Server) queueCancel(addr string, req *pb.CancelBundlesRequest) {
	select {
	case s.groups.cancels <- cancelJob{addr, req}:
	default:
		// The queue is full (a flood of removals): send this one now.
		s.goOwned(func() { s.sendCancel(cancelJob{addr, req}) })
	}
}

// cancelLoop sends the queued cancels in order. Removals queued together
// go to each node in one call (more_removed); any other cancel first
// sends the removals queued before it.
func (s *Server) cancelLoop() {
	defer s.wg.Done()
	for {
		var job cancelJob
		select {
		case <-s.ctx.Done():
			return
		case job = <-s.groups.cancels:
		}
		var order []string
		batch := map[string]*pb.CancelBundlesRequest{}
		flush := func() {
			for _, addr := range order {
				s.sendCancel(cancelJob{addr, batch[addr]})
			}
			order, batch = order[:0], map[string]*pb.CancelBundlesRequest{}
		}
		for n := 0; ; n++ {
			if req := job.req; req.GetRemoved() && len(req.GetIndexes()) == 0 && len(req.GetMoreRemoved()) == 0 {
				if b := batch[job.addr]; b != nil && len(b.MoreRemoved) < wirecheck.MaxGroupOps {
					b.MoreRemoved = append(b.MoreRemoved, req.GetGroupId())
				} else {
					if b != nil {
						flush()
					}
					batch[job.addr] = req
					order = append(order, job.addr)
				}
			} else {
				flush()
				s.sendCancel(job)
			}
			if n == 4*wirecheck.MaxGroupOps {
				break
			}
			select {
			case job = <-s.groups.cancels:
				continue
			default:
			}
			break
		}
		flush()
	}
}

func (s *Server) sendCancel(job cancelJob) {
	conn, err := s.pool.Get(job.addr)
	if err != nil {
		return // a node that cannot be reached is dead, or will be
	}
	ctx, cancel := context.WithTimeout(s.ctx, bundleCallTimeout)
	defer cancel()
	if _, err := pb.NewNodeDaemonClient(conn).CancelBundles(ctx, job.req); err != nil && s.ctx.Err() == nil {
		s.log.Debug("cancel bundles", "node", job.addr, "err", err)
	}
}

// groupLoop retries waiting groups: when kicked, when a node joins, and
// every groupRetryPeriod while any waits.
func (s *Server) groupLoop() {
	defer s.wg.Done()
	t := time.NewTicker(groupRetryPeriod)
	defer t.Stop()
	for {
		s.mu.Lock()
		joined := s.nodesChanged
		s.mu.Unlock()
		select {
		case <-s.ctx.Done():
			return
		case <-s.groups.kick:
		case <-joined:
		case <-t.C:
		}
		s.placeWaiting()
	}
}

// maxPlacing bounds the groups being reserved at once.
const maxPlacing = 64

// placeWaiting tries every waiting group, in creation order, up to
// maxPlacing at once (each attempt waits for its nodes' answers).
func (s *Server) placeWaiting() {
	sem := make(chan struct{}, maxPlacing)
	var wg sync.WaitGroup
	for _, id := range s.waitingGroups() {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.placeGroup(id)
		}()
	}
	wg.Wait()
}

// waitingGroups lists the groups to place, in creation order.
func (s *Server) waitingGroups() []ids.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var waiting []*groupEntry
	for _, e := range s.groups.live {
		if st := e.info.State; (st == GroupPending || st == GroupRescheduling) && !e.placing {
			waiting = append(waiting, e)
		}
	}
	slices.SortFunc(waiting, func(a, b *groupEntry) int { return int(a.seq) - int(b.seq) })
	out := make([]ids.ID, len(waiting))
	for i, e := range waiting {
		out[i] = ids.MustFromBytes(e.info.GroupId)
	}
	return out
}

// placeGroup makes one attempt to reserve a waiting group's unplaced
// bundles (see the package comment on placement groups).
func (s *Server) placeGroup(id ids.ID) {
	s.mu.Lock()
	e := s.groups.byID[id]
	if e == nil || e.placing || (e.info.State != GroupPending && e.info.State != GroupRescheduling) {
		s.mu.Unlock()
		return
	}
	nodes, byID := s.schedulerNodesLocked()
	bundles := make([]resources.Set, len(e.info.Bundles))
	placed := make([]string, len(e.info.Bundles))
	for i, b := range e.info.Bundles {
		bundles[i] = b.GetResources().GetAmounts()
		if nid, ok := ids.FromBytes(b.GetNodeId()); ok {
			placed[i] = nid.String()
		}
	}
	d := scheduler.PlaceBundles(nodes, bundles, placed, scheduler.GroupStrategy(e.info.GetStrategy()))
	if d.Kind != scheduler.Place {
		if e.info.PendingReason != d.Reason || e.info.Infeasible != (d.Kind == scheduler.Infeasible) {
			e.info.PendingReason, e.info.Infeasible = d.Reason, d.Kind == scheduler.Infeasible
			s.bumpGroupLocked(e)
		}
		s.mu.Unlock()
		return
	}
	// The new bundles, by node; their room is taken from the view now.
	perNode := map[string][]*pb.BundleSpec{}
	for i, nid := range d.Nodes {
		if placed[i] != "" {
			continue
		}
		perNode[nid] = append(perNode[nid], &pb.BundleSpec{Index: int32(i), Resources: e.info.Bundles[i].GetResources()})
		addTo(&byID[nid].info.Available, bundles[i], -1)
		s.touchLocked(byID[nid])
	}
	addrs := map[string]string{}
	for nid := range perNode {
		addrs[nid] = byID[nid].info.GetAddress()
	}
	e.placing = true
	s.mu.Unlock()

	err := s.reserve(id, perNode, addrs)

	s.mu.Lock()
	defer s.mu.Unlock()
	e.placing = false
	if err != nil {
		for nid, specs := range perNode {
			if n := byID[nid]; n != nil {
				for _, b := range specs {
					addTo(&n.info.Available, b.GetResources().GetAmounts(), 1)
				}
				s.touchLocked(n)
			}
		}
		if e.info.State != GroupRemoved {
			e.info.PendingReason = "reserving its bundles failed, retrying: " + strings.TrimPrefix(err.Error(), "raygo: ")
			s.bumpGroupLocked(e)
		}
		return
	}
	for nid, specs := range perNode {
		nodeID := ids.MustFromBytes(byID[nid].info.GetNodeId())
		for _, b := range specs {
			bi := e.info.Bundles[b.GetIndex()]
			bi.NodeId, bi.NodeAddress = nodeID.Bytes(), addrs[nid]
			viewCommit(byID[nid].info, b.GetResources().GetAmounts(), id, int(b.GetIndex()))
		}
		s.touchLocked(byID[nid])
	}
	if e.info.State == GroupRemoved {
		// Removed while it was being reserved: give everything back.
		s.releaseGroupLocked(id, e)
		for _, addr := range addrs {
			s.queueCancel(addr, &pb.CancelBundlesRequest{GroupId: id.Bytes(), Removed: true})
		}
		return
	}
	e.info.State, e.info.PendingReason, e.info.Infeasible = GroupCreated, "", false
	s.bumpGroupLocked(e)
}

// schedulerNodesLocked is the alive nodes as the scheduler sees them, and
// their entries by id string.
func (s *Server) schedulerNodesLocked() ([]scheduler.Node, map[string]*nodeEntry) {
	nodes := make([]scheduler.Node, 0, len(s.nodes))
	byID := make(map[string]*nodeEntry, len(s.nodes))
	for id, n := range s.nodes {
		if n.info.State != pb.NodeState_NODE_STATE_ALIVE {
			continue
		}
		nodes = append(nodes, scheduler.Node{ID: id.String(), Address: n.info.Address, Alive: true, Labels: n.info.Labels,
			Total: resources.Set(n.info.GetTotal().GetAmounts()), Available: resources.Set(n.info.GetAvailable().GetAmounts())})
		byID[id.String()] = n
	}
	return nodes, byID
}

// reserve runs the two phases on the group's nodes (one call when it
// uses one node); on any failure it rolls back what was prepared.
func (s *Server) reserve(id ids.ID, perNode map[string][]*pb.BundleSpec, addrs map[string]string) error {
	ctx, cancel := context.WithTimeout(s.ctx, bundleCallTimeout)
	defer cancel()
	onePhase := len(perNode) == 1
	var (
		mu       sync.Mutex
		prepared []string
		firstErr error
	)
	each := func(f func(nid string, c pb.NodeDaemonClient) error) {
		var wg sync.WaitGroup
		for nid := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := s.pool.Get(addrs[nid])
				if err == nil {
					err = f(nid, pb.NewNodeDaemonClient(conn))
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	each(func(nid string, c pb.NodeDaemonClient) error {
		_, err := c.PrepareBundles(ctx, &pb.PrepareBundlesRequest{GroupId: id.Bytes(), Bundles: perNode[nid], Commit: onePhase,
			ControlStoreEpoch: s.epoch})
		if err == nil {
			mu.Lock()
			prepared = append(prepared, nid)
			mu.Unlock()
		}
		return err
	})
	if firstErr == nil && !onePhase {
		each(func(nid string, c pb.NodeDaemonClient) error {
			idx := make([]int32, len(perNode[nid]))
			for i, b := range perNode[nid] {
				idx[i] = b.GetIndex()
			}
			_, err := c.CommitBundles(ctx, &pb.CommitBundlesRequest{GroupId: id.Bytes(), Indexes: idx})
			return err
		})
	}
	if firstErr != nil {
		for _, nid := range prepared {
			idx := make([]int32, len(perNode[nid]))
			for i, b := range perNode[nid] {
				idx[i] = b.GetIndex()
			}
			s.queueCancel(addrs[nid], &pb.CancelBundlesRequest{GroupId: id.Bytes(), Indexes: idx})
		}
		return firstErr
	}
	return nil
}

// groupsOnDeadNodeLocked sends the groups with bundles on node id to
// RESCHEDULING: those bundles are placed again.
func (s *Server) groupsOnDeadNodeLocked(id ids.ID) {
	moved := false
	for _, e := range s.groups.live {
		if e.info.State != GroupCreated && e.info.State != GroupRescheduling && e.info.State != GroupPending {
			continue
		}
		lost := false
		for _, b := range e.info.Bundles {
			if nid, ok := ids.FromBytes(b.GetNodeId()); ok && nid == id {
				b.NodeId, b.NodeAddress = nil, ""
				lost = true
			}
		}
		if lost {
			e.info.State, e.info.PendingReason = GroupRescheduling, "a node holding bundles died: placing them again"
			s.bumpGroupLocked(e)
			moved = true
		}
	}
	if moved {
		s.kickGroups()
	}
}

// groupsOfJobLocked removes the non-detached groups of a finished job and
// returns their actors, for the caller to kill.
func (s *Server) groupsOfJobLocked(job ids.ID) []ids.ID {
	var actors []ids.ID
	for id, e := range s.groups.live {
		if j, _ := ids.FromBytes(e.info.GetJobId()); !e.info.Detached && j == job {
			actors = append(actors, s.removeGroupLocked(id, e)...)
		}
	}
	return actors
}
