// Command peers measures raygo's Go peers on this machine, one after
// another in one run, so that their figures can be set beside raygo's
// microbenchmarks (see ../compare and ../../run.sh):
//
//	grpc_unary_roundtrip        call    grpc-go unary call to a second process over TCP loopback
//	grpc_stream_roundtrip       call    one message and its reply on a bidirectional grpc-go stream
//	goroutine_pool              call    GOMAXPROCS goroutines answering jobs on per-job channels (in-process limit)
//	protoactor_remote_request   call    protoactor-go RequestFuture to an actor in a second process
//	protoactor_remote_send      oneway  protoactor-go fire-and-forget Send to an actor in a second process
//	asynq_end_to_end            oneway  asynq tasks enqueued and handled, at most 1000 in flight (local Redis)
//	asynq_process_simple        oneway  asynq's own "EndToEndSimple": drain a pre-enqueued backlog (local Redis)
//
// A "call" is a request and its reply; a "oneway" figure counts messages
// (or queued tasks) delivered one way, with no reply per message. Compare
// like with like.
//
// Each benchmark runs for --duration after a warm-up and stops on its own;
// the second processes are children of this one (the same binary,
// re-executed as "peers serve-grpc" or "peers serve-protoactor"), end when
// their stdin closes or this process dies, and are killed by pid at the
// end. A benchmark that cannot run (no Redis, say) is reported as failed,
// says why, and the others still run; the exit status is then 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/raygo/raygo/bench/internal/table"
)

// Kinds of figures.
const (
	kindCall   = "call"   // a request and its reply
	kindOneway = "oneway" // a message (or task) delivered one way
)

// options are the flags shared by the benchmarks.
type options struct {
	duration  time.Duration
	batch     int
	redisAddr string
	// asynq
	asynqConcurrency int
	asynqEnqueuers   int
	asynqCount       int
	// protoactor
	sendRound int
}

// peer is one benchmark.
type peer struct {
	name string
	kind string
	unit string
	what string
	run  func(ctx context.Context, o options) (float64, error)
}

// result is one benchmark's outcome.
type result struct {
	peer
	value float64
	err   error
}

// jsonRow is one element of --json: raygo microbenchmark's schema plus kind.
type jsonRow struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Kind  string  `json:"kind"`
}

func peers() []peer {
	return []peer{
		{"grpc_unary_roundtrip", kindCall, "ops/s", "grpc-go unary call, one at a time, to a second process over TCP 127.0.0.1 (default settings, proto BytesValue \"ok\")", grpcUnary},
		{"grpc_stream_roundtrip", kindCall, "ops/s", "one message and its reply at a time on a bidirectional grpc-go stream, second process, TCP 127.0.0.1", grpcStream},
		{"goroutine_pool", kindCall, "ops/s", "GOMAXPROCS worker goroutines; jobs on a channel, replies on per-job channels; batches of 1000 (in-process limit)", goroutinePool},
		{"protoactor_remote_request", kindCall, "ops/s", "protoactor-go RequestFuture + Respond to an actor in a second process over 127.0.0.1; batches of 1000 futures", protoactorRequest},
		{"protoactor_remote_send", kindOneway, "msg/s", "protoactor-go fire-and-forget Send to an actor in a second process over 127.0.0.1; counted on arrival", protoactorSend},
		{"asynq_end_to_end", kindOneway, "tasks/s", "asynq: 4 goroutines enqueue, a server (concurrency 10) runs the handler; ≤ 1000 tasks in flight; handled/s (local Redis; a queue: no reply per task)", asynqEndToEnd},
		{"asynq_process_simple", kindOneway, "tasks/s", "asynq's own BenchmarkEndToEndSimple: server drains a pre-enqueued backlog (local Redis)", asynqSimple},
	}
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve-grpc":
			exitOn(serveGRPC())
			return
		case "serve-protoactor":
			exitOn(serveProtoactor())
			return
		case "freeport":
			exitOn(freePort())
			return
		}
	}
	os.Exit(mainBench(os.Args[1:]))
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// freePort prints a TCP port free on 127.0.0.1 now, for run.sh.
func freePort() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println(l.Addr().(*net.TCPAddr).Port)
	return nil
}

