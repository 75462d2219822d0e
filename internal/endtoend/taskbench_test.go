//go:build !windows

package endtoend

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// Tasks from several drivers across several nodes (bench/multidriver.sh):
// a head and nodes, each on a simulated host of its own, and a driver on
// each host, all submitting trivial tasks at once.
const (
	roleTDNode    = "td-node"   // a node (the head when RAYGO_ADDRESS is unset) with RAYGO_BENCH_CPUS CPUs
	roleTDDriver  = "td-driver" // submits batches of trivial tasks when told "go SECONDS"
	envBenchTasks = "RAYGO_BENCH_TASKS"
	envBenchCPUs  = "RAYGO_BENCH_CPUS"
	envBenchBatch = "RAYGO_BENCH_BATCH"
)

// TinyTask is the trivial task of the multi-driver benchmark.
var TinyTask = ray.Func0(func(context.Context) (int, error) { return 1, nil }, ray.RegisterName("e2e.TinyTask"))

func runTDNode() int {
	rc, done, err := roleNodeConfig(256 << 20)
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer done()
	rc.Resources = resources.Set{resources.CPU: float64(benchInt(envBenchCPUs, 2))}
	return serveRoleNode(rc, os.Getenv(ray.EnvAddress) == "", os.Getenv(envIP))
}

// runTDDriver warms up (a batch), says "ready", and on "go SECONDS"
// submits batches of trivial tasks and gets them until SECONDS pass, then
// says "done TASKS ELAPSED_SECONDS".
func runTDDriver() int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	batch := int(benchInt(envBenchBatch, 1000))
	refs := make([]ray.ObjectRef[int], batch)
	run := func() error {
		for i := range refs {
			refs[i] = TinyTask.Remote(ctx)
		}
		_, err := ray.Get(ctx, refs...)
		return err
	}
	for range 3 {
		if err := run(); err != nil {
			fmt.Println("warm-up:", err)
			return 1
		}
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		fmt.Println("read:", in.Err())
		return 1
	}
	f := strings.Fields(in.Text())
	seconds, err := strconv.ParseFloat(f[len(f)-1], 64)
	if len(f) != 2 || f[0] != "go" || err != nil {
		fmt.Printf("want \"go SECONDS\", got %q\n", in.Text())
		return 1
	}
	start, tasks := time.Now(), 0
	for time.Since(start).Seconds() < seconds {
		if err := run(); err != nil {
			fmt.Println("tasks:", err)
			return 1
		}
		tasks += batch
	}
	fmt.Println("done", tasks, time.Since(start).Seconds())
	return 0
}

// TestMultiDriverTaskThroughput: tasks per second from RAYGO_BENCH_DRIVERS
// drivers (default 4), one per host, across as many nodes (a head and
// nodes, RAYGO_BENCH_CPUS CPUs each, default 2), all at once for
// RAYGO_BENCH_SECONDS (default 5); the machine's CPU use alongside.
func TestMultiDriverTaskThroughput(t *testing.T) {
	if os.Getenv(envBenchTasks) == "" {
		t.Skip("a benchmark: set " + envBenchTasks + "=1 (bench/multidriver.sh)")
	}
	bed := namespaceBed(t)
	n := int(benchInt("RAYGO_BENCH_DRIVERS", 4))
	seconds := benchInt("RAYGO_BENCH_SECONDS", 5)
	hosts := make([]*testcluster.Host, n)
	for i := range hosts {
		var err error
		if hosts[i], err = bed.AddHost("h" + strconv.Itoa(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	tok := ray.EnvToken + "=e2e-task-bench"
	cpus := envBenchCPUs + "=" + strconv.FormatInt(benchInt(envBenchCPUs, 2), 10)
	gcs := startRole(t, hosts[0], roleTDNode, tok, cpus)
	for _, h := range hosts[1:] {
		startRole(t, h, roleTDNode, tok, cpus, ray.EnvAddress+"="+gcs)
	}
	drivers := make([]*driverProc, n)
	for i, h := range hosts {
		drivers[i] = startDriverRole(t, h, roleTDDriver, tok, ray.EnvAddress+"="+gcs,
			envBenchBatch+"="+strconv.FormatInt(benchInt(envBenchBatch, 1000), 10))
	}
	for _, d := range drivers {
		d.Next("ready")
	}
	before := readCPU(t)
	for _, d := range drivers {
		d.Send("go " + strconv.FormatInt(seconds, 10))
	}
	total, longest := 0, 0.0
	var each []string
	for _, d := range drivers {
		f := d.Next("done")
		if len(f) != 2 {
			t.Fatalf("driver said done %v", f)
		}
		tasks, _ := strconv.Atoi(f[0])
		secs, _ := strconv.ParseFloat(f[1], 64)
		total += tasks
		longest = max(longest, secs)
		each = append(each, fmt.Sprintf("%.0f/s", float64(tasks)/secs))
	}
	busy := readCPU(t).busySince(before)
	rate := float64(total) / longest
	t.Logf("%d drivers on %d nodes (%s each): %.0f tasks/s in all (target >= 200,000); each driver %s; machine CPU busy %.0f%%",
		n, n, cpus, rate, strings.Join(each, " "), 100*busy)
	fmt.Printf("RESULT drivers=%d nodes=%d tasks_per_s=%.0f cpu_busy=%.2f\n", n, n, rate, busy)
}
