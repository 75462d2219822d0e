package replicaset

import (
	"fmt"
	"testing"

	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// BenchmarkPlaceReplica places a replica over 100 nodes, 32 of the
// set's replicas already on them (each start places once).
//
//	go test -run '^$' -bench PlaceReplica ./internal/replicaset/
func BenchmarkPlaceReplica(b *testing.B) {
	var nodes []scheduler.Node
	onNode := map[string]int{}
	for i := range 100 {
		id := fmt.Sprintf("%08x", i)
		nodes = append(nodes, scheduler.Node{ID: id, Alive: true, Total: resources.Set{resources.CPU: 16},
			Available: resources.Set{resources.CPU: float64(i % 17)}})
		if i%3 == 0 && len(onNode) < 32 {
			onNode[id] = 1
		}
	}
	want := resources.Set{resources.CPU: 1}
	for b.Loop() {
		if k, _, _ := placeReplica(want, nodes, onNode); k != placeOn {
			b.Fatal(k)
		}
	}
}
