package gcs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/rpc"
	"github.com/raygo/raygo/internal/scheduler"
	"github.com/raygo/raygo/internal/wirecheck"
)

// Actor states (pb.ActorInfo.state).
const (
	StatePending    = pb.ActorState_ACTOR_STATE_PENDING_CREATION
	StateAlive      = pb.ActorState_ACTOR_STATE_ALIVE
	StateRestarting = pb.ActorState_ACTOR_STATE_RESTARTING
	StateDead       = pb.ActorState_ACTOR_STATE_DEAD
)

func nameKey(ns, name string) string { return ns + "\x00" + name }

// cloneActor copies actor info for use outside the lock.
func cloneActor(a *pb.ActorInfo) *pb.ActorInfo { return proto.Clone(a).(*pb.ActorInfo) }

// CreateActor registers an actor and schedules its creation in the
// background. Named actors are unique per namespace: a second creation
// fails with AlreadyExists, or returns the first when get_if_exists is set.
//
// Creating an actor id that exists already answers with its record when
// it is the same actor (a retry across a head restart, or of a lost
// answer): creation is idempotent by actor id.
func (s *Server) CreateActor(ctx context.Context, req *pb.CreateActorRequest) (*pb.CreateActorReply, error) {
	a := req.GetActor()
	aid, ok := ids.FromBytes(a.GetActorId())
	if !ok || a.GetCreation() == nil {
		return nil, errs.Invalidf("gcs: CreateActor needs an actor id and a creation task")
	}
	if err := resources.Validate(a.GetCreation().GetResources().GetAmounts()); err != nil {
		return nil, errs.Invalidf("gcs: actor %s: %v", a.GetClassName(), err)
	}
	if err := resources.Validate(a.GetCreation().GetPlacementResources().GetAmounts()); err != nil {
		return nil, errs.Invalidf("gcs: actor %s: placement resources: %v", a.GetClassName(), err)
	}
	s.mu.Lock()
	if e, dup := s.actors[aid]; dup {
		info := cloneActor(e.info)
		s.mu.Unlock()
		if info.GetClassName() != a.GetClassName() || string(info.GetJobId()) != string(a.GetJobId()) {
			return nil, errs.AlreadyExistsf("gcs: actor %s already exists", aid)
		}
		return &pb.CreateActorReply{Actor: info}, nil
	}
	if a.GetName() != "" {
		if existing, ok := s.names[nameKey(a.GetNamespace(), a.GetName())]; ok {
			e := s.actors[existing]
			if e.info.State != StateDead {
				info := cloneActor(e.info)
				s.mu.Unlock()
				if req.GetGetIfExists() {
					return &pb.CreateActorReply{Actor: info, Existed: true}, nil
				}
				return nil, errs.AlreadyExistsf("gcs: an actor named %q already exists in namespace %q", a.GetName(), a.GetNamespace())
			}
		}
		s.names[nameKey(a.GetNamespace(), a.GetName())] = aid
	}
	a.State = StatePending
	a.Version = 1
	a.Infeasible = nil
	e := &actorEntry{info: a, changed: make(chan struct{}), failIfInfeasible: req.GetFailIfInfeasible()}
	s.actors[aid] = e
	mark := s.markActorLocked(e)
	reply := &pb.CreateActorReply{Actor: cloneActor(a)}
	s.mu.Unlock()
	s.goOwned(func() { s.scheduleActor(aid) })
	if err := s.durable(ctx, mark); err != nil {
		return nil, err
	}
	return reply, nil
}

func (s *Server) GetActor(_ context.Context, req *pb.GetActorRequest) (*pb.GetActorReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	aid, ok := ids.FromBytes(req.GetActorId())
	if !ok {
		aid, ok = s.names[nameKey(req.GetNamespace(), req.GetName())]
		if !ok || req.GetName() == "" {
			return nil, errs.NotFoundf("gcs: no actor named %q in namespace %q", req.GetName(), req.GetNamespace())
		}
	}
	e, ok := s.actors[aid]
	if !ok {
		return nil, errs.NotFoundf("gcs: no actor %s", aid)
	}
	if req.GetName() != "" && e.info.State == StateDead {
		return nil, errs.NotFoundf("gcs: actor named %q in namespace %q is dead", req.GetName(), req.GetNamespace())
	}
	return &pb.GetActorReply{Actor: cloneActor(e.info)}, nil
}

