package controller

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/replicaset"
)

// Proxy states, as Ray's `serve status` shows its proxies.
const (
	ProxyHealthy   = "HEALTHY"   // its /-/healthz answered 200: it has the routing table
	ProxyUnhealthy = "UNHEALTHY" // it did not answer, or answered another status
)

// ProxyProbeTimeout bounds the head's GET /-/healthz to each node's
// proxy when the status is asked for (all proxies are probed at once, so
// a status waits at most this long for them).
const ProxyProbeTimeout = time.Second

// proxyHealthPath is the proxy's health endpoint (Ray's /-/healthz).
const proxyHealthPath = "/-/healthz"

// ProxyStatus is one alive node's Serve proxy, as the "proxies" of Ray's
// `serve status`: the node, the base URL its proxy serves on (the
// address the node registered, NodeInfo.serve_address) and whether it
// answered the head's health probe.
type ProxyStatus struct {
	NodeID  string `json:"node_id" yaml:"node_id"`
	URL     string `json:"url" yaml:"url"`
	Status  string `json:"status" yaml:"status"` // ProxyHealthy or ProxyUnhealthy
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
	// GRPCAddress is where the node's gRPC proxy listens (host:port;
	// NodeInfo.serve_grpc_address), when it runs one.
	GRPCAddress string `json:"grpc_address,omitempty" yaml:"grpc_address,omitempty"`
}

// AppStatus is an application as `raygo serve status` shows it.
type AppStatus struct {
	Name        string             `json:"name" yaml:"name"`
	RoutePrefix string             `json:"route_prefix" yaml:"route_prefix"`
	Status      string             `json:"status" yaml:"status"`
	Message     string             `json:"message,omitempty" yaml:"message,omitempty"`
	URLs        []string           `json:"urls,omitempty" yaml:"urls,omitempty"` // on every proxy of StatusResponse.Proxies, in order
	Deployments []DeploymentStatus `json:"deployments" yaml:"deployments"`
}

// DeploymentStatus is one deployment's status: its version, target and
// replicas (the current version's, then any older one's during a roll).
type DeploymentStatus struct {
	Name           string          `json:"name" yaml:"name"`
	Status         string          `json:"status" yaml:"status"`
	Message        string          `json:"message,omitempty" yaml:"message,omitempty"`
	Version        string          `json:"version" yaml:"version"`
	TargetReplicas int             `json:"target_replicas" yaml:"target_replicas"`
	Replicas       []ReplicaStatus `json:"replicas" yaml:"replicas"`
}

// ReplicaStatus is one replica slot.
type ReplicaStatus struct {
	ID       string `json:"id" yaml:"id"`
	Version  string `json:"version" yaml:"version"`
	Node     string `json:"node,omitempty" yaml:"node,omitempty"`
	HostPort string `json:"host_port,omitempty" yaml:"host_port,omitempty"`
	State    string `json:"state" yaml:"state"`
	Message  string `json:"message,omitempty" yaml:"message,omitempty"`
	Restarts int    `json:"restarts,omitempty" yaml:"restarts,omitempty"`
	Pid      int    `json:"pid,omitempty" yaml:"pid,omitempty"` // on its node; its process group's id too
	LogFile  string `json:"log_file,omitempty" yaml:"log_file,omitempty"`
}

// Status is every application's status, the applied ones in config order
// then those being deleted; nil when nothing is deployed or deleting.
func (c *Controller) Status() []AppStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []AppStatus
	seen := map[string]bool{}
	if c.applied != nil {
		for _, a := range c.applied.Applications {
			seen[a.Name] = true
			as := AppStatus{Name: a.Name, RoutePrefix: a.RoutePrefix, Deployments: []DeploymentStatus{}}
			for _, dc := range a.Deployments {
				if d := c.deps[depKey{a.Name, dc.Name}]; d != nil {
					as.Deployments = append(as.Deployments, d.statusLocked(""))
				}
			}
			as.Status, as.Message = rollUp(as.Deployments)
			out = append(out, as)
		}
	}
	byApp := map[string][]*deployment{}
	for k, d := range c.gone {
		if !seen[k.app] {
			byApp[k.app] = append(byApp[k.app], d)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byApp)) {
		ds := byApp[name]
		slices.SortFunc(ds, func(a, b *deployment) int {
			if a.key.dep < b.key.dep {
				return -1
			}
			return 1
		})
		as := AppStatus{Name: name, RoutePrefix: ds[0].app.RoutePrefix, Status: StatusDeleting, Deployments: []DeploymentStatus{}}
		for _, d := range ds {
			as.Deployments = append(as.Deployments, d.statusLocked(StatusDeleting))
		}
		out = append(out, as)
	}
	return out
}

