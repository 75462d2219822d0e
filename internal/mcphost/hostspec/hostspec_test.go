package hostspec

import "testing"

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		ok   bool
	}{
		{Spec{Name: "memory", Command: []string{"npx"}, Replicas: 2}, true},
		{Spec{Name: "Memory", Command: []string{"npx"}, Replicas: 1}, false},
		{Spec{Name: "", Command: []string{"npx"}, Replicas: 1}, false},
		{Spec{Name: "-x", Command: []string{"npx"}, Replicas: 1}, false},
		{Spec{Name: "m", Replicas: 1}, false},
		{Spec{Name: "m", Command: []string{"x"}, Replicas: 0}, false},
		{Spec{Name: "m", Command: []string{"x"}, Replicas: MaxReplicas + 1}, false},
		{Spec{Name: "m", Command: []string{"x"}, Replicas: 1, Resources: map[string]float64{"CPU": -1}}, false},
		{Spec{Name: "m", Command: []string{"x"}, Replicas: 1, Access: "admin"}, false},
		{Spec{Name: "m", Command: []string{"x"}, Replicas: 1, Access: "read"}, true},
	} {
		err := tc.spec.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v, want ok=%t", tc.spec, err, tc.ok)
		}
	}
}
