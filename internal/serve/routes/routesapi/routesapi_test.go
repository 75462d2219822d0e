package routesapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/api"
	"github.com/raygo/raygo/internal/serve/proxy"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/internal/serve/routes/routesapi"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const clusterToken = "routes-test-cluster-token-0123456789"

// memKV keeps API tokens in memory (the control store's KV in the head).
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok, nil
}

func (k *memKV) Put(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string][]byte{}
	}
	k.m[key] = v
	return nil
}

// server starts an api.Server on addr serving t, stopped at cleanup (or
// earlier by the returned function).
func server(t *testing.T, addr string, tb *routes.Table) (*api.Server, func()) {
	t.Helper()
	tokens, err := api.NewTokens(context.Background(), clusterToken, &memKV{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Config{Address: addr}, tokens)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := routesapi.Feature(tb)(s, &api.Cluster{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() { once.Do(s.Close) }
	t.Cleanup(stop)
	return s, stop
}

func oneRoute(prefix, url string) []proxy.Route {
	return []proxy.Route{{Prefix: prefix, App: "app", Deployment: "dep", MaxQueuedRequests: -1,
		Replicas: []proxy.Replica{{ID: "r1", Node: "n1", URL: url}}}}
}

func do(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil { // not t.Fatal: do runs on other goroutines too
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestHandler(t *testing.T) {
	defer http.DefaultClient.CloseIdleConnections()
	tb := routes.NewTable()
	defer tb.Close()
	s, _ := server(t, "127.0.0.1:0", tb)
	url := s.URL() + routes.Path
	readToken, err := s.Tokens().Create(context.Background(), "reader", api.ScopeRead, false)
	if err != nil {
		t.Fatal(err)
	}

	// Auth: none is 401, a read token may GET but not PUT.
	if code, body := do(t, "GET", url+"?wait=0s", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET without a token: %d %s, want 401", code, body)
	}
	if code, body := do(t, "PUT", url, readToken, `{"routes": []}`); code != http.StatusForbidden {
		t.Fatalf("PUT with a read token: %d %s, want 403", code, body)
	}

	// Nothing set: a poll waits, then says no change.
	code, body := do(t, "GET", url+"?since=0&wait=50ms", readToken, "")
	if code != 200 || strings.TrimSpace(body) != `{"version":0,"changed":false}` {
		t.Fatalf("GET before any table: %d %s", code, body)
	}

	// Bad parameters are named.
	for q, want := range map[string]string{"?since=x": `since=\"x\"`, "?wait=2m": `wait=\"2m\"`, "?wait=-1s": `wait=\"-1s\"`} {
		if code, body := do(t, "GET", url+q, readToken, ""); code != 400 || !strings.Contains(body, want) {
			t.Fatalf("GET %s: %d %s, want 400 naming %s", q, code, body, want)
		}
	}

	// PUT sets the table; an invalid one is refused with what is wrong.
	code, body = do(t, "PUT", url, clusterToken, `{"routes": [{"prefix": "shop", "app": "a", "deployment": "d", "replicas": []}]}`)
	if code != 400 || !strings.Contains(body, `does not start with`) {
		t.Fatalf("PUT of an invalid table: %d %s, want 400 naming the prefix", code, body)
	}
	code, body = do(t, "PUT", url, clusterToken, `{"routes": [{"prefix": "/shop", "app": "a", "deployment": "d",
		"replicas": [{"id": "r1", "node": "n1", "url": "http://127.0.0.1:9", "max_ongoing_requests": 3, "state": "RUNNING"}]}]}`)
	var put routes.PutResponse
	if code != 200 || json.Unmarshal([]byte(body), &put) != nil || put.Version == 0 {
		t.Fatalf("PUT: %d %s", code, body)
	}

	// GET's JSON shape.
	code, body = do(t, "GET", url+"?since=0", readToken, "")
	var got map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("GET: %d %s", code, body)
	}
	want := map[string]any{"version": float64(put.Version), "changed": true, "routes": []any{map[string]any{
		"prefix": "/shop", "app": "a", "deployment": "d", "max_queued_requests": float64(0), "request_timeout_s": float64(0),
		"replicas": []any{map[string]any{"id": "r1", "node": "n1", "url": "http://127.0.0.1:9", "max_ongoing_requests": float64(3), "state": "RUNNING"}},
	}}}
	if gb, wb := mustJSON(got), mustJSON(want); gb != wb {
		t.Fatalf("GET body\n got %s\nwant %s", gb, wb)
	}

	// A poll at the current version is woken by a change.
	done := make(chan string, 1)
	go func() {
		_, body := do(t, "GET", url+"?since="+itoa(put.Version)+"&wait=30s", readToken, "")
		done <- body
	}()
	time.Sleep(50 * time.Millisecond)
	v2, err := tb.Set(oneRoute("/cart", "http://127.0.0.1:10"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case body := <-done:
		if !strings.Contains(body, `"version":`+itoa(v2)) || !strings.Contains(body, `"/cart"`) {
			t.Fatalf("woken poll: %s, want version %d with /cart", body, v2)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting poll was not woken by Set")
	}

	// Closing the table ends polls with 503.
	go func() {
		_, body := do(t, "GET", url+"?since="+itoa(v2)+"&wait=30s", readToken, "")
		done <- body
	}()
	time.Sleep(50 * time.Millisecond)
	tb.Close()
	if body := <-done; !strings.Contains(body, "head is stopping") {
		t.Fatalf("poll at Close: %s", body)
	}
}

func TestFollow(t *testing.T) {
	tb := routes.NewTable()
	s, stop := server(t, "127.0.0.1:0", tb)
	addr := s.Addr()

	type update struct {
		v      uint64
		prefix string
	}
	updates := make(chan update, 100)
	var errMu sync.Mutex
	var errs []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	f := &routes.Follower{BaseURL: "http://" + addr, Token: clusterToken, Wait: 2 * time.Second,
		OnError: func(err error) { errMu.Lock(); errs = append(errs, err.Error()); errMu.Unlock() }}
	go func() {
		done <- f.Run(ctx, func(v uint64, rs []proxy.Route) {
			p := ""
			if len(rs) > 0 {
				p = rs[0].Prefix
			}
			updates <- update{v, p}
		})
	}()
	next := func() update {
		t.Helper()
		select {
		case u := <-updates:
			return u
		case <-time.After(10 * time.Second):
			t.Fatal("no update from the follower in 10s")
			return update{}
		}
	}

	// Versions arrive in order; the follower sees the latest of a burst
	// (it may skip intermediate ones, never go back).
	v1, _ := tb.Set(oneRoute("/a", "http://127.0.0.1:1"))
	if u := next(); u.v != v1 || u.prefix != "/a" {
		t.Fatalf("first update %+v, want %d /a", u, v1)
	}
	last := v1
	for i, p := range []string{"/b", "/c", "/d"} {
		v, _ := tb.Set(oneRoute(p, "http://127.0.0.1:1"))
		for {
			u := next()
			if u.v <= last {
				t.Fatalf("update %d: version %d after %d", i, u.v, last)
			}
			last = u.v
			if u.v == v {
				if u.prefix != p {
					t.Fatalf("version %d has %s, want %s", v, u.prefix, p)
				}
				break
			}
		}
	}

	// The head's API goes away: the follower backs off and retries.
	stop()
	time.Sleep(500 * time.Millisecond)
	errMu.Lock()
	n := len(errs)
	errMu.Unlock()
	if n == 0 {
		t.Fatal("the follower reported no failed poll while the API was down")
	}
	// A new head on the same address, with a new table (a new random
	// version): the follower picks it up.
	tb2 := routes.NewTable()
	defer tb2.Close()
	server(t, addr, tb2)
	v, _ := tb2.Set(oneRoute("/after-restart", "http://127.0.0.1:1"))
	if u := next(); u.v != v || u.prefix != "/after-restart" {
		t.Fatalf("after restart: %+v, want %d /after-restart", u, v)
	}

	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	tb.Close()
}

func TestFollowResolveAndBadToken(t *testing.T) {
	tb := routes.NewTable()
	defer tb.Close()
	s, _ := server(t, "127.0.0.1:0", tb)
	v, _ := tb.Set(oneRoute("/a", "http://127.0.0.1:1"))

	// A wrong token: failed polls name the 401, and nothing is applied.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var got []string
	err := (&routes.Follower{BaseURL: s.URL(), Token: "wrong", OnError: func(err error) { got = append(got, err.Error()) }}).
		Run(ctx, func(uint64, []proxy.Route) { t.Error("applied a table with a wrong token") })
	if err != context.DeadlineExceeded || len(got) == 0 || !strings.Contains(got[0], "401") {
		t.Fatalf("Run with a wrong token = %v, errors %q", err, got)
	}
	// Backoff: 100, 200 ms… so at most a few polls in 300 ms.
	if len(got) > 3 {
		t.Fatalf("%d polls in 300ms with a wrong token: no backoff", len(got))
	}

	// Resolve: no API yet, then the URL.
	calls := 0
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	applied := make(chan uint64, 1)
	ran := make(chan struct{})
	defer func() { cancel2(); <-ran }()
	go func() {
		defer close(ran)
		_ = (&routes.Follower{Token: clusterToken, Resolve: func(context.Context) (string, error) {
			calls++
			if calls == 1 {
				return "", nil
			}
			return s.URL(), nil
		}}).Run(ctx2, func(v uint64, _ []proxy.Route) { applied <- v; cancel2() })
	}()
	select {
	case got := <-applied:
		if got != v {
			t.Fatalf("applied %d, want %d", got, v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a follower with Resolve applied nothing")
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func itoa(v uint64) string { b, _ := json.Marshal(v); return string(b) }