// statusLocked is d's status (force, when set, is its status); c.mu is
// held.
func (d *deployment) statusLocked(force string) DeploymentStatus {
	ds := DeploymentStatus{Name: d.key.dep, Version: d.version, TargetReplicas: d.target, Message: joinMsg(d.message, d.decision), Replicas: []ReplicaStatus{}}
	ready, failing := 0, ""
	add := func(s *replicaset.Set, version string, current bool) {
		for _, st := range s.Statuses() {
			ds.Replicas = append(ds.Replicas, ReplicaStatus{ID: st.ID, Version: version, Node: st.NodeID, HostPort: st.HostPort,
				State: st.State, Message: st.Message, Restarts: st.Restarts, Pid: st.Pid, LogFile: st.LogFile})
			if !current {
				continue
			}
			switch st.State {
			case replicaset.StateReady:
				ready++
			case replicaset.StateBackoff:
				if failing == "" {
					failing = "replica " + st.ID + ": " + st.Message
				}
			}
		}
	}
	add(d.set, d.version, true)
	for _, o := range d.old {
		add(o, "previous", false)
	}
	switch {
	case force != "":
		ds.Status = force
	case failing != "":
		ds.Status = StatusUnhealthy
		ds.Message = joinMsg(ds.Message, failing)
	case ready >= d.target && d.rolling == nil:
		ds.Status = StatusRunning
	default:
		ds.Status = StatusDeploying
	}
	return ds
}

func joinMsg(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// rollUp is an application's status from its deployments': UNHEALTHY if
// any is, else DEPLOYING if any is, else RUNNING.
func rollUp(ds []DeploymentStatus) (string, string) {
	status := StatusRunning
	msg := ""
	for _, d := range ds {
		switch {
		case d.Status == StatusUnhealthy:
			status, msg = StatusUnhealthy, "deployment "+d.Name+": "+d.Message
		case d.Status == StatusDeploying && status == StatusRunning:
			status, msg = StatusDeploying, "deployment "+d.Name+" is starting replicas"
		}
	}
	return status, msg
}

// proxiesOf lists the Serve proxies of the alive nodes among nodes (those
// that registered a serve_address), by node id, each UNHEALTHY with
// "not probed yet" until probeProxies says otherwise.
func proxiesOf(nodes []*pb.NodeInfo) []ProxyStatus {
	out := []ProxyStatus{}
	for _, n := range nodes {
		if n.GetState() != pb.NodeState_NODE_STATE_ALIVE || n.GetServeAddress() == "" {
			continue
		}
		id, ok := ids.FromBytes(n.GetNodeId())
		if !ok {
			continue
		}
		out = append(out, ProxyStatus{NodeID: id.String(), URL: "http://" + n.GetServeAddress(), Status: ProxyUnhealthy, Message: "not probed yet",
			GRPCAddress: n.GetServeGrpcAddress()})
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}

// probeProxies GETs /-/healthz of every proxy at once, within
// ProxyProbeTimeout, and records the answers in ps.
func probeProxies(ctx context.Context, client *http.Client, ps []ProxyStatus) {
	ctx, cancel := context.WithTimeout(ctx, ProxyProbeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i := range ps {
		wg.Go(func() { ps[i].Status, ps[i].Message = probeProxy(ctx, client, ps[i].URL) })
	}
	wg.Wait()
}

// probeProxy is one proxy's state and, when unhealthy, why.
func probeProxy(ctx context.Context, client *http.Client, base string) (string, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+proxyHealthPath, nil)
	if err != nil {
		return ProxyUnhealthy, err.Error()
	}
	res, err := client.Do(req)
	if err != nil {
		return ProxyUnhealthy, fmt.Sprintf("GET %s: %v", proxyHealthPath, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 256))
	if res.StatusCode != http.StatusOK {
		return ProxyUnhealthy, fmt.Sprintf("GET %s: %s %s", proxyHealthPath, res.Status, strings.TrimSpace(string(body)))
	}
	return ProxyHealthy, ""
}

// withURLs sets each application's URLs: its route prefix on every
// proxy of ps.
func withURLs(apps []AppStatus, ps []ProxyStatus) []AppStatus {
	for i := range apps {
		apps[i].URLs = nil
		for _, p := range ps {
			apps[i].URLs = append(apps[i].URLs, p.URL+strings.TrimSuffix(apps[i].RoutePrefix, "/"))
		}
	}
	return apps
}

// status is GET ApplicationsPath's body: the applications, the alive
// nodes' proxies, probed now, and each application's URLs on them. A
// failure to list the nodes leaves Proxies empty (the applications are
// still shown).
func (h *httpAPI) status(ctx context.Context) StatusResponse {
	ps := []ProxyStatus{}
	if reply, err := h.gcs.GetNodes(ctx, &pb.GetNodesRequest{}); err == nil {
		ps = proxiesOf(reply.GetNodes())
		probeProxies(ctx, h.probe, ps)
	}
	return StatusResponse{Applications: withURLs(nonNil(h.ctl.Status()), ps), Proxies: ps}
}
