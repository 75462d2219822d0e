package resources

import (
	"slices"
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
	// pools hold the instances of resources that are handed out by
	// instance: GPU (the node's GPUs, ids in hand-out order), and each
	// placement-group bundle's GPUs (see bundle.go).
	pools   map[string]*instancePool
	bundles map[bundleKey]*bundle // committed placement-group bundles
	byGroup map[string][]int      // their indexes, by group
	nextID  uint64
	held    map[uint64]bool // ids of allocations not yet released
}

// instancePool is the instances of one resource: their ids and free units
// (each in [0, UnitsPerWhole]). Entries are never moved, so allocations
// refer to them by index; a bundle's entries die when it is removed.
type instancePool struct {
	ids      []string
	free     []Units
	dead     []bool
	live     int
	wildcard bool // a group's GPUs on this node, over its bundles
}

func (p *instancePool) add(id string, free Units) {
	p.ids, p.free, p.dead = append(p.ids, id), append(p.free, free), append(p.dead, false)
	p.live++
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
	pool   *instancePool // the node's GPUs, or a bundle's (kept even once the bundle is gone)
	idx    int           // index into the pool
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
	gpus := &instancePool{}
	for _, id := range gpuIDs {
		gpus.add(id, UnitsPerWhole)
	}
	return &NodeResources{total: t, avail: t.clone(), pools: map[string]*instancePool{GPU: gpus}, held: map[uint64]bool{}}
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
	_, ok := n.pickInstances(u)
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
	for name, p := range n.pools {
		if g := u[name]; g > UnitsPerWhole && (g%UnitsPerWhole != 0 || g/UnitsPerWhole > Units(p.live)) {
			return false
		}
	}
	return true
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
	shares, ok := n.pickInstances(u)
	if !ok {
		return Allocation{}, false
	}
	n.nextID++
	a := Allocation{Resources: u.toSet(), id: n.nextID, owner: n, units: u, gpuShares: shares}
	for _, s := range shares {
		s.pool.free[s.idx] -= s.amount
		// A task in a bundle takes the same GPU from the bundle's
		// resource and from its group's: list it once.
		if id := s.pool.ids[s.idx]; !slices.Contains(a.GPUIDs, id) {
			a.GPUIDs = append(a.GPUIDs, id)
		}
	}
	for k, v := range u {
		n.avail[k] -= v
	}
	n.held[a.id] = true
	return a, true
}

// pickInstances chooses the instances of every pooled resource in u.
func (n *NodeResources) pickInstances(u unitMap) ([]gpuShare, bool) {
	if len(n.pools) == 1 { // the node's GPUs only: no bundle has any
		return n.pools[GPU].pick(u[GPU], nil)
	}
	// Bundles' own pools first, then groups' wildcards preferring the
	// GPUs already picked: a task in bundle i takes the same GPU from the
	// bundle's pool and from its group's.
	var shares []gpuShare
	for _, wild := range []bool{false, true} {
		for name, p := range n.pools {
			if p.wildcard != wild || u[name] <= 0 {
				continue
			}
			var ok bool
			if shares, ok = p.pick(u[name], shares); !ok {
				return nil, false
			}
		}
	}
	return shares, true
}

// picked reports whether shares hold instance id (of any pool).
func picked(shares []gpuShare, id string) bool {
	for _, s := range shares {
		if s.pool.ids[s.idx] == id {
			return true
		}
	}
	return false
}

// pick appends to shares the instances that g units of the pool take.
func (p *instancePool) pick(g Units, shares []gpuShare) ([]gpuShare, bool) {
	switch {
	case g <= 0:
		return shares, true
	case g >= UnitsPerWhole:
		if g%UnitsPerWhole != 0 {
			return nil, false
		}
		whole := int(g / UnitsPerWhole)
		got := 0
		// GPUs picked already first (see below), then the lowest.
		for _, first := range []bool{true, false} {
			for i, free := range p.free {
				if got < whole && free == UnitsPerWhole && !p.dead[i] && picked(shares, p.ids[i]) == first {
					shares = append(shares, gpuShare{p, i, UnitsPerWhole})
					got++
				}
			}
		}
		return shares, got == whole
	default:
		best := -1
		for i, free := range p.free {
			if free < g || p.dead[i] {
				continue
			}
			// A GPU picked already (in a bundle, for its group's
			// wildcard) wins; then least room, so partly used GPUs fill
			// before fresh ones; strict < keeps the lowest index among
			// equals.
			if pi, pb := picked(shares, p.ids[i]), best >= 0 && picked(shares, p.ids[best]); best < 0 || pi && !pb || pi == pb && free < p.free[best] {
				best = i
			}
		}
		if best < 0 {
			return nil, false
		}
		return append(shares, gpuShare{p, best, g}), true
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
		// A removed bundle's instances (and resources) are gone: what
		// was held of them goes nowhere.
		if !s.pool.dead[s.idx] {
			s.pool.free[s.idx] += s.amount
		}
	}
	for k, v := range a.units {
		if t, have := n.total[k]; have {
			// At most the total: a bundle removed while this was held
			// took its part of a group's wildcard with it.
			n.avail[k] = min(n.avail[k]+v, t)
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
