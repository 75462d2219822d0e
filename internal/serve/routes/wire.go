package routes

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/router"
)

// Path is the head's routing-table endpoint: GET long-polls it (read
// scope), PUT sets it (write scope); see package routesapi.
const Path = "/api/serve/routes"

// Response is GET /api/serve/routes's body:
//
//	{"version": 4051, "changed": true, "routes": [{"prefix": "/shop", "app": "shop",
//	  "deployment": "Cart", "max_queued_requests": -1, "request_timeout_s": 0,
//	  "replicas": [{"id": "Cart#a1", "node": "9f…", "url": "http://10.0.0.2:41233",
//	  "max_ongoing_requests": 5, "state": "RUNNING"}]}]}
//
// When the wait ended without a change, changed is false, version is the
// request's since and routes is absent.
type Response struct {
	Version uint64      `json:"version"`
	Changed bool        `json:"changed"`
	Routes  []WireRoute `json:"routes,omitempty"`
}

// PutRequest is PUT /api/serve/routes's body: the whole table. The
// answer is {"version": N}.
type PutRequest struct {
	Routes []WireRoute `json:"routes"`
}

// PutResponse is PUT /api/serve/routes's answer.
type PutResponse struct {
	Version uint64 `json:"version"`
}

// WireRoute is a proxy.Route in JSON, with Ray's field names
// (route_prefix's value as "prefix", request_timeout_s in seconds).
type WireRoute struct {
	Prefix            string        `json:"prefix"`
	App               string        `json:"app"`
	Deployment        string        `json:"deployment"`
	Replicas          []WireReplica `json:"replicas"`
	MaxQueuedRequests int           `json:"max_queued_requests"`
	RequestTimeoutS   float64       `json:"request_timeout_s"`
}

// WireReplica is a proxy.Replica in JSON. State is "RUNNING" (the
// default when empty), "DRAINING" or "UNHEALTHY".
type WireReplica struct {
	ID                 string `json:"id"`
	Node               string `json:"node"`
	Zone               string `json:"zone,omitempty"`
	URL                string `json:"url"`
	MaxOngoingRequests int    `json:"max_ongoing_requests"`
	State              string `json:"state"`
}

// stateNames are WireReplica.State's values, by router.ReplicaState.
var stateNames = [...]string{router.Running: "RUNNING", router.Draining: "DRAINING", router.Unhealthy: "UNHEALTHY"}

// ToWire converts a table to its JSON form.
func ToWire(routes []proxy.Route) []WireRoute {
	out := make([]WireRoute, len(routes))
	for i, rt := range routes {
		reps := make([]WireReplica, len(rt.Replicas))
		for j, r := range rt.Replicas {
			state := fmt.Sprintf("STATE_%d", int(r.State))
			if r.State >= 0 && int(r.State) < len(stateNames) {
				state = stateNames[r.State]
			}
			reps[j] = WireReplica{ID: r.ID, Node: r.Node, Zone: r.Zone, URL: r.URL, MaxOngoingRequests: r.MaxOngoingRequests, State: state}
		}
		out[i] = WireRoute{Prefix: rt.Prefix, App: rt.App, Deployment: rt.Deployment, Replicas: reps,
			MaxQueuedRequests: rt.MaxQueuedRequests, RequestTimeoutS: rt.RequestTimeout.Seconds()}
	}
	return out
}

// FromWire converts a table from its JSON form. It checks only what the
// conversion needs (replica states, timeouts); Validate checks the rest.
// Errors wrap ErrInvalid and name the route and field.
func FromWire(routes []WireRoute) ([]proxy.Route, error) {
	out := make([]proxy.Route, len(routes))
	for i, w := range routes {
		if math.IsNaN(w.RequestTimeoutS) || w.RequestTimeoutS < 0 || w.RequestTimeoutS > math.MaxInt64/float64(time.Second) {
			return nil, fmt.Errorf("%w: routes[%d] (%s): request_timeout_s %v: want 0 (none) or a positive number of seconds", ErrInvalid, i, w.Prefix, w.RequestTimeoutS)
		}
		reps := make([]proxy.Replica, len(w.Replicas))
		for j, r := range w.Replicas {
			state, ok := parseState(r.State)
			if !ok {
				return nil, fmt.Errorf("%w: routes[%d] (%s): replicas[%d] (%s): state %q: want RUNNING, DRAINING or UNHEALTHY", ErrInvalid, i, w.Prefix, j, r.ID, r.State)
			}
			reps[j] = proxy.Replica{ID: r.ID, Node: r.Node, Zone: r.Zone, URL: r.URL, MaxOngoingRequests: r.MaxOngoingRequests, State: state}
		}
		out[i] = proxy.Route{Prefix: w.Prefix, App: w.App, Deployment: w.Deployment, Replicas: reps,
			MaxQueuedRequests: w.MaxQueuedRequests, RequestTimeout: time.Duration(math.Round(w.RequestTimeoutS * float64(time.Second)))}
	}
	return out, nil
}

func parseState(s string) (router.ReplicaState, bool) {
	if s == "" {
		return router.Running, true
	}
	for st, name := range stateNames {
		if strings.EqualFold(s, name) {
			return router.ReplicaState(st), true
		}
	}
	return 0, false
}
