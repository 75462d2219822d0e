package coreworker

import (
	"context"
	"time"

	"github.com/raygo/raygo/internal/coreworker/groupops"
)

// groupsFlushWait bounds how long Close waits for queued placement-group
// ops (removals, mostly) to reach the control store.
const groupsFlushWait = 2 * time.Second

// Groups is the process's stream of placement-group creates and removals
// (started on first use). After Close it is a closed pipe: its ops fail
// with groupops.ErrClosed.
func (cw *CoreWorker) Groups() *groupops.Pipe {
	cw.groupsMu.Lock()
	defer cw.groupsMu.Unlock()
	if cw.groups == nil {
		cw.groups = groupops.New(func(ctx context.Context) (groupops.Stream, error) {
			return cw.gcs.PlacementGroupOps(ctx)
		})
		if cw.groupsClosed {
			cw.groups.Close()
		}
		cw.groupsLive.Store(cw.groups)
	}
	return cw.groups
}

// awaitRemovals holds a submission until the placement-group removals
// this process queued are applied, so that work sent after
// RemovePlacementGroup finds the group gone, as it would after a
// synchronous call. With none queued it costs two atomic loads.
func (cw *CoreWorker) awaitRemovals(ctx context.Context) error {
	if p := cw.groupsLive.Load(); p != nil {
		return p.FlushRemovals(ctx)
	}
	return nil
}

// closeGroups gives queued ops a moment to reach the control store, then
// stops the pipe.
func (cw *CoreWorker) closeGroups() {
	cw.groupsMu.Lock()
	cw.groupsClosed = true
	p := cw.groups
	cw.groupsMu.Unlock()
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupsFlushWait)
	_ = p.Flush(ctx)
	cancel()
	p.Close()
}
