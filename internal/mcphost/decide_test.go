package mcphost

import "testing"

// restartDelay and placeReplica moved with their tests to
// internal/replicaset.

func TestPickReplica(t *testing.T) {
	for _, tc := range []struct {
		name string
		rs   []replicaLoad
		tie  uint64
		want int
	}{
		{"none", nil, 0, -1},
		{"none ready", []replicaLoad{{}, {}}, 0, -1},
		{"fewest sessions", []replicaLoad{{ready: true, sessions: 3}, {ready: true, sessions: 1}}, 0, 1},
		{"skips not ready", []replicaLoad{{sessions: 0}, {ready: true, sessions: 5}}, 0, 1},
		{"then fewest in flight", []replicaLoad{{ready: true, sessions: 1, inFlight: 4}, {ready: true, sessions: 1, inFlight: 2}}, 0, 1},
		{"equal: round robin from tie", []replicaLoad{{ready: true}, {ready: true}, {ready: true}}, 1, 1},
		{"equal: wraps", []replicaLoad{{ready: true}, {ready: true}, {ready: true}}, 5, 2},
	} {
		if got := pickReplica(tc.rs, tc.tie); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
