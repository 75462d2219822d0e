package controller

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const ok = `applications:
  - name: a
    runtime_env: {working_dir: "sha256:%s"}
    deployments: [{name: d, command: [python3, s.py], autoscaling_config: {min_replicas: 2, max_replicas: 4}}]
`
	pkg := strings.Repeat("ab", 32)
	totals := []map[string]float64{{"CPU": 2}}
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error; none: valid
	}{
		{"valid", strings.Replace(ok, "%s", pkg, 1), nil},
		{"local working dir", strings.Replace(ok, "sha256:%s", "./app", 1), []string{`working_dir "./app" is not an uploaded package`}},
		{"unknown field", "applications: [{name: a, deployments: [{name: d, comand: [x]}]}]\n", []string{`unknown field "comand"`, "did you mean command"}},
		{"every problem at once", `applications:
  - {name: a, deployments: [{name: d, command: [x], ray_actor_options: {num_cpus: 8}}]}
  - {name: b, route_prefix: /, import_path: x.Y}
`, []string{"impossible resources", "is taken by"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Check([]byte(tc.yaml), totals)
			if len(tc.want) == 0 {
				if err != nil || cfg == nil {
					t.Fatalf("Check: %v", err)
				}
				d := &cfg.Applications[0].Deployments[0]
				if pc := policyConfig(d.AutoscalingConfig); pc.Validate() != nil || pc.InitialTarget(0) != 2 {
					t.Fatalf("autoscaling deployment: policy config %+v (%v), initial target %d", pc, pc.Validate(), pc.InitialTarget(0))
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Check: %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check: %v\nwant %q in it", err, w)
				}
			}
		})
	}
}
