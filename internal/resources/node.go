package resources

import (
	"math"
	"strconv"
)

// NodeResources is a node's ledger of total and available resources, and of
// how much of each GPU instance is still free. It is not safe for concurrent
// use: the caller (the node daemon) holds its own lock around every call.
//
// Invariants kept by Allocate and Release: for every name, 0 ≤ available ≤
// total; a whole GPU is handed to one allocation at a time; the shares of one
// GPU never add up to more than 1.
type NodeResources struct {
	total, avail Set
	gpuIDs       []string  // GPU instance ids, in hand-out order
	gpuFree      []float64 // free fraction of gpuIDs[i], in [0, 1]
	nextID       uint64
	held         map[uint64]bool // ids of allocations not yet released
}

// Allocation is what Allocate handed out. It is a value: copies refer to the
// same grant, and the grant is released once, by the first Release of any
// copy; later Releases return ErrNotAllocated and change nothing.
type Allocation struct {
	Resources Set      // the request as granted; do not modify
	GPUIDs    []string // the GPU instances granted, for CUDA_VISIBLE_DEVICES

	id        uint64 // 0 for the zero Allocation
	owner     *NodeResources
	gpuShares []gpuShare
}

type gpuShare struct {
	gpu    int // index into gpuIDs
	amount float64
}

// NewNodeResources returns a ledger with everything in total available.
// The GPU instances are gpuIDs when non-empty, in that order, else "0", "1",
// … up to the whole part of total[GPU]; total[GPU] is set to the number of
// instances. total is copied.
func NewNodeResources(total Set, gpuIDs []string) *NodeResources {
	t := total.Clone()
	if len(gpuIDs) == 0 {
		for i := 0; i < int(math.Floor(t[GPU]+Epsilon)); i++ {
			gpuIDs = append(gpuIDs, strconv.Itoa(i))
		}
	} else {
		gpuIDs = append([]string(nil), gpuIDs...)
	}
	if len(gpuIDs) > 0 || t[GPU] != 0 {
		t[GPU] = float64(len(gpuIDs))
	}
	free := make([]float64, len(gpuIDs))
	for i := range free {
		free[i] = 1
	}
	return &NodeResources{total: t, avail: t.Clone(), gpuIDs: gpuIDs, gpuFree: free, held: map[uint64]bool{}}
}

// Total returns a copy of the node's total resources.
func (n *NodeResources) Total() Set { return n.total.Clone() }

// Available returns a copy of the resources not allocated now.
func (n *NodeResources) Available() Set { return n.avail.Clone() }

// Allocate grants req if it fits what is available, subtracting it. A GPU
// amount of 1 or more must be whole and takes that many fully free GPUs,
// lowest first; an amount below 1 takes a share of one GPU, preferring the
// partly used GPU with the least room that is still enough (to pack), else the
// lowest free one. It returns false, changing nothing, when req does not fit
// (including when the GPU amount is free in total but too fragmented).
// req should have passed Validate.
func (n *NodeResources) Allocate(req Set) (Allocation, bool) {
	if !req.Fits(n.avail) {
		return Allocation{}, false
	}
	shares, ok := n.pickGPUs(req[GPU])
	if !ok {
		return Allocation{}, false
	}
	n.nextID++
	a := Allocation{Resources: req.Clone(), id: n.nextID, owner: n, gpuShares: shares}
	for _, s := range shares {
		n.gpuFree[s.gpu] = snap(n.gpuFree[s.gpu]-s.amount, 1)
		a.GPUIDs = append(a.GPUIDs, n.gpuIDs[s.gpu])
	}
	for k, v := range req {
		if v > 0 {
			n.avail[k] = snap(n.avail[k]-v, n.total[k])
		}
	}
	n.held[a.id] = true
	return a, true
}

func (n *NodeResources) pickGPUs(g float64) ([]gpuShare, bool) {
	switch {
	case g <= Epsilon:
		return nil, true
	case g >= 1-Epsilon:
		whole := math.Round(g)
		if math.Abs(g-whole) > Epsilon {
			return nil, false
		}
		var shares []gpuShare
		for i, free := range n.gpuFree {
			if len(shares) == int(whole) {
				break
			}
			if free >= 1-Epsilon {
				shares = append(shares, gpuShare{i, 1})
			}
		}
		return shares, len(shares) == int(whole)
	default:
		best := -1
		for i, free := range n.gpuFree {
			if free+Epsilon < g {
				continue
			}
			// Least room wins, so partly used GPUs fill before fresh ones;
			// strict < keeps the lowest index among equals.
			if best < 0 || free < n.gpuFree[best]-Epsilon {
				best = i
			}
		}
		if best < 0 {
			return nil, false
		}
		return []gpuShare{{best, g}}, true
	}
}

// Release gives back everything a holds. It returns ErrNotAllocated, changing
// nothing, if a was released already (through any copy), came from another
// NodeResources, or is the zero Allocation.
func (n *NodeResources) Release(a Allocation) error {
	if a.owner != n || !n.held[a.id] {
		return ErrNotAllocated
	}
	delete(n.held, a.id)
	for _, s := range a.gpuShares {
		n.gpuFree[s.gpu] = snap(n.gpuFree[s.gpu]+s.amount, 1)
	}
	for k, v := range a.Resources {
		if v > 0 {
			n.avail[k] = snap(n.avail[k]+v, n.total[k])
		}
	}
	return nil
}

// Add returns s to the available pool without an Allocation: a worker blocked
// in Get or Wait lends back its CPUs this way, and takes them again with Sub
// when it resumes. Available never rises above total. GPUs are not lent: a GPU
// amount in s is ignored, since GPU instances stay with their holder, as are
// names the node does not have.
func (n *NodeResources) Add(s Set) {
	for k, v := range s {
		if _, have := n.total[k]; have && k != GPU && v != 0 {
			n.avail[k] = snap(n.avail[k]+v, n.total[k])
		}
	}
}

// Sub takes s from the available pool without an Allocation; see Add. It
// succeeds even when s does not fit: available may go negative, meaning the
// node is oversubscribed until enough work finishes, and nothing more fits
// until then. As with Add, GPU and names the node does not have are ignored.
func (n *NodeResources) Sub(s Set) {
	for k, v := range s {
		if _, have := n.total[k]; have && k != GPU && v != 0 {
			n.avail[k] = snap(n.avail[k]-v, math.Inf(1))
		}
	}
}

// snap rounds v to 0 or max when within Epsilon, so rounding error does not
// accumulate, and caps it at max.
func snap(v, max float64) float64 {
	switch {
	case math.Abs(v) <= Epsilon:
		return 0
	case v >= max-Epsilon:
		return max
	}
	return v
}
