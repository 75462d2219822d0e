package ray

import (
	"context"

	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/pb"
)

// taskEventsSink hands the driver's task events straight to the head's
// store when the head runs in this process (the embedded cluster), with
// no encoding and no RPC; nil otherwise (reports go by RPC).
func taskEventsSink(head *node.Head) func(context.Context, *pb.ReportTaskEventsRequest) error {
	if head == nil {
		return nil
	}
	store := head.TaskEvents()
	return func(_ context.Context, req *pb.ReportTaskEventsRequest) error {
		store.Report(req)
		return nil
	}
}
