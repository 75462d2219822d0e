package microbench

import (
	"context"
	"time"
)

// measure runs op repeatedly for cfg's warm-up, then for cfg.Duration, and
// returns units per second of the measured part, op doing perOp units
// each time. Like Ray's timeit it counts whole ops, so the measured time
// runs to the end of the op that crosses the deadline. The first error
// (or the end of ctx) stops it.
func measure(ctx context.Context, cfg Config, perOp float64, op func(context.Context) error) (float64, error) {
	warm := time.Now()
	for first := true; first || time.Since(warm) < cfg.warmup(); first = false {
		if err := step(ctx, op); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	n := 0
	for n == 0 || time.Since(start) < cfg.Duration {
		if err := step(ctx, op); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) * perOp / time.Since(start).Seconds(), nil
}

func step(ctx context.Context, op func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return op(ctx)
}
