package gcs

import (
	"context"
	binenc "encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/gcs/storage"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// Recovery: a control store started on storage that an earlier one wrote
// (persist.go) reads it back before it serves.
//
//   - Its epoch (incarnation) is the stored one plus one. Actor leases
//     and bundles it asks nodes for carry it, and the node view's
//     versions start above every earlier incarnation's (epoch << 40), so
//     that a node's view deltas (GetNodes since_version) go on.
//   - Nodes alive when it stopped are alive again, their last heartbeat
//     taken as now: those that do not beat within the node timeout die as
//     usual. The first time each is heard from, it is told which actor
//     leases and bundles of earlier incarnations are still used there
//     (ReleaseUnused); it gives back the rest. The head node of the
//     earlier incarnation (which ran in the control store's process) is
//     dead at once.
//   - Jobs, the KV and binaries come back as they were; running jobs'
//     drivers are checked as usual (driverLoop) and their sessions
//     reopen.
//   - Actors alive come back alive, on the worker they had; actors being
//     created or restarted are placed again; dead ones stay dead.
//   - Placement groups come back with their bundles where they were;
//     those pending or rescheduling are placed again.

// epochShift puts an incarnation's node-view versions above every
// earlier one's.
const epochShift = 40

// Open returns a control store on cfg.Storage: a persistent store that
// an earlier control store wrote is read back first (see Recovery). With
// no storage (or an in-memory one) it is New.
func Open(cfg Config, pool *rpc.Pool) (*Server, error) {
	s := newServer(cfg, pool)
	var rec *recovery
	if st := s.cfg.Storage; st != nil && st.Persistent() {
		s.persist = newPersister(st)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var err error
		rec, err = s.recoverState(ctx)
		cancel()
		if err != nil {
			s.cancel()
			return nil, fmt.Errorf("gcs: recover state from storage: %w", err)
		}
	}
	s.start(rec)
	return s, nil
}

// Epoch is the control store's incarnation on its storage (1 for the
// first; 0 without storage).
func (s *Server) Epoch() uint64 { return s.epoch }

// LoadToken returns the cluster token kept in storage; when there is
// none yet, it keeps token and returns it. A restarted head thus keeps
// its cluster's token, so that nodes and drivers reconnect.
func LoadToken(ctx context.Context, st storage.Store, token string) (string, error) {
	if st == nil || !st.Persistent() {
		return token, nil
	}
	v, ok, err := st.Get(ctx, tableCluster, keyToken)
	if err != nil {
		return "", err
	}
	if ok && len(v) > 0 {
		return string(v), nil
	}
	if err := st.Put(ctx, tableCluster, storage.KV{Key: keyToken, Value: []byte(token)}); err != nil {
		return "", err
	}
	return token, nil
}

// SetHeadNode records the node daemon that runs in the control store's
// process: when the control store restarts, that node is dead at once.
func (s *Server) SetHeadNode(id ids.ID) error {
	if s.persist == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, durableTimeout)
	defer cancel()
	return s.persist.store.Put(ctx, tableCluster, storage.KV{Key: keyHeadNode, Value: id.Bytes()})
}

// recovery is what recoverState leaves for afterRecovery.
type recovery struct {
	restart []ids.ID // actors to place again
	oldHead ids.ID   // the earlier incarnation's head node
}

