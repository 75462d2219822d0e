package dashboard

import (
	"context"

	"github.com/raygo/raygo/internal/api"
)

// taskCounts counts the cluster's stored task attempts by state (Ray's
// names) from the control store's task-event store, in the head's
// process; nil when the head keeps no task events.
func taskCounts(_ context.Context, c *api.Cluster) (map[string]int64, error) {
	if c.GCS == nil {
		return nil, nil
	}
	st := c.GCS.TaskEvents()
	if st == nil {
		return nil, nil
	}
	counts := st.CountByState()
	out := make(map[string]int64, len(counts))
	for k, n := range counts {
		out[k] = int64(n)
	}
	return out, nil
}
