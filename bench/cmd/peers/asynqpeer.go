package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const asynqTaskType = "bench:noop"

var errNoRedis = errors.New("no Redis: install it with `apt-get install -y redis-server`, start it with " +
	"`redis-server --bind 127.0.0.1 --port N --save '' --appendonly no --daemonize yes` and pass --redis 127.0.0.1:N " +
	"(bench/run.sh does all of this)")

// asynqRedis checks that the Redis at o.redisAddr answers and empties its
// database 0, so that no task of an earlier run is counted.
func asynqRedis(ctx context.Context, o options) (asynq.RedisClientOpt, error) {
	if o.redisAddr == "" {
		return asynq.RedisClientOpt{}, errNoRedis
	}
	rc := redis.NewClient(&redis.Options{Addr: o.redisAddr})
	defer rc.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rc.FlushDB(cctx).Err(); err != nil {
		return asynq.RedisClientOpt{}, fmt.Errorf("Redis at %s: %w; %w", o.redisAddr, err, errNoRedis)
	}
	return asynq.RedisClientOpt{Addr: o.redisAddr}, nil
}

// newAsynqServer starts a server whose handler counts tasks; asynq's
// defaults otherwise (as in asynq's own benchmark: Concurrency 10).
func newAsynqServer(opt asynq.RedisClientOpt, o options, handled *atomic.Int64) (*asynq.Server, error) {
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: o.asynqConcurrency,
		LogLevel:    asynq.WarnLevel,
	})
	err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		handled.Add(1)
		return nil
	}))
	return srv, err
}

var asynqPayload = []byte("ok")

// asynqEndToEnd: o.asynqEnqueuers goroutines enqueue tasks while a server
// handles them, with at most o.batch tasks in flight (enqueued and not yet
// handled; an enqueuer waits for a slot), as raygo's async benchmarks keep
// a batch of 1000 in flight. After a warm-up: tasks handled per second
// over o.duration, in the steady state where tasks go in as fast as they
// come out. Every task counted was enqueued during the run and its handler
// ran. The queue never runs dry, so asynq's 1s idle poll
// (TaskCheckInterval) does not enter the figure.
func asynqEndToEnd(ctx context.Context, o options) (float64, error) {
	opt, err := asynqRedis(ctx, o)
	if err != nil {
		return 0, err
	}
	var handled, enqueued atomic.Int64
	slots := make(chan struct{}, o.batch)
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: o.asynqConcurrency, LogLevel: asynq.WarnLevel})
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		handled.Add(1)
		select {
		case <-slots:
		default:
		}
		return nil
	})); err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	client := asynq.NewClient(opt)
	defer client.Close()

	stop := make(chan struct{})
	errc := make(chan error, o.asynqEnqueuers)
	var wg sync.WaitGroup
	for range o.asynqEnqueuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case slots <- struct{}{}:
				}
				if _, err := client.EnqueueContext(ctx, asynq.NewTask(asynqTaskType, asynqPayload)); err != nil {
					errc <- err
					return
				}
				enqueued.Add(1)
			}
		}()
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case err := <-errc:
			return fmt.Errorf("enqueue: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := wait(min(o.duration/5, time.Second)); err != nil {
		return 0, err
	}
	h0, t0 := handled.Load(), time.Now()
	if err := wait(o.duration); err != nil {
		return 0, err
	}
	h1, t1 := handled.Load(), time.Now()
	if h1 == h0 {
		return 0, fmt.Errorf("no task handled in %s (%d enqueued)", o.duration, enqueued.Load())
	}
	fmt.Fprintf(os.Stderr, "(%d handled in the measured %s, at most %d in flight) ", h1-h0, t1.Sub(t0).Round(time.Millisecond), o.batch)
	return float64(h1-h0) / t1.Sub(t0).Seconds(), nil
}

// asynqSimple is asynq's own BenchmarkEndToEndSimple: enqueue
// o.asynqCount tasks, then start a server and time it until all of them
// have been handled.
func asynqSimple(ctx context.Context, o options) (float64, error) {
	opt, err := asynqRedis(ctx, o)
	if err != nil {
		return 0, err
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	// Enqueue from a few goroutines to save setup time; it is not timed.
	var wg sync.WaitGroup
	var firstErr error
	var mu sync.Mutex
	const enqueuers = 8
	for g := range enqueuers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < o.asynqCount; i += enqueuers {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask(asynqTaskType, asynqPayload)); err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("enqueue: %w", firstErr)
	}

	var handled atomic.Int64
	want := int64(o.asynqCount)
	start := time.Now()
	srv, err := newAsynqServer(opt, o, &handled)
	if err != nil {
		return 0, err
	}
	defer srv.Shutdown()
	deadline := start.Add(max(2*time.Minute, 10*o.duration))
	for handled.Load() < want {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d tasks handled by the deadline", handled.Load(), want)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		time.Sleep(200 * time.Microsecond)
	}
	return float64(want) / time.Since(start).Seconds(), nil
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}
