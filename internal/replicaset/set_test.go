//go:build !windows

package replicaset

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/scheduler"
)

// Slots tested with their neighbours faked: replicas are real local
// processes started by localLauncher instead of a node daemon, checked by
// fakeProbe (or the real HTTPProbe).

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// localLauncher runs replicas as local processes on one fake node; a
// "serve" replica gets a free port in $PORT (or start.port_env).
type localLauncher struct{}

func (localLauncher) Nodes(context.Context) ([]scheduler.Node, error) {
	return []scheduler.Node{{ID: "6e6f6465", Address: "local", Alive: true, Total: resources.Set{resources.CPU: 4}, Available: resources.Set{resources.CPU: 4}}}, nil
}

func (localLauncher) Start(ctx context.Context, _ scheduler.Node, start *pb.ReplicaStart) (*Process, error) {
	cmd := exec.CommandContext(ctx, start.GetArgv()[0], start.GetArgv()[1:]...)
	cmd.Env = append(os.Environ(), "REPLICA_ID="+start.GetReplicaId())
	var hostPort string
	if start.GetKind() == KindServe {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hostPort = l.Addr().String()
		_ = l.Close()
		env := start.GetPortEnv()
		if env == "" {
			env = "PORT"
		}
		_, port, _ := net.SplitHostPort(hostPort)
		cmd.Env = append(cmd.Env, env+"="+port)
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var werr error
	go func() { // ends with the process, which ctx's end kills
		werr = cmd.Wait()
		close(done)
	}()
	return &Process{Pid: cmd.Process.Pid, HostPort: hostPort, Done: done, Err: func() error {
		select {
		case <-done:
			if werr == nil {
				return errors.New("exited")
			}
			return fmt.Errorf("exited: %w", werr)
		default:
			return nil
		}
	}}, nil
}

// fakeProbe is ready at once; its conns' checks fail while failCheck is
// set.
type fakeProbe struct{ failCheck atomic.Bool }

func (p *fakeProbe) Ready(ctx context.Context, proc *Process) (Conn, error) {
	return &fakeConn{p: p}, nil
}

type fakeConn struct {
	p      *fakeProbe
	closed atomic.Bool
}

func (c *fakeConn) Check(context.Context) error {
	if c.p.failCheck.Load() {
		return errors.New("fake check failed")
	}
	return nil
}
func (c *fakeConn) Lost() <-chan error { return nil }
func (c *fakeConn) Close() error       { c.closed.Store(true); return nil }

// events records OnReady and OnGone calls.
type events struct {
	mu    sync.Mutex
	ready map[int]int
	gone  map[int]int
}

func (e *events) count(m map[int]int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func newSet(t *testing.T, cfg Config, n int) (*Set, *events) {
	t.Helper()
	ev := &events{ready: map[int]int{}, gone: map[int]int{}}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Kind == "" {
		cfg.Kind = KindMCP
	}
	cfg.Launcher = localLauncher{}
	cfg.OnReady = func(s *Slot, c Conn) {
		if cur, _ := s.Current(); cur != c {
			t.Errorf("OnReady: slot %d's Current is not the ready Conn", s.Index())
		}
		ev.mu.Lock()
		ev.ready[s.Index()]++
		ev.mu.Unlock()
	}
	cfg.OnGone = func(s *Slot) {
		if cur, _ := s.Current(); cur != nil {
			t.Errorf("OnGone: slot %d still has a Current", s.Index())
		}
		ev.mu.Lock()
		ev.gone[s.Index()]++
		ev.mu.Unlock()
	}
	s, err := New(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ev
}

// eventually polls cond every 10 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readyCount(s *Set) int {
	n := 0
	for _, st := range s.Statuses() {
		if st.State == StateReady {
			n++
		}
	}
	return n
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func sleeper() *pb.ReplicaStart { return &pb.ReplicaStart{Argv: []string{"sleep", "60"}} }

func TestConfigErrors(t *testing.T) {
	ok := Config{Name: "x", Kind: KindMCP, Start: sleeper(), Launcher: localLauncher{}, Probe: &fakeProbe{}}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		n    int
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, 1, "no Name"},
		{"bad kind", func(c *Config) { c.Kind = "grpc" }, 1, `Kind "grpc"`},
		{"no start", func(c *Config) { c.Start = nil }, 1, "no Start"},
		{"no launcher", func(c *Config) { c.Launcher = nil }, 1, "no Launcher"},
		{"no probe", func(c *Config) { c.Probe = nil }, 1, "no Probe"},
		{"negative", func(c *Config) { c.HealthPeriod = -1 }, 1, "negative"},
		{"too many", func(c *Config) {}, MaxSlots + 1, "want 0 to"},
	} {
		cfg := ok
		tc.edit(&cfg)
		_, err := New(cfg, tc.n)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrConfig naming %q", tc.name, err, tc.want)
		}
	}
}

