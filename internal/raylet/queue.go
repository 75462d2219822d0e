package raylet

import (
	"strings"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// The lease queue.
//
// A lease request that cannot be granted on arrival waits in r.queue, one
// FIFO holding two kinds of request:
//
//   - feasible ones: some alive node's total can hold them. They are
//     granted here, in order, as soon as they fit what is available
//     (dispatchLocked, after every release), and re-evaluated against the
//     cluster view after every refresh (rebalanceLocked): one that does
//     not fit here but fits another node's available resources now is
//     answered with a spillback to that node. So work queued behind a busy
//     node moves to an idle one within a heartbeat period.
//   - infeasible ones (LeaseRequest.queue_if_infeasible): no alive node
//     can hold them. They are reported as infeasible demands and
//     re-evaluated after every refresh: when a node that can hold them
//     joins, they become feasible here (if this node can hold them) or are
//     spilled back to it.
//
// A waiting request ends with exactly one leaseAnswer on its reply channel.

// pendingLease is a lease request waiting in the queue.
type pendingLease struct {
	req   *pb.LeaseRequest
	res   resources.Set     // what the lease holds once granted
	place resources.Set     // what must be available to grant it: per name, the larger of res and placement_resources
	sched scheduler.Request // the placement: place, strategy, affinity, labels
	// infeasible: no alive node's total can hold place; the request waits
	// for one to join. Guarded by Raylet.mu.
	infeasible bool
	// withdrawn: CancelLease came while the request was being granted;
	// the grant is given back. Guarded by Raylet.mu.
	withdrawn bool
	reply     chan leaseAnswer // buffered(1); receives exactly one answer
}

// leaseAnswer ends a pending request: a grant of local resources, a
// spillback to another node, a cancellation, or an error.
type leaseAnswer struct {
	alloc    resources.Allocation // a grant, when spill is empty and err nil and !canceled
	spill    string               // ask this node instead
	canceled bool
	err      error
}

// answer sends p its one answer (the caller has taken p out of the queue,
// or never put it there).
func (p *pendingLease) answer(a leaseAnswer) { p.reply <- a }

// enqueueLocked adds p to the queue and grants what fits now.
func (r *Raylet) enqueueLocked(p *pendingLease) {
	r.queue = append(r.queue, p)
	if p.infeasible {
		r.log.Debug("lease request is infeasible on every node; it waits for a node that can hold it",
			"request", p.place.String(), "key", p.req.GetSchedulingKey())
	}
	r.dispatchLocked()
}

// removeQueuedLocked takes p out of the queue; false when it is not there
// (it was answered already).
func (r *Raylet) removeQueuedLocked(p *pendingLease) bool {
	for i, q := range r.queue {
		if q == p {
			r.queue = append(r.queue[:i], r.queue[i+1:]...)
			return true
		}
	}
	return false
}

// dispatchLocked grants queued feasible requests, in order, while local
// resources allow. A request that does not fit yet does not block smaller
// ones behind it.
func (r *Raylet) dispatchLocked() {
	kept := r.queue[:0]
	for _, p := range r.queue {
		if !p.infeasible && r.res.Fits(p.place) {
			if alloc, ok := r.res.Allocate(p.res); ok {
				p.answer(leaseAnswer{alloc: alloc})
				continue
			}
		}
		kept = append(kept, p)
	}
	clear(r.queue[len(kept):])
	r.queue = kept
}

// viewLocked is the scheduler's input: this node, exactly, and every other
// node as last reported by the control store (less what was spilled to it
// since).
func (r *Raylet) viewLocked() []scheduler.Node {
	local := scheduler.Node{ID: r.nodeID.String(), Address: r.address, Alive: true,
		Total: r.res.Total(), Available: r.res.Available(), Labels: r.cfg.Labels}
	nodes := make([]scheduler.Node, 0, len(r.cluster)+1)
	nodes = append(nodes, local)
	for _, n := range r.cluster {
		if n.ID != local.ID {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// pickLocked runs the placement policy for p over nodes. SPREAD's round
// robin takes r.spread, which moves on only when a spread request is
// placed: a request looked at twice (after a refresh of the view) or a
// queue re-evaluated does not skip a node.
func (r *Raylet) pickLocked(nodes []scheduler.Node, req scheduler.Request) scheduler.Decision {
	tie := r.spread
	if req.Strategy != scheduler.Spread {
		r.tie++
		tie = r.tie
	}
	return scheduler.Pick(nodes, r.nodeID.String(), req, scheduler.DefaultConfig(), tie)
}

// spillLocked answers p with a spillback to node id and takes p's
// placement from that node's view, so that the next decisions (until the
// node reports again) do not count the same room twice.
func (r *Raylet) spillLocked(nodes []scheduler.Node, id string, p *pendingLease) bool {
	for i := range nodes {
		if nodes[i].ID != id {
			continue
		}
		nodes[i].Available = nodes[i].Available.Clone()
		nodes[i].Available.Sub(p.place)
		for j := range r.cluster {
			if r.cluster[j].ID == id {
				r.cluster[j].Available = nodes[i].Available
			}
		}
		p.answer(leaseAnswer{spill: nodes[i].Address})
		return true
	}
	return false
}

// rebalanceLocked re-evaluates the queue against the current cluster view:
// an infeasible request that some node can now hold becomes feasible here
// or is spilled to that node; a feasible request that does not fit here now
// but fits another node's available resources is spilled there. It runs
// after every refresh of the view.
func (r *Raylet) rebalanceLocked() {
	r.dispatchLocked()
	if len(r.queue) == 0 {
		return
	}
	nodes := r.viewLocked()
	local := r.nodeID.String()
	kept := r.queue[:0]
	for _, p := range r.queue {
		d := r.pickLocked(nodes, p.sched)
		switch {
		case d.Kind == scheduler.Infeasible:
			p.infeasible = true
		case p.infeasible && d.Node == local:
			p.infeasible = false
			r.log.Debug("infeasible lease request can now be placed here", "request", p.place.String())
		case p.infeasible || (d.Kind == scheduler.Place && d.Node != local):
			if r.spillLocked(nodes, d.Node, p) {
				if p.sched.Strategy == scheduler.Spread {
					r.spread++
				}
				continue
			}
		}
		kept = append(kept, p)
	}
	clear(r.queue[len(kept):])
	r.queue = kept
	r.dispatchLocked()
}

// failQueuedLocked answers every queued request for which match holds with
// err.
func (r *Raylet) failQueuedLocked(match func(*pendingLease) bool, err error) {
	kept := r.queue[:0]
	for _, p := range r.queue {
		if match(p) {
			p.answer(leaseAnswer{err: err})
			continue
		}
		kept = append(kept, p)
	}
	clear(r.queue[len(kept):])
	r.queue = kept
}

// demandsLocked lists the queued requests' placement resources: feasible
// ones (pending) and infeasible ones, for heartbeats and NodeStats.
func (r *Raylet) demandsLocked() (pending, infeasible []*pb.Resources) {
	for _, p := range r.queue {
		d := &pb.Resources{Amounts: p.place.Clone()}
		if p.infeasible {
			infeasible = append(infeasible, d)
		} else {
			pending = append(pending, d)
		}
	}
	return pending, infeasible
}

// infeasibleError describes a request no node can hold: the request
// and every alive node's totals.
func infeasibleError(req *pb.LeaseRequest, sched scheduler.Request, nodes []scheduler.Node) *errs.InfeasibleError {
	totals := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if n.Alive {
			totals = append(totals, n.Total.String())
		}
	}
	return &errs.InfeasibleError{Function: req.GetSchedulingKey(), Request: sched.String(), Cluster: strings.Join(totals, ", ")}
}

// jobOf is the job of a queued request.
func (p *pendingLease) jobOf() ids.ID {
	id, _ := ids.FromBytes(p.req.GetJobId())
	return id
}
