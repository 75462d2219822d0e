package resources

import (
	"math/rand"
	"reflect"
	"testing"
)

func TestBundleResources(t *testing.T) {
	n := NewNodeResources(Set{CPU: 4, GPU: 2, Memory: 8 << 30}, []string{"a", "b"})
	before := n.Total()
	// Prepare: a plain allocation; commit: it becomes the bundle.
	res, ok := n.Allocate(Set{CPU: 2, GPU: 1, Memory: 1 << 30})
	if !ok {
		t.Fatal("prepare failed")
	}
	if err := n.AddBundle("g1", 0, res); err != nil {
		t.Fatal(err)
	}
	if err := n.AddBundle("g1", 0, res); err == nil {
		t.Fatal("committed the same bundle twice")
	}
	total := n.Total()
	for name, want := range map[string]float64{
		"CPU_group_0_g1": 2, "CPU_group_g1": 2, "GPU_group_0_g1": 1, "GPU_group_g1": 1,
		"memory_group_0_g1": 1 << 30, "bundle_group_0_g1": 1000, "bundle_group_g1": 1000, CPU: 4,
	} {
		if total[name] != want {
			t.Errorf("total[%s] = %v, want %v", name, total[name], want)
		}
	}
	if got := n.Available()[CPU]; got != 2 {
		t.Errorf("available CPU = %v, want 2 (the bundle holds 2)", got)
	}

	// A task in bundle 0 gets the bundle's GPU; another cannot (one GPU).
	task, ok := n.Allocate(InBundle(Set{CPU: 1, GPU: 1}, "g1", 0))
	if !ok || !reflect.DeepEqual(task.GPUIDs, []string{res.GPUIDs[0]}) {
		t.Fatalf("task in bundle: ok %v, GPUs %v, want the bundle's %v", ok, task.GPUIDs, res.GPUIDs)
	}
	if _, ok := n.Allocate(InBundle(Set{GPU: 1}, "g1", -1)); ok {
		t.Fatal("a second GPU came out of a one-GPU bundle")
	}
	// The node's other GPU is still free outside the group.
	if other, ok := n.Allocate(Set{GPU: 1}); !ok || other.GPUIDs[0] == res.GPUIDs[0] {
		t.Fatalf("plain GPU: %v %v", ok, other.GPUIDs)
	} else if err := n.Release(other); err != nil {
		t.Fatal(err)
	}
	any, ok := n.Allocate(InBundle(Set{CPU: 1}, "g1", -1))
	if !ok {
		t.Fatal("wildcard CPU of the group did not fit")
	}
	if _, ok := n.Allocate(InBundle(Set{CPU: 0.5}, "g1", 0)); ok {
		t.Fatal("more CPU than the bundle's came out of it")
	}
	marker, ok := n.Allocate(InBundle(Set{}, "g1", 0))
	if !ok {
		t.Fatal("a request for nothing in the bundle did not fit")
	}
	if _, ok := n.Allocate(InBundle(Set{CPU: 0.1}, "other", 0)); ok {
		t.Fatal("a bundle that is not here fit")
	}

	// Remove with allocations still held (their workers are being
	// stopped): the node gets the reservation back; the late releases give
	// nothing to resources that are gone.
	if err := n.RemoveBundle("g1", 0); err != nil {
		t.Fatal(err)
	}
	if err := n.RemoveBundle("g1", 0); err == nil {
		t.Fatal("removed a bundle twice")
	}
	for _, a := range []Allocation{task, any, marker} {
		if err := n.Release(a); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(n.Total(), before) || !reflect.DeepEqual(n.Available(), before) {
		t.Fatalf("after removal: total %v, available %v; want both %v", n.Total(), n.Available(), before)
	}
	if len(n.pools) != 1 {
		t.Errorf("pools left: %v", n.pools)
	}
}

// TestBundleProperty: random bundles committed and removed, with random
// tasks inside them and outside, never hand out more than a bundle holds
// and bring the node back to its totals exactly.
func TestBundleProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for round := range 200 {
		n := NewNodeResources(Set{CPU: 8, GPU: 4, "widget": 3}, nil)
		before := n.Total()
		type live struct {
			group string
			index int
		}
		var bundles []live
		var tasks []Allocation
		for range 60 {
			switch rng.Intn(4) {
			case 0: // prepare and commit a bundle
				req := Set{CPU: float64(rng.Intn(3)), GPU: []float64{0, 0.5, 1, 2}[rng.Intn(4)], "widget": float64(rng.Intn(2))}
				if a, ok := n.Allocate(req); ok {
					b := live{[]string{"g1", "g2"}[rng.Intn(2)], rng.Intn(3)}
					if err := n.AddBundle(b.group, b.index, a); err != nil {
						_ = n.Release(a) // taken already: roll back
						continue
					}
					bundles = append(bundles, b)
				}
			case 1: // a task in a bundle, or in any of a group's
				if len(bundles) == 0 {
					continue
				}
				b := bundles[rng.Intn(len(bundles))]
				idx := b.index
				if rng.Intn(2) == 0 {
					idx = -1
				}
				req := InBundle(Set{CPU: []float64{0, 0.5, 1}[rng.Intn(3)], GPU: []float64{0, 0.5, 1}[rng.Intn(3)]}, b.group, idx)
				if a, ok := n.Allocate(req); ok {
					tasks = append(tasks, a)
					for name, p := range n.pools {
						for i, f := range p.free {
							if f < 0 || f > UnitsPerWhole {
								t.Fatalf("round %d: pool %s entry %d has %d free", round, name, i, f)
							}
						}
					}
				}
			case 2: // finish a task
				if len(tasks) > 0 {
					i := rng.Intn(len(tasks))
					if err := n.Release(tasks[i]); err != nil {
						t.Fatal(err)
					}
					tasks = append(tasks[:i], tasks[i+1:]...)
				}
			case 3: // remove a bundle
				if len(bundles) > 0 {
					i := rng.Intn(len(bundles))
					if err := n.RemoveBundle(bundles[i].group, bundles[i].index); err != nil {
						t.Fatal(err)
					}
					bundles = append(bundles[:i], bundles[i+1:]...)
				}
			}
			for k, v := range n.avail {
				if v > n.total[k] {
					t.Fatalf("round %d: %s available %d above total %d", round, k, v, n.total[k])
				}
			}
		}
		for _, a := range tasks {
			if err := n.Release(a); err != nil {
				t.Fatal(err)
			}
		}
		for _, b := range bundles {
			if err := n.RemoveBundle(b.group, b.index); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(n.Total(), before) || !reflect.DeepEqual(n.Available(), before) {
			t.Fatalf("round %d: total %v available %v, want %v", round, n.Total(), n.Available(), before)
		}
	}
}

func TestIsMemory(t *testing.T) {
	for name, want := range map[string]bool{Memory: true, "memory_group_0_ab": true, "memory_group_ab": true, "memoryx": false, CPU: false, "memory_": false} {
		if IsMemory(name) != want {
			t.Errorf("IsMemory(%q) = %v", name, !want)
		}
	}
	if err := Validate(Set{"memory_group_0_ab": 1 << 40}); err != nil {
		t.Errorf("a bundle's memory in bytes: %v", err)
	}
}

// A task in bundle 1 of a group with two one-GPU bundles on the node gets
// bundle 1's GPU, once, whichever order the pools are looked at in.
func TestBundleGPUIsTheBundles(t *testing.T) {
	for range 20 {
		n := NewNodeResources(Set{CPU: 4, GPU: 3}, []string{"x", "y", "z"})
		var gpus []string
		for i := range 2 {
			a, ok := n.Allocate(Set{GPU: 1})
			if !ok {
				t.Fatal("prepare")
			}
			gpus = append(gpus, a.GPUIDs[0])
			if err := n.AddBundle("g", i, a); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []int{1, 0} {
			task, ok := n.Allocate(InBundle(Set{GPU: 1}, "g", want))
			if !ok || !reflect.DeepEqual(task.GPUIDs, []string{gpus[want]}) {
				t.Fatalf("task in bundle %d: %v %v, want [%s]", want, ok, task.GPUIDs, gpus[want])
			}
		}
	}
}
