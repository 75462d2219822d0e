package wirecheck

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// Message checks any message a raygo process accepts from another, by
// type; types without a check of their own (replies, empty requests) pass.
// gRPC servers call it on every request and streamed message.
func Message(m proto.Message) error {
	switch m := m.(type) {
	// core worker
	case *pb.TaskBatch:
		return TaskBatch(m)
	case *pb.ReplyBatch:
		return ReplyBatch(m)
	case *pb.WatchObjectsRequest:
		return idList("object id", m.GetObjectIds())
	case *pb.WatchObjectsReply:
		return WatchObjectsReply(m)
	case *pb.BorrowRequest:
		if err := idList("object id", m.GetObjectIds()); err != nil {
			return err
		}
		if err := id("borrower id", m.GetBorrowerId()); err != nil {
			return err
		}
		return address("borrower address", m.GetBorrowerAddress())
	case *pb.CancelTaskRequest:
		return id("task id", m.GetTaskId())
	case *pb.CreateActorTaskRequest:
		return TaskSpec(m.GetSpec())
	case *pb.ExitRequest:
		if err := id("actor id", m.GetActorId()); err != nil {
			return err
		}
		return name("reason", m.GetReason())
	case *pb.RebuildObjectRequest:
		return needID("object id", m.GetObjectId())
	case *pb.ObjectLocationsRequest:
		return idList("object id", m.GetObjectIds())
	case *pb.UpdateObjectLocationRequest:
		if err := needID("object id", m.GetObjectId()); err != nil {
			return err
		}
		return address("node address", m.GetNode())

	// control store
	case *pb.RegisterNodeRequest:
		return RegisterNode(m)
	case *pb.NodeHeartbeatRequest:
		return NodeHeartbeat(m)
	case *pb.UnregisterNodeRequest:
		return id("node id", m.GetNodeId())
	case *pb.RegisterJobRequest:
		return JobInfo(m.GetJob())
	case *pb.GetJobRequest:
		return id("job id", m.GetJobId())
	case *pb.FinishJobRequest:
		return id("job id", m.GetJobId())
	case *pb.DriverAliveRequest:
		return id("job id", m.GetJobId())
	case *pb.KVPutRequest:
		if err := name("namespace", m.GetNs()); err != nil {
			return err
		}
		return name("key", m.GetKey())
	case *pb.KVGetRequest:
		if err := name("namespace", m.GetNs()); err != nil {
			return err
		}
		return name("key", m.GetKey())
	case *pb.BinaryChunk:
		if m.GetOffset() < 0 || m.GetTotal() < 0 {
			return bad("binary chunk at offset %d of %d", m.GetOffset(), m.GetTotal())
		}
		return name("binary hash", m.GetHash())
	case *pb.HasBinaryRequest:
		if err := name("binary hash", m.GetHash()); err != nil {
			return err
		}
		return name("binary path", m.GetPath())
	case *pb.GetBinaryRequest:
		return name("binary hash", m.GetHash())
	case *pb.CreateActorRequest:
		return ActorInfo(m.GetActor())
	case *pb.GetActorRequest:
		if err := id("actor id", m.GetActorId()); err != nil {
			return err
		}
		if err := name("actor name", m.GetName()); err != nil {
			return err
		}
		return name("namespace", m.GetNamespace())
	case *pb.WaitActorRequest:
		if m.GetTimeoutMs() < 0 {
			return bad("negative timeout %d ms", m.GetTimeoutMs())
		}
		return id("actor id", m.GetActorId())
	case *pb.KillActorRequest:
		return id("actor id", m.GetActorId())
	case *pb.WorkerDiedRequest:
		if err := id("node id", m.GetNodeId()); err != nil {
			return err
		}
		if err := id("worker id", m.GetWorkerId()); err != nil {
			return err
		}
		if err := address("worker address", m.GetAddress()); err != nil {
			return err
		}
		return name("reason", m.GetReason())

	// node daemon
	case *pb.LeaseRequest:
		if err := id("job id", m.GetJobId()); err != nil {
			return err
		}
		if err := id("owner id", m.GetOwnerId()); err != nil {
			return err
		}
		if err := id("owner node id", m.GetOwnerNodeId()); err != nil {
			return err
		}
		if err := name("scheduling key", m.GetSchedulingKey()); err != nil {
			return err
		}
		if _, err := Placement(m.GetStrategy(), m.GetScheduling(), nil); err != nil {
			return err
		}
		if len(m.GetRequestId()) > MaxRequestIDBytes {
			return bad("lease request id of %d bytes exceeds %d", len(m.GetRequestId()), MaxRequestIDBytes)
		}
		if m.PlacementResources != nil {
			if err := Request(m.GetPlacementResources()); err != nil {
				return within("placement resources", err)
			}
		}
		return Request(m.GetResources())
	case *pb.CancelLeaseRequest:
		if len(m.GetRequestId()) > MaxRequestIDBytes {
			return bad("lease request id of %d bytes exceeds %d", len(m.GetRequestId()), MaxRequestIDBytes)
		}
		return nil
	case *pb.ReturnLeaseRequest:
		return id("lease id", m.GetLeaseId())
	case *pb.RegisterWorkerRequest:
		if err := id("worker id", m.GetWorkerId()); err != nil {
			return err
		}
		return address("worker address", m.GetAddress())
	case *pb.BlockedRequest:
		return id("worker id", m.GetWorkerId())
	case *pb.PutObjectRequest:
		if err := id("object id", m.GetObjectId()); err != nil {
			return err
		}
		if err := id("owner id", m.GetOwnerId()); err != nil {
			return err
		}
		return address("owner address", m.GetOwnerAddress())
	case *pb.GetObjectRequest:
		return id("object id", m.GetObjectId())
	case *pb.FreeObjectsRequest:
		return idList("object id", m.GetObjectIds())
	case *pb.FreeOwnedRequest:
		if err := idList("finished job id", m.GetFinishedJobIds()); err != nil {
			return err
		}
		if err := idList("dead owner id", m.GetDeadOwnerIds()); err != nil {
			return err
		}
		return idList("kept owner id", m.GetKeepOwnerIds())
	case *pb.KillWorkerRequest:
		if err := id("worker id", m.GetWorkerId()); err != nil {
			return err
		}
		return name("reason", m.GetReason())
	case *pb.NodeStatsRequest:
		if m.GetLargest() < 0 {
			return bad("negative largest %d", m.GetLargest())
		}
		return nil
	case *pb.WorkerDeathCauseRequest:
		return id("worker id", m.GetWorkerId())
	case *pb.PullObjectRequest:
		return PullObject(m)
	case *pb.PrepareBundlesRequest:
		if err := needID("group id", m.GetGroupId()); err != nil {
			return err
		}
		return bundleSpecs(m.GetBundles())
	case *pb.CommitBundlesRequest:
		if err := needID("group id", m.GetGroupId()); err != nil {
			return err
		}
		return bundleIndexes(m.GetIndexes())
	case *pb.CancelBundlesRequest:
		if err := needID("group id", m.GetGroupId()); err != nil {
			return err
		}
		if len(m.GetMoreRemoved()) > MaxGroupOps {
			return bad("%d more removed groups exceed %d", len(m.GetMoreRemoved()), MaxGroupOps)
		}
		if err := idList("removed group id", m.GetMoreRemoved()); err != nil {
			return err
		}
		return bundleIndexes(m.GetIndexes())

	// placement groups (control store)
	case *pb.CreatePlacementGroupRequest:
		return PlacementGroup(m.GetGroup())
	case *pb.RemovePlacementGroupRequest:
		return needID("group id", m.GetGroupId())
	case *pb.GetPlacementGroupRequest:
		if err := id("group id", m.GetGroupId()); err != nil {
			return err
		}
		if err := name("group name", m.GetName()); err != nil {
			return err
		}
		return name("namespace", m.GetNamespace())
	case *pb.WaitPlacementGroupRequest:
		return needID("group id", m.GetGroupId())
	case *pb.GroupOpsRequest:
		return GroupOps(m)

	// framed sockets and the object store
	case *pb.FramedHello:
		if err := name("purpose", m.GetPurpose()); err != nil {
			return err
		}
		if err := name("name", m.GetName()); err != nil {
			return err
		}
		if err := id("job id", m.GetJobId()); err != nil {
			return err
		}
		return id("worker id", m.GetWorkerId())
	case *pb.FramedHelloReply:
		return ErrorInfo(m.GetError())
	case *pb.StoreRequest:
		return StoreRequest(m)
	case *pb.StoreReply:
		return ErrorInfo(m.GetError())
	}
	return nil
}

