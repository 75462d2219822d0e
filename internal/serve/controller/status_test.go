package controller

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func TestProxiesOf(t *testing.T) {
	a, b, c := ids.New(), ids.New(), ids.New()
	node := func(id ids.ID, state pb.NodeState, addr string) *pb.NodeInfo {
		return &pb.NodeInfo{NodeId: id.Bytes(), State: state, ServeAddress: addr}
	}
	alive, dead := pb.NodeState_NODE_STATE_ALIVE, pb.NodeState_NODE_STATE_DEAD
	sorted := []ids.ID{a, b}
	if sorted[0].String() > sorted[1].String() {
		sorted[0], sorted[1] = b, a
	}
	want := func(pairs ...string) []ProxyStatus {
		out := []ProxyStatus{}
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, ProxyStatus{NodeID: pairs[i], URL: pairs[i+1], Status: ProxyUnhealthy, Message: "not probed yet"})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		nodes []*pb.NodeInfo
		want  []ProxyStatus
	}{
		{"none", nil, want()},
		{"a node without a proxy is not listed", []*pb.NodeInfo{node(a, alive, "")}, want()},
		{"a dead node's proxy is gone", []*pb.NodeInfo{node(a, dead, "127.0.0.1:8000")}, want()},
		{"alive nodes by id", []*pb.NodeInfo{
			node(sorted[1], alive, "127.1.0.3:8000"), node(c, dead, "127.1.0.4:8000"), node(sorted[0], alive, "127.1.0.2:8001"),
		}, want(sorted[0].String(), "http://127.1.0.2:8001", sorted[1].String(), "http://127.1.0.3:8000")},
		{"a bad node id is skipped", []*pb.NodeInfo{{NodeId: []byte("x"), State: alive, ServeAddress: "h:1"}}, want()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := proxiesOf(tc.nodes); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestWithURLs(t *testing.T) {
	ps := []ProxyStatus{{URL: "http://h1:8000"}, {URL: "http://h2:9000"}}
	for _, tc := range []struct {
		prefix string
		ps     []ProxyStatus
		want   []string
	}{
		{"/echo", ps, []string{"http://h1:8000/echo", "http://h2:9000/echo"}},
		{"/", ps, []string{"http://h1:8000", "http://h2:9000"}},
		{"/a/b/", ps[:1], []string{"http://h1:8000/a/b"}},
		{"/echo", nil, nil},
	} {
		got := withURLs([]AppStatus{{RoutePrefix: tc.prefix, URLs: []string{"stale"}}}, tc.ps)
		if !reflect.DeepEqual(got[0].URLs, tc.want) {
			t.Errorf("prefix %q: %v, want %v", tc.prefix, got[0].URLs, tc.want)
		}
	}
}

// TestProbeProxies: a proxy answering 200 is HEALTHY; one answering 503
// (no routing table yet) and one refusing connections are UNHEALTHY,
// with why.
func TestProbeProxies(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok/-/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /starting/-/healthz", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no routing table yet", http.StatusServiceUnavailable)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	ps := []ProxyStatus{{URL: srv.URL + "/ok"}, {URL: srv.URL + "/starting"}, {URL: goneURL}}
	probeProxies(context.Background(), srv.Client(), ps)
	if ps[0].Status != ProxyHealthy || ps[0].Message != "" {
		t.Errorf("answering proxy: %+v", ps[0])
	}
	if ps[1].Status != ProxyUnhealthy || !strings.Contains(ps[1].Message, "503") || !strings.Contains(ps[1].Message, "no routing table yet") {
		t.Errorf("proxy answering 503: %+v", ps[1])
	}
	if ps[2].Status != ProxyUnhealthy || !strings.Contains(ps[2].Message, "refused") {
		t.Errorf("proxy that is gone: %+v", ps[2])
	}
}
