package coreworker

import (
	"context"
	"errors"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/rpc"
)

// driverSessionRetry is how long a driver waits before reopening a
// session whose stream broke while the process lives (the control store
// restarting, a network fault).
const driverSessionRetry = 500 * time.Millisecond

// HoldDriverSession keeps the job's driver session (the control store's
// DriverAlive stream) open until Close: when this process dies, the
// stream's connection closes with it and the control store ends the job
// at once instead of after its periodic checks miss the driver. A stream
// that breaks while the process lives is reopened; the session ends for
// good once the control store says the job is no longer running. With a
// control store that keeps no storage (persistent false, from
// RegisterJobReply), a session down for headTimeout (the control store's
// node timeout, from RegisterJobReply; zero: Config.HeadTimeout), or a control
// store that no longer knows the job, means the head is gone (headlost.go).
func (cw *CoreWorker) HoldDriverSession(job ids.ID, persistent bool, headTimeout time.Duration) {
	if headTimeout <= 0 {
		headTimeout = cw.cfg.HeadTimeout
	}
	_ = cw.stop.Go("coreworker.driversession", func(ctx context.Context) {
		lastAnswer := time.Now() // RegisterJob was just answered
		for {
			answered, err := cw.driverSession(ctx, job)
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			if answered {
				lastAnswer = now // the stream was up until now, or the control store answered it
			}
			unknown := func() bool { return cw.jobUnknown(ctx, job) }
			if lost := sessionDown(persistent, err, unknown, lastAnswer, now, headTimeout, cw.cfg.GCSAddress); lost != nil {
				cw.loseHead(lost)
				return
			}
			if errors.Is(rpc.FromStatus(err), errs.ErrNotFound) {
				return // the job ended
			}
			t := time.NewTimer(driverSessionRetry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
}

// driverSession holds one DriverAlive stream until it ends; answered says
// whether the control store answered it (headers, or a status without
// them), as opposed to not being reached.
func (cw *CoreWorker) driverSession(ctx context.Context, job ids.ID) (answered bool, err error) {
	stream, err := cw.gcs.DriverAlive(ctx, &pb.DriverAliveRequest{JobId: job.Bytes()})
	if err != nil {
		return false, err
	}
	if _, err := stream.Header(); err != nil {
		return false, err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return true, err
		}
	}
}
