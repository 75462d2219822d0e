package routes_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/router"
	"github.com/raygo/raygo/internal/serve/routes"
)

func TestWireRoundTrip(t *testing.T) {
	in := []proxy.Route{
		{Prefix: "/shop", App: "shop", Deployment: "Cart", MaxQueuedRequests: 100, RequestTimeout: 300 * time.Millisecond,
			Replicas: []proxy.Replica{
				{ID: "Cart#1", Node: "n1", Zone: "z1", URL: "http://10.0.0.1:1", MaxOngoingRequests: 7},
				{ID: "Cart#2", Node: "n2", URL: "http://10.0.0.2:2", State: router.Draining},
				{ID: "Cart#3", Node: "n2", URL: "http://10.0.0.2:3", State: router.Unhealthy},
			}},
		{Prefix: "/", App: "root", Deployment: "Ingress", MaxQueuedRequests: -1, Replicas: []proxy.Replica{}},
	}
	b, err := json.Marshal(routes.ToWire(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"state":"DRAINING"`, `"request_timeout_s":0.3`, `"max_queued_requests":-1`, `"prefix":"/shop"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("JSON %s lacks %s", b, want)
		}
	}
	var w []routes.WireRoute
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	out, err := routes.FromWire(w)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
}

func TestFromWire(t *testing.T) {
	cases := []struct {
		name    string
		in      routes.WireRoute
		state   router.ReplicaState
		timeout time.Duration
		err     string
	}{
		{name: "empty state is running", in: routes.WireRoute{Replicas: []routes.WireReplica{{ID: "r"}}}, state: router.Running},
		{name: "state any case", in: routes.WireRoute{Replicas: []routes.WireReplica{{ID: "r", State: "draining"}}}, state: router.Draining},
		{name: "unknown state", in: routes.WireRoute{Prefix: "/a", Replicas: []routes.WireReplica{{ID: "r", State: "DEAD"}}}, err: `routes[0] (/a): replicas[0] (r): state "DEAD"`},
		{name: "fractional timeout", in: routes.WireRoute{RequestTimeoutS: 1.5, Replicas: []routes.WireReplica{{ID: "r"}}}, timeout: 1500 * time.Millisecond},
		{name: "negative timeout", in: routes.WireRoute{Prefix: "/a", RequestTimeoutS: -1}, err: "request_timeout_s -1"},
		{name: "NaN timeout", in: routes.WireRoute{RequestTimeoutS: math.NaN()}, err: "request_timeout_s NaN"},
		{name: "huge timeout", in: routes.WireRoute{RequestTimeoutS: 1e30}, err: "request_timeout_s 1e+30"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := routes.FromWire([]routes.WireRoute{c.in})
			if c.err != "" {
				if !errors.Is(err, routes.ErrInvalid) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("FromWire = %v, want ErrInvalid saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := out[0].Replicas[0].State; got != c.state {
				t.Fatalf("state %v, want %v", got, c.state)
			}
			if got := out[0].RequestTimeout; got != c.timeout {
				t.Fatalf("timeout %s, want %s", got, c.timeout)
			}
		})
	}
}
