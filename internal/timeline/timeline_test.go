package timeline

import (
	"strings"
	"testing"
)

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		job, limit string
		want       int
		bad        string
	}{
		{"", "", DefaultSpans, ""},
		{"0123456789abcdef0123456789ABCDEF", "10", 10, ""},
		{"", "1000000", MaxSpans, ""},
		{"", "0", 0, "limit"},
		{"", "1000001", 0, "limit"},
		{"", "ten", 0, "limit"},
		{"abc", "", 0, "job_id"},
		{"0123456789abcdef0123456789abcdeg", "", 0, "job_id"},
	} {
		err := checkJobID(tc.job)
		n, lerr := parseLimit(tc.limit)
		if err == nil {
			err = lerr
		}
		if tc.bad == "" {
			if err != nil || n != tc.want {
				t.Errorf("job %q limit %q: %d, %v; want %d", tc.job, tc.limit, n, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.bad) {
			t.Errorf("job %q limit %q: error %v, want one naming %s", tc.job, tc.limit, err, tc.bad)
		}
	}
}