func TestSlotsReadyAndClose(t *testing.T) {
	s, ev := newSet(t, Config{Start: sleeper(), Probe: &fakeProbe{}}, 2)
	eventually(t, 10*time.Second, "2 ready", func() bool { return readyCount(s) == 2 })
	sts := s.Statuses()
	if sts[0].ID == sts[1].ID || !strings.HasPrefix(sts[1].ID, "1-") || sts[0].Pid == 0 || sts[0].NodeID != "6e6f6465" {
		t.Errorf("statuses: %+v", sts)
	}
	if ev.count(ev.ready) != 2 {
		t.Errorf("OnReady: %v", ev.ready)
	}
	s.Close()
	for _, st := range sts {
		if alive(st.Pid) {
			t.Errorf("replica pid %d alive after Close", st.Pid)
		}
	}
	if ev.count(ev.gone) != 2 {
		t.Errorf("OnGone after Close: %v, want one per slot", ev.gone)
	}
	if err := s.Resize(context.Background(), 3); !errors.Is(err, ErrClosed) {
		t.Errorf("Resize after Close: %v", err)
	}
}

func TestHealthFailureReplaced(t *testing.T) {
	p := &fakeProbe{}
	s, ev := newSet(t, Config{Start: sleeper(), Probe: p, HealthPeriod: 50 * time.Millisecond}, 1)
	eventually(t, 10*time.Second, "ready", func() bool { return readyCount(s) == 1 })
	before := s.Statuses()[0]
	conn, _ := s.Slots()[0].Current()
	p.failCheck.Store(true)
	eventually(t, 5*time.Second, "a failure", func() bool { return s.Statuses()[0].Restarts == 1 })
	failed := time.Now()
	p.failCheck.Store(false)
	eventually(t, 2*time.Second, "replaced within 2 s", func() bool { return readyCount(s) == 1 })
	after := s.Statuses()[0]
	t.Logf("replaced in %v: %q", time.Since(failed), after.ID)
	if after.Pid == before.Pid || after.ID == before.ID || alive(before.Pid) {
		t.Errorf("not replaced: before %+v after %+v", before, after)
	}
	if !conn.(*fakeConn).closed.Load() || ev.count(ev.gone) != 1 || ev.count(ev.ready) != 2 {
		t.Errorf("conn closed %v, OnGone %v, OnReady %v", conn.(*fakeConn).closed.Load(), ev.gone, ev.ready)
	}
}

func TestCrashLoopBackoff(t *testing.T) {
	s, ev := newSet(t, Config{Start: &pb.ReplicaStart{Argv: []string{"/bin/sh", "-c", "exit 3"}}, Probe: &fakeProbe{}}, 1)
	began := time.Now()
	eventually(t, 10*time.Second, "4 failures", func() bool { return s.Statuses()[0].Restarts >= 4 })
	// Delays 0, 250 ms, 500 ms, then 1 s: the 4th failure comes after ≥ 750 ms.
	if d := time.Since(began); d < 3*BaseBackoff {
		t.Errorf("4 failures in %v: no backoff", d)
	}
	st := s.Statuses()[0]
	if st.State != StateBackoff || !strings.Contains(st.Message, "exit status 3") {
		t.Errorf("status: %+v, want BACKOFF naming the exit", st)
	}
	if ev.count(ev.gone) != ev.count(ev.ready) {
		t.Errorf("OnReady %v and OnGone %v do not pair", ev.ready, ev.gone)
	}
}

