package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/raygo/raygo/internal/microbench"
	"github.com/raygo/raygo/ray"
)

// microbenchOptions holds the flags of `raygo microbenchmark`.
type microbenchOptions struct {
	filter   string
	duration time.Duration
	jsonPath string
	address  string
	clients  int

	envelope bool    // run the scalability envelope instead
	scale    float64 // --envelope-scale
	scaleSet bool    // --envelope-scale was given

	cpuProfile string // hidden: write a CPU profile of the run here
	memProfile string // hidden: write an allocation profile of the run here
}

// microbenchPlan is what the flags ask for, checked: benchmarks, or
// envelope rows with --envelope.
type microbenchPlan struct {
	benches []microbench.Benchmark
	cfg     microbench.Config

	rows []microbench.EnvelopeRow
	ecfg microbench.EnvelopeConfig
}

// plan checks the flags and selects the benchmarks to run. Every error is
// a usage error. It is pure, for tests.
func (o *microbenchOptions) plan(suite []microbench.Benchmark) (microbenchPlan, error) {
	var filter *regexp.Regexp
	if o.filter != "" {
		var err error
		if filter, err = regexp.Compile(o.filter); err != nil {
			return microbenchPlan{}, usageErrorf("bad --filter: %v", err)
		}
	}
	if o.envelope {
		return o.envelopePlan(filter)
	}
	if o.scaleSet {
		return microbenchPlan{}, usageErrorf("--envelope-scale needs --envelope")
	}
	if o.duration <= 0 || o.duration > microbench.MaxDuration {
		return microbenchPlan{}, usageErrorf("--duration %s: want more than 0 and at most %s", o.duration, microbench.MaxDuration)
	}
	if o.clients < 1 || o.clients > microbench.MaxClients {
		return microbenchPlan{}, usageErrorf("--clients %d: want 1 to %d", o.clients, microbench.MaxClients)
	}
	cfg := microbench.Config{Duration: o.duration, Clients: o.clients}
	if err := cfg.Validate(); err != nil { // a limit added to Config but not here
		return microbenchPlan{}, &usageError{err}
	}
	benches, err := microbench.Select(suite, filter)
	if errors.Is(err, microbench.ErrNoMatch) {
		return microbenchPlan{}, usageErrorf("--filter %q matches no benchmark (see 'raygo microbenchmark --list')", o.filter)
	}
	if err != nil {
		return microbenchPlan{}, &usageError{err}
	}
	return microbenchPlan{benches: benches, cfg: cfg}, nil
}

// envelopeStoreBytes is the object store of the envelope's embedded node.
const envelopeStoreBytes = 2 << 30

// envelopePlan is plan for --envelope.
func (o *microbenchOptions) envelopePlan(filter *regexp.Regexp) (microbenchPlan, error) {
	ecfg := microbench.EnvelopeConfig{Scale: o.scale}
	if err := ecfg.Validate(); err != nil {
		return microbenchPlan{}, usageErrorf("--envelope-scale %v: want more than %v and at most %v", o.scale, microbench.MinEnvelopeScale, microbench.MaxEnvelopeScale)
	}
	rows, err := microbench.SelectEnvelope(microbench.Envelope(), filter)
	if errors.Is(err, microbench.ErrNoMatch) {
		return microbenchPlan{}, usageErrorf("--filter %q matches no envelope row (see 'raygo microbenchmark --envelope --list')", o.filter)
	}
	if err != nil {
		return microbenchPlan{}, &usageError{err}
	}
	return microbenchPlan{rows: rows, ecfg: ecfg}, nil
}

