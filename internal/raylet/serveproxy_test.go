package raylet_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/resources"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/routes"
)

// replicaServer is an HTTP replica that names itself and echoes what the
// proxy sent it.
func replicaServer(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s path=%s prefix=%s token=%s", name, r.URL.Path,
			r.Header.Get(proxy.HeaderForwardedPrefix), r.Header.Get(raylet.ServeTokenHeader))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestServeProxyFollowsHeadTable: a head and a node daemon, both with a
// Serve proxy on a free port; a table PUT on the head's API reaches the
// node's proxy, which forwards to the replica it names, and a change of
// table is applied within a second.
func TestServeProxyFollowsHeadTable(t *testing.T) {
	c := startClusterWith(t, func(rc *raylet.Config) { rc.ServePort = 0 }, resources.Set{resources.CPU: 1}, resources.Set{resources.CPU: 1})
	node := c.nodes[1]
	addr := node.ServeProxyAddress()
	if addr == "" || c.head.Raylet().ServeProxyAddress() == "" {
		t.Fatalf("serve proxy addresses: node %q, head %q", addr, c.head.Raylet().ServeProxyAddress())
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(path string) (int, string) {
		res, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	// Before any table: the proxy is up but has none.
	if code, body := get("/-/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("healthz before a table: %d %s, want 503", code, body)
	}

	a, b := replicaServer(t, "replica-a"), replicaServer(t, "replica-b")
	table := func(url string) []proxy.Route {
		return []proxy.Route{{Prefix: "/shop", App: "shop", Deployment: "Cart", MaxQueuedRequests: -1,
			Replicas: []proxy.Replica{{ID: "Cart#1", Node: node.NodeID().String(), URL: url}}}}
	}
	ctx := context.Background()
	v1, err := routes.Put(ctx, client, c.head.APIURL(), token, table(a.URL))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for node.ServeRoutesVersion() != v1 {
		if time.Now().After(deadline) {
			t.Fatalf("node applied version %d, want %d within 10s", node.ServeRoutesVersion(), v1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, body := get("/shop/cart")
	want := "replica-a path=/shop/cart prefix=/shop token=" + raylet.ServeUpstreamToken(token)
	if code != 200 || body != want {
		t.Fatalf("GET /shop/cart: %d %q, want 200 %q", code, body, want)
	}
	if strings.Contains(body, "token="+token+" ") || strings.HasSuffix(body, "token="+token) {
		t.Fatal("the proxy sent the cluster token itself to a replica")
	}

	// A change is applied within a second of the PUT.
	start := time.Now()
	if _, err := routes.Put(ctx, client, c.head.APIURL(), token, table(b.URL)); err != nil {
		t.Fatal(err)
	}
	for {
		if _, body := get("/shop"); strings.HasPrefix(body, "replica-b ") {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the node's proxy still routes to replica-a %s after the table changed", time.Since(start))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("table change applied by the node's proxy in %s", time.Since(start))
	// The head's own proxy follows too.
	headAddr := c.head.Raylet().ServeProxyAddress()
	deadline = time.Now().Add(5 * time.Second)
	for {
		res, err := client.Get("http://" + headAddr + "/shop")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if strings.HasPrefix(string(body), "replica-b ") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the head's proxy does not route /shop to replica-b")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeProxyOff: the default config runs no proxy.
func TestServeProxyOff(t *testing.T) {
	c := startCluster(t, resources.Set{resources.CPU: 1})
	if got := c.head.Raylet().ServeProxyAddress(); got != "" {
		t.Fatalf("ServeProxyAddress with the default config = %q, want none", got)
	}
}
