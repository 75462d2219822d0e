package scheduler

import (
	"strings"
	"testing"
)

func TestParseLabels(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{"zone=us-west-1a", map[string]string{"zone": "us-west-1a"}, ""},
		{" zone=a , disk=ssd", map[string]string{"zone": "a", "disk": "ssd"}, ""},
		{"example.com/accel=h100", map[string]string{"example.com/accel": "h100"}, ""},
		{"spot=", map[string]string{"spot": ""}, ""},
		{"zone", nil, `"zone" is not key=value`},
		{"zone=a,zone=b", nil, "given twice"},
		{"-zone=a", nil, "the name must be"},
		{"zone=a b", nil, `value "a b"`},
		{"raygo.io/node-id=x", nil, "reserved"},
		{"/zone=a", nil, "the prefix"},
		{strings.Repeat("k", 64) + "=v", nil, "the name must be 1-63"},
		{"k=" + strings.Repeat("v", 64), nil, "at most 63"},
	}
	for _, tt := range tests {
		got, err := ParseLabels(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseLabels(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseLabels(%q): %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("ParseLabels(%q) = %v, want %v", tt.in, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("ParseLabels(%q)[%q] = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

func TestTooManyLabels(t *testing.T) {
	var kv []string
	for i := range MaxLabels + 1 {
		kv = append(kv, "k"+strings.Repeat("x", i%50)+string(rune('a'+i%26))+"=v")
	}
	if _, err := ParseLabels(strings.Join(kv, ",")); err == nil {
		t.Fatal("ParseLabels accepted more than MaxLabels labels")
	}
}

func TestValidateMatches(t *testing.T) {
	tests := []struct {
		name    string
		ms      []LabelMatch
		wantErr string
	}{
		{"ok", []LabelMatch{{Key: "zone", Op: In, Values: []string{"a"}}, {Key: "gpu", Op: Exists}}, ""},
		{"in without values", []LabelMatch{{Key: "zone", Op: In}}, "needs 1-64 values"},
		{"exists with values", []LabelMatch{{Key: "zone", Op: Exists, Values: []string{"a"}}}, "takes no values"},
		{"bad key", []LabelMatch{{Key: "", Op: Exists}}, "label key"},
		{"bad value", []LabelMatch{{Key: "zone", Op: NotIn, Values: []string{"a/b"}}}, "value"},
		{"unknown op", []LabelMatch{{Key: "zone", Op: LabelOp(9)}}, "unknown operator"},
		{"reserved keys may be selected", []LabelMatch{{Key: NodeIDLabel, Op: In, Values: []string{"abc"}}}, ""},
		{"too many", make([]LabelMatch, MaxMatches+1), "exceeds the limit"},
	}
	for _, tt := range tests {
		err := ValidateMatches(tt.ms)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestLabelMatch(t *testing.T) {
	labels := map[string]string{"zone": "a", "spot": ""}
	tests := []struct {
		m    LabelMatch
		want bool
	}{
		{LabelMatch{Key: "zone", Op: In, Values: []string{"a", "b"}}, true},
		{LabelMatch{Key: "zone", Op: In, Values: []string{"b"}}, false},
		{LabelMatch{Key: "disk", Op: In, Values: []string{"ssd"}}, false},
		{LabelMatch{Key: "zone", Op: NotIn, Values: []string{"a"}}, false},
		{LabelMatch{Key: "zone", Op: NotIn, Values: []string{"b"}}, true},
		{LabelMatch{Key: "disk", Op: NotIn, Values: []string{"ssd"}}, true},
		{LabelMatch{Key: "spot", Op: Exists}, true},
		{LabelMatch{Key: "disk", Op: Exists}, false},
		{LabelMatch{Key: "spot", Op: DoesNotExist}, false},
		{LabelMatch{Key: "disk", Op: DoesNotExist}, true},
	}
	for _, tt := range tests {
		if got := tt.m.Matches(labels); got != tt.want {
			t.Errorf("%s on %v = %v, want %v", tt.m, labels, got, tt.want)
		}
	}
}