// newMicrobenchmarkCmd builds `raygo microbenchmark`.
func newMicrobenchmarkCmd() *cobra.Command {
	def := microbench.NewConfig()
	o := &microbenchOptions{duration: def.Duration, clients: def.Clients, scale: microbench.NewEnvelopeConfig().Scale}
	var list bool
	cmd := &cobra.Command{
		Use:   "microbenchmark",
		Short: "Run Ray's microbenchmarks on raygo and compare with Ray's figures",
		Long: `Run raygo's counterpart of Ray's microbenchmark suite (ray_perf.py): trivial
tasks, actor calls, puts, gets and waits, under Ray's names. Each benchmark
runs for --duration after a short warm-up. The table on stdout sets each
figure beside Ray's published one (64-vCPU m5.16xlarge) and raygo's target
from TARGETS.md; progress goes to stderr.

With --envelope it runs instead the single-node scalability envelope of Ray's
release/benchmarks, each row once: 1,000,000 queued tasks, 10,000 actors
created and called once (fewer where memory runs short: raygo runs a process
per actor), one task with 10,000 object arguments, one with 3,000 returns, a
Get of 10,000 refs, and the largest object. Each row reports its wall time and
the peak memory of the driver and of the worker processes, judged against
TARGETS.md; --envelope-scale shrinks every count for a quick run.

Without --address (and without RAYGO_ADDRESS) it starts an embedded cluster
on this machine and stops it at the end; with one it joins that cluster as a
job, and the raygo binary serves as the job's worker binary.`,
		Example: `  raygo microbenchmark
  raygo microbenchmark --filter 'actor_calls' --duration 5s
  raygo microbenchmark --json results.json --address auto
  raygo microbenchmark --envelope
  raygo microbenchmark --envelope --envelope-scale 0.01 --filter 'tasks|args'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.scaleSet = cmd.Flags().Changed("envelope-scale")
			if list && o.envelope {
				for _, r := range microbench.Envelope() {
					fmt.Fprintln(cmd.OutOrStdout(), r.Name)
				}
				return nil
			}
			if list {
				for _, b := range microbench.All() {
					fmt.Fprintln(cmd.OutOrStdout(), b.Name)
				}
				return nil
			}
			return runMicrobenchmark(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.filter, "filter", "", "run only the benchmarks whose names match this Go regular expression")
	fs.DurationVar(&o.duration, "duration", o.duration, fmt.Sprintf("how long to measure each benchmark (at most %s)", microbench.MaxDuration))
	fs.StringVar(&o.jsonPath, "json", "", `also write the results to this file as a JSON array of {"name","value","unit"}`)
	fs.StringVar(&o.address, "address", "", `cluster to run on: host:port of its head, or "auto" (default $RAYGO_ADDRESS, else an embedded cluster)`)
	fs.IntVar(&o.clients, "clients", o.clients, "client and server actors of the multi-client and n:n benchmarks")
	fs.BoolVar(&list, "list", false, "list the benchmarks' names (with --envelope, the rows') and exit")
	fs.BoolVar(&o.envelope, "envelope", false, "run Ray's single-node scalability envelope instead of the microbenchmarks (--filter selects its rows)")
	fs.Float64Var(&o.scale, "envelope-scale", o.scale, "with --envelope, multiply every count by this (more than 0, at most 1) for a quick run")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run (this process) to this file")
	_ = fs.MarkHidden("cpuprofile")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile of the run (this process) to this file")
	_ = fs.MarkHidden("memprofile")
	return cmd
}

// runMicrobenchmark checks the options, connects, runs and reports.
func runMicrobenchmark(ctx context.Context, o *microbenchOptions, stdout, stderr io.Writer) (err error) {
	p, err := o.plan(microbench.All())
	if err != nil {
		return err
	}
	if o.jsonPath != "" {
		// Fail before a long run, not after it.
		if st, err := os.Stat(filepath.Dir(o.jsonPath)); err != nil || !st.IsDir() {
			return fmt.Errorf("cannot write --json %s: its directory does not exist", o.jsonPath)
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return fmt.Errorf("--memprofile: %w", err)
		}
		defer f.Close()
		runtime.MemProfileRate = 4096
		defer func() {
			if perr := pprof.Lookup("allocs").WriteTo(f, 0); perr != nil && err == nil {
				err = fmt.Errorf("--memprofile: %w", perr)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	where := "embedded cluster"
	if p.rows != nil || built(p.benches) {
		opts := []ray.InitOption{ray.LogWorkers(false)}
		if p.rows != nil {
			// The envelope's node has a 2 GiB store, so largest_object
			// (4 GiB) shows an object larger than the store.
			opts = append(opts, ray.ObjectStoreMemory(envelopeStoreBytes))
		}
		verb := "start an"
		addr := o.address
		if addr == "" {
			addr = os.Getenv(envAddress)
		}
		if addr != "" {
			opts = append(opts, ray.Address(addr))
			where, verb = "cluster at "+addr, "join the"
		}
		if err := ray.Init(ctx, opts...); err != nil {
			return fmt.Errorf("%s %s: %w", verb, where, err)
		}
		defer func() {
			if serr := ray.Shutdown(); serr != nil && err == nil {
				err = serr
			}
		}()
	}
	if p.rows != nil {
		return runEnvelope(ctx, o, p, where, stdout, stderr)
	}

	fmt.Fprintf(stdout, "raygo microbenchmark: %d benchmarks, %s each after a warm-up, %d clients; %s; driver on %d CPUs, %s %s/%s\n\n",
		len(p.benches), p.cfg.Duration, p.cfg.Clients, where, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	results := microbench.Run(ctx, p.cfg, p.benches, newProgressLine(stderr))
	fmt.Fprint(stdout, microbench.FormatTable(results))

	failed := 0
	for _, r := range results {
		if r.Failed() {
			failed++
		}
	}
	return finishRun(ctx, o.jsonPath, func() ([]byte, error) { return microbench.JSON(results) }, failed, len(results), "benchmarks")
}

// finishRun writes the --json file, then reports an interruption or the
// number of failed rows (what) as the command's error.
func finishRun(ctx context.Context, jsonPath string, encode func() ([]byte, error), failed, total int, what string) error {
	if jsonPath != "" {
		data, err := encode()
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonPath, data, 0o644); err != nil {
			return fmt.Errorf("write --json: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d %s failed (see the notes under the table)", failed, total, what)
	}
	return nil
}

// runEnvelope runs and reports the envelope rows of p, with ray
// initialized on the cluster where names.
func runEnvelope(ctx context.Context, o *microbenchOptions, p microbenchPlan, where string, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "raygo microbenchmark --envelope: %d rows at scale %v; %s; driver on %d CPUs, %s %s/%s\n\n",
		len(p.rows), p.ecfg.Scale, where, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	results := microbench.RunEnvelope(ctx, p.ecfg, p.rows, envelopeProgress{newProgressLine(stderr)})
	fmt.Fprint(stdout, microbench.FormatEnvelopeTable(results))
	if where != "embedded cluster" {
		fmt.Fprintln(stdout, "Joined a cluster: its workers are not this process's children, so the workers peak does not count them.")
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	return finishRun(ctx, o.jsonPath, func() ([]byte, error) { return microbench.EnvelopeJSON(results) }, failed, len(results), "envelope rows")
}

// envelopeProgress shows envelope rows on a progressLine.
type envelopeProgress struct{ p *progressLine }

// Start implements microbench.EnvelopeProgress.
func (e envelopeProgress) Start(i, n int, name string) { e.p.Start(i, n, name) }

// Done implements microbench.EnvelopeProgress.
func (e envelopeProgress) Done(i, n int, r microbench.EnvelopeResult) {
	if e.p.tty {
		if i == n {
			fmt.Fprint(e.p.w, "\r\033[K")
		}
		return
	}
	if r.Err != nil {
		fmt.Fprintf(e.p.w, "failed after %s: %v\n", time.Since(e.p.start).Round(time.Millisecond), r.Err)
		return
	}
	fmt.Fprintf(e.p.w, "%s (%s in all)\n", microbench.FormatDuration(r.Time), time.Since(e.p.start).Round(time.Millisecond))
}

// built reports whether any of benches needs a cluster to run.
func built(benches []microbench.Benchmark) bool {
	for _, b := range benches {
		if b.Built() {
			return true
		}
	}
	return false
}

// progressLine shows which benchmark runs: one line updated in place on a
// terminal, a line per benchmark (finished with its figure) otherwise.
type progressLine struct {
	w     io.Writer
	tty   bool
	start time.Time
}

func newProgressLine(w io.Writer) *progressLine {
	return &progressLine{w: w, tty: isTerminal(w)}
}

// Start implements microbench.Progress.
func (p *progressLine) Start(i, n int, name string) {
	p.start = time.Now()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K[%d/%d] %s ...", i, n, name)
		return
	}
	fmt.Fprintf(p.w, "[%d/%d] %s ... ", i, n, name)
}

// Done implements microbench.Progress.
func (p *progressLine) Done(i, n int, r microbench.Result) {
	if p.tty {
		if i == n {
			fmt.Fprint(p.w, "\r\033[K")
		}
		return
	}
	fmt.Fprintln(p.w, progressOutcome(r, time.Since(p.start)))
}

// progressOutcome says how one benchmark ended, for the progress line.
func progressOutcome(r microbench.Result, took time.Duration) string {
	switch {
	case r.NotBuilt():
		return "not built"
	case r.Err != nil:
		return fmt.Sprintf("failed after %s: %v", took.Round(time.Millisecond), r.Err)
	}
	return fmt.Sprintf("%s %s (%s)", microbench.FormatValue(r.Value), r.Unit, took.Round(time.Millisecond))
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
