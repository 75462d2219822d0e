package taskevents

import (
	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Limits on one report, checked by ValidateReport on the control store.
// A Buffer never exceeds them (it sends at most MaxRequestEvents).
const (
	// MaxReportEvents bounds the events of one report.
	MaxReportEvents = 16384
	// MaxEventChanges bounds the state changes of one event (an attempt
	// enters each of its six states once; a rebuild may repeat some).
	MaxEventChanges = 64
	// MaxNameBytes bounds a task's name and function.
	MaxNameBytes = 4 << 10
	// MaxResourceKinds bounds the resources of one definition.
	MaxResourceKinds = 256
)

// ValidateReport checks a report off the wire; the error (an
// errs.ErrInvalidRequest) names what was wrong and where.
func ValidateReport(req *pb.ReportTaskEventsRequest) error {
	if n := len(req.GetEvents()); n > MaxReportEvents {
		return errs.Invalidf("taskevents: report of %d events exceeds %d", n, MaxReportEvents)
	}
	if req.GetDropped() < 0 {
		return errs.Invalidf("taskevents: negative dropped count %d", req.GetDropped())
	}
	if req.GetNotRecorded() < 0 {
		return errs.Invalidf("taskevents: negative not_recorded count %d", req.GetNotRecorded())
	}
	for i, ev := range req.GetEvents() {
		if err := validateEvent(ev); err != nil {
			return errs.Invalidf("taskevents: event %d: %v", i, err)
		}
	}
	return nil
}

func validateEvent(ev *pb.TaskEvent) error {
	if ev == nil {
		return errs.Invalidf("missing")
	}
	if len(ev.GetTaskId()) != ids.Size {
		return errs.Invalidf("task id of %d bytes, want %d", len(ev.GetTaskId()), ids.Size)
	}
	if ev.GetAttempt() < 0 {
		return errs.Invalidf("negative attempt %d", ev.GetAttempt())
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{"job id", ev.GetJobId()}, {"actor id", ev.GetActorId()}, {"parent task id", ev.GetParentTaskId()},
		{"owner worker id", ev.GetOwnerWorkerId()}, {"placement group id", ev.GetPlacementGroupId()},
		{"node id", ev.GetNodeId()}, {"worker id", ev.GetWorkerId()}} {
		if len(f.b) != 0 && len(f.b) != ids.Size {
			return errs.Invalidf("%s of %d bytes, want %d", f.name, len(f.b), ids.Size)
		}
	}
	if len(ev.GetName()) > MaxNameBytes || len(ev.GetFunction()) > MaxNameBytes {
		return errs.Invalidf("name of %d bytes or function of %d bytes exceeds %d", len(ev.GetName()), len(ev.GetFunction()), MaxNameBytes)
	}
	if _, ok := pb.TaskType_name[int32(ev.GetType())]; !ok {
		return errs.Invalidf("unknown task type %d", ev.GetType())
	}
	if n := len(ev.GetRequired().GetAmounts()); n > MaxResourceKinds {
		return errs.Invalidf("%d resource kinds exceed %d", n, MaxResourceKinds)
	}
	if n := len(ev.GetChanges()); n > MaxEventChanges {
		return errs.Invalidf("%d state changes exceed %d", n, MaxEventChanges)
	}
	for _, c := range ev.GetChanges() {
		if c.GetStatus() <= 0 || int(c.GetStatus()) >= numStatus {
			return errs.Invalidf("unknown task status %d", c.GetStatus())
		}
		if c.GetUnixNanos() <= 0 {
			return errs.Invalidf("state %s at time %d", StatusName(c.GetStatus()), c.GetUnixNanos())
		}
	}
	if n := len(ev.GetError().GetMessage()); n > 4*MaxErrorBytes {
		return errs.Invalidf("error message of %d bytes exceeds %d", n, 4*MaxErrorBytes)
	}
	return nil
}