// WaitActor returns the actor's info once its version exceeds
// since_version, or its current info at the deadline (at most 30 s).
func (s *Server) WaitActor(ctx context.Context, req *pb.WaitActorRequest) (*pb.WaitActorReply, error) {
	aid := ids.MustFromBytes(req.GetActorId())
	timeout := time.Duration(req.GetTimeoutMs()) * time.Millisecond
	if timeout <= 0 || timeout > 30*time.Second {
		timeout = 30 * time.Second
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		e, ok := s.actors[aid]
		if !ok {
			s.mu.Unlock()
			return nil, errs.NotFoundf("gcs: no actor %s", aid)
		}
		info, ch := cloneActor(e.info), e.changed
		s.mu.Unlock()
		if info.Version > req.GetSinceVersion() {
			return &pb.WaitActorReply{Actor: info}, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return &pb.WaitActorReply{Actor: info}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, errs.Systemf("gcs: shutting down")
		}
	}
}

func (s *Server) ListActors(context.Context, *pb.ListActorsRequest) (*pb.ListActorsReply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &pb.ListActorsReply{}
	for _, e := range s.actors {
		out.Actors = append(out.Actors, cloneActor(e.info))
	}
	sort.Slice(out.Actors, func(i, j int) bool { return string(out.Actors[i].ActorId) < string(out.Actors[j].ActorId) })
	return out, nil
}

// KillActor kills an actor's process. With no_restart the actor is dead at
// once; otherwise it restarts if it has restarts left.
func (s *Server) KillActor(_ context.Context, req *pb.KillActorRequest) (*pb.KillActorReply, error) {
	aid, ok := ids.FromBytes(req.GetActorId())
	if !ok {
		return nil, errs.Invalidf("gcs: KillActor needs an actor id")
	}
	s.mu.Lock()
	_, found := s.actors[aid]
	s.mu.Unlock()
	if !found {
		return nil, errs.NotFoundf("gcs: no actor %s", aid)
	}
	if req.GetNoRestart() {
		reason, cause := req.GetReason(), req.GetCause()
		if reason == "" {
			reason = "killed by ray.Kill"
		}
		if cause == pb.ActorDeathCause_ACTOR_DEATH_CAUSE_UNSPECIFIED {
			cause = errs.ActorKilled
		}
		s.killActor(aid, reason, cause)
		return &pb.KillActorReply{}, nil
	}
	const reason = "killed by ray.Kill (restart allowed)"
	s.mu.Lock()
	e := s.actors[aid]
	p := e.place
	alive := e.info.State == StateAlive
	s.mu.Unlock()
	if alive {
		s.release(p, reason)
		if p.shared { // its process may live on: no WorkerDied need come
			s.actorProcessDied(aid, p.worker, reason, false)
		}
	}
	return &pb.KillActorReply{}, nil
}

// killActor marks an actor dead with reason and cause and stops its
// process.
func (s *Server) killActor(aid ids.ID, reason string, cause errs.ActorDeathCause) {
	s.mu.Lock()
	e, ok := s.actors[aid]
	if !ok || e.info.State == StateDead {
		s.mu.Unlock()
		return
	}
	p := e.place
	e.killing = true
	s.setDeadLocked(e, &errs.ActorDiedError{ActorID: aid.String(), Name: e.info.Name, Reason: reason, Cause: cause})
	s.mu.Unlock()
	s.release(p, reason)
}

