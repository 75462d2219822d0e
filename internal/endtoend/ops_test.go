//go:build !windows

package endtoend

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/apiclient"
	"github.com/raygo/raygo/internal/node"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/ray"
)

// Roles of the operations test (TestOperationsAcrossHosts).
const (
	roleOpsHead   = "ops-head"   // a head whose HTTP API serves on its host's address, with resource "h1"
	roleOpsDriver = "ops-driver" // a job's driver: prints from a task on the head's host
	opsMarker     = "hello-from-the-head-host"
)

// Shout prints a line from wherever it runs and returns its node.
var Shout = ray.Func1(func(ctx context.Context, s string) (string, error) {
	fmt.Println(s)
	tc, _ := ray.CurrentTask(ctx)
	return tc.NodeID, nil
}, ray.RegisterName("e2e.Shout"))

func runOpsHead() int {
	ip := os.Getenv(envIP)
	rc, done, err := roleNodeConfig(64 << 20)
	if err != nil {
		fmt.Println("session:", err)
		return 1
	}
	defer done()
	rc.Resources = resources.Set{resources.CPU: 1, "h1": 1}
	head, err := node.StartHead(node.HeadConfig{GCSAddress: net.JoinHostPort(ip, "0"), Raylet: rc, Token: os.Getenv(ray.EnvToken),
		API: node.APIConfig{Address: net.JoinHostPort(ip, "0")}})
	if err != nil {
		fmt.Println("head:", err)
		return 1
	}
	defer head.Stop()
	fmt.Println("up", head.GCSAddress()+","+head.APIURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// runOpsDriver is a job's entrypoint: it joins the cluster (RAYGO_ADDRESS
// and RAYGO_TOKEN come from the entrypoint's environment), has a task on
// the head's host print a line, and says where it ran.
func runOpsDriver() int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ray.Init(ctx); err != nil {
		fmt.Println("init:", err)
		return 1
	}
	defer ray.Shutdown()
	nodeID, err := Shout.Options(ray.Resources(map[string]float64{"h1": 1})).Remote(ctx, opsMarker+" "+os.Getenv("OPS_TAG")).Get(ctx)
	if err != nil {
		fmt.Println("task:", err)
		return 1
	}
	fmt.Println("task ran on", nodeID)
	return 0
}

// TestOperationsAcrossHosts: a head on one host and a node on another; a
// job submitted through the head's HTTP API from a third place runs its
// entrypoint on the node's host (its entrypoint resources are there), in
// its runtime environment; its driver's task runs on the head's host, and
// what the task prints crosses back to the driver (the worker's node →
// the head → the driver), prefixed, into the job's log, which the head
// reads from the other host. The state API sees both nodes (workers
// asked of both without a failure) and the task, on the head's node, with
// its executor's events (its worker, stopped when the job ended, reported
// them first); /metrics has both nodes' series; the timeline has the
// task's span.
func TestOperationsAcrossHosts(t *testing.T) {
	bed := namespaceBed(t)
	var hosts []string
	hh, err := bed.AddHost("head")
	if err != nil {
		t.Fatal(err)
	}
	nh, err := bed.AddHost("node")
	if err != nil {
		t.Fatal(err)
	}
	hosts = append(hosts, hh.IP, nh.IP)
	const token = "e2e-ops-token"
	tok := ray.EnvToken + "=" + token
	up := startRole(t, hh, roleOpsHead, tok)
	gcs, apiURL, _ := strings.Cut(up, ",")
	startRole(t, nh, roleMHNode, tok, ray.EnvAddress+"="+gcs)

	c, err := apiclient.New(apiURL, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.SubmitJob(ctx, apiclient.JobSubmitRequest{Entrypoint: exe,
		RuntimeEnv:          &apiclient.JobRuntimeEnv{EnvVars: map[string]string{envRole: roleOpsDriver, "OPS_TAG": "tag-42"}},
		EntrypointResources: map[string]float64{"h2": 1}})
	if err != nil {
		t.Fatal(err)
	}
	var d apiclient.JobDetails
	for {
		if d, err = c.GetJob(ctx, id); err != nil {
			t.Fatal(err)
		}
		if d.Terminal() {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("job %s still %s: %s", id, d.Status, d.Message)
		}
		time.Sleep(100 * time.Millisecond)
	}
	logs, err := c.JobLogs(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "SUCCEEDED" {
		t.Fatalf("job %s: %s (%s)\n%s", id, d.Status, d.Message, logs)
	}

	// Where things ran: the entrypoint on the node's host, the task on the head's.
	nodes, err := c.List(ctx, "nodes", apiclient.ListOptions{Detail: true})
	if err != nil {
		t.Fatal(err)
	}
	var nodeRows []struct {
		NodeID string `json:"node_id"`
		NodeIP string `json:"node_ip"`
		State  string `json:"state"`
	}
	if err := nodes.DecodeRows(&nodeRows); err != nil {
		t.Fatal(err)
	}
	byIP := map[string]string{}
	for _, n := range nodeRows {
		if n.State == "ALIVE" {
			byIP[n.NodeIP] = n.NodeID
		}
	}
	if len(byIP) != 2 || byIP[hh.IP] == "" || byIP[nh.IP] == "" {
		t.Fatalf("alive nodes by address %v, want one on each of %v", byIP, hosts)
	}
	if d.DriverNodeID != byIP[nh.IP] {
		t.Errorf("the entrypoint ran on node %s, want the node host's %s", d.DriverNodeID, byIP[nh.IP])
	}
	if !strings.Contains(logs, "task ran on "+byIP[hh.IP]) {
		t.Errorf("the task did not run on the head's host (%s):\n%s", byIP[hh.IP], logs)
	}
	// The task's print, from the head's host, in the driver's output on
	// the node's host, with the worker's prefix.
	var printed string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, opsMarker+" tag-42") {
			printed = line
		}
	}
	if !strings.HasPrefix(printed, "(") || !strings.Contains(printed, "pid=") || !strings.Contains(printed, "Shout") {
		t.Errorf("the task's line reached the driver as %q, want it prefixed with the task and its worker:\n%s", printed, logs)
	}

	// The state API: the task, on the head's node; workers of both nodes.
	tasks, err := c.List(ctx, "tasks", apiclient.ListOptions{Filters: []string{"func_or_class_name=e2e.Shout"}, Detail: true})
	if err != nil {
		t.Fatal(err)
	}
	var taskRows []struct {
		State  string `json:"state"`
		NodeID string `json:"node_id"`
	}
	if err := tasks.DecodeRows(&taskRows); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second) // executors report every second
	for (len(taskRows) != 1 || taskRows[0].NodeID == "") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		if tasks, err = c.List(ctx, "tasks", apiclient.ListOptions{Filters: []string{"func_or_class_name=e2e.Shout"}, Detail: true}); err != nil {
			t.Fatal(err)
		}
		taskRows = nil
		if err := tasks.DecodeRows(&taskRows); err != nil {
			t.Fatal(err)
		}
	}
	if len(taskRows) != 1 || taskRows[0].State != "FINISHED" || taskRows[0].NodeID != byIP[hh.IP] {
		t.Errorf("tasks of e2e.Shout: %+v, want one FINISHED on %s", taskRows, byIP[hh.IP])
	}
	workers, err := c.List(ctx, "workers", apiclient.ListOptions{Detail: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if workers.PartialFailureWarning != "" {
		t.Errorf("workers: %s", workers.PartialFailureWarning)
	}
	// Metrics: both nodes' series, through the head.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for ip, nid := range byIP {
		if !strings.Contains(string(body), nid) {
			t.Errorf("/metrics has no series of the node on %s (%s)", ip, nid)
		}
	}

	// The timeline has the task's span.
	resp2, err := c.Request(ctx, http.MethodGet, "/api/v0/timeline", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var trace []map[string]any
	err = json.NewDecoder(resp2.Body).Decode(&trace)
	resp2.Body.Close()
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	found := false
	for _, ev := range trace {
		if ev["ph"] == "X" && strings.Contains(fmt.Sprint(ev["name"]), "Shout") {
			found = true
		}
	}
	if !found {
		rows, _ := c.List(ctx, "tasks", apiclient.ListOptions{Detail: true, Limit: 100})
		var raw []string
		for _, r := range rows.Rows {
			raw = append(raw, string(r))
		}
		t.Errorf("the timeline has no span of e2e.Shout (%d events); tasks:\n%s", len(trace), strings.Join(raw, "\n"))
	}
}
