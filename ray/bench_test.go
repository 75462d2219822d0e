//go:build !windows

package ray_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

var (
	Noop = ray.Func0(func(ctx context.Context) ([]byte, error) { return []byte("ok"), nil }, ray.RegisterName("bench.Noop"))

	BenchActor = ray.Actor0(func(ctx context.Context) (*struct{}, error) { return &struct{}{}, nil }, ray.RegisterName("bench.Actor"))
	BenchCall  = ray.Method0(BenchActor, func(_ *struct{}, ctx context.Context) ([]byte, error) { return []byte("ok"), nil }, ray.RegisterName("Call"))
)

func benchInit(b *testing.B) context.Context {
	ctx := context.Background()
	if err := ray.Init(ctx, ray.LogWorkers(false)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := ray.Shutdown(); err != nil {
			b.Error(err)
		}
	})
	// Warm up: start the workers.
	refs := make([]ray.ObjectRef[[]byte], 1000)
	for i := range refs {
		refs[i] = Noop.Remote(ctx)
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		b.Fatal(err)
	}
	return ctx
}

// BenchmarkTasksAsync is single_client_tasks_async: submit many trivial
// tasks, then wait for all of them.
func BenchmarkTasksAsync(b *testing.B) {
	ctx := benchInit(b)
	b.ResetTimer()
	const batch = 1000
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		refs := make([]ray.ObjectRef[[]byte], n)
		for i := range refs {
			refs[i] = Noop.Remote(ctx)
		}
		if _, err := ray.Get(ctx, refs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkTasksSync is single_client_tasks_sync: one task at a time.
func BenchmarkTasksSync(b *testing.B) {
	ctx := benchInit(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := Noop.Remote(ctx).Get(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
}

// BenchmarkActorCallsAsync is 1_1_actor_calls_async.
func BenchmarkActorCallsAsync(b *testing.B) {
	ctx := benchInit(b)
	a := BenchActor.Remote(ctx)
	if err := a.Err(); err != nil {
		b.Fatal(err)
	}
	if _, err := BenchCall.Remote(ctx, a).Get(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	const batch = 1000
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		refs := make([]ray.ObjectRef[[]byte], n)
		for i := range refs {
			refs[i] = BenchCall.Remote(ctx, a)
		}
		if _, err := ray.Get(ctx, refs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkActorCallsSync is 1_1_actor_calls_sync.
func BenchmarkActorCallsSync(b *testing.B) {
	ctx := benchInit(b)
	a := BenchActor.Remote(ctx)
	if err := a.Err(); err != nil {
		b.Fatal(err)
	}
	if _, err := BenchCall.Remote(ctx, a).Get(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := BenchCall.Remote(ctx, a).Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkInit measures a cold Init of the embedded cluster until it
// can run a task, and its Shutdown.
func BenchmarkInit(b *testing.B) {
	ctx := context.Background()
	var initTotal, firstTask time.Duration
	for range b.N {
		t0 := time.Now()
		if err := ray.Init(ctx, ray.LogWorkers(false)); err != nil {
			b.Fatal(err)
		}
		initTotal += time.Since(t0)
		if _, err := Noop.Remote(ctx).Get(ctx); err != nil {
			b.Fatal(err)
		}
		firstTask += time.Since(t0)
		ray.Shutdown()
	}
	b.ReportMetric(float64(initTotal.Milliseconds())/float64(b.N), "init-ms")
	b.ReportMetric(float64(firstTask.Milliseconds())/float64(b.N), "first-task-ms")
}

// BenchmarkWait1kRefs is single_client_wait_1k_refs: submit 1000 tasks,
// then Wait for one ready ref at a time on those not yet returned.
func BenchmarkWait1kRefs(b *testing.B) {
	ctx := benchInit(b)
	b.ResetTimer()
	for range b.N {
		notReady := make([]ray.ObjectRef[[]byte], 1000)
		for i := range notReady {
			notReady[i] = Noop.Remote(ctx)
		}
		for len(notReady) > 0 {
			var err error
			if _, notReady, err = ray.Wait(ctx, notReady, 1, -1); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rounds/s")
}

// BenchmarkGetLocal is single_client_get_calls: Get of a small object
// this process put (its memory store holds it).
func BenchmarkGetLocal(b *testing.B) {
	ctx := benchInit(b)
	ref, err := ray.Put(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := ref.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
