package resources

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Placement-group bundles.
//
// A bundle is an allocation reserved on a node for a placement group
// (Ray's bundle). Once committed (AddBundle) it appears on the node as
// resources of its own, named as in Ray, which tasks and actors in the
// group ask for instead of the plain ones:
//
//	CPU_group_<i>_<group>     bundle i's CPUs (every resource name likewise)
//	CPU_group_<group>         the group's CPUs on this node, any bundle
//	bundle_group_<i>_<group>  1000: a marker every task in bundle i asks 0.001 of
//	bundle_group_<group>      1000 per bundle here: the same, any bundle
//
// GPU instances go with them: a bundle holding GPUs 2 and 3 hands out
// exactly those for GPU_group_<i>_<group> (and for the group's wildcard),
// so a task in the bundle sees them in CUDA_VISIBLE_DEVICES.

// BundleMarker is the marker resource's name part and amount per bundle.
const (
	BundleMarker       = "bundle"
	BundleMarkerAmount = 1000
	bundleMarkerAsk    = 0.001
)

// BundleResource names resource name of bundle index of group (index -1:
// the group's wildcard, any bundle).
func BundleResource(name, group string, index int) string {
	if index < 0 {
		return name + "_group_" + group
	}
	return name + "_group_" + strconv.Itoa(index) + "_" + group
}

// IsBundleResource reports whether name is one of a bundle's resources.
func IsBundleResource(name string) bool { return strings.Contains(name, "_group_") }

// InBundle rewrites a request for bundle index of group (-1: any of its
// bundles): each resource becomes the bundle's (and, for an index, the
// group's wildcard too, so that both stay exact), and the marker is
// added, so a request for nothing still lands on a node with the bundle.
func InBundle(req Set, group string, index int) Set {
	out := make(Set, 2*len(req)+2)
	for k, v := range req {
		if v == 0 {
			continue
		}
		out[BundleResource(k, group, index)] += v
		if index >= 0 {
			out[BundleResource(k, group, -1)] += v
		}
	}
	out[BundleResource(BundleMarker, group, index)] = bundleMarkerAsk
	if index >= 0 {
		out[BundleResource(BundleMarker, group, -1)] = bundleMarkerAsk
	}
	return out
}

// BundleTotals is what committing a bundle of res as bundle index of
// group adds to its node's totals (and, at first, to what is available):
// each resource under the bundle's name and the group's, and the markers.
// The control store adds it to its view of the node as it commits, so
// that work for the group is placed before the node next reports.
func BundleTotals(res Set, group string, index int) Set {
	out := make(Set, 2*len(res)+2)
	for k, v := range res {
		if v != 0 {
			out[BundleResource(k, group, index)] += v
			out[BundleResource(k, group, -1)] += v
		}
	}
	out[BundleResource(BundleMarker, group, index)] += BundleMarkerAmount
	out[BundleResource(BundleMarker, group, -1)] += BundleMarkerAmount
	return out
}

// bundleKey names a committed bundle.
type bundleKey struct {
	group string
	index int
}

// bundle is a committed bundle: its reservation and what it added.
type bundle struct {
	alloc Allocation
	added unitMap          // resource name → units it added to total
	gpus  map[string][]int // pool name → the entries it added there
}

// AddBundle commits a as bundle index of group: a's resources, held
// since Allocate (the prepare step), become the bundle's resources on this
// node (see the package's bundle names). It fails if the bundle exists or a
// is not a live allocation of this ledger.
func (n *NodeResources) AddBundle(group string, index int, a Allocation) error {
	k := bundleKey{group, index}
	if _, dup := n.bundles[k]; dup {
		return fmt.Errorf("bundle %d of placement group %s is committed already", index, group)
	}
	if a.owner != n || !n.held[a.id] {
		return ErrNotAllocated
	}
	b := &bundle{alloc: a, added: unitMap{}, gpus: map[string][]int{}}
	for name, v := range toUnitMap(BundleTotals(a.units.toSet(), group, index)) {
		n.total[name] += v
		n.avail[name] += v
		b.added[name] += v
	}
	for _, s := range a.gpuShares {
		id := s.pool.ids[s.idx]
		for i, pool := range []string{BundleResource(GPU, group, index), BundleResource(GPU, group, -1)} {
			p := n.pools[pool]
			if p == nil {
				p = &instancePool{wildcard: i == 1}
				n.pools[pool] = p
			}
			b.gpus[pool] = append(b.gpus[pool], len(p.ids))
			p.add(id, s.amount)
		}
	}
	if n.bundles == nil {
		n.bundles, n.byGroup = map[bundleKey]*bundle{}, map[string][]int{}
	}
	n.bundles[k] = b
	n.byGroup[group] = append(n.byGroup[group], index)
	return nil
}

// RemoveBundle takes bundle index of group off this node and releases its
// reservation. Allocations of the bundle's resources still held should be
// released first (their workers stopped); releasing one later gives back
// nothing. It fails when the bundle is not here.
func (n *NodeResources) RemoveBundle(group string, index int) error {
	k := bundleKey{group, index}
	b, ok := n.bundles[k]
	if !ok {
		return fmt.Errorf("bundle %d of placement group %s is not on this node", index, group)
	}
	delete(n.bundles, k)
	left := slices.DeleteFunc(n.byGroup[group], func(i int) bool { return i == index })
	if len(left) == 0 {
		delete(n.byGroup, group)
	} else {
		n.byGroup[group] = left
	}
	for name, v := range b.added {
		n.total[name] -= v
		n.avail[name] -= v
		if n.total[name] <= 0 {
			delete(n.total, name)
			delete(n.avail, name)
		}
	}
	for pool, entries := range b.gpus {
		p := n.pools[pool]
		for _, e := range entries {
			p.dead[e] = true // never handed out, nor given back to, again
			p.live--
		}
		if p.live == 0 {
			delete(n.pools, pool)
		}
	}
	return n.Release(b.alloc)
}

// Bundles lists the committed bundles of group on this node, by index,
// in the order they were committed.
func (n *NodeResources) Bundles(group string) []int {
	return slices.Clone(n.byGroup[group])
}

// HasBundle reports whether bundle index of group is committed here.
func (n *NodeResources) HasBundle(group string, index int) bool {
	_, ok := n.bundles[bundleKey{group, index}]
	return ok
}
