package node

import "github.com/raygo/raygo/internal/taskevents"

// TaskEvents is the head control store's store of task events
// (docs/taskevents.md).
func (h *Head) TaskEvents() *taskevents.Store { return h.gcs.TaskEvents() }
