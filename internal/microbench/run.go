package microbench

import (
	"context"
	"fmt"
	"math"
)

// Result is the outcome of one benchmark.
type Result struct {
	Benchmark
	// Value is the measured rate in Unit, valid when Err is nil.
	Value float64
	// Err is why there is no value: ErrNotBuilt for a benchmark raygo
	// lacks the feature for, else the failure.
	Err error
}

// NotBuilt reports whether the result is a not-built row.
func (r Result) NotBuilt() bool { return r.Err == ErrNotBuilt }

// Failed reports whether the benchmark ran and failed.
func (r Result) Failed() bool { return r.Err != nil && !r.NotBuilt() }

// Progress is told when each benchmark of a Run starts and ends; i counts
// from 1 to n. Its methods are called from Run's goroutine.
type Progress interface {
	Start(i, n int, name string)
	Done(i, n int, r Result)
}

// Run runs benches in order with ray already initialized and returns
// their results in the same order. A failed benchmark does not stop the
// others; the end of ctx does: the benchmark then running fails with ctx's
// error and the ones after it are left out of the results. Each benchmark
// is bounded by a timeout of a few times cfg.Duration plus a minute, so a
// wedged cluster cannot hang the run. progress may be nil.
func Run(ctx context.Context, cfg Config, benches []Benchmark, progress Progress) []Result {
	out := make([]Result, 0, len(benches))
	for i, b := range benches {
		if ctx.Err() != nil {
			break
		}
		if progress != nil {
			progress.Start(i+1, len(benches), b.Name)
		}
		r := Result{Benchmark: b}
		if b.Built() {
			r.Value, r.Err = runOne(ctx, cfg, b)
		} else {
			r.Err = ErrNotBuilt
		}
		out = append(out, r)
		if progress != nil {
			progress.Done(i+1, len(benches), r)
		}
	}
	return out
}

// runOne runs one benchmark under its timeout, turning a panic into an
// error so that one broken benchmark cannot take the run's table with it.
func runOne(ctx context.Context, cfg Config, b Benchmark) (v float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout())
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			v, err = 0, fmt.Errorf("microbench: %s panicked: %v", b.Name, p)
		}
	}()
	v, err = b.Run(ctx, cfg)
	if err == nil && (!(v > 0) || math.IsInf(v, 1)) {
		err = fmt.Errorf("microbench: %s measured %v %s", b.Name, v, b.Unit)
	}
	return v, err
}
