package controller

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/raygo/raygo/serve/config"
)

func mustConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Defaults()
	return c
}

const base = `
applications:
  - name: api
    route_prefix: /api
    runtime_env: {env_vars: {MODE: prod}}
    deployments:
      - name: web
        command: [python3, -m, http.server]
        num_replicas: 2
        user_config: {threshold: 1}
      - name: worker
        command: [./worker]
`

func TestPlan(t *testing.T) {
	old := mustConfig(t, base)
	for _, tc := range []struct {
		name string
		next string
		want map[string]Change // deployment → change (others unchanged)
		why  map[string][]string
	}{
		{"same", base, nil, nil},
		{"replica count: update", replace(base, "num_replicas: 2", "num_replicas: 5"), map[string]Change{"web": Update}, map[string][]string{"web": {"NumReplicas"}}},
		{"max ongoing: update", replace(base, "num_replicas: 2", "num_replicas: 2\n        max_ongoing_requests: 9"), map[string]Change{"web": Update}, nil},
		{"command: roll", replace(base, "[./worker]", "[./worker, --fast]"), map[string]Change{"worker": Roll}, map[string][]string{"worker": {"Command"}}},
		{"app env: both roll", replace(base, "MODE: prod", "MODE: dev"), map[string]Change{"web": Roll, "worker": Roll}, map[string][]string{"web": {"Env"}}},
		{"a command's user config: roll", replace(base, "threshold: 1", "threshold: 2"), map[string]Change{"web": Roll}, map[string][]string{"web": {"UserConfig"}}},
		{"resources: roll", replace(base, "[./worker]", "[./worker]\n        ray_actor_options: {num_cpus: 2}"), map[string]Change{"worker": Roll}, map[string][]string{"worker": {"Resources"}}},
		{"route prefix alone changes no replica", replace(base, "/api", "/v2"), nil, nil},
		{"a deployment removed and one added", replace(base, "name: worker", "name: cruncher"), map[string]Change{"worker": Delete, "cruncher": Create}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := Plan(old, mustConfig(t, tc.next))
			got := map[string]Change{}
			for _, p := range plan {
				if p.Change != Unchanged {
					got[p.Deployment] = p.Change
				}
				if want, ok := tc.why[p.Deployment]; ok && !slices.Equal(p.Reasons, want) {
					t.Errorf("%s: reasons %v, want %v", p.Deployment, p.Reasons, want)
				}
				if p.Change != Delete && p.Version == "" {
					t.Errorf("%s: no version", p.Deployment)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("changes %v, want %v", got, tc.want)
			}
			for d, c := range tc.want {
				if got[d] != c {
					t.Errorf("%s: %v, want %v", d, got[d], c)
				}
			}
			if !slices.IsSortedFunc(plan, func(a, b DeploymentPlan) int {
				return cmp.Or(cmp.Compare(a.App, b.App), cmp.Compare(a.Deployment, b.Deployment))
			}) {
				t.Errorf("plan not ordered: %+v", plan)
			}
		})
	}
	for _, p := range Plan(nil, old) {
		if p.Change != Create {
			t.Errorf("from nothing: %s %v, want create", p.Deployment, p.Change)
		}
	}
}

func replace(s, old, new string) string { return strings.ReplaceAll(s, old, new) }

func TestRollStep(t *testing.T) {
	for _, tc := range []struct {
		target, old, ready, starting, surge int
		start, stop                         int
	}{
		{3, 0, 0, 0, 1, 3, 0}, // a new deployment: all at once
		{3, 3, 0, 0, 1, 1, 0}, // begin: one new beyond target
		{3, 3, 0, 1, 1, 0, 0}, // wait for it
		{3, 3, 1, 0, 1, 1, 1}, // it is ready: stop one old, start the next
		{3, 1, 2, 0, 2, 1, 0}, // surge 2: room for one more
		{3, 1, 3, 0, 1, 0, 1}, // all new ready: stop the rest
		{3, 0, 3, 0, 1, 0, 0}, // done
		{2, 4, 0, 0, 1, 1, 2}, // scaled down during the roll: old beyond target go, the roll goes on
		{5, 2, 2, 0, 1, 2, 0}, // scaled up during the roll
	} {
		start, stop := RollStep(tc.target, tc.old, tc.ready, tc.starting, tc.surge)
		if start != tc.start || stop != tc.stop {
			t.Errorf("RollStep(target %d, old %d, ready %d, starting %d, surge %d) = start %d stop %d, want %d %d",
				tc.target, tc.old, tc.ready, tc.starting, tc.surge, start, stop, tc.start, tc.stop)
		}
	}
}

// TestRollNeverDropsCapacity simulates rolls: new replicas become ready
// one step after they start; at no step do fewer than target replicas
// serve, and every roll ends with target new ones and no old.
func TestRollNeverDropsCapacity(t *testing.T) {
	for target := 1; target <= 6; target++ {
		for surge := 1; surge <= 3; surge++ {
			old, ready, starting := target, 0, 0
			for step := 0; ; step++ {
				if step > 100 {
					t.Fatalf("target %d surge %d: no end", target, surge)
				}
				start, stop := RollStep(target, old, ready, starting, surge)
				if old+ready-stop < target {
					t.Fatalf("target %d surge %d step %d: %d serve", target, surge, step, old+ready-stop)
				}
				if start == 0 && stop == 0 && starting == 0 {
					if old != 0 || ready != target {
						t.Fatalf("target %d surge %d: ended with old %d new %d", target, surge, old, ready)
					}
					break
				}
				old -= stop
				ready += starting // the previous step's starts are ready now
				starting = start
			}
		}
	}
}