// MaxPullLocations bounds the location hints of one PullObject request.
const MaxPullLocations = 4096

// PullObject checks a request to make an object local: ids, a size that
// is not negative, addresses.
func PullObject(r *pb.PullObjectRequest) error {
	if err := needID("object id", r.GetObjectId()); err != nil {
		return err
	}
	if err := id("owner id", r.GetOwnerId()); err != nil {
		return err
	}
	if r.GetSize() < 0 {
		return bad("object of negative size %d", r.GetSize())
	}
	if err := address("owner address", r.GetOwnerAddress()); err != nil {
		return err
	}
	if len(r.GetLocations()) > MaxPullLocations {
		return bad("%d locations exceed %d", len(r.GetLocations()), MaxPullLocations)
	}
	for _, a := range r.GetLocations() {
		if err := address("location", a); err != nil {
			return err
		}
	}
	return nil
}

// RegisterNode checks a node's registration: its id and address, its
// total resources as the API checks a request (finite, named as allowed,
// whole GPUs), its available ones (finite), labels and pending demands.
func RegisterNode(r *pb.RegisterNodeRequest) error {
	n := r.GetNode()
	if n == nil {
		return bad("RegisterNode without a node")
	}
	if err := id("node id", n.GetNodeId()); err != nil {
		return err
	}
	if err := address("node address", n.GetAddress()); err != nil {
		return err
	}
	if err := address("serve proxy address", n.GetServeAddress()); err != nil {
		return err
	}
	if err := address("serve gRPC proxy address", n.GetServeGrpcAddress()); err != nil {
		return err
	}
	if err := name("hostname", n.GetHostname()); err != nil {
		return err
	}
	if n.Total != nil {
		if err := Capacity(n.GetTotal()); err != nil {
			return within("node total", err)
		}
	}
	if n.Available != nil {
		if err := Available(n.GetAvailable()); err != nil {
			return within("node available", err)
		}
	}
	if len(n.GetLabels()) > MaxLabels {
		return bad("%d labels exceed %d", len(n.GetLabels()), MaxLabels)
	}
	for k, v := range n.GetLabels() {
		if len(k) > MaxLabelBytes || len(v) > MaxLabelBytes {
			return bad("label %.64q of %d bytes (value %d) exceeds %d", k, len(k), len(v), MaxLabelBytes)
		}
	}
	return demands(n.GetPendingDemands(), n.GetPendingLeases(), n.GetNumWorkers())
}

