// Package microbench is raygo's counterpart of Ray's microbenchmark suite
// (python/ray/_private/ray_perf.py, run by `ray microbenchmark`): the same
// workloads under the same names, measured on raygo and set beside the
// figures Ray published and the targets in TARGETS.md. `raygo
// microbenchmark` runs it.
//
// Each Benchmark sets its workload up (actors, objects), runs it for a
// warm-up, measures it for Config.Duration, and tears it down. Trivial
// tasks and methods return []byte("ok"), as Ray's return b"ok". Async
// benchmarks submit batches of 1000 calls and then get them all;
// multi-client ones run Config.Clients client actors (or tasks) that
// submit from inside the cluster. Where raygo's workload differs from
// Ray's, the benchmark's comment says how.
//
// Envelope is the other suite: the single-node scalability envelope of
// Ray's release/benchmarks (a million queued tasks, ten thousand actors,
// arguments, returns and refs, the largest object), each row run once by
// RunEnvelope and reported with its wall time and the peak memory of the
// driver and of the worker processes (`raygo microbenchmark --envelope`).
//
// The package registers its remote functions and actor types (named
// "microbench.…") at initialization, so a binary that imports it is a
// worker binary for them: its main must call ray.Init first when
// ray.IsWorker reports true, as cmd/raygo does.
//
// A driver selects, runs and reports:
//
//	if err := ray.Init(ctx, ray.LogWorkers(false)); err != nil {
//		return err
//	}
//	defer ray.Shutdown()
//	benches, err := microbench.Select(microbench.All(), regexp.MustCompile("tasks"))
//	if err != nil {
//		return err // microbench.ErrNoMatch
//	}
//	results := microbench.Run(ctx, microbench.NewConfig(), benches, nil)
//	fmt.Print(microbench.FormatTable(results))
package microbench
