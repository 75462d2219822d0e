//go:build !windows

package endtoend

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/serve/controller"
	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve"
)

// roleServeGoDriver deploys the GoSpread application on the cluster in
// RAYGO_ADDRESS, prints "up deployed" and exits: the application stays.
const roleServeGoDriver = "serve-go-driver"

// hostEcho answers with the address it was reached at (its host's) after
// ?sleep=SECONDS.
type hostEcho struct{}

func (hostEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s, err := strconv.ParseFloat(r.URL.Query().Get("sleep"), 64); err == nil {
		time.Sleep(time.Duration(s * float64(time.Second)))
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	_, _ = io.WriteString(w, fmt.Sprint(local))
}

// GoSpread is a Go deployment of three replicas taking one request at a
// time, so that a proxy whose own node's replica is busy sends requests
// to the other hosts'.
var GoSpread = serve.NewDeployment("GoSpread", func(context.Context) (*hostEcho, error) { return &hostEcho{}, nil },
	serve.NumReplicas(3), serve.NumCPUs(0.5), serve.MaxOngoingRequests(1), serve.GracefulShutdown(0.2, 1), serve.HealthCheck(1, 2))

func runServeGoDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := ray.Init(ctx, ray.LogWorkers(false)); err != nil {
		fmt.Println("init:", err)
		return 1
	}
	defer func() { _ = ray.Shutdown() }()
	if err := serve.Run(ctx, serve.NewApplication("gospread", GoSpread)); err != nil {
		fmt.Println("deploy:", err)
		return 1
	}
	fmt.Println("up deployed")
	return 0
}

// TestGoServeAcrossHosts: a Go deployment deployed by a driver on a
// three-host cluster (network namespaces; the replicas' worker processes
// fetch the driver's binary from the control store): one replica per
// host, each listening on its host's address; requests through every
// host's proxy reach the replicas of the other hosts. A worker host dies
// under load: its replica's actor dies with it and is replaced on the
// surviving hosts, and requests through the surviving proxies succeed
// again once it is.
func TestGoServeAcrossHosts(t *testing.T) {
	bed := namespaceBed(t)
	hosts := addHosts(t, bed, "head", "w1", "w2")
	const token = "e2e-serve-go-token"
	tok := ray.EnvToken + "=" + token
	up := strings.Split(startRole(t, hosts[0], roleServeHost, tok, envServeHead+"=1"), ",")
	if len(up) != 3 {
		t.Fatalf("head: %q", up)
	}
	gcsAddr, apiURL := up[0], up[1]
	proxyOf := map[string]string{hosts[0].Name: "http://" + up[2]}
	victim := hosts[2]
	var victimCmd interface{ Signal(os.Signal) error }
	for _, h := range hosts[1:] {
		addr, cmd := startRoleCmd(t, h, roleServeHost, tok, ray.EnvAddress+"="+gcsAddr)
		proxyOf[h.Name] = "http://" + addr
		if h == victim {
			victimCmd = cmd.Process
		}
	}
	if got := startRole(t, hosts[0], roleServeGoDriver, tok, ray.EnvAddress+"="+gcsAddr); got != "deployed" {
		t.Fatalf("driver: %q", got)
	}
	c, err := apiclient.New(apiURL, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	hostOfIP := map[string]string{}
	for _, h := range hosts {
		hostOfIP[h.IP] = h.Name
	}
	replicaHosts := func(st controller.StatusResponse) (hosts []string, ready bool) {
		ready = len(st.Applications) == 1 && len(st.Applications[0].Deployments) == 1
		if !ready {
			return nil, false
		}
		for _, r := range st.Applications[0].Deployments[0].Replicas {
			ip, _, _ := net.SplitHostPort(r.HostPort)
			hosts = append(hosts, hostOfIP[ip])
			ready = ready && r.State == "READY"
		}
		slices.Sort(hosts)
		return hosts, ready
	}
	waitFor := func(what string, cond func(controller.StatusResponse) bool) controller.StatusResponse {
		t.Helper()
		for {
			var st controller.StatusResponse
			if err := c.Do(ctx, "GET", controller.ApplicationsPath, nil, &st); err != nil {
				t.Fatal(err)
			}
			if cond(st) {
				return st
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: never (%+v)", what, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("one Go replica per host, each on its host's address", func(st controller.StatusResponse) bool {
		hs, ready := replicaHosts(st)
		return ready && slices.Equal(hs, []string{"head", "w1", "w2"})
	})

	// Through every host's proxy, requests reach the replicas of the other
	// hosts: bursts of three slow requests at once fill the local replica
	// and spill over.
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, h := range hosts {
		reached := reachHosts(t, hc, proxyOf[h.Name]+"/gospread?sleep=0.3", 3, func(body string) string {
			ip, _, _ := net.SplitHostPort(body)
			return hostOfIP[ip]
		})
		t.Logf("through %s's proxy: Go replicas on %v", h.Name, reached)
	}

	// The victim host dies under load through the other proxies.
	var loads []*serveLoad
	for _, h := range hosts[:2] {
		loads = append(loads, startServeLoad(hc, proxyOf[h.Name]+"/gospread"))
	}
	time.Sleep(time.Second)
	if err := victimCmd.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor("the victim's Go replica replaced on the surviving hosts", func(st controller.StatusResponse) bool {
		hs, ready := replicaHosts(st)
		return ready && len(hs) == 3 && !slices.Contains(hs, victim.Name)
	})
	movedAfter := time.Since(killed)
	moved := time.Now()
	time.Sleep(2 * time.Second)
	var total, failedMove int
	for _, l := range loads {
		for _, o := range l.finish() {
			total++
			if o.err == nil && o.code == http.StatusOK {
				continue
			}
			if o.start.After(moved) {
				t.Errorf("a request after the move failed: %d %q %v", o.code, o.body, o.err)
				continue
			}
			failedMove++
		}
	}
	t.Logf("host %s killed: its Go replica replaced, 3 READY on the other hosts %v later; %d requests through the surviving proxies, %d failed during the move, 0 after",
		victim.Name, movedAfter.Round(time.Millisecond), total, failedMove)
	if err := c.Do(ctx, "DELETE", controller.ApplicationsPath, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitFor("no applications", func(st controller.StatusResponse) bool { return len(st.Applications) == 0 })
}