// NodeHeartbeat checks a heartbeat: the node id, available resources
// (finite), pending demands (as requests) and counts.
func NodeHeartbeat(r *pb.NodeHeartbeatRequest) error {
	if err := id("node id", r.GetNodeId()); err != nil {
		return err
	}
	if r.Available != nil {
		if err := Available(r.GetAvailable()); err != nil {
			return within("heartbeat available", err)
		}
	}
	if r.Total != nil {
		if err := Capacity(r.GetTotal()); err != nil {
			return within("heartbeat total", err)
		}
	}
	return demands(r.GetPendingDemands(), r.GetPendingLeases(), r.GetNumWorkers())
}

// MaxRequestIDBytes bounds a lease request's id (see LeaseRequest).
const MaxRequestIDBytes = 64

// MaxDemands bounds the pending demands one node reports.
const MaxDemands = 1 << 16

func demands(list []*pb.Resources, pending, workers int32) error {
	if pending < 0 || workers < 0 {
		return bad("negative counts (pending leases %d, workers %d)", pending, workers)
	}
	if len(list) > MaxDemands {
		return bad("%d pending demands exceed %d", len(list), MaxDemands)
	}
	for _, d := range list {
		if err := Request(d); err != nil {
			return within("pending demand", err)
		}
	}
	return nil
}