func mainBench(args []string) int {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	var o options
	var jsonPath, filter string
	var list bool
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "how long to measure each benchmark, after a warm-up of a fifth of it (at most 1s)")
	fs.StringVar(&jsonPath, "json", "", `also write the results to this file as a JSON array of {"name","value","unit","kind"}`)
	fs.StringVar(&filter, "filter", "", "run only the benchmarks whose names match this Go regular expression")
	fs.BoolVar(&list, "list", false, "list the benchmarks and exit")
	fs.IntVar(&o.batch, "batch", 1000, "calls per async batch (goroutine_pool, protoactor_remote_request); tasks in flight (asynq_end_to_end)")
	fs.StringVar(&o.redisAddr, "redis", os.Getenv("REDIS_ADDR"), "host:port of a Redis for the asynq benchmarks (default $REDIS_ADDR); its database 0 is flushed")
	fs.IntVar(&o.asynqConcurrency, "asynq-concurrency", 10, "asynq server concurrency (asynq's own benchmark uses 10)")
	fs.IntVar(&o.asynqEnqueuers, "asynq-enqueuers", 4, "goroutines enqueuing for asynq_end_to_end (Enqueue is a synchronous Redis call)")
	fs.IntVar(&o.asynqCount, "asynq-count", 20000, "tasks pre-enqueued for asynq_process_simple")
	fs.IntVar(&o.sendRound, "send-round", 100000, "messages per round of protoactor_remote_send (each round ends when the far actor has counted them all)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: peers [flags]\n\nRuns the Go peer benchmarks and prints a table.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "peers: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "peers: --duration: want more than 0 and at most 10m")
		return 2
	}
	if o.batch < 1 || o.asynqConcurrency < 1 || o.asynqEnqueuers < 1 || o.asynqCount < 1 || o.sendRound < 1 {
		fmt.Fprintln(os.Stderr, "peers: --batch, --asynq-*, --send-round: want at least 1")
		return 2
	}
	var re *regexp.Regexp
	if filter != "" {
		var err error
		if re, err = regexp.Compile(filter); err != nil {
			fmt.Fprintf(os.Stderr, "peers: bad --filter: %v\n", err)
			return 2
		}
	}
	var selected []peer
	for _, p := range peers() {
		if re == nil || re.MatchString(p.name) {
			selected = append(selected, p)
		}
	}
	if list {
		for _, p := range selected {
			fmt.Printf("%-26s %-6s %s\n", p.name, p.kind, p.what)
		}
		return 0
	}
	if len(selected) == 0 {
		fmt.Fprintf(os.Stderr, "peers: --filter %q matches no benchmark (see --list)\n", filter)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	fmt.Printf("peers: %d benchmarks, %s each after a warm-up; %d CPUs, GOMAXPROCS %d, %s %s/%s\n\n",
		len(selected), o.duration, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	var results []result
	for i, p := range selected {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(os.Stderr, "[%d/%d] %s ... ", i+1, len(selected), p.name)
		start := time.Now()
		v, err := p.run(ctx, o)
		if err != nil {
			fmt.Fprintf(os.Stderr, "failed after %s: %v\n", time.Since(start).Round(time.Millisecond), err)
		} else {
			fmt.Fprintf(os.Stderr, "%s %s (%s)\n", formatValue(v), p.unit, time.Since(start).Round(time.Millisecond))
		}
		results = append(results, result{peer: p, value: v, err: err})
	}
	fmt.Print(formatTable(results))

	rc := 0
	if jsonPath != "" {
		rows := []jsonRow{}
		for _, r := range results {
			if r.err == nil {
				rows = append(rows, jsonRow{Name: r.name, Value: r.value, Unit: r.unit, Kind: r.kind})
			}
		}
		data, _ := json.MarshalIndent(rows, "", "  ")
		if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "peers: write --json:", err)
			rc = 1
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "peers: interrupted")
		return 1
	}
	for _, r := range results {
		if r.err != nil {
			rc = 1
		}
	}
	return rc
}

// formatTable renders the results, then the errors of failed ones.
func formatTable(results []result) string {
	rows := [][]string{{"PEER", "KIND", "FIGURE", "WHAT IT MEASURES"}}
	var notes []string
	for _, r := range results {
		fig := formatValue(r.value) + " " + r.unit
		if r.err != nil {
			fig = "error"
			notes = append(notes, fmt.Sprintf("%s failed: %v", r.name, r.err))
		}
		rows = append(rows, []string{r.name, r.kind, fig, r.what})
	}
	var b strings.Builder
	table.WriteColumns(&b, rows, []bool{false, false, true, false})
	b.WriteString("\ncall = a request and its reply; oneway = a message or queued task delivered one way.\n")
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	return b.String()
}

// formatValue prints a rate: thousands separators from 100 up, three
// significant digits below.
func formatValue(v float64) string {
	if v >= 99.95 {
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return fmt.Sprintf("%.3g", v)
}

// measure runs op for a warm-up of a fifth of d (at most 1s, at least one
// op), then for d (at least one op), and returns per*ops per second of the
// measured part.
func measure(ctx context.Context, d time.Duration, per float64, op func(context.Context) error) (float64, error) {
	warm := min(d/5, time.Second)
	end := time.Now().Add(warm)
	for first := true; first || time.Now().Before(end); first = false {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := op(ctx); err != nil {
			return 0, fmt.Errorf("warm-up: %w", err)
		}
	}
	start := time.Now()
	end = start.Add(d)
	n := 0
	for n == 0 || time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := op(ctx); err != nil {
			return 0, err
		}
		n++
	}
	return per * float64(n) / time.Since(start).Seconds(), nil
}
