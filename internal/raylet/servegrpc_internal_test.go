package raylet

import (
	"reflect"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/router"
)

func TestMergeServeLoad(t *testing.T) {
	ds := func(app, dep string, inFlight, queued int) proxy.DeploymentStats {
		return proxy.DeploymentStats{App: app, Deployment: dep, Stats: router.Stats{InFlight: inFlight, Queued: queued}}
	}
	for _, tc := range []struct {
		name string
		a, b []proxy.DeploymentStats
		want []proxy.DeploymentStats
	}{
		{"no gRPC load", []proxy.DeploymentStats{ds("a", "d", 1, 2)}, nil, []proxy.DeploymentStats{ds("a", "d", 1, 2)}},
		{"only gRPC load", nil, []proxy.DeploymentStats{ds("a", "d", 3, 0)}, []proxy.DeploymentStats{ds("a", "d", 3, 0)}},
		{"summed per deployment",
			[]proxy.DeploymentStats{ds("a", "d", 1, 2), ds("b", "d", 5, 0)},
			[]proxy.DeploymentStats{ds("b", "d", 1, 1), ds("c", "e", 0, 4)},
			[]proxy.DeploymentStats{ds("a", "d", 1, 2), ds("b", "d", 6, 1), ds("c", "e", 0, 4)}},
		{"same app, other deployment", []proxy.DeploymentStats{ds("a", "d", 1, 0)}, []proxy.DeploymentStats{ds("a", "x", 1, 0)},
			[]proxy.DeploymentStats{ds("a", "d", 1, 0), ds("a", "x", 1, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeServeLoad(tc.a, tc.b); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestServeGRPCConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{ServePort: -1, ServeGRPCPort: 0}, "needs the Serve HTTP proxy too"},
		{Config{ServePort: 0, ServeGRPCPort: 70000}, "ServeGRPCPort 70000: want -1"},
	} {
		err := (&Raylet{cfg: tc.cfg}).startServeGRPC()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	if err := (&Raylet{cfg: Config{ServePort: -1, ServeGRPCPort: -1}}).startServeGRPC(); err != nil {
		t.Errorf("no gRPC proxy: %v", err)
	}
}