func (s *Server) recoverState(ctx context.Context) (*recovery, error) {
	st := s.persist.store
	v, ok, err := st.Get(ctx, tableCluster, keyEpoch)
	if err != nil {
		return nil, err
	}
	if ok && len(v) == 8 {
		s.epoch = binenc.BigEndian.Uint64(v)
	}
	s.epoch++
	var b [8]byte
	binenc.BigEndian.PutUint64(b[:], s.epoch)
	if err := st.Put(ctx, tableCluster, storage.KV{Key: keyEpoch, Value: b[:]}); err != nil {
		return nil, err
	}
	s.viewVersion = s.epoch << epochShift
	var oldHead ids.ID
	if v, ok, err := st.Get(ctx, tableCluster, keyHeadNode); err != nil {
		return nil, err
	} else if ok {
		oldHead, _ = ids.FromBytes(v)
	}
	now := time.Now()
	if err := scanProto(ctx, st, tableNodes, func() *pb.StoredNode { return &pb.StoredNode{} }, func(_ string, r *pb.StoredNode) {
		id, ok := ids.FromBytes(r.GetInfo().GetNodeId())
		if !ok {
			return
		}
		n := &nodeEntry{info: r.GetInfo(), died: r.GetDied(), lastBeat: now}
		n.reconcile = n.info.State == pb.NodeState_NODE_STATE_ALIVE
		s.touchLocked(n)
		s.nodes[id] = n
	}); err != nil {
		return nil, err
	}
	if err := scanProto(ctx, st, tableJobs, func() *pb.JobInfo { return &pb.JobInfo{} }, func(_ string, j *pb.JobInfo) {
		if id, ok := ids.FromBytes(j.GetJobId()); ok {
			s.jobs[id] = j
		}
	}); err != nil {
		return nil, err
	}
	if err := st.Scan(ctx, tableKV, func(k string, v []byte) error {
		s.kv[k] = v
		return nil
	}); err != nil {
		return nil, err
	}
	var restart []ids.ID
	if err := scanProto(ctx, st, tableActors, func() *pb.StoredActor { return &pb.StoredActor{} }, func(_ string, r *pb.StoredActor) {
		info := r.GetInfo()
		aid, ok := ids.FromBytes(info.GetActorId())
		if !ok {
			return
		}
		e := &actorEntry{info: info, changed: make(chan struct{}), failIfInfeasible: r.GetFailIfInfeasible(), killing: r.GetKilling()}
		s.actors[aid] = e
		switch info.State {
		case StateDead:
			s.deadOrder = append(s.deadOrder, aid)
			return
		case StateAlive:
			worker, _ := ids.FromBytes(info.GetWorkerId())
			node, _ := ids.FromBytes(info.GetNodeId())
			lease, _ := ids.FromBytes(r.GetLeaseId())
			e.place = placement{actor: aid, node: node, worker: worker, lease: lease, addr: info.GetAddress(), shared: r.GetShared()}
			s.hostLocked(worker, aid)
		default: // being created or restarted: placed again
			restart = append(restart, aid)
		}
		if info.GetName() != "" {
			s.names[nameKey(info.GetNamespace(), info.GetName())] = aid
		}
	}); err != nil {
		return nil, err
	}
	var groups []*pb.PlacementGroupInfo
	if err := scanProto(ctx, st, tableGroups, func() *pb.PlacementGroupInfo { return &pb.PlacementGroupInfo{} }, func(_ string, g *pb.PlacementGroupInfo) {
		groups = append(groups, g)
	}); err != nil {
		return nil, err
	}
	// In creation order, so that waiting groups are tried as before.
	sortGroups(groups)
	for _, g := range groups {
		id, ok := ids.FromBytes(g.GetGroupId())
		if !ok {
			continue
		}
		s.groups.seq++
		e := &groupEntry{info: g, changed: make(chan struct{}), seq: s.groups.seq, pushed: g.State}
		s.groups.byID[id] = e
		if g.State == GroupRemoved {
			s.groups.removed = append(s.groups.removed, id)
			continue
		}
		s.groups.live[id] = e
		if g.GetName() != "" {
			s.groups.names[nameKey(g.GetNamespace(), g.GetName())] = id
		}
	}
	if err := st.Scan(ctx, tableBinaries, func(k string, v []byte) error {
		if len(v) == 8 && len(k) == 64 { // a whole binary's size record (chunks are hash/NNNNNN)
			b := &binary{size: int64(binenc.BigEndian.Uint64(v)), stored: true}
			s.binaries[k] = b
			s.binOrder = append(s.binOrder, k)
			s.binBytes += b.size
		}
		return nil
	}); err != nil {
		return nil, err
	}
	s.log.Info("control store recovered from storage", "epoch", s.epoch, "nodes", len(s.nodes), "jobs", len(s.jobs),
		"actors", len(s.actors), "placement_groups", len(s.groups.byID), "kv", len(s.kv), "binaries", len(s.binaries))
	return &recovery{restart: restart, oldHead: oldHead}, nil
}

