package replicaset

import (
	"slices"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

func TestRestartDelay(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{
		{1, 0}, {2, BaseBackoff}, {3, 2 * BaseBackoff}, {4, 4 * BaseBackoff},
		{10, MaxBackoff}, {1000, MaxBackoff},
	} {
		if got := restartDelay(tc.failures); got != tc.want {
			t.Errorf("restartDelay(%d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestPlaceReplica(t *testing.T) {
	node := func(id string, total, avail float64) scheduler.Node {
		return scheduler.Node{ID: id, Alive: true, Total: resources.Set{resources.CPU: total}, Available: resources.Set{resources.CPU: avail}}
	}
	nodes := []scheduler.Node{node("aa", 4, 4), node("bb", 4, 1), node("cc", 2, 0)}
	for _, tc := range []struct {
		name   string
		want   resources.Set
		nodes  []scheduler.Node
		onNode map[string]int
		kind   placeKind
		order  []string
	}{
		{"no resources: every node, most free first", resources.Set{}, nodes, nil, placeOn, []string{"aa", "bb", "cc"}},
		{"spread: fewest replicas first", resources.Set{}, nodes, map[string]int{"aa": 1}, placeOn, []string{"bb", "cc", "aa"}},
		{"only nodes with room", resources.Set{resources.CPU: 2}, nodes, nil, placeOn, []string{"aa"}},
		{"busy now: wait", resources.Set{resources.CPU: 4}, []scheduler.Node{node("aa", 4, 1)}, nil, placeWait, nil},
		{"never fits", resources.Set{resources.CPU: 8}, nodes, nil, placeNever, nil},
		{"dead nodes do not count", resources.Set{}, []scheduler.Node{{ID: "dd", Total: resources.Set{}}}, nil, placeNever, nil},
	} {
		kind, order, msg := placeReplica(tc.want, tc.nodes, tc.onNode)
		if kind != tc.kind {
			t.Errorf("%s: kind %d, want %d (%s)", tc.name, kind, tc.kind, msg)
			continue
		}
		if kind != placeOn && msg == "" {
			t.Errorf("%s: no message", tc.name)
		}
		var got []string
		for _, n := range order {
			got = append(got, n.ID)
		}
		if !slices.Equal(got, tc.order) {
			t.Errorf("%s: order %v, want %v", tc.name, got, tc.order)
		}
	}
}
