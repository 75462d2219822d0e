package state

// The cluster's status (what `raygo status` prints, as JSON) and the kill
// of an actor:
//
//	GET  /api/v0/cluster_status            nodes, resource usage, pending and infeasible demands
//	POST /api/v0/actors/{id}/kill          body {"no_restart": true|false} (default true, as ray.kill)

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
)

// ClusterStatus is GET /api/v0/cluster_status's answer: what `raygo
// status` shows.
type ClusterStatus struct {
	AliveNodes int `json:"alive_nodes"`
	DeadNodes  int `json:"dead_nodes"`
	// Machines is how many machines the alive nodes run on (nodes that
	// share a machine report the same host_id).
	Machines int                 `json:"machines"`
	Nodes    []ClusterStatusNode `json:"nodes"`
	// ResourcesTotal and ResourcesUsed sum the alive nodes' resources
	// (memory of nodes that share a machine counted once).
	ResourcesTotal map[string]float64 `json:"resources_total"`
	ResourcesUsed  map[string]float64 `json:"resources_used"`
	// PendingDemands are resource requests queued until some node has
	// room; InfeasibleDemands those no alive node can ever hold (they wait
	// for a node that can: add one, or lower the request).
	PendingDemands    []Demand `json:"pending_demands"`
	InfeasibleDemands []Demand `json:"infeasible_demands"`
}

// ClusterStatusNode is one node of ClusterStatus.
type ClusterStatusNode struct {
	NodeID         string             `json:"node_id"`
	Address        string             `json:"address"`
	State          string             `json:"state"`
	IsHeadNode     bool               `json:"is_head_node"`
	NumWorkers     int                `json:"num_workers"`
	ResourcesTotal map[string]float64 `json:"resources_total"`
	ResourcesUsed  map[string]float64 `json:"resources_used,omitempty"` // alive nodes only
	Labels         map[string]string  `json:"labels,omitempty"`
}

// Demand is a shape of resource request and how many requests of it wait.
type Demand struct {
	Shape string `json:"shape"` // "CPU: 1, GPU: 1"
	Count int    `json:"count"`
}

// clusterStatusOf computes the status from the control store's nodes
// (alive and dead) and actors. It is pure, for tests.
func clusterStatusOf(nodes []*pb.NodeInfo, actors []*pb.ActorInfo, headID string) ClusterStatus {
	st := ClusterStatus{Nodes: []ClusterStatusNode{}, ResourcesTotal: map[string]float64{}, ResourcesUsed: map[string]float64{},
		PendingDemands: []Demand{}, InfeasibleDemands: []Demand{}}
	nodes = slices.Clone(nodes)
	slices.SortStableFunc(nodes, func(a, b *pb.NodeInfo) int {
		aa, ba := a.GetState() == pb.NodeState_NODE_STATE_ALIVE, b.GetState() == pb.NodeState_NODE_STATE_ALIVE
		if aa != ba {
			if aa {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.GetStartUnixMs(), b.GetStartUnixMs()), strings.Compare(a.GetAddress(), b.GetAddress()))
	})
	type machine struct {
		hostMemory int64
		memTotal   float64
		memUsed    float64
		nodes      int
	}
	machines := map[string]*machine{}
	var machineOrder []string
	pending, infeasible := map[string]int{}, map[string]int{}
	for i, n := range nodes {
		id := hexID(n.GetNodeId())
		row := ClusterStatusNode{NodeID: id, Address: n.GetAddress(), State: enumName(n.GetState().String(), "NODE_STATE_"),
			IsHeadNode: id == headID, NumWorkers: int(n.GetNumWorkers()), ResourcesTotal: n.GetTotal().GetAmounts(), Labels: n.GetLabels()}
		if row.ResourcesTotal == nil {
			row.ResourcesTotal = map[string]float64{}
		}
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE {
			st.DeadNodes++
			st.Nodes = append(st.Nodes, row)
			continue
		}
		st.AliveNodes++
		used := map[string]float64{}
		for k, t := range n.GetTotal().GetAmounts() {
			if n.GetAvailable() == nil {
				used[k] = 0 // no report yet: nothing known to be in use
				continue
			}
			used[k] = max(t-n.GetAvailable().GetAmounts()[k], 0)
		}
		row.ResourcesUsed = used
		st.Nodes = append(st.Nodes, row)

		host := n.GetHostId()
		if host == "" {
			host = "node:" + strconv.Itoa(i) // a node without one is a machine of its own
		}
		m := machines[host]
		if m == nil {
			m = &machine{hostMemory: n.GetHostMemory()}
			machines[host] = m
			machineOrder = append(machineOrder, host)
		}
		m.nodes++
		for k, t := range row.ResourcesTotal {
			if k == resources.Memory {
				m.memTotal += t
				m.memUsed += used[k]
				continue
			}
			if resources.IsBundleResource(k) {
				continue // reservations of the others, shown as used there
			}
			st.ResourcesTotal[k] += t
			st.ResourcesUsed[k] += used[k]
		}
		for _, d := range n.GetPendingDemands() {
			pending[shapeOf(d.GetAmounts())]++
		}
		for _, d := range n.GetInfeasibleDemands() {
			infeasible[shapeOf(d.GetAmounts())]++
		}
	}
	st.Machines = len(machines)
	for _, host := range machineOrder {
		m := machines[host]
		mt, mu := m.memTotal, m.memUsed
		// Nodes on one machine share its memory: count it once.
		if hm := float64(m.hostMemory); m.nodes > 1 && hm > 0 && mt > hm {
			mt, mu = hm, min(mu, hm)
		}
		if mt > 0 {
			st.ResourcesTotal[resources.Memory] += mt
			st.ResourcesUsed[resources.Memory] += mu
		}
	}
	for _, a := range actors {
		if a.GetInfeasible() != nil && a.GetState() != pb.ActorState_ACTOR_STATE_DEAD {
			infeasible[a.GetInfeasible().GetRequest()]++
		}
	}
	st.PendingDemands = demandsOf(pending)
	st.InfeasibleDemands = demandsOf(infeasible)
	return st
}

