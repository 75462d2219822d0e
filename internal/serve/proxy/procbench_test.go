package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The throughput target measured as a user would: the load generator,
// the proxy and the replica each in its own process (this test binary
// run again in a role), and the same load generator against the replica
// directly, side by side in one run.
//
//	RAYGO_PROXY_PROCBENCH=1 go test -run TestProxyThroughputProcesses -v ./internal/serve/proxy/
//
// It is skipped otherwise: it keeps the machine's CPUs busy for about
// 70 s. RAYGO_PROXY_PROCBENCH_SECONDS sets each measurement's length (3),
// RAYGO_PROXY_PROCBENCH_RUNS the number of runs (3). Each run measures
// GETs from 1 and from 8 concurrent keep-alive clients, and POSTs of a
// 1 KiB body from 8, direct then proxied; the log has requests/s, p50
// and p99 of each and the ratio within the run, and the CPU time each
// process spent per request. The replica's handler reads the body and
// answers "ok". RAYGO_PROXY_PROCBENCH_PROFILE=file has the proxy process
// write its CPU profile to file.

const (
	procBenchEnv   = "RAYGO_PROXY_PROCBENCH"
	procRoleEnv    = "RAYGO_PROXY_PROCBENCH_ROLE" // replica, proxy or client
	procTargetEnv  = "RAYGO_PROXY_PROCBENCH_TARGET"
	procClientsEnv = "RAYGO_PROXY_PROCBENCH_CLIENTS"
	procSecsEnv    = "RAYGO_PROXY_PROCBENCH_SECONDS"
	procBodyEnv    = "RAYGO_PROXY_PROCBENCH_BODY"    // bytes POSTed per request; 0 or unset: GET
	procProfileEnv = "RAYGO_PROXY_PROCBENCH_PROFILE" // a file: the proxy process writes its CPU profile there
	procRunsEnv    = "RAYGO_PROXY_PROCBENCH_RUNS"
	procWarmup     = 500 * time.Millisecond
)

// runProcRole runs this process as one role of the benchmark, when the
// environment names one; it reports whether it did.
func runProcRole() (bool, int) {
	role := os.Getenv(procRoleEnv)
	if role == "" {
		return false, 0
	}
	var err error
	switch role {
	case "replica":
		err = serveRole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		}))
	case "proxy":
		err = proxyRole(os.Getenv(procTargetEnv))
	case "client":
		err = clientRole()
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		return true, 1
	}
	return true, 0
}

// serveRole serves h on a loopback port, prints "http://addr" on stdout
// and serves until stdin closes (the parent ended or went away).
func serveRole(h http.Handler) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	fmt.Printf("http://%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func proxyRole(replicaURL string) error {
	if path := os.Getenv(procProfileEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	p, err := New(Options{NodeID: "n1"})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.SetRoutes([]Route{{Prefix: "/app", App: "a", Deployment: "d",
		Replicas: []Replica{{ID: "r1", Node: "n1", URL: replicaURL, MaxOngoingRequests: 1000}}}}); err != nil {
		return err
	}
	return serveRole(p)
}

// loadResult is what a client process reports.
type loadResult struct {
	Requests int     `json:"requests"`
	Seconds  float64 `json:"seconds"`
	P50us    float64 `json:"p50_us"`
	Total    int     `json:"total"` // requests sent, warm-up included
	P99us    float64 `json:"p99_us"`

	// CPU time per request (user+system, µs) of the client process and
	// of the replica and proxy processes, over the whole client run
	// (warm-up included) divided by the requests of that run; 0 where
	// /proc is not there to read.
	clientCPU, replicaCPU, proxyCPU float64
}

func (r loadResult) rate() float64 { return float64(r.Requests) / r.Seconds }

// clientRole sends GETs to the target from N keep-alive clients for the
// given seconds, after a warm-up, and prints a loadResult as JSON.
func clientRole() error {
	target := os.Getenv(procTargetEnv)
	n, err := strconv.Atoi(os.Getenv(procClientsEnv))
	if err != nil || n < 1 {
		return fmt.Errorf("%s=%q: want a positive number", procClientsEnv, os.Getenv(procClientsEnv))
	}
	secs, err := strconv.ParseFloat(os.Getenv(procSecsEnv), 64)
	if err != nil || secs <= 0 {
		return fmt.Errorf("%s=%q: want a positive number of seconds", procSecsEnv, os.Getenv(procSecsEnv))
	}
	bodyLen, _ := strconv.Atoi(os.Getenv(procBodyEnv))
	payload := []byte(strings.Repeat("x", bodyLen))
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	start := time.Now()
	measureFrom := start.Add(procWarmup)
	end := measureFrom.Add(time.Duration(secs * float64(time.Second)))
	lats := make([][]time.Duration, n)
	counts := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				var resp *http.Response
				var err error
				if bodyLen > 0 {
					resp, err = client.Post(target, "application/json", bytes.NewReader(payload))
				} else {
					resp, err = client.Get(target)
				}
				if err != nil {
					errs[i] = err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs[i] = fmt.Errorf("GET %s: %s", target, resp.Status)
					return
				}
				counts[i]++
				if t0.After(measureFrom) {
					lat = append(lat, time.Since(t0))
				}
			}
			lats[i] = lat
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	all := slices.Concat(lats...)
	if len(all) == 0 {
		return errors.New("no request completed in the measured window")
	}
	slices.Sort(all)
	total := 0
	for _, c := range counts {
		total += c
	}
	res := loadResult{
		Total:    total,
		Requests: len(all),
		Seconds:  secs,
		P50us:    float64(all[len(all)/2]) / 1e3,
		P99us:    float64(all[len(all)*99/100]) / 1e3,
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// procChild is a role process; closing its stdin stops it.
type procChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func startRole(t *testing.T, role string, env ...string) *procChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{procRoleEnv + "=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s process: %v", role, err)
	}
	c := &procChild{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		c.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- c.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.cmd.Process.Kill()
			<-done
		}
	})
	return c
}