// afterRecovery, once the loops run: the old head node is dead (its
// actors restart, its bundles are placed again), actors that were being
// placed are placed again, and waiting groups are tried.
func (s *Server) afterRecovery(rec *recovery) {
	if !rec.oldHead.IsNil() {
		s.markNodeDead(rec.oldHead, "the head restarted (it ran in the head's process)")
	}
	for _, aid := range rec.restart {
		s.goOwned(func() { s.scheduleActor(aid) })
	}
	s.kickGroups()
}

// scanProto reads every record of table as a T.
func scanProto[T proto.Message](ctx context.Context, st storage.Store, table string, alloc func() T, fn func(string, T)) error {
	return st.Scan(ctx, table, func(k string, v []byte) error {
		m := alloc()
		if err := proto.Unmarshal(v, m); err != nil {
			return fmt.Errorf("table %s, key %x: %w", table, k, err)
		}
		fn(k, m)
		return nil
	})
}

// sortGroups orders groups by creation time.
func sortGroups(gs []*pb.PlacementGroupInfo) {
	slices.SortFunc(gs, func(a, b *pb.PlacementGroupInfo) int {
		switch {
		case a.GetCreatedUnixMs() < b.GetCreatedUnixMs():
			return -1
		case a.GetCreatedUnixMs() > b.GetCreatedUnixMs():
			return 1
		}
		return 0
	})
}

// ---------------------------------------------------------------- ReleaseUnused

// reconcileNode tells a recovered node, the first time it is heard from,
// which actor leases and bundles of earlier incarnations are still used
// there (see ReleaseUnusedRequest). It tries until the node answers, dies
// or the control store stops.
func (s *Server) reconcileNode(id ids.ID) {
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		s.mu.Lock()
		n := s.nodes[id]
		if n == nil || n.info.State != pb.NodeState_NODE_STATE_ALIVE {
			s.mu.Unlock()
			return
		}
		addr := n.info.GetAddress()
		req := &pb.ReleaseUnusedRequest{Epoch: s.epoch}
		for _, e := range s.actors {
			if e.place.node == id && !e.place.lease.IsNil() {
				req.KeepLeases = append(req.KeepLeases, e.place.lease.Bytes())
			}
		}
		for _, g := range s.groups.live {
			for i, b := range g.info.Bundles {
				if nid, ok := ids.FromBytes(b.GetNodeId()); ok && nid == id {
					req.KeepBundles = append(req.KeepBundles, &pb.BundleRef{GroupId: g.info.GetGroupId(), Index: int32(i)})
				}
			}
		}
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(s.ctx, bundleCallTimeout)
		var reply *pb.ReleaseUnusedReply
		conn, err := s.pool.Get(addr)
		if err == nil {
			reply, err = pb.NewNodeDaemonClient(conn).ReleaseUnused(ctx, req)
		}
		cancel()
		if err == nil {
			s.log.Info("recovered node reconciled", "node", id.Short(), "kept_leases", len(req.KeepLeases), "kept_bundles", len(req.KeepBundles),
				"released_leases", reply.GetLeasesReleased(), "released_bundles", reply.GetBundlesReleased())
			return
		}
		if errors.Is(err, errs.ErrInvalidRequest) {
			s.log.Warn("recovered node refused ReleaseUnused", "node", id.Short(), "err", err)
			return
		}
		s.sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}
