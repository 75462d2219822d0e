package state

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/pb"
)

// DefaultNodeTimeout bounds each node daemon's answer to a list of
// workers or objects; a node that does not answer in time is named in
// partial_failure_warning and the list goes on without it.
const DefaultNodeTimeout = 2 * time.Second

// sources reads the cluster: the control store in this process, node
// daemons by gRPC.
type sources struct {
	c           *api.Cluster
	nodeTimeout time.Duration
}

// headID is the head node's id (hex), "" when unknown.
func (s *sources) headID(ctx context.Context) string {
	if s.c.HeadNode != nil {
		return s.c.HeadNode.NodeID().String()
	}
	info, err := s.c.GCS.GetClusterInfo(ctx, &pb.GetClusterInfoRequest{})
	if err != nil {
		return ""
	}
	return hexID(info.GetHeadNodeId())
}

func (s *sources) nodes(ctx context.Context) ([]nodeRow, error) {
	reply, err := s.c.GCS.GetNodes(ctx, &pb.GetNodesRequest{IncludeDead: true})
	if err != nil {
		return nil, err
	}
	head := s.headID(ctx)
	rows := make([]nodeRow, 0, len(reply.GetNodes()))
	for _, n := range reply.GetNodes() {
		rows = append(rows, nodeFromPB(n, head))
	}
	slices.SortFunc(rows, func(a, b nodeRow) int { return strings.Compare(a.id, b.id) })
	return rows, nil
}

// jobs lists the control store's jobs merged with the job manager's
// submissions (internal/jobs, reached through the control store; none
// when the head runs no job manager), oldest first.
func (s *sources) jobs(ctx context.Context) (rows []jobRow, err error) {
	reply, err := s.c.GCS.ListJobs(ctx, &pb.ListJobsRequest{})
	if err != nil {
		return nil, err
	}
	var subs []*pb.JobSubmission
	if m := s.c.GCS.JobSubmissions(); m != nil {
		subs = m.Submissions()
	}
	rows = mergeJobs(reply.GetJobs(), subs)
	slices.SortStableFunc(rows, func(a, b jobRow) int {
		return cmp.Or(cmp.Compare(a.startMs, b.startMs), strings.Compare(a.jobID, b.jobID), strings.Compare(a.submissionID, b.submissionID))
	})
	return rows, nil
}

func (s *sources) actors(ctx context.Context) ([]actorRow, error) {
	reply, err := s.c.GCS.ListActors(ctx, &pb.ListActorsRequest{})
	if err != nil {
		return nil, err
	}
	rows := make([]actorRow, 0, len(reply.GetActors()))
	for _, a := range reply.GetActors() {
		rows = append(rows, actorFromPB(a))
	}
	return rows, nil
}

func (s *sources) groups(ctx context.Context) ([]groupRow, error) {
	reply, err := s.c.GCS.ListPlacementGroups(ctx, &pb.ListPlacementGroupsRequest{})
	if err != nil {
		return nil, err
	}
	rows := make([]groupRow, 0, len(reply.GetGroups()))
	for _, g := range reply.GetGroups() {
		rows = append(rows, groupFromPB(g))
	}
	slices.SortStableFunc(rows, func(a, b groupRow) int {
		return cmp.Or(cmp.Compare(a.createdMs, b.createdMs), strings.Compare(a.id, b.id))
	})
	return rows, nil
}

// nodeAnswer is one node daemon's answer in a fan-out.
type nodeAnswer[R any] struct {
	node  *pb.NodeInfo
	reply R
	err   error
}