func TestResize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, ev := newSet(t, Config{Start: sleeper(), Probe: &fakeProbe{}}, 1)
	if err := s.Resize(ctx, 3); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "3 ready", func() bool { return readyCount(s) == 3 })
	sts := s.Statuses()
	if err := s.Resize(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Resize returned: the removed slots are gone, withdrawn and stopped.
	if got := s.Statuses(); len(got) != 1 || got[0].State != StateReady || got[0].Pid != sts[0].Pid {
		t.Errorf("after Resize(1): %+v", got)
	}
	ev.mu.Lock()
	if ev.gone[1] != 1 || ev.gone[2] != 1 || ev.gone[0] != 0 {
		t.Errorf("OnGone by slot: %v, want slots 1 and 2 once", ev.gone)
	}
	ev.mu.Unlock()
	for _, st := range sts[1:] {
		if alive(st.Pid) {
			t.Errorf("drained replica pid %d alive", st.Pid)
		}
	}
	if err := s.Resize(ctx, 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "2 ready", func() bool { return readyCount(s) == 2 })
	if err := s.Resize(ctx, -1); !errors.Is(err, ErrConfig) {
		t.Errorf("Resize(-1): %v", err)
	}
}

func TestDrainSlotWhilePending(t *testing.T) {
	// No node can ever hold it: the slot stays PENDING; Drain still ends it.
	s, _ := newSet(t, Config{Start: sleeper(), Probe: &fakeProbe{}, Resources: resources.Set{resources.CPU: 64}}, 1)
	eventually(t, 5*time.Second, "pending", func() bool {
		st := s.Statuses()[0]
		return st.State == StatePending && strings.Contains(st.Message, "can ever hold")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Slots()[0].Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Statuses()[0]; st.State != StateDraining {
		t.Errorf("after Drain: %+v", st)
	}
}

func TestHTTPProbeChecks(t *testing.T) {
	var status atomic.Int32
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	hp := strings.TrimPrefix(srv.URL, "http://")
	closed := func() string { // a port nothing listens on
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		a := l.Addr().String()
		_ = l.Close()
		return a
	}()
	for _, tc := range []struct {
		name     string
		probe    HTTPProbe
		hostPort string
		status   int32
		want     string // "" ok, else part of the error
	}{
		{"2xx", HTTPProbe{Path: "/healthz"}, hp, 200, ""},
		{"204", HTTPProbe{Path: "/healthz"}, hp, 204, ""},
		{"5xx", HTTPProbe{Path: "/healthz"}, hp, 503, "503 Service Unavailable"},
		{"wrong path", HTTPProbe{Path: "/nope"}, hp, 200, "404"},
		{"tcp", HTTPProbe{}, hp, 503, ""},
		{"tcp closed", HTTPProbe{}, closed, 200, "connect to " + closed},
		{"http closed", HTTPProbe{Path: "/healthz"}, closed, 200, "connection refused"},
	} {
		status.Store(tc.status)
		c := &httpConn{probe: tc.probe, hostPort: tc.hostPort, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Check(ctx)
		cancel()
		_ = c.Close()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Ready gives up when the process ends first.
	done := make(chan struct{})
	close(done)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := (HTTPProbe{Path: "/"}).Ready(ctx, &Process{HostPort: closed, Done: done}); err == nil || !strings.Contains(err.Error(), "ended before") {
		t.Errorf("Ready of an ended process: %v", err)
	}
	if _, err := (HTTPProbe{}).Ready(ctx, &Process{}); err == nil {
		t.Error("Ready without host:port: no error")
	}
}

// TestServeReplicaHTTP runs a real `python3 -m http.server` as a "serve"
// replica on $PORT, checked by HTTPProbe; killing it has it replaced.
func TestServeReplicaHTTP(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	start := &pb.ReplicaStart{Argv: []string{"/bin/sh", "-c", `exec "$0" -m http.server "$PORT" --bind 127.0.0.1`, py}}
	s, ev := newSet(t, Config{Kind: KindServe, Start: start, Probe: HTTPProbe{Path: "/"}, HealthPeriod: 100 * time.Millisecond}, 1)
	eventually(t, 20*time.Second, "ready", func() bool { return readyCount(s) == 1 })
	st := s.Statuses()[0]
	resp, err := http.Get("http://" + st.HostPort + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET the replica at %q: %v %v", st.HostPort, resp, err)
	}
	_ = resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "replaced", func() bool {
		now := s.Statuses()[0]
		return now.State == StateReady && now.Pid != st.Pid
	})
	if got := s.Statuses()[0]; got.Restarts != 1 || ev.count(ev.gone) != 1 {
		t.Errorf("after the kill: %+v, OnGone %v", got, ev.gone)
	}
	t.Logf("replica %s at %s, replaced; last start took %v", s.Statuses()[0].ID, s.Statuses()[0].HostPort, s.Statuses()[0].LastStart)
}