// shapeOf writes a request's resources as "CPU: 1, GPU: 1", sorted by
// name, bundle resources left out.
func shapeOf(amounts map[string]float64) string {
	names := make([]string, 0, len(amounts))
	for k := range amounts {
		if !resources.IsBundleResource(k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, k+": "+strconv.FormatFloat(amounts[k], 'g', -1, 64))
	}
	if len(parts) == 0 {
		return "(no resources)"
	}
	return strings.Join(parts, ", ")
}

// demandsOf lists counted shapes, the most waiting first.
func demandsOf(counts map[string]int) []Demand {
	out := make([]Demand, 0, len(counts))
	for s, n := range counts {
		out = append(out, Demand{Shape: s, Count: n})
	}
	slices.SortFunc(out, func(a, b Demand) int { return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Shape, b.Shape)) })
	return out
}

// killRequest is POST /api/v0/actors/{id}/kill's body; an empty body is
// {"no_restart": true}.
type killRequest struct {
	NoRestart *bool `json:"no_restart"`
}

// KillReply answers POST /api/v0/actors/{id}/kill.
type KillReply struct {
	ActorID   string `json:"actor_id"`
	NoRestart bool   `json:"no_restart"`
	Killed    bool   `json:"killed"`
}

func registerCluster(s *api.Server, src *sources) {
	s.Handle("GET /api/v0/cluster_status", api.ScopeRead, func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.Query()) > 0 {
			api.WriteError(w, api.BadRequest("cluster status: no parameters are taken, got %s", r.URL.RawQuery))
			return
		}
		nodes, err := src.c.GCS.GetNodes(r.Context(), &pb.GetNodesRequest{IncludeDead: true})
		if err != nil {
			api.WriteError(w, fmt.Errorf("cluster status: %w", err))
			return
		}
		actors, err := src.c.GCS.ListActors(r.Context(), &pb.ListActorsRequest{})
		if err != nil {
			api.WriteError(w, fmt.Errorf("cluster status: %w", err))
			return
		}
		api.WriteJSON(w, clusterStatusOf(nodes.GetNodes(), actors.GetActors(), src.headID(r.Context())))
	})
	s.Handle("POST /api/v0/actors/{id}/kill", api.ScopeWrite, func(w http.ResponseWriter, r *http.Request) {
		who := api.Who(r.Context())
		q := r.PathValue("id")
		var req killRequest
		if r.ContentLength != 0 {
			if err := s.ReadJSON(w, r, &req); err != nil && !errors.Is(err, io.EOF) {
				s.Audit().Record(r, who, "actor.kill", q, "refused: "+err.Error())
				api.WriteError(w, err)
				return
			}
		}
		noRestart := req.NoRestart == nil || *req.NoRestart
		rows, err := src.actors(r.Context())
		if err != nil {
			api.WriteError(w, fmt.Errorf("kill actor: %w", err))
			return
		}
		row, err := byID(func(r *actorRow) string { return r.id })(rows, q, "actor")
		if err != nil {
			err = lookupError(err)
			var ae *api.Error
			if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
				ae.Message += " (GET /api/v0/actors or `raygo list actors` lists them)"
			}
			s.Audit().Record(r, who, "actor.kill", q, "refused: "+err.Error())
			api.WriteError(w, err)
			return
		}
		id, _ := hex.DecodeString(row.id)
		_, err = src.c.GCS.KillActor(r.Context(), &pb.KillActorRequest{ActorId: id, NoRestart: noRestart,
			Reason: fmt.Sprintf("killed through the HTTP API by token %q", who.Name)})
		if err != nil {
			s.Audit().Record(r, who, "actor.kill", row.id, "error: "+err.Error())
			if errors.Is(err, errs.ErrNotFound) {
				err = api.NotFound("no actor has id %s", row.id)
			}
			api.WriteError(w, err)
			return
		}
		s.Audit().Record(r, who, "actor.kill", row.id, fmt.Sprintf("ok: no_restart=%t", noRestart))
		api.WriteJSON(w, KillReply{ActorID: row.id, NoRestart: noRestart, Killed: true})
	})
}