// fanOut calls every alive node daemon at once, each with its own
// timeout, and returns the answers of those that answered (in node id
// order) and a warning naming those that did not ("" when all did).
func fanOut[R any](ctx context.Context, s *sources, call func(context.Context, pb.NodeDaemonClient) (R, error)) ([]nodeAnswer[R], string, error) {
	reply, err := s.c.GCS.GetNodes(ctx, &pb.GetNodesRequest{})
	if err != nil {
		return nil, "", err
	}
	nodes := reply.GetNodes()
	slices.SortFunc(nodes, func(a, b *pb.NodeInfo) int { return strings.Compare(string(a.GetNodeId()), string(b.GetNodeId())) })
	answers := make([]nodeAnswer[R], len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		answers[i].node = n
		wg.Add(1)
		go func(a *nodeAnswer[R]) {
			defer wg.Done()
			conn, err := s.c.Pool.Get(a.node.GetAddress())
			if err != nil {
				a.err = err
				return
			}
			cctx, cancel := context.WithTimeout(ctx, s.nodeTimeout)
			defer cancel()
			a.reply, a.err = call(cctx, pb.NewNodeDaemonClient(conn))
		}(&answers[i])
	}
	wg.Wait()
	ok := answers[:0:0]
	var failed []string
	for _, a := range answers {
		if a.err != nil {
			failed = append(failed, fmt.Sprintf("node %s (%s): %v", hexID(a.node.GetNodeId()), a.node.GetAddress(), a.err))
			continue
		}
		ok = append(ok, a)
	}
	return ok, partialWarning(len(failed), len(nodes), failed), nil
}

// partialWarning says which nodes did not answer ("" when all did).
func partialWarning(nFailed, nNodes int, failed []string) string {
	if nFailed == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d nodes did not answer; their rows are missing: %s", nFailed, nNodes, strings.Join(failed, "; "))
}

// workers lists every alive node's worker processes and the running
// jobs' drivers. Worker rows carry the ids of the actors they host, from
// the control store's actor table.
func (s *sources) workers(ctx context.Context) (rows []workerRow, warning string, err error) {
	answers, warning, err := fanOut(ctx, s, func(ctx context.Context, c pb.NodeDaemonClient) (*pb.ListWorkersReply, error) {
		return c.ListWorkers(ctx, &pb.ListWorkersRequest{})
	})
	if err != nil {
		return nil, "", err
	}
	actors, err := s.c.GCS.ListActors(ctx, &pb.ListActorsRequest{})
	if err != nil {
		return nil, "", err
	}
	hosted := map[string][]string{}
	for _, a := range actors.GetActors() {
		if a.GetState() == pb.ActorState_ACTOR_STATE_ALIVE && len(a.GetWorkerId()) > 0 {
			w := hexID(a.GetWorkerId())
			hosted[w] = append(hosted[w], hexID(a.GetActorId()))
		}
	}
	jobs, err := s.c.GCS.ListJobs(ctx, &pb.ListJobsRequest{})
	if err != nil {
		return nil, "", err
	}
	for _, j := range jobs.GetJobs() {
		if j.GetState() == pb.JobState_JOB_STATE_RUNNING && len(j.GetDriverId()) > 0 {
			rows = append(rows, driverRow(j))
		}
	}
	for _, a := range answers {
		node, ip := hexID(a.node.GetNodeId()), hostOf(a.node.GetAddress())
		ws := a.reply.GetWorkers()
		slices.SortFunc(ws, func(x, y *pb.WorkerInfo) int {
			return cmp.Or(cmp.Compare(x.GetStartUnixMs(), y.GetStartUnixMs()), cmp.Compare(x.GetPid(), y.GetPid()))
		})
		for _, w := range ws {
			r := workerFromPB(w, node, ip)
			r.actorIDs = hosted[r.id]
			rows = append(rows, r)
		}
	}
	return rows, warning, nil
}

// objects lists the objects of every alive node's store, largest first:
// each node returns at most perNode (its largest), so total may exceed
// what was returned (num_after_truncation).
func (s *sources) objects(ctx context.Context, perNode int) (rows []objectRow, total int, warning string, err error) {
	answers, warning, err := fanOut(ctx, s, func(ctx context.Context, c pb.NodeDaemonClient) (*pb.ListObjectsReply, error) {
		return c.ListObjects(ctx, &pb.ListObjectsRequest{Limit: int32(perNode)})
	})
	if err != nil {
		return nil, 0, "", err
	}
	for _, a := range answers {
		node, ip := hexID(a.node.GetNodeId()), hostOf(a.node.GetAddress())
		total += int(a.reply.GetTotal())
		for _, o := range a.reply.GetObjects() {
			rows = append(rows, objectFromPB(o, node, ip))
		}
	}
	slices.SortStableFunc(rows, func(a, b objectRow) int { return cmp.Or(cmp.Compare(b.size, a.size), strings.Compare(a.id, b.id)) })
	return rows, total, warning, nil
}
