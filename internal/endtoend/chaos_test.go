//go:build !windows

package endtoend

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/testcluster"
	"github.com/raygo/raygo/ray"
)

// The chaos run (bench/chaos.sh; RAYGO_CHAOS=1): a head keeping its state
// in storage and four nodes, each on a simulated host, and a driver on a
// host of its own (with its node, which is not killed: a driver does not
// outlive its node) running a mixed workload while a killer kills or
// partitions a random node every few seconds and starts it again, and
// kills the head once and starts it again on the same address and
// storage. At the end every result is checked and every resource must be
// free again within 10 s.
const (
	envChaos         = "RAYGO_CHAOS"
	envChaosSeconds  = "RAYGO_CHAOS_SECONDS"
	roleChaosDriver  = "chaos-driver"
	chaosObjectBytes = 2 << 20
)

type chaosCounter struct{ n int }

var (
	ChaosCounter = ray.Actor0(func(context.Context) (*chaosCounter, error) { return &chaosCounter{}, nil },
		ray.RegisterName("e2e.ChaosCounter"))
	ChaosInc = ray.Method0(ChaosCounter, func(c *chaosCounter, _ context.Context) (int, error) {
		c.n++
		return c.n, nil
	}, ray.RegisterName("Inc"))
	// ChaosSum adds up b's bytes (a task in the placement group).
	ChaosSum = ray.Func1(func(_ context.Context, b []byte) (int, error) {
		s := 0
		for _, c := range b {
			s += int(c)
		}
		return s, nil
	}, ray.RegisterName("e2e.ChaosSum"))
	// ChaosAttempt returns the attempt it runs as (0 first), after a
	// pause that the killer may interrupt.
	ChaosAttempt = ray.Func0(func(ctx context.Context) (int, error) {
		time.Sleep(200 * time.Millisecond)
		tc, _ := ray.CurrentTask(ctx)
		return tc.Attempt, nil
	}, ray.RegisterName("e2e.ChaosAttempt"))
)

// chaosAttemptRetries is ChaosAttempt's MaxRetries: no run of it may be
// attempt chaosAttemptRetries+1 or later.
const chaosAttemptRetries = 3

// chaosStats counts what the workload did.
type chaosStats struct {
	chains, chainsFailed, wrong   atomic.Int64
	calls, callsFailed            atomic.Int64
	groupTasks, groupFailed       atomic.Int64
	detachedCalls, detachedFailed atomic.Int64
	detachedGap                   atomic.Int64 // the longest time between two answered detached-actor calls, in ms
	attempts, overLimit, retried  atomic.Int64 // ChaosAttempt runs, those past its retries (must be 0), those retried
	start                         time.Time    // when the workload began
	mu                            sync.Mutex
	firstErrs                     []string
}

func (s *chaosStats) fail(what string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.firstErrs) < 8 {
		s.firstErrs = append(s.firstErrs, fmt.Sprintf("at %s: %s: %v", time.Since(s.start).Round(time.Second), what, err))
	}
}