// line reads the child's next line of stdout.
func (c *procChild) line(t *testing.T, what string) string {
	t.Helper()
	s, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading %s from the child process: %v", what, err)
	}
	return strings.TrimSpace(s)
}

// runClient runs one client process against target and returns what it
// measured.
func runClient(t *testing.T, target string, clients, body int, secs float64, servers ...*procChild) loadResult {
	t.Helper()
	before := make([]time.Duration, len(servers))
	for i, s := range servers {
		before[i] = procCPU(s.cmd.Process.Pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs*float64(time.Second))+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), procRoleEnv+"=client", procTargetEnv+"="+target,
		procClientsEnv+"="+strconv.Itoa(clients), procSecsEnv+"="+strconv.FormatFloat(secs, 'f', -1, 64),
		procBodyEnv+"="+strconv.Itoa(body))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client against %s: %v", target, err)
	}
	var r loadResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("client output %q: %v", out, err)
	}
	perReq := func(d time.Duration) float64 { return float64(d) / 1e3 / float64(r.Total) }
	r.clientCPU = perReq(cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime())
	cpus := []*float64{&r.replicaCPU, &r.proxyCPU}
	for i, s := range servers {
		if b, a := before[i], procCPU(s.cmd.Process.Pid); a > 0 {
			*cpus[i] = perReq(a - b)
		}
	}
	return r
}

// procCPU returns a process's user+system CPU time so far, from
// /proc/<pid>/stat; 0 where that cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTick = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clockTick
}

func envNumber(t *testing.T, name string, def float64) float64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return v
}

func TestProxyThroughputProcesses(t *testing.T) {
	if os.Getenv(procBenchEnv) == "" {
		t.Skipf("set %s=1 to run (about 70 s of full CPU)", procBenchEnv)
	}
	secs := envNumber(t, procSecsEnv, 3)
	runs := int(envNumber(t, procRunsEnv, 3))

	rep := startRole(t, "replica")
	repURL := rep.line(t, "the replica's address")
	prx := startRole(t, "proxy", procTargetEnv+"="+repURL)
	prxURL := prx.line(t, "the proxy's address")
	direct, proxied := repURL+"/app/x", prxURL+"/app/x"

	t.Logf("%d s per measurement, after %s of warm-up; client, proxy and replica are separate processes", int(secs), procWarmup)
	t.Logf("%-4s %-12s %10s %8s %8s %10s %8s %8s %6s %10s   %s",
		"run", "load", "direct/s", "p50 µs", "p99 µs", "proxied/s", "p50 µs", "p99 µs", "ratio", "added p50",
		"CPU µs/request: direct client+replica | proxied client+replica+proxy")
	loads := []struct {
		name          string
		clients, body int
	}{{"GET x1", 1, 0}, {"GET x8", 8, 0}, {"POST 1KiB x8", 8, 1 << 10}}
	for run := 1; run <= runs; run++ {
		for _, l := range loads {
			d := runClient(t, direct, l.clients, l.body, secs, rep)
			p := runClient(t, proxied, l.clients, l.body, secs, rep, prx)
			t.Logf("%-4d %-12s %10.0f %8.1f %8.1f %10.0f %8.1f %8.1f %5.2fx %7.1f µs   %.0f+%.0f | %.0f+%.0f+%.0f",
				run, l.name, d.rate(), d.P50us, d.P99us, p.rate(), p.P50us, p.P99us, p.rate()/d.rate(), p.P50us-d.P50us,
				d.clientCPU, d.replicaCPU, p.clientCPU, p.replicaCPU, p.proxyCPU)
		}
	}
}