// JobInfo checks a job's registration.
func JobInfo(j *pb.JobInfo) error {
	if j == nil {
		return bad("missing job")
	}
	if err := id("job id", j.GetJobId()); err != nil {
		return err
	}
	if err := id("driver id", j.GetDriverId()); err != nil {
		return err
	}
	if err := address("driver address", j.GetDriverAddress()); err != nil {
		return err
	}
	for _, s := range []struct{ what, v string }{{"binary hash", j.GetBinaryHash()}, {"namespace", j.GetNamespace()}, {"entrypoint", j.GetEntrypoint()}, {"binary path", j.GetBinaryPath()}} {
		if err := name(s.what, s.v); err != nil {
			return err
		}
	}
	if j.GetInlineThreshold() < 0 {
		return bad("negative inline threshold %d", j.GetInlineThreshold())
	}
	return nil
}

// ActorInfo checks an actor's creation request: ids, names, restarts and
// its creation task.
func ActorInfo(a *pb.ActorInfo) error {
	if a == nil {
		return bad("missing actor")
	}
	for _, f := range []struct {
		what string
		b    []byte
	}{{"actor id", a.GetActorId()}, {"job id", a.GetJobId()}, {"worker id", a.GetWorkerId()}, {"node id", a.GetNodeId()}, {"owner id", a.GetOwnerId()}} {
		if err := id(f.what, f.b); err != nil {
			return err
		}
	}
	for _, s := range []struct{ what, v string }{{"actor name", a.GetName()}, {"namespace", a.GetNamespace()}, {"class name", a.GetClassName()}} {
		if err := name(s.what, s.v); err != nil {
			return err
		}
	}
	if err := address("owner address", a.GetOwnerAddress()); err != nil {
		return err
	}
	if a.GetMaxRestarts() < -1 {
		return bad("max_restarts %d below -1", a.GetMaxRestarts())
	}
	if err := ErrorInfo(a.GetDeathCause()); err != nil {
		return err
	}
	if a.Creation != nil {
		return TaskSpec(a.GetCreation())
	}
	return nil
}

// StoreRequest checks an object store request: object ids, a create's
// size (not negative) and names.
func StoreRequest(r *pb.StoreRequest) error {
	switch op := r.GetOp().(type) {
	case *pb.StoreRequest_Create:
		c := op.Create
		if err := id("object id", c.GetObjectId()); err != nil {
			return err
		}
		if c.GetSize() < 0 {
			return bad("create of negative size %d", c.GetSize())
		}
		if err := id("owner id", c.GetOwnerId()); err != nil {
			return err
		}
		if err := address("owner address", c.GetOwnerAddress()); err != nil {
			return err
		}
		return name("call site", c.GetCallSite())
	case *pb.StoreRequest_Seal:
		return idList("object id", op.Seal.GetObjectIds())
	case *pb.StoreRequest_Abort:
		return idList("object id", op.Abort.GetObjectIds())
	case *pb.StoreRequest_Get:
		return idList("object id", op.Get.GetObjectIds())
	case *pb.StoreRequest_Release:
		return idList("object id", op.Release.GetObjectIds())
	}
	return nil
}

// MaxBundles bounds a placement group's bundles.
const MaxBundles = 1 << 12

