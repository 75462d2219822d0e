package state

import (
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/taskevents"
)

// TestTaskWarnings: each way the head's rows can be incomplete is said,
// with its count and what to change; complete rows say nothing.
func TestTaskWarnings(t *testing.T) {
	for _, tc := range []struct {
		st   taskevents.Stats
		want []string
	}{
		{taskevents.Stats{Stored: 10}, nil},
		{taskevents.Stats{Evicted: 3}, []string{"3 task attempts were evicted", "--task-events-max"}},
		{taskevents.Stats{DroppedAtSource: 4}, []string{"4 task events were dropped"}},
		{taskevents.Stats{NotRecorded: 5}, []string{"5 task attempts were not recorded", taskevents.EnvRate}},
	} {
		got := taskWarnings(tc.st)
		if len(tc.want) == 0 {
			if len(got) != 0 {
				t.Errorf("%+v: warnings %q, want none", tc.st, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%+v: warnings %q, want one", tc.st, got)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(got[0], w) {
				t.Errorf("%+v: warning %q does not say %q", tc.st, got[0], w)
			}
		}
	}
}
