package microbench

import (
	"context"
	"fmt"
	"regexp"
)

// Units of Benchmark.Unit.
const (
	UnitOps  = "ops/s" // operations (tasks, calls, gets, batches…) per second
	UnitGBps = "GB/s"  // 10⁹ bytes per second
)

// rayHardware is the machine of Ray's published microbenchmark figures.
const rayHardware = "m5.16xlarge (64 vCPU)"

// Benchmark is one row of the suite: a workload of Ray's ray_perf.py, the
// figure Ray published for it, and raygo's target from TARGETS.md.
type Benchmark struct {
	// Name is Ray's name for the workload, in snake case.
	Name string
	// Unit is UnitOps or UnitGBps.
	Unit string
	// RayFigure is Ray's published figure in Unit; 0 when Ray has none.
	RayFigure float64
	// RayHardware is the machine RayFigure was measured on.
	RayHardware string
	// Target is raygo's goal on a 2-core machine, as TARGETS.md words it.
	Target string
	// With names the benchmark this one is a baseline for: it is selected
	// whenever that one is, so the two are measured in the same run.
	With string
	// Run sets the workload up, measures it for cfg.Duration after a
	// warm-up, tears it down and returns its rate in Unit. It needs an
	// initialized ray (ray.Init). Nil means raygo lacks the feature: the
	// row is reported as not built.
	Run func(ctx context.Context, cfg Config) (float64, error)
}

// Built reports whether raygo has what the benchmark needs.
func (b Benchmark) Built() bool { return b.Run != nil }

// All returns the suite in the order it runs, which is TARGETS.md's
// order. The caller may modify the returned slice.
func All() []Benchmark {
	suite := []Benchmark{
		{Name: "single_client_tasks_sync", Unit: UnitOps, RayFigure: 981, Target: "≥ 15,000 (p50 ≤ 70 µs)", Run: tasksSync},
		{Name: "single_client_tasks_async", Unit: UnitOps, RayFigure: 8041, Target: "≥ 100,000", Run: tasksAsync},
		{Name: "single_client_tasks_and_get_batch", Unit: UnitOps, RayFigure: 5.8, Target: "≥ 50", Run: tasksAndGetBatch},
		{Name: "multi_client_tasks_async", Unit: UnitOps, RayFigure: 21230, Target: "≥ 100,000", Run: multiClientTasksAsync},
		{Name: "1_1_actor_calls_sync", Unit: UnitOps, RayFigure: 2012, Target: "≥ 20,000", Run: actorCallsSync},
		{Name: "1_1_actor_calls_async", Unit: UnitOps, RayFigure: 8664, Target: "≥ 200,000", Run: actorCallsAsync},
		{Name: "1_1_actor_calls_concurrent", Unit: UnitOps, RayFigure: 5775, Target: "≥ 150,000", Run: actorCallsConcurrent},
		{Name: "1_n_actor_calls_async", Unit: UnitOps, RayFigure: 8038, Target: "≥ 150,000", Run: oneToNActorCallsAsync},
		{Name: "n_n_actor_calls_async", Unit: UnitOps, RayFigure: 27376, Target: "≥ 200,000", Run: nToNActorCallsAsync},
		{Name: "n_n_actor_calls_with_arg_async", Unit: UnitOps, RayFigure: 2759, Target: "≥ 50,000", Run: nToNActorCallsWithArgAsync},
		{Name: "single_client_get_calls", Unit: UnitOps, RayFigure: 10620, Target: "≥ 200,000", Run: getCalls},
		{Name: "single_client_put_calls", Unit: UnitOps, RayFigure: 5173, Target: "≥ 100,000", Run: putCalls},
		{Name: "multi_client_put_calls", Unit: UnitOps, RayFigure: 16526, Target: "≥ 150,000", Run: multiClientPutCalls},
		{Name: "single_client_put_gigabytes", Unit: UnitGBps, RayFigure: 19.9, Target: "≥ 0.7 × memcpy", Run: putGigabytes},
		{Name: "memcpy_gigabytes", Unit: UnitGBps, Target: "baseline", With: "single_client_put_gigabytes", Run: memcpyGigabytes},
		{Name: "multi_client_put_gigabytes", Unit: UnitGBps, Target: "—", Run: multiClientPutGigabytes},
		{Name: "single_client_put_calls_store", Unit: UnitOps, Target: "—", Run: putCallsStore},
		{Name: "single_client_get_calls_store", Unit: UnitOps, Target: "—", Run: getCallsStore},
		{Name: "get_buffer_1mib", Unit: UnitOps, Target: "= get_buffer_1gib", Run: getBuffer1MiB},
		{Name: "get_buffer_1gib", Unit: UnitOps, Target: "= get_buffer_1mib", With: "get_buffer_1mib", Run: getBuffer1GiB},
		{Name: "single_client_get_object_containing_10k_refs", Unit: UnitOps, RayFigure: 13.4, Target: "≥ 100", Run: getObjectContaining10kRefs},
		{Name: "single_client_wait_1k_refs", Unit: UnitOps, RayFigure: 5.1, Target: "≥ 100", Run: wait1kRefs},
		{Name: "placement_group_create/removal", Unit: UnitOps, RayFigure: 765, Target: "≥ 10,000", Run: placementGroupCreateRemoval},
	}
	// Every figure above is from Ray's release logs on one machine kind.
	for i := range suite {
		if suite[i].RayFigure > 0 {
			suite[i].RayHardware = rayHardware
		}
	}
	return suite
}

// Select returns the benchmarks of suite whose names filter matches (all
// of them for a nil filter), in suite order, plus those whose With names a
// selected one. It fails with ErrNoMatch when nothing matches.
func Select(suite []Benchmark, filter *regexp.Regexp) ([]Benchmark, error) {
	picked := map[string]bool{}
	for _, b := range suite {
		if filter == nil || filter.MatchString(b.Name) {
			picked[b.Name] = true
		}
	}
	if len(picked) == 0 {
		expr := ""
		if filter != nil {
			expr = filter.String()
		}
		return nil, fmt.Errorf("%w %q", ErrNoMatch, expr)
	}
	var out []Benchmark
	for _, b := range suite {
		if picked[b.Name] || (b.With != "" && picked[b.With]) {
			out = append(out, b)
		}
	}
	return out, nil
}
