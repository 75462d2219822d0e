package resources

import (
	"strconv"
)

// NodeResources is a node's ledger of total and available resources, and of
// how much of each GPU instance is still free. It is not safe for concurrent
// use: the caller (the node daemon) holds its own lock around every call.
//
// Every amount is kept in fixed point (Units), so allocations and releases
// in any order return the ledger to its totals exactly. Invariants kept by
// Allocate and Release: for every name, 0 ≤ available ≤ total; a whole GPU
// is handed to one allocation at a time; the shares of one GPU never add up
// to more than 1.
type NodeResources struct {
	total, avail unitMap
	gpuIDs       []string // GPU instance ids, in hand-out order
	gpuFree      []Units  // free units of gpuIDs[i], in [0, UnitsPerWhole]
	nextID       uint64
	held         map[uint64]bool // ids of allocations not yet released
}

// Allocation is what Allocate handed out. It is a value: copies refer to the
// same grant, and the grant is released once, by the first Release of any
// copy; later Releases return ErrNotAllocated and change nothing.
type Allocation struct {
	Resources Set      // the request as granted, on the fixed-point grid; do not modify
	GPUIDs    []string // the GPU instances granted, for CUDA_VISIBLE_DEVICES

	id        uint64 // 0 for the zero Allocation
	owner     *NodeResources
	units     unitMap // exactly what was taken from the ledger
	gpuShares []gpuShare
}

type gpuShare struct {
	gpu    int // index into gpuIDs
	amount Units
}

// NewNodeResources returns a ledger with everything in total available.
// Amounts are rounded to the fixed-point grid. The GPU instances are gpuIDs
// when non-empty, in that order, else "0", "1", … up to the whole part of
// total[GPU]; total[GPU] is set to the number of instances. total is
// copied.
func NewNodeResources(total Set, gpuIDs []string) *NodeResources {
	t := make(unitMap, len(total))
	for k, v := range total {
		t[k] = max(ToUnits(k, v), 0)
	}
	if len(gpuIDs) == 0 {
		for i := Units(0); i < t[GPU]/UnitsPerWhole; i++ {
			gpuIDs = append(gpuIDs, strconv.Itoa(int(i)))
		}
	} else {
		gpuIDs = append([]string(nil), gpuIDs...)
	}
	if _, had := t[GPU]; had || len(gpuIDs) > 0 {
		t[GPU] = Units(len(gpuIDs)) * UnitsPerWhole
	}
	free := make([]Units, len(gpuIDs))
	for i := range free {
		free[i] = UnitsPerWhole
	}
	return &NodeResources{total: t, avail: t.clone(), gpuIDs: gpuIDs, gpuFree: free, held: map[uint64]bool{}}
}

// Total returns a copy of the node's total resources.
func (n *NodeResources) Total() Set { return n.total.toSet() }

// Available returns a copy of the resources not allocated now.
func (n *NodeResources) Available() Set { return n.avail.toSet() }

// Fits reports whether req would fit what is available now, as Allocate
// would decide it (GPU fragmentation included), without allocating.
func (n *NodeResources) Fits(req Set) bool {
	u := toUnitMap(req)
	if !n.fitsLocked(u) {
		return false
	}
	_, ok := n.pickGPUs(u[GPU])
	return ok
}

// FitsTotal reports whether req could ever fit this node: every amount at
// most the node's total (and a GPU amount above 1 a whole number).
func (n *NodeResources) FitsTotal(req Set) bool {
	u := toUnitMap(req)
	for k, v := range u {
		if v > n.total[k] {
			return false
		}
	}
	g := u[GPU]
	return g <= UnitsPerWhole || g%UnitsPerWhole == 0
}

func (n *NodeResources) fitsLocked(u unitMap) bool {
	for k, v := range u {
		if v > n.avail[k] {
			return false
		}
	}
	return true
}

// Allocate grants req if it fits what is available, subtracting it. A GPU
// amount of 1 or more must be whole and takes that many fully free GPUs,
// lowest first; an amount below 1 takes a share of one GPU, preferring the
// partly used GPU with the least room that is still enough (to pack), else the
// lowest free one. It returns false, changing nothing, when req does not fit
// (including when the GPU amount is free in total but too fragmented).
// Amounts are rounded to the fixed-point grid; req should have passed
// Validate.
func (n *NodeResources) Allocate(req Set) (Allocation, bool) {
	u := toUnitMap(req)
	if !n.fitsLocked(u) {
		return Allocation{}, false
	}
	shares, ok := n.pickGPUs(u[GPU])
	if !ok {
		return Allocation{}, false
	}
	n.nextID++
	a := Allocation{Resources: u.toSet(), id: n.nextID, owner: n, units: u, gpuShares: shares}
	for _, s := range shares {
		n.gpuFree[s.gpu] -= s.amount
		a.GPUIDs = append(a.GPUIDs, n.gpuIDs[s.gpu])
	}
	for k, v := range u {
		n.avail[k] -= v
	}
	n.held[a.id] = true
	return a, true
}

func (n *NodeResources) pickGPUs(g Units) ([]gpuShare, bool) {
	switch {
	case g <= 0:
		return nil, true
	case g >= UnitsPerWhole:
		if g%UnitsPerWhole != 0 {
			return nil, false
		}
		whole := int(g / UnitsPerWhole)
		var shares []gpuShare
		for i, free := range n.gpuFree {
			if len(shares) == whole {
				break
			}
			if free == UnitsPerWhole {
				shares = append(shares, gpuShare{i, UnitsPerWhole})
			}
		}
		return shares, len(shares) == whole
	default:
		best := -1
		for i, free := range n.gpuFree {
			if free < g {
				continue
			}
			// Least room wins, so partly used GPUs fill before fresh ones;
			// strict < keeps the lowest index among equals.
			if best < 0 || free < n.gpuFree[best] {
				best = i
			}
		}
		if best < 0 {
			return nil, false
		}
		return []gpuShare{{best, g}}, true
	}
}

// Release gives back everything a holds, exactly as it was taken. It returns
// ErrNotAllocated, changing nothing, if a was released already (through any
// copy), came from another NodeResources, or is the zero Allocation.
func (n *NodeResources) Release(a Allocation) error {
	if a.owner != n || !n.held[a.id] {
		return ErrNotAllocated
	}
	delete(n.held, a.id)
	for _, s := range a.gpuShares {
		n.gpuFree[s.gpu] += s.amount
	}
	for k, v := range a.units {
		n.avail[k] += v
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
		if _, have := n.total[k]; have && k != GPU {
			n.avail[k] = min(n.avail[k]+ToUnits(k, v), n.total[k])
		}
	}
}

// Sub takes s from the available pool without an Allocation; see Add. It
// succeeds even when s does not fit: available may go negative, meaning the
// node is oversubscribed until enough work finishes, and nothing more fits
// until then. As with Add, GPU and names the node does not have are ignored.
func (n *NodeResources) Sub(s Set) {
	for k, v := range s {
		if _, have := n.total[k]; have && k != GPU {
			n.avail[k] -= ToUnits(k, v)
		}
	}
}
