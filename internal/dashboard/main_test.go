//go:build !windows

package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/dashboard"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/session"
	"github.com/raygo/raygo/ray"
)

// The test binary plays the head (the test itself), a driver
// (envDriverOf set: join that cluster, make a named actor and run tasks,
// say "ready", wait for stdin to close) and the driver's workers.
const (
	envDriverOf = "RAYGO_DASHBOARD_TEST_DRIVER_OF"
	actorName   = "dash-counter"
	taskName    = "dashtest.square"
	testToken   = "dashboard-test-token"
	driverTasks = 20
)

type counter struct{ n int }

var (
	Counter = ray.Actor0(func(context.Context) (*counter, error) { return &counter{}, nil }, ray.RegisterName("dashtest.Counter"))
	Inc     = ray.Method0(Counter, func(c *counter, _ context.Context) (int, error) { c.n++; return c.n, nil }, ray.RegisterName("Inc"))
	Square  = ray.Func1(func(_ context.Context, x int) (int, error) { return x * x, nil }, ray.RegisterName(taskName))
)

func TestMain(m *testing.M) {
	if ray.IsWorker() {
		_ = ray.Init(context.Background()) // serves tasks; never returns
	}
	if addr := os.Getenv(envDriverOf); addr != "" {
		os.Exit(runDriver(addr))
	}
	code := m.Run()
	fix.stop()
	os.Exit(code)
}

func runDriver(addr string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.Address(addr)); err != nil {
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	c := Counter.Options(ray.Name(actorName)).Remote(ctx)
	if _, err := Inc.Remote(ctx, c).Get(ctx); err != nil {
		fmt.Println("actor:", err)
		return 1
	}
	refs := make([]ray.ObjectRef[int], driverTasks)
	for i := range refs {
		refs[i] = Square.Remote(ctx, i)
	}
	if _, err := ray.Get(ctx, refs...); err != nil {
		fmt.Println("tasks:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes it
	return 0
}

// fixture is one head with a driver, shared by the package's tests and
// stopped by TestMain.
type fixture struct {
	once   sync.Once
	err    error
	head   *node.Head
	sess   session.Dir
	driver *exec.Cmd
	stdin  io.WriteCloser
}

var fix fixture

// cluster starts the shared head (sampling every 200 ms) and its driver
// on first use.
func cluster(t *testing.T) *node.Head {
	t.Helper()
	fix.once.Do(func() { fix.err = fix.start() })
	if fix.err != nil {
		t.Fatal(fix.err)
	}
	return fix.head
}

func (f *fixture) start() error {
	os.Setenv(dashboard.EnvSampleInterval, "200ms")
	sess, err := session.New()
	if err != nil {
		return err
	}
	f.sess = sess
	rc := raylet.DefaultConfig()
	rc.Resources, rc.SessionDir = resources.Set{resources.CPU: 2}, string(sess)
	rc.ObjectStoreBytes = 64 << 20
	f.head, err = node.StartHead(node.HeadConfig{Raylet: rc, Token: testToken})
	if err != nil {
		return fmt.Errorf("start the head: %w", err)
	}
	if f.head.APIURL() == "" {
		return fmt.Errorf("the head serves no HTTP API")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envDriverOf+"="+f.head.GCSAddress(), ray.EnvToken+"="+testToken)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if f.stdin, err = cmd.StdinPipe(); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	f.driver = cmd
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		return fmt.Errorf("the driver said %q", line)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // ends when the driver exits
	return nil
}

func (f *fixture) stop() {
	if f.driver != nil {
		_ = f.stdin.Close()
		done := make(chan struct{})
		go func() { _ = f.driver.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = f.driver.Process.Kill()
			<-done
		}
	}
	if f.head != nil {
		f.head.Stop()
	}
	if f.sess != "" {
		_ = f.sess.Remove()
	}
}

// apiGet GETs path with the cluster token and decodes JSON into v;
// it returns the status.
func apiGet(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", fix.head.APIURL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
