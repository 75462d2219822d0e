package coreworker

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/taskevents"
)

// startEvents makes and starts the process's task event buffer, unless
// events are off (Config.DisableTaskEvents, RAYGO_TASK_EVENTS=0), with
// the budget RAYGO_TASK_EVENTS_RATE sets (an error names a bad value). A
// driver records its own DRIVER_TASK, running until Close.
func (cw *CoreWorker) startEvents() error {
	rate, err := taskevents.RateFromEnv()
	if err != nil {
		return err
	}
	if cw.cfg.DisableTaskEvents || !taskevents.Enabled() {
		return nil
	}
	gcs := cw.gcs
	report := cw.cfg.TaskEventsSink
	if report == nil {
		report = func(ctx context.Context, req *pb.ReportTaskEventsRequest) error {
			_, err := gcs.ReportTaskEvents(ctx, req)
			return err
		}
	}
	cw.events = taskevents.NewBuffer(taskevents.BufferConfig{
		Report: report,
		JobID:  cw.cfg.JobID, NodeID: cw.cfg.NodeID, WorkerID: cw.cfg.WorkerID, PID: int32(os.Getpid()),
		Interval: cw.cfg.TaskEventsInterval, Rate: rate,
	})
	cw.events.Start()
	if cw.cfg.Mode == Worker {
		cw.flushOnTerm()
	}
	if cw.cfg.Mode == Driver {
		cw.driverID = ids.New()
		now := taskevents.Now()
		cw.events.Define(taskevents.Definition{TaskID: cw.driverID, Type: taskevents.DriverTask, Name: "driver", Function: driverName()}, now)
		cw.events.Exec(cw.driverID, 0, taskevents.Running, nil, now)
	}
	return nil
}

// stopEvents ends the driver's task and reports what is buffered.
func (cw *CoreWorker) stopEvents() {
	if cw.termDone != nil {
		close(cw.termDone)
		cw.termDone = nil
	}
	if cw.events == nil {
		return
	}
	if !cw.driverID.IsNil() {
		cw.events.Exec(cw.driverID, 0, taskevents.Finished, nil, taskevents.Now())
	}
	cw.events.Stop()
}

// driverName names the driver's task after its program.
func driverName() string {
	if len(os.Args) > 0 {
		return os.Args[0]
	}
	return "driver"
}

// TaskEvents is the process's task event buffer (nil: events are off).
func (cw *CoreWorker) TaskEvents() *taskevents.Buffer { return cw.events }

// placementGroupOf is the placement group a task or actor runs in, zero
// if none.
func placementGroupOf(o *pb.SchedulingOptions) ids.ID {
	return ids.MustFromBytes(o.GetPlacementGroupId())
}

// flushOnTerm: a worker asked to stop (SIGTERM: its node daemon stops the
// workers of a job that ended this way) reports its buffered task events
// first, then exits; without it a short job's executor events, reported
// once a second, would die with its workers. The goroutine ends with the
// core worker (termDone).
func (cw *CoreWorker) flushOnTerm() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	cw.termDone = make(chan struct{})
	done := cw.termDone
	go func() {
		defer signal.Stop(ch)
		select {
		case <-ch:
			cw.events.Stop() // reports what is buffered, within 2 s
			os.Exit(0)
		case <-done:
		}
	}()
}
