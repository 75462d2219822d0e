package proxy

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if ok, code := runProcRole(); ok { // a child process of TestProxyThroughputProcesses
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// zeroRand makes every router sample the first two available replicas,
// in the order the route lists them, so that a tie goes to the first.
type zeroRand struct{}

func (zeroRand) IntN(int) int { return 0 }

// env is a proxy served by a real HTTP server, and a keep-alive client.
type env struct {
	p      *Proxy
	srv    *httptest.Server
	client *http.Client
}

func newEnv(t testing.TB, opts Options, routes ...Route) *env {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	e := &env{p: p, srv: srv, client: &http.Client{Transport: tr}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		p.Close()
	})
	if routes != nil {
		if err := p.SetRoutes(routes); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// replica is a real HTTP server standing in for one replica. It counts
// the requests it serves and the most it served at once.
type replica struct {
	id      string
	srv     *httptest.Server
	served  atomic.Int64
	cur     atomic.Int64
	peak    atomic.Int64
	handler http.Handler
}

func newReplica(t testing.TB, id string, h http.HandlerFunc) *replica {
	t.Helper()
	r := &replica{id: id}
	if h == nil {
		h = func(w http.ResponseWriter, req *http.Request) {
			io.WriteString(w, id+" "+req.URL.Path)
		}
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.cur.Add(1)
		defer r.cur.Add(-1)
		for {
			p := r.peak.Load()
			if n <= p || r.peak.CompareAndSwap(p, n) {
				break
			}
		}
		r.served.Add(1)
		h(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *replica) desc(max int) Replica {
	return Replica{ID: r.id, Node: "n1", URL: r.srv.URL, MaxOngoingRequests: max}
}

type result struct {
	code   int
	body   string
	header http.Header
	err    error
}

func (e *env) do(ctx context.Context, method, path string, body io.Reader, hdr http.Header) result {
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, body)
	if err != nil {
		return result{err: err}
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{code: resp.StatusCode, body: string(b), header: resp.Header, err: err}
}

func (e *env) get(t testing.TB, path string) result {
	t.Helper()
	r := e.do(context.Background(), http.MethodGet, path, nil, nil)
	if r.err != nil {
		t.Fatalf("GET %s: %v", path, r.err)
	}
	return r
}

func decodeError(t testing.TB, body string) ErrorResponse {
	t.Helper()
	var er ErrorResponse
	if err := json.Unmarshal([]byte(body), &er); err != nil {
		t.Fatalf("body %q is not an ErrorResponse: %v", body, err)
	}
	return er
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func stats(p *Proxy, route string) DeploymentStats {
	for _, s := range p.Stats() {
		if s.Route == route {
			return s
		}
	}
	return DeploymentStats{}
}

// gate blocks handlers until opened.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate  { return &gate{ch: make(chan struct{})} }
func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// asyncDo runs a request on its own goroutine; the test waits on the
// returned channel, so the goroutine is always joined.
func (e *env) asyncDo(ctx context.Context, method, path string) <-chan result {
	ch := make(chan result, 1)
	go func() { ch <- e.do(ctx, method, path, nil, nil) }()
	return ch
}