// MaxGroupOps bounds the ops of one GroupOpsRequest, and the groups of
// one CancelBundlesRequest.
const MaxGroupOps = 1 << 10

// GroupOps checks a batch of placement-group ops: each numbered (from 1,
// increasing) and either a valid group to create or the id of one to
// remove.
func GroupOps(m *pb.GroupOpsRequest) error {
	if len(m.GetOps()) > MaxGroupOps {
		return bad("%d placement group ops exceed %d", len(m.GetOps()), MaxGroupOps)
	}
	var last uint64
	for i, op := range m.GetOps() {
		if op.GetSeq() <= last {
			return bad("placement group op %d: seq %d after %d", i, op.GetSeq(), last)
		}
		last = op.GetSeq()
		switch create, remove := op.GetCreate(), op.GetRemove(); {
		case create != nil && remove != nil:
			return bad("placement group op %d both creates and removes", i)
		case create != nil:
			if err := PlacementGroup(create); err != nil {
				return within(fmt.Sprintf("placement group op %d", i), err)
			}
		default:
			if err := needID("group id to remove", remove); err != nil {
				return within(fmt.Sprintf("placement group op %d", i), err)
			}
		}
	}
	return nil
}

// PlacementGroup checks a group to create: its id, name, strategy and
// bundles (each a request of at least one resource, named so that its
// bundle resources are valid names too).
func PlacementGroup(g *pb.PlacementGroupInfo) error {
	if g == nil {
		return bad("CreatePlacementGroup without a group")
	}
	if err := needID("group id", g.GetGroupId()); err != nil {
		return err
	}
	if err := id("job id", g.GetJobId()); err != nil {
		return err
	}
	if err := id("creator id", g.GetCreatorId()); err != nil {
		return err
	}
	if err := name("group name", g.GetName()); err != nil {
		return err
	}
	if err := name("namespace", g.GetNamespace()); err != nil {
		return err
	}
	if _, ok := pb.PlacementStrategy_name[int32(g.GetStrategy())]; !ok {
		return bad("unknown placement strategy %d", int32(g.GetStrategy()))
	}
	if len(g.GetBundles()) == 0 {
		return bad("a placement group needs at least one bundle")
	}
	specs := make([]*pb.BundleSpec, len(g.GetBundles()))
	for i, b := range g.GetBundles() {
		specs[i] = &pb.BundleSpec{Index: int32(i), Resources: b.GetResources()}
	}
	return bundleSpecs(specs)
}

func bundleSpecs(list []*pb.BundleSpec) error {
	if len(list) > MaxBundles {
		return bad("%d bundles exceed %d", len(list), MaxBundles)
	}
	for _, b := range list {
		if b.GetIndex() < 0 || b.GetIndex() >= MaxBundles {
			return bad("bundle index %d outside [0, %d)", b.GetIndex(), MaxBundles)
		}
		amounts := b.GetResources().GetAmounts()
		if err := Request(b.GetResources()); err != nil {
			return within(fmt.Sprintf("bundle %d", b.GetIndex()), err)
		}
		nonzero := false
		for k, v := range amounts {
			nonzero = nonzero || v > 0
			// The longest name the bundle makes of k must be a valid one.
			if err := resources.ValidateTotal(resources.Set{resources.BundleResource(k, strings.Repeat("0", 2*ids.Size), MaxBundles-1): v}); err != nil {
				return bad("bundle %d: resource %q is too long a name for a placement-group bundle (%v)", b.GetIndex(), k, err)
			}
		}
		if !nonzero {
			return bad("bundle %d holds no resources; a bundle must hold some", b.GetIndex())
		}
	}
	return nil
}

func bundleIndexes(list []int32) error {
	if len(list) > MaxBundles {
		return bad("%d bundle indexes exceed %d", len(list), MaxBundles)
	}
	for _, i := range list {
		if i < 0 || i >= MaxBundles {
			return bad("bundle index %d outside [0, %d)", i, MaxBundles)
		}
	}
	return nil
}
