//go:build !windows

package ray

import "github.com/raygo/raygo/internal/taskevents"

// HeadForTest returns the embedded cluster's task event store, HTTP API
// URL and cluster token (nil, "", "" when the cluster is not embedded).
func HeadForTest() (*taskevents.Store, string, string) {
	global.mu.Lock()
	defer global.mu.Unlock()
	if global.head == nil {
		return nil, "", ""
	}
	return global.head.TaskEvents(), global.head.APIURL(), global.head.Token()
}

// DriverTaskEventsForTest returns the driver's task event buffer's counts.
func DriverTaskEventsForTest() taskevents.BufferStats {
	cw, err := current()
	if err != nil {
		return taskevents.BufferStats{}
	}
	return cw.TaskEvents().Stats()
}