// runChaosDriver runs the workload for RAYGO_CHAOS_SECONDS after "go",
// then says "stats …" and, once every resource is free again, "free MS".
func runChaosDriver() int {
	ctx := context.Background()
	if err := ray.Init(ctx); err != nil { // RAYGO_ADDRESS, RAYGO_TOKEN
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	seconds := int(benchInt(envChaosSeconds, 60))
	pg, err := ray.PlacementGroup(ctx, []ray.Bundle{{"CPU": 0.5}, {"CPU": 0.5}}, ray.PlacementSpread)
	if err != nil {
		fmt.Println("group:", err)
		return 1
	}
	if err := pg.Ready(ctx); err != nil {
		fmt.Println("group ready:", err)
		return 1
	}
	keeper := ChaosCounter.Options(ray.Name("keeper"), ray.Lifetime(ray.Detached), ray.MaxRestarts(-1), ray.MaxTaskRetries(-1), ray.NumCPUs(0)).Remote(ctx)
	if _, err := ChaosInc.Remote(ctx, keeper).Get(ctx); err != nil {
		fmt.Println("keeper:", err)
		return 1
	}
	fmt.Println("ready")
	var line string
	if _, err := fmt.Scanln(&line); err != nil || line != "go" {
		fmt.Println("want go:", line, err)
		return 1
	}
	st := &chaosStats{start: time.Now()}
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	run := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				f(i)
			}
		}()
	}
	opts := []ray.TaskOption{ray.MaxRetries(10)}
	for w := range 2 { // chains of dependent tasks with large intermediate objects
		run(func(i int) {
			seed := byte(w*31 + i)
			x := RBMake.Options(opts...).Remote(ctx, chaosObjectBytes, seed)
			y := RBFlip.Options(opts...).RemoteArgs(ctx, x)
			z := RBFlip.Options(opts...).RemoteArgs(ctx, y)
			gctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			got, err := z.Get(gctx)
			cancel()
			st.chains.Add(1)
			switch {
			case err != nil:
				st.chainsFailed.Add(1)
				st.fail("chain", err)
			case !bytes.Equal(got, rbBytes(chaosObjectBytes, seed)):
				st.wrong.Add(1)
			}
		})
	}
	run(func(int) { // an actor that restarts when its node dies
		a := ChaosCounter.Options(ray.MaxRestarts(-1), ray.MaxTaskRetries(-1), ray.NumCPUs(0)).Remote(ctx)
		for range 20 {
			gctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := ChaosInc.Remote(gctx, a).Get(gctx)
			cancel()
			st.calls.Add(1)
			if err != nil {
				st.callsFailed.Add(1)
				st.fail("actor call", err)
			}
		}
		_ = ray.Kill(ctx, a)
	})
	run(func(i int) { // tasks in the placement group
		b := rbBytes(64<<10, byte(i))
		want := 0
		for _, c := range b {
			want += int(c)
		}
		gctx, cancel := context.WithTimeout(ctx, time.Minute)
		got, err := ChaosSum.Options(ray.InPlacementGroup(pg, ray.AnyBundle), ray.NumCPUs(0.25), ray.MaxRetries(10)).Remote(gctx, b).Get(gctx)
		cancel()
		st.groupTasks.Add(1)
		switch {
		case err != nil:
			st.groupFailed.Add(1)
			st.fail("group task", err)
		case got != want:
			st.wrong.Add(1)
		}
	})
	run(func(int) { // attempts stay within MaxRetries
		gctx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := ChaosAttempt.Options(ray.MaxRetries(chaosAttemptRetries), ray.NumCPUs(0.25)).Remote(gctx).Get(gctx)
		cancel()
		st.attempts.Add(1)
		switch {
		case err == nil && n > chaosAttemptRetries:
			st.overLimit.Add(1)
		case err == nil && n > 0:
			st.retried.Add(1)
		}
	})
	lastAnswer := time.Now()
	run(func(int) { // the detached named actor, found by name
		gctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		k, err := ray.GetActor[chaosCounter](gctx, "keeper")
		if err == nil {
			_, err = ChaosInc.Remote(gctx, k).Get(gctx)
		}
		st.detachedCalls.Add(1)
		if err != nil {
			st.detachedFailed.Add(1)
			st.fail("detached actor", err)
		} else {
			now := time.Now()
			if gap := now.Sub(lastAnswer).Milliseconds(); gap > st.detachedGap.Load() {
				st.detachedGap.Store(gap)
			}
			lastAnswer = now
		}
		time.Sleep(100 * time.Millisecond)
	})
	wg.Wait()
	st.mu.Lock()
	errsSeen := strings.Join(st.firstErrs, " | ")
	st.mu.Unlock()
	fmt.Printf("stats chains=%d chains_failed=%d wrong=%d calls=%d calls_failed=%d group=%d group_failed=%d detached=%d detached_failed=%d detached_longest_wait_ms=%d attempts=%d attempts_retried=%d attempts_over_limit=%d errors=%q\n",
		st.chains.Load(), st.chainsFailed.Load(), st.wrong.Load(), st.calls.Load(), st.callsFailed.Load(),
		st.groupTasks.Load(), st.groupFailed.Load(), st.detachedCalls.Load(), st.detachedFailed.Load(), st.detachedGap.Load(),
		st.attempts.Load(), st.retried.Load(), st.overLimit.Load(), errsSeen)
	_ = ray.Kill(ctx, keeper)
	_ = ray.RemovePlacementGroup(ctx, pg)
	start := time.Now()
	for {
		total, err1 := ray.ClusterResources(ctx)
		avail, err2 := ray.AvailableResources(ctx)
		if err1 == nil && err2 == nil && total["CPU"] > 0 && avail["CPU"] == total["CPU"] {
			fmt.Println("free", time.Since(start).Milliseconds())
			return 0
		}
		if time.Since(start) > time.Minute {
			fmt.Printf("stuck total %v available %v\n", total, avail)
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChaos is the chaos run (see the top of this file); it is skipped
// unless RAYGO_CHAOS is set. It prints what it injected, what the
// workload saw, and how long the cluster took to free everything after
// the last fault.
func TestChaos(t *testing.T) {
	if os.Getenv(envChaos) == "" {
		t.Skip("a chaos run: set " + envChaos + "=1 (bench/chaos.sh)")
	}
	bed := namespaceBed(t)
	seconds := benchInt(envChaosSeconds, 60)
	tok := ray.EnvToken + "=e2e-chaos"
	store := envStoreBytes + "=" + strconv.Itoa(256<<20)
	cpus := envExtraResources + "=CPU=2"
	h0, err := bed.AddHost("h0")
	if err != nil {
		t.Fatal(err)
	}
	headEnv := []string{tok, store, envStorage + "=" + filepath.Join(t.TempDir(), "gcs.db"), envHeadPort + "=6390"}
	head := startNH(t, h0, roleNHHead, headEnv...)
	gcs := ray.EnvAddress + "=" + head.fields[0]
	hosts := make([]*testcluster.Host, 4)
	nodes := make([]*nhProc, 4)
	for i := range hosts {
		if hosts[i], err = bed.AddHost("h" + strconv.Itoa(i+1)); err != nil {
			t.Fatal(err)
		}
		nodes[i] = startNH(t, hosts[i], roleNHNode, tok, gcs, store, cpus)
	}
	hd, err := bed.AddHost("hd")
	if err != nil {
		t.Fatal(err)
	}
	startNH(t, hd, roleNHNode, tok, gcs, store, cpus)
	d := startDriverRole(t, hd, roleChaosDriver, tok, gcs, envChaosSeconds+"="+strconv.FormatInt(seconds, 10))
	d.Next("ready")
	d.Send("go")

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	end := start.Add(time.Duration(seconds)*time.Second - 10*time.Second)
	headAt := start.Add(time.Duration(seconds) * time.Second / 3) // the head's restart, once
	var injected []string
	var lastFault time.Time
	for time.Now().Before(end) {
		time.Sleep(time.Duration(4+rng.IntN(4)) * time.Second)
		if !headAt.IsZero() && time.Now().After(headAt) {
			headAt = time.Time{}
			if err := head.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-head.exited
			time.Sleep(2 * time.Second)
			restarted := time.Now()
			head = startNH(t, h0, roleNHHead, headEnv...)
			injected = append(injected, fmt.Sprintf("head killed at %s, restarted after 2s, serving %s later",
				time.Since(start).Round(time.Second), time.Since(restarted).Round(time.Millisecond)))
			lastFault = time.Now()
			continue
		}
		i := rng.IntN(len(nodes))
		h := hosts[i]
		if rng.IntN(3) == 0 {
			// Partitioned past the node timeout: declared dead; healed, it
			// exits on its own, and is started again.
			if err := h.Partition(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(6 * time.Second)
			if err := h.Heal(); err != nil {
				t.Fatal(err)
			}
			healed := time.Now()
			select {
			case <-nodes[i].exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("node on %s still runs 30 s after a 6 s partition", h.Name)
			}
			nodes[i] = startNH(t, h, roleNHNode, tok, gcs, store, cpus)
			injected = append(injected, fmt.Sprintf("%s partitioned 6s at %s (dead node out and a new one in %s after the heal)",
				h.Name, time.Since(start).Round(time.Second), time.Since(healed).Round(time.Millisecond)))
		} else {
			if err := nodes[i].cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-nodes[i].exited
			killed := time.Now()
			nodes[i] = startNH(t, h, roleNHNode, tok, gcs, store, cpus)
			injected = append(injected, fmt.Sprintf("%s killed at %s (a new node in %s)", h.Name, time.Since(start).Round(time.Second),
				time.Since(killed).Round(time.Millisecond)))
		}
		lastFault = time.Now()
	}
	stats := d.NextWithin("stats", 3*time.Minute) // after the workload's last calls (chains wait up to 2 min)
	free := d.Next("free")
	afterLast := time.Since(lastFault)
	t.Logf("injected (%d): %s", len(injected), strings.Join(injected, ", "))
	t.Logf("workload: %s", strings.Join(stats, " "))
	t.Logf("every CPU free %s ms after the workload ended (%s after the last fault)", free[0], afterLast.Round(time.Second))
	fields := map[string]int{}
	for _, f := range stats {
		if k, v, ok := strings.Cut(f, "="); ok {
			n, _ := strconv.Atoi(v)
			fields[k] = n
		}
	}
	for _, k := range []string{"chains_failed", "wrong", "calls_failed", "group_failed", "detached_failed", "attempts_over_limit"} {
		if fields[k] != 0 {
			t.Errorf("%s = %d", k, fields[k])
		}
	}
	if ms, _ := strconv.Atoi(free[0]); ms > 10_000 {
		t.Errorf("resources free %d ms after the workload ended, want within 10 s", ms)
	}
}
