package controller

import (
	"maps"
	"slices"

	"github.com/raygo/raygo/internal/replicaset"
)

// AppStatus is an application as `raygo serve status` shows it.
type AppStatus struct {
	Name        string             `json:"name" yaml:"name"`
	RoutePrefix string             `json:"route_prefix" yaml:"route_prefix"`
	Status      string             `json:"status" yaml:"status"`
	Message     string             `json:"message,omitempty" yaml:"message,omitempty"`
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
				State: st.State, Message: st.Message, Restarts: st.Restarts, LogFile: st.LogFile})
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
