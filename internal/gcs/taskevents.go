package gcs

import (
	"context"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/taskevents"
)

// TaskEvents is the control store's store of task events, for the state
// API, metrics and the timeline on the head.
func (s *Server) TaskEvents() *taskevents.Store { return s.taskEvents }

// ReportTaskEvents takes a process's buffered task events
// (taskevents.Buffer) into the store. A report over the limits
// (taskevents.ValidateReport: at most 16,384 events, sizes of ids and
// names) is refused whole, with an error that names what was wrong.
func (s *Server) ReportTaskEvents(_ context.Context, req *pb.ReportTaskEventsRequest) (*pb.ReportTaskEventsReply, error) {
	if err := taskevents.ValidateReport(req); err != nil {
		return nil, err
	}
	s.taskEvents.Report(req)
	return &pb.ReportTaskEventsReply{}, nil
}
