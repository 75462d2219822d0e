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
const driverSessionRetry = time.Second

// HoldDriverSession keeps the job's driver session (the control store's
// DriverAlive stream) open until Close: when this process dies, the
// stream's connection closes with it and the control store ends the job
// at once instead of after its periodic checks miss the driver. A stream
// that breaks while the process lives is reopened; the session ends for
// good once the control store says the job is no longer running.
func (cw *CoreWorker) HoldDriverSession(job ids.ID) {
	_ = cw.stop.Go("coreworker.driversession", func(ctx context.Context) {
		for {
			err := cw.driverSession(ctx, job)
			if ctx.Err() != nil || errors.Is(rpc.FromStatus(err), errs.ErrNotFound) {
				return
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

// driverSession holds one DriverAlive stream until it ends.
func (cw *CoreWorker) driverSession(ctx context.Context, job ids.ID) error {
	stream, err := cw.gcs.DriverAlive(ctx, &pb.DriverAliveRequest{JobId: job.Bytes()})
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}
