//go:build !windows

package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
	"github.com/raygo/raygo/serve/config"
)

// echo answers "echo <path>" after a short pause, long enough that
// requests are in flight when a replica is rolled or killed.
type echo struct{}

var Echo = serve.NewDeployment("Echo", func(context.Context) (*echo, error) { return &echo{}, nil },
	serve.NumReplicas(2), serve.NumCPUs(0.1), serve.GracefulShutdown(0.5, 5))

func (*echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(5 * time.Millisecond)
	w.Header().Set("X-Seen-Request-Id", serve.RequestID(r.Context()))
	_, _ = io.WriteString(w, "echo "+r.URL.Path)
}

// load sends GETs from n clients until stop, counting successes and
// keeping the failures.
type load struct {
	ok     atomic.Int64
	mu     sync.Mutex
	failed []string
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startLoad(url string, n int) *load {
	l := &load{stop: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for k := 0; ; k++ {
				select {
				case <-l.stop:
					return
				default:
				}
				path := fmt.Sprintf("/c%d/%d", i, k)
				resp, err := client.Get(url + path)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.HasSuffix(string(b), path) {
					l.fail(fmt.Sprintf("%s: %s", resp.Status, b))
					continue
				}
				if id := resp.Header.Get("X-Request-Id"); id == "" || resp.Header.Get("X-Seen-Request-Id") != id {
					l.fail(fmt.Sprintf("request id %q, the handler saw %q", id, resp.Header.Get("X-Seen-Request-Id")))
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) fail(s string) {
	l.mu.Lock()
	l.failed = append(l.failed, s)
	l.mu.Unlock()
}

func (l *load) end() (ok int64, failed []string) {
	close(l.stop)
	l.wg.Wait()
	return l.ok.Load(), l.failed
}

func TestGoDeploymentRollAndKillUnderLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.ServePort(0)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	if err := serve.Run(ctx, serve.NewApplication("echo", Echo)); err != nil {
		t.Fatal(err)
	}
	st, err := serve.GetStatus(ctx, "echo")
	if err != nil || len(st.URLs) == 0 || len(st.Deployments) != 1 {
		t.Fatalf("status %+v %v", st, err)
	}
	url, version := st.URLs[0], st.Deployments[0].Version

	// A rolling update (the replicas' resources change) under constant
	// load: no request fails.
	l := startLoad(url, 4)
	time.Sleep(300 * time.Millisecond)
	cpus := 0.2
	if err := serve.Apply(ctx, config.Application{Name: "echo", RoutePrefix: "/echo", ImportPath: "echo",
		Deployments: []config.Deployment{{Name: "Echo", RayActorOptions: &config.RayActorOptions{NumCPUs: &cpus}}}}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for {
		st, err = serve.GetStatus(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		d := st.Deployments[0]
		if d.Version != version && st.Status == "RUNNING" && len(d.Replicas) == 2 && d.Replicas[0].Version == d.Version && d.Replicas[1].Version == d.Version {
			break
		}
		if time.Since(began) > time.Minute {
			t.Fatalf("roll not done in a minute: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("rolling update done in %v", time.Since(began).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	ok, failed := l.end()
	if len(failed) > 0 {
		t.Errorf("rolling update under load: %d requests failed of %d: %v", len(failed), ok+int64(len(failed)), failed[:min(5, len(failed))])
	}
	t.Logf("rolling update under load: %d requests, %d failed", ok+int64(len(failed)), len(failed))

	// A replica's process killed under load: it is replaced; GETs on it
	// are retried on the other by the proxy.
	victim := st.Deployments[0].Replicas[0]
	if victim.Pid <= 0 {
		t.Fatalf("replica without a pid: %+v", victim)
	}
	l = startLoad(url, 4)
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var replaced time.Duration
	for {
		st, err = serve.GetStatus(ctx, "echo")
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, r := range st.Deployments[0].Replicas {
			if r.State == "READY" && r.Pid != victim.Pid {
				ready++
			}
		}
		if ready == 2 {
			replaced = time.Since(killed)
			break
		}
		if time.Since(killed) > time.Minute {
			t.Fatalf("replica not replaced in a minute: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	ok, failed = l.end()
	t.Logf("replica killed under load: replaced (READY) in %v; %d requests, %d failed %v", replaced.Round(time.Millisecond), ok+int64(len(failed)), len(failed), failed[:min(3, len(failed))])
	for _, f := range failed {
		if !strings.Contains(f, "502") {
			t.Errorf("a request failed without the proxy's 502 naming the replica: %s", f)
		}
	}
	if ok == 0 {
		t.Fatal("no request succeeded while a replica was replaced")
	}
}

// worker answers with its process id after a pause, so that calls are in
// flight when a replica is killed.
type worker struct{}

var Worker = serve.NewDeployment("Worker", func(context.Context) (*worker, error) { return &worker{}, nil },
	serve.NumReplicas(2), serve.NumCPUs(0.1), serve.MaxOngoingRequests(16))

func slowPid(_ *worker, ctx context.Context, d time.Duration) (int, error) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return os.Getpid(), nil
}

var (
	SafePid   = serve.NewMethod1(Worker, "SafePid", slowPid, serve.Idempotent())
	UnsafePid = serve.NewMethod1(Worker, "UnsafePid", slowPid)
)

// TestHandleCallsWhenAReplicaDies kills one of two replicas while eight
// calls of each method run on them (all at once: the handle spreads them
// by power of two choices on its calls in flight, so about half are on
// each replica): the idempotent method's calls are retried on the other
// replica and all succeed; the other method's calls on the dead replica
// fail with ray.ErrActorDied.
func TestHandleCallsWhenAReplicaDies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	if err := serve.Run(ctx, serve.NewApplication("workers", nil, Worker)); err != nil {
		t.Fatal(err)
	}
	h, err := serve.GetHandle(ctx, Worker, "workers")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	st, err := serve.GetStatus(ctx, "workers")
	if err != nil || len(st.Deployments[0].Replicas) != 2 {
		t.Fatalf("status %+v %v", st, err)
	}
	victim := st.Deployments[0].Replicas[0].Pid

	type result struct {
		safe bool
		pid  int
		err  error
	}
	results := make(chan result, 16)
	for i := range 16 {
		go func() {
			safe := i%2 == 0
			var pid int
			var err error
			if safe {
				pid, err = SafePid.Do(ctx, h, 3*time.Second)
			} else {
				pid, err = UnsafePid.Do(ctx, h, 3*time.Second)
			}
			results <- result{safe, pid, err}
		}()
	}
	time.Sleep(time.Second) // the calls run on both replicas
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	unsafeFailed := 0
	for range 16 {
		r := <-results
		switch {
		case r.safe && r.err != nil:
			t.Errorf("an idempotent call failed: %v", r.err)
		case r.safe && r.pid == victim:
			t.Errorf("an idempotent call answered from the killed replica")
		case !r.safe && r.err != nil:
			if !errors.Is(r.err, ray.ErrActorDied) {
				t.Errorf("a call on the killed replica: %v, want ray.ErrActorDied", r.err)
			}
			unsafeFailed++
		}
	}
	if unsafeFailed == 0 {
		t.Errorf("no call of the non-idempotent method failed: did any run on the killed replica?")
	}
	t.Logf("non-idempotent calls failed on the killed replica: %d of 8; idempotent ones all retried", unsafeFailed)
}

// picky is unhealthy while the file its user config names exists.
type picky struct{ sick atomic.Value }

var Picky = serve.NewDeployment("Picky", func(context.Context) (*picky, error) {
	p := &picky{}
	p.sick.Store("")
	return p, nil
}, serve.NumReplicas(1), serve.NumCPUs(0.1), serve.HealthCheck(0.3, 1))

func (p *picky) Reconfigure(_ context.Context, cfg json.RawMessage) error {
	var c struct {
		SickIfExists string `json:"sick_if_exists"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		return err
	}
	p.sick.Store(c.SickIfExists)
	return nil
}

func (p *picky) CheckHealth(context.Context) error {
	if f := p.sick.Load().(string); f != "" {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s exists", f)
		}
	}
	return nil
}

func (p *picky) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	_, _ = io.WriteString(w, strconv.Itoa(os.Getpid()))
}

// TestUnhealthyReplicaIsReplaced: a replica whose CheckHealth fails is
// stopped and replaced (Ray's check_health).
func TestUnhealthyReplicaIsReplaced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ray.Shutdown() }()
	sick := filepath.Join(t.TempDir(), "sick")
	app := config.Application{Name: "picky", RoutePrefix: "/picky", ImportPath: "picky",
		Deployments: []config.Deployment{{Name: "Picky", UserConfig: map[string]any{"sick_if_exists": sick}}}}
	if err := serve.Register(ctx, serve.NewApplication("picky", Picky)); err != nil { // registered, not deployed
		t.Fatal(err)
	}
	if _, err := serve.GetStatus(ctx, "picky"); !errors.Is(err, serve.ErrNotFound) {
		t.Fatalf("a registered application is not deployed: %v", err)
	}
	if err := serve.Apply(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := serve.WaitRunning(ctx, "picky"); err != nil {
		t.Fatal(err)
	}
	st, _ := serve.GetStatus(ctx, "picky")
	first := st.Deployments[0].Replicas[0]
	if err := os.WriteFile(sick, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for {
		st, err := serve.GetStatus(ctx, "picky")
		if err != nil {
			t.Fatal(err)
		}
		r := st.Deployments[0].Replicas[0]
		if r.Restarts > first.Restarts || r.Pid != first.Pid {
			t.Logf("unhealthy replica stopped %v after its check began failing: %s (%s)", time.Since(began).Round(time.Millisecond), r.State, r.Message)
			break
		}
		if time.Since(began) > 30*time.Second {
			t.Fatalf("an unhealthy replica was not replaced in 30 s: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Remove(sick); err != nil {
		t.Fatal(err)
	}
	if err := serve.WaitRunning(ctx, "picky"); err != nil {
		t.Fatal(err)
	}
}