// release stops an actor where it runs: a dedicated process is killed; on
// a process shared with other actors, only this actor is dropped and its
// lease returned. A zero placement (no worker yet) does nothing.
func (s *Server) release(p placement, reason string) {
	if p.worker.IsNil() {
		return
	}
	if !p.shared {
		s.killWorker(p.node, p.worker, reason)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if conn, err := s.pool.Get(p.addr); err == nil {
		_, _ = pb.NewCoreWorkerClient(conn).Exit(ctx, &pb.ExitRequest{ActorId: p.actor.Bytes(), Reason: reason})
	}
	s.mu.Lock()
	n := s.nodes[p.node]
	s.mu.Unlock()
	if n == nil {
		return
	}
	if conn, err := s.pool.Get(n.info.Address); err == nil {
		_, _ = pb.NewNodeDaemonClient(conn).ReturnLease(ctx, &pb.ReturnLeaseRequest{LeaseId: p.lease.Bytes()})
	}
}

// hostLocked records that worker hosts actor.
func (s *Server) hostLocked(worker, actor ids.ID) {
	if s.workerAct[worker] == nil {
		s.workerAct[worker] = map[ids.ID]bool{}
	}
	s.workerAct[worker][actor] = true
}

// unhostLocked forgets where e ran.
func (s *Server) unhostLocked(e *actorEntry) {
	if set := s.workerAct[e.place.worker]; set != nil {
		delete(set, e.place.actor)
		if len(set) == 0 {
			delete(s.workerAct, e.place.worker)
		}
	}
	e.place = placement{}
}

func (s *Server) killWorker(node, worker ids.ID, reason string) {
	s.mu.Lock()
	n, ok := s.nodes[node]
	var addr string
	if ok {
		addr = n.info.Address
	}
	s.mu.Unlock()
	if addr == "" {
		return
	}
	conn, err := s.pool.Get(addr)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	_, _ = pb.NewNodeDaemonClient(conn).KillWorker(ctx, &pb.KillWorkerRequest{WorkerId: worker.Bytes(), Reason: reason})
}

// bumpLocked publishes a change of the actor's record (and writes it to
// storage, with storage).
func (s *Server) bumpLocked(e *actorEntry) {
	e.info.Version++
	close(e.changed)
	e.changed = make(chan struct{})
	s.markActorLocked(e)
}

func (s *Server) setDeadLocked(e *actorEntry, cause error) {
	if e.stopPlacing != nil {
		e.stopPlacing() // withdraw a lease request still queued at a node
		e.stopPlacing = nil
	}
	e.info.State = StateDead
	e.info.Address = ""
	e.info.Infeasible = nil
	e.info.DeathCause = errs.ToInfo(cause)
	s.unhostLocked(e)
	if e.info.Name != "" {
		k := nameKey(e.info.Namespace, e.info.Name)
		if s.names[k] == ids.MustFromBytes(e.info.ActorId) {
			delete(s.names, k)
		}
	}
	s.bumpLocked(e)
	s.deadOrder = append(s.deadOrder, ids.MustFromBytes(e.info.ActorId))
	for len(s.deadOrder) > s.cfg.MaxDeadActors {
		delete(s.actors, s.deadOrder[0])
		s.forgetActorLocked(s.deadOrder[0].Bytes())
		s.deadOrder = s.deadOrder[1:]
	}
}

// WorkerDied is reported by node daemons for every worker process that
// exits. The control store restarts or buries the actor the worker hosted
// and kills the non-detached actors the worker owned.
func (s *Server) WorkerDied(_ context.Context, req *pb.WorkerDiedRequest) (*pb.WorkerDiedReply, error) {
	wid := ids.MustFromBytes(req.GetWorkerId())
	s.mu.Lock()
	var hosted []ids.ID
	for aid := range s.workerAct[wid] {
		hosted = append(hosted, aid)
	}
	var owned []ids.ID
	for id, e := range s.actors {
		if ids.MustFromBytes(e.info.OwnerId) == wid && !e.info.Detached && e.info.State != StateDead {
			owned = append(owned, id)
		}
	}
	s.mu.Unlock()
	reason := req.GetReason()
	if reason == "" {
		reason = fmt.Sprintf("its worker process exited with code %d", req.GetExitCode())
	}
	for _, aid := range hosted {
		s.actorProcessDied(aid, wid, reason, false)
	}
	for _, id := range owned {
		s.killActor(id, "its owner died", errs.ActorOwnerDied)
	}
	// Its objects on other nodes (returns of tasks it called, copies
	// fetched there) have no owner any more.
	s.noticeOwners(nil, []ids.ID{wid}, nil)
	return &pb.WorkerDiedReply{}, nil
}

// actorProcessDied handles the death of an actor's process: the actor
// restarts while it has restarts left, else it is dead with reason.
//
// worker names the process that died (zero: any, as when its node died).
// A death reported for a process the actor no longer lives in is ignored:
// a shared host killed as its last actor leaves may report its death after
// the actor was already restarted elsewhere, and that must not count as a
// second death.
func (s *Server) actorProcessDied(aid, worker ids.ID, reason string, noRestart bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.actors[aid]
	if !ok || e.info.State == StateDead {
		return
	}
	if !worker.IsNil() && e.place.worker != worker {
		return
	}
	s.unhostLocked(e)
	max := e.info.MaxRestarts
	if e.killing || noRestart || (max >= 0 && e.info.NumRestarts >= max) {
		cause := errs.ActorProcessDied
		switch {
		case e.killing || noRestart:
			cause = errs.ActorKilled
		case worker.IsNil():
			cause = errs.ActorNodeDied
		}
		s.setDeadLocked(e, &errs.ActorDiedError{ActorID: aid.String(), Name: e.info.Name, Reason: reason, Cause: cause})
		return
	}
	e.info.NumRestarts++
	e.info.State = StateRestarting
	e.info.Address = ""
	e.info.WorkerId = nil
	s.bumpLocked(e)
	s.goOwned(func() { s.scheduleActor(aid) })
}

// scheduleActor leases a worker for the actor, runs its constructor there,
// and publishes the result.
//
// Placement never waits on one node's stale view: the lease request goes
// to the node the control store's view prefers, and a node that cannot
// grant it queues it and re-evaluates it against its own, fresher view of
// the cluster, answering with a spillback as soon as another node has room
// (raylet queue.go). An actor no alive node can hold waits here, with
// ActorInfo.infeasible set, until a node joins (unless it was created with
// fail_if_infeasible: then it dies with the InfeasibleError).
func (s *Server) scheduleActor(aid ids.ID) {
	backoff := 50 * time.Millisecond
	var spill string
	for s.ctx.Err() == nil {
		s.mu.Lock()
		e, ok := s.actors[aid]
		if !ok || e.info.State == StateDead {
			s.mu.Unlock()
			return
		}
		spec := e.info.Creation
		need := placementResources(spec)
		addr := spill
		if addr == "" {
			var ie *errs.InfeasibleError
			addr, ie = s.pickNodeLocked(e.info.ClassName, need, spec)
			if ie != nil {
				if e.failIfInfeasible || hardAffinity(spec) {
					s.setDeadLocked(e, ie)
					s.mu.Unlock()
					return
				}
				if e.info.Infeasible == nil {
					e.info.Infeasible = errs.ToInfo(ie)
					s.bumpLocked(e)
					s.log.Info("actor is infeasible on every node; it waits for a node that can hold it",
						"actor", aid.Short(), "class", e.info.ClassName, "request", need.String(), "cluster", ie.Cluster)
				}
				// Look again when a node joins, or when the actor changes
				// (killed meanwhile).
				joined, changed := s.nodesChanged, e.changed
				s.mu.Unlock()
				select {
				case <-joined:
				case <-changed:
				case <-s.ctx.Done():
				}
				continue
			}
			if e.info.Infeasible != nil {
				e.info.Infeasible = nil
				s.bumpLocked(e)
			}
		}
		ctx, cancel := context.WithCancel(s.ctx)
		e.stopPlacing = cancel
		failFast := e.failIfInfeasible || hardAffinity(spec)
		s.mu.Unlock()
		spilled := spill != ""
		spill = ""
		lease, err := s.requestLease(ctx, addr, spec, need, spilled, failFast)
		cancel()
		s.mu.Lock()
		e.stopPlacing = nil
		dead := e.info.State == StateDead
		s.mu.Unlock()
		if dead {
			if err == nil && len(lease.GetLeaseId()) > 0 { // granted as it was killed
				s.release(placement{actor: aid, node: ids.MustFromBytes(lease.GetNodeId()), worker: ids.MustFromBytes(lease.GetWorkerId()),
					lease: ids.MustFromBytes(lease.GetLeaseId()), addr: lease.GetWorkerAddress(), shared: lease.GetShared()}, "actor killed during creation")
			}
			return
		}
		if err != nil {
			if errors.Is(err, errs.ErrInfeasible) || errors.Is(err, errs.ErrWorkerStartup) || errors.Is(err, errs.ErrInvalidRequest) {
				s.mu.Lock()
				s.setDeadLocked(e, err)
				s.mu.Unlock()
				return
			}
			s.sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		if lease.GetSpillbackAddress() != "" {
			spill = lease.GetSpillbackAddress()
			continue
		}
		if len(lease.GetLeaseId()) == 0 { // canceled or infeasible by the node's view: place again
			s.sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		wid := ids.MustFromBytes(lease.GetWorkerId())
		place := placement{actor: aid, node: ids.MustFromBytes(lease.GetNodeId()), worker: wid,
			lease: ids.MustFromBytes(lease.GetLeaseId()), addr: lease.GetWorkerAddress(), shared: lease.GetShared()}
		s.mu.Lock()
		e.place = place
		s.hostLocked(wid, aid)
		s.mu.Unlock()
		cerr := s.runConstructor(lease.GetWorkerAddress(), spec)
		s.mu.Lock()
		if e.info.State == StateDead { // killed while being created
			s.mu.Unlock()
			s.release(place, "actor killed during creation")
			return
		}
		if cerr != nil {
			var te *errs.TaskError
			if errors.As(cerr, &te) || errors.Is(cerr, errs.ErrNotRegistered) || errors.Is(cerr, errs.ErrBadArgument) {
				e.killing = true
				s.setDeadLocked(e, &errs.ActorDiedError{ActorID: aid.String(), Name: e.info.Name, Reason: "constructor failed: " + cerr.Error(),
					Cause: errs.ActorCreationFailed})
				s.mu.Unlock()
				s.release(place, "actor constructor failed")
				return
			}
			if rpc.IsUnavailable(cerr) {
				// The worker was gone before the constructor could run (it
				// died but was not reaped yet): place the actor again,
				// without spending one of its restarts.
				s.unhostLocked(e)
				s.mu.Unlock()
				s.release(place, "worker unreachable at actor creation")
				s.sleep(backoff)
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			// The worker died during creation; WorkerDied drives the restart.
			s.mu.Unlock()
			return
		}
		e.info.State = StateAlive
		e.info.Address = lease.GetWorkerAddress()
		e.info.WorkerId = lease.GetWorkerId()
		e.info.NodeId = lease.GetNodeId()
		e.info.Pid = lease.GetWorkerPid()
		s.bumpLocked(e)
		s.mu.Unlock()
		return
	}
}

// placementResources is what a node must have available to place the
// actor: the creation task's placement_resources when set (each amount at
// least the held one), else, as in Ray, 1 CPU for an actor that asked for
// nothing at all (it holds none while it runs), else what it holds.
func placementResources(spec *pb.TaskSpec) resources.Set {
	held := resources.Set(spec.GetResources().GetAmounts())
	if pr := spec.GetPlacementResources(); pr != nil {
		place := held.Clone()
		for k, v := range pr.GetAmounts() {
			place[k] = max(place[k], v)
		}
		return place
	}
	if len(held) == 0 {
		return resources.Set{resources.CPU: 1}
	}
	return held.Clone()
}

func (s *Server) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// requestLease asks the node daemon at addr for the actor's worker. The
// request waits in the daemon's queue while the daemon has no room (it is
// spilled back from there when another node has room); an infeasible one
// waits there too, unless failFast. Cancelling ctx withdraws it.
func (s *Server) requestLease(ctx context.Context, addr string, spec *pb.TaskSpec, place resources.Set, spilled, failFast bool) (*pb.LeaseReply, error) {
	conn, err := s.pool.Get(addr)
	if err != nil {
		return nil, err
	}
	return pb.NewNodeDaemonClient(conn).RequestLease(ctx, &pb.LeaseRequest{
		JobId: spec.GetJobId(), Resources: spec.GetResources(), PlacementResources: &pb.Resources{Amounts: place},
		Actor: true, SchedulingKey: "actor:" + spec.GetFunction(), Strategy: spec.GetStrategy(), Scheduling: spec.GetScheduling(),
		RuntimeEnv:       spec.GetRuntimeEnv(),
		GrantOrReject:    spilled,
		FailIfInfeasible: failFast, QueueIfInfeasible: !failFast,
		ControlStoreEpoch: s.epoch,
	})
}

func (s *Server) runConstructor(addr string, spec *pb.TaskSpec) error {
	conn, err := s.pool.Get(addr)
	if err != nil {
		return err
	}
	reply, err := pb.NewCoreWorkerClient(conn).CreateActor(s.ctx, &pb.CreateActorTaskRequest{Spec: spec})
	if err != nil {
		return err
	}
	return errs.FromInfo(reply.GetError())
}

// hardAffinity says whether an actor must run on one node: when that node
// is gone it dies at once, as in Ray, instead of waiting for a node.
func hardAffinity(spec *pb.TaskSpec) bool {
	return spec.GetStrategy() == pb.SchedulingStrategy_SCHEDULING_STRATEGY_NODE_AFFINITY && !spec.GetScheduling().GetSoft()
}

// pickNodeLocked chooses the node to ask for the actor's lease, from the
// nodes' last heartbeats, and takes place from that node's view until its
// next heartbeat (so a burst of actors is spread, not sent to one node). It
// returns an InfeasibleError when no alive node could ever hold place.
func (s *Server) pickNodeLocked(class string, place resources.Set, spec *pb.TaskSpec) (string, *errs.InfeasibleError) {
	nodes := make([]scheduler.Node, 0, len(s.nodes))
	byID := map[string]*nodeEntry{}
	var totals []string
	for id, n := range s.nodes {
		if n.info.State != pb.NodeState_NODE_STATE_ALIVE {
			continue
		}
		nodes = append(nodes, scheduler.Node{ID: id.String(), Address: n.info.Address, Alive: true,
			Total: resources.Set(n.info.GetTotal().GetAmounts()), Available: resources.Set(n.info.GetAvailable().GetAmounts()), Labels: n.info.Labels})
		byID[id.String()] = n
		totals = append(totals, resources.Set(n.info.GetTotal().GetAmounts()).String())
	}
	sort.Strings(totals)
	s.rr++
	// The spec passed wirecheck.TaskSpec when the actor was created.
	r, _ := wirecheck.Placement(spec.GetStrategy(), spec.GetScheduling(), place)
	d := scheduler.Pick(nodes, "", r, scheduler.DefaultConfig(), s.rr)
	if d.Kind == scheduler.Infeasible || d.Node == "" {
		return "", &errs.InfeasibleError{Function: class, Request: r.String(), Cluster: strings.Join(totals, ", ")}
	}
	n := byID[d.Node]
	avail := resources.Set(n.info.GetAvailable().GetAmounts()).Clone()
	avail.Sub(place)
	n.info.Available = &pb.Resources{Amounts: avail}
	s.touchLocked(n)
	return n.info.Address, nil
}
