package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
)

// poolJob is one call to the pool: the worker replies on reply, a channel
// of the job's own (the in-process analogue of a future).
type poolJob struct {
	arg   []byte
	reply chan []byte
}

// goroutinePool: GOMAXPROCS workers receive trivial jobs from one channel
// and reply on per-job channels; the client submits a batch, then waits
// for every reply; calls per second. No process boundary, no
// serialization: the in-process limit.
func goroutinePool(ctx context.Context, o options) (float64, error) {
	jobs := make(chan poolJob, o.batch)
	defer close(jobs)
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for j := range jobs {
				j.reply <- okBytes
			}
		}()
	}
	replies := make([]chan []byte, o.batch)
	return measure(ctx, o.duration, float64(o.batch), func(context.Context) error {
		for i := range replies {
			replies[i] = make(chan []byte, 1)
			jobs <- poolJob{arg: okBytes, reply: replies[i]}
		}
		for _, r := range replies {
			if v := <-r; !bytes.Equal(v, okBytes) {
				return fmt.Errorf("reply %q", v)
			}
		}
		return nil
	})
}
