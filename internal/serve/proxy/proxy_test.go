package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/serve/router"
)

func TestRoutingByPrefix(t *testing.T) {
	root := newReplica(t, "root", nil)
	shop := newReplica(t, "shop", nil)
	cart := newReplica(t, "cart", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "cart %s prefix=%s", r.URL.RequestURI(), r.Header.Get(HeaderForwardedPrefix))
	})
	e := newEnv(t, Options{NodeID: "n1"},
		Route{Prefix: "/", App: "home", Deployment: "Root", Replicas: []Replica{root.desc(0)}},
		Route{Prefix: "/shop", App: "shop", Deployment: "Shop", Replicas: []Replica{shop.desc(0)}},
		Route{Prefix: "/shop/cart", App: "shop", Deployment: "Cart", Replicas: []Replica{cart.desc(0)}},
	)
	for _, tc := range []struct{ path, want string }{
		{"/", "root /"},
		{"/shopping", "root /shopping"},
		{"/shop", "shop /shop"},
		{"/shop/", "shop /shop/"},
		{"/shop/item/7", "shop /shop/item/7"},
		{"/shop/cart", "cart /shop/cart prefix=/shop/cart"},
		{"/shop/cart/add?n=2", "cart /shop/cart/add?n=2 prefix=/shop/cart"},
		{"/shop/carts", "shop /shop/carts"},
	} {
		r := e.get(t, tc.path)
		if r.code != http.StatusOK || r.body != tc.want {
			t.Errorf("GET %s = %d %q, want 200 %q", tc.path, r.code, r.body, tc.want)
		}
	}

	// Without a root route, an unmatched path is a JSON 404 listing the
	// prefixes.
	if err := e.p.SetRoutes([]Route{
		{Prefix: "/shop", App: "shop", Deployment: "Shop", Replicas: []Replica{shop.desc(0)}},
		{Prefix: "/api", App: "api", Deployment: "Api", Replicas: []Replica{cart.desc(0)}},
	}); err != nil {
		t.Fatal(err)
	}
	r := e.get(t, "/shopping")
	if r.code != http.StatusNotFound {
		t.Fatalf("GET /shopping = %d %q, want 404", r.code, r.body)
	}
	er := decodeError(t, r.body)
	if strings.Join(er.Routes, ",") != "/api,/shop" || !strings.Contains(er.Error, `"/shopping"`) || er.RequestID == "" {
		t.Errorf("404 body = %+v", er)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("404 Content-Type = %q", ct)
	}
}

func TestHealthAndRoutesEndpoints(t *testing.T) {
	rep := newReplica(t, "r", nil)
	e := newEnv(t, Options{})
	if r := e.get(t, "/-/healthz"); r.code != http.StatusServiceUnavailable || r.body != "routing table not received yet" {
		t.Errorf("healthz before SetRoutes = %d %q", r.code, r.body)
	}
	if r := e.get(t, "/x"); r.code != http.StatusNotFound {
		t.Errorf("GET /x before SetRoutes = %d", r.code)
	}
	if err := e.p.SetRoutes([]Route{
		{Prefix: "/a", App: "appA", Deployment: "D", Replicas: []Replica{rep.desc(0)}},
		{Prefix: "/b/c", App: "appB", Deployment: "D"},
	}); err != nil {
		t.Fatal(err)
	}
	if r := e.get(t, "/-/healthz"); r.code != http.StatusOK || r.body != "ok" {
		t.Errorf("healthz = %d %q, want 200 ok", r.code, r.body)
	}
	r := e.get(t, "/-/routes")
	var routes map[string]string
	if err := json.Unmarshal([]byte(r.body), &routes); err != nil || r.code != http.StatusOK {
		t.Fatalf("routes = %d %q: %v", r.code, r.body, err)
	}
	if len(routes) != 2 || routes["/a"] != "appA" || routes["/b/c"] != "appB" {
		t.Errorf("routes = %v", routes)
	}
	if r := e.do(context.Background(), http.MethodPost, "/-/healthz", nil, nil); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST healthz = %d", r.code)
	}
	e.p.Close()
	if r := e.get(t, "/-/healthz"); r.code != http.StatusServiceUnavailable || r.body != "proxy is closed" {
		t.Errorf("healthz after Close = %d %q", r.code, r.body)
	}
	if r := e.get(t, "/a"); r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
		t.Errorf("GET /a after Close = %d %q", r.code, r.body)
	}
	if err := e.p.SetRoutes(nil); err != ErrClosed {
		t.Errorf("SetRoutes after Close = %v, want ErrClosed", err)
	}
}

func TestPowerOfTwoSpreadsLoad(t *testing.T) {
	reps := []*replica{newReplica(t, "r1", nil), newReplica(t, "r2", nil), newReplica(t, "r3", nil)}
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d",
		Replicas: []Replica{reps[0].desc(100), reps[1].desc(100), reps[2].desc(100)}})
	const workers, each = 6, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				r := e.do(context.Background(), http.MethodGet, "/x", nil, nil)
				if r.err != nil || r.code != http.StatusOK {
					errs <- fmt.Errorf("%d %q %v", r.code, r.body, r.err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const total = workers * each
	for _, r := range reps {
		// Uniform would be 1/3 each; pow-2 with ties broken at random
		// stays close. 15% is far outside chance for a fair spread.
		if n := r.served.Load(); n < total*15/100 {
			t.Errorf("replica %s served %d of %d requests", r.id, n, total)
		}
	}
}

func TestLocalReplicasPreferred(t *testing.T) {
	local, remote := newReplica(t, "local", nil), newReplica(t, "remote", nil)
	rl, rr := local.desc(0), remote.desc(0)
	rl.Node, rr.Node = "n1", "n2"
	e := newEnv(t, Options{NodeID: "n1"}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rr, rl}})
	for range 20 {
		if r := e.get(t, "/"); r.body != "local /" {
			t.Fatalf("GET / = %q, want the local replica", r.body)
		}
	}
}

func TestMaxOngoingRequestsRespected(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		io.WriteString(w, "done")
	}
	a, b := newReplica(t, "a", slow), newReplica(t, "b", slow)
	const limit = 2
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d",
		Replicas: []Replica{a.desc(limit), b.desc(limit)}})
	const n = 24
	var wg sync.WaitGroup
	codes := make(chan int, n)
	var peakInFlight, peakQueued int
	var mu sync.Mutex
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := stats(e.p, "/")
			mu.Lock()
			peakInFlight, peakQueued = max(peakInFlight, s.InFlight), max(peakQueued, s.Queued)
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	})
	for range n {
		wg.Go(func() { codes <- e.do(context.Background(), http.MethodGet, "/", nil, nil).code })
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("got %d, want 200 (queue is unbounded)", c)
		}
	}
	for _, r := range []*replica{a, b} {
		if p := r.peak.Load(); p > limit {
			t.Errorf("replica %s served %d requests at once, limit %d", r.id, p, limit)
		}
	}
	if peakInFlight > 2*limit || peakQueued == 0 {
		t.Errorf("peak in flight %d (limit %d), peak queued %d (want > 0)", peakInFlight, 2*limit, peakQueued)
	}
}

func TestBackPressure(t *testing.T) {
	g := newGate()
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) { <-g.ch; io.WriteString(w, "ok") })
	e := newEnv(t, Options{RetryAfter: 3 * time.Second}, Route{Prefix: "/", App: "app", Deployment: "Slow",
		MaxQueuedRequests: 2, Replicas: []Replica{rep.desc(1)}})
	ctx := context.Background()
	first := e.asyncDo(ctx, http.MethodGet, "/")
	eventually(t, "one in flight", func() bool { return stats(e.p, "/").InFlight == 1 })
	queued := []<-chan result{e.asyncDo(ctx, http.MethodGet, "/"), e.asyncDo(ctx, http.MethodGet, "/")}
	eventually(t, "two queued", func() bool { return stats(e.p, "/").Queued == 2 })

	r := e.get(t, "/")
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "3" {
		t.Fatalf("beyond the queue: %d Retry-After %q %q, want 503 Retry-After 3", r.code, r.header.Get("Retry-After"), r.body)
	}
	er := decodeError(t, r.body)
	if er.Deployment != "Slow" || er.App != "app" || er.MaxQueuedRequests != 2 ||
		!strings.Contains(er.Error, "app/Slow") || !strings.Contains(er.Error, "max_queued_requests=2") {
		t.Errorf("503 body = %+v", er)
	}
	g.open()
	for _, ch := range append(queued, first) {
		if r := <-ch; r.err != nil || r.code != http.StatusOK {
			t.Errorf("queued request: %d %v", r.code, r.err)
		}
	}
	if rep.peak.Load() > 1 {
		t.Errorf("replica peak concurrency %d, want 1", rep.peak.Load())
	}
}

func TestNoReplicas(t *testing.T) {
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "app", Deployment: "Zero", RequestTimeout: 100 * time.Millisecond})
	start := time.Now()
	r := e.get(t, "/")
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("answered after %s, before the 100ms request timeout", took)
	}
	er := decodeError(t, r.body)
	if r.code != http.StatusServiceUnavailable || er.Error != "no replicas of app/Zero are running (waited 100ms)" ||
		r.header.Get("Retry-After") != "1" {
		t.Errorf("got %d %+v Retry-After %q", r.code, er, r.header.Get("Retry-After"))
	}

	// Scale from zero: a request waits until a replica appears.
	rep := newReplica(t, "r", nil)
	e.p.SetRoutes([]Route{{Prefix: "/", App: "app", Deployment: "Zero", RequestTimeout: 5 * time.Second}})
	ch := e.asyncDo(context.Background(), http.MethodGet, "/up")
	eventually(t, "a queued request", func() bool { return stats(e.p, "/").Queued == 1 })
	if err := e.p.SetRoutes([]Route{{Prefix: "/", App: "app", Deployment: "Zero", RequestTimeout: 5 * time.Second,
		Replicas: []Replica{rep.desc(0)}}}); err != nil {
		t.Fatal(err)
	}
	if r := <-ch; r.code != http.StatusOK || r.body != "r /up" {
		t.Errorf("after scale-up: %d %q", r.code, r.body)
	}
}

func TestRequestTimeout(t *testing.T) {
	g := newGate()
	defer g.open()
	rep := newReplica(t, "stuck", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-g.ch:
		case <-r.Context().Done():
		}
	})
	e := newEnv(t, Options{RequestTimeout: 80 * time.Millisecond},
		Route{Prefix: "/", App: "app", Deployment: "D", Replicas: []Replica{rep.desc(1)}})

	// Waiting on the replica.
	r := e.get(t, "/")
	er := decodeError(t, r.body)
	if r.code != http.StatusGatewayTimeout || er.Replica != "stuck" || !strings.Contains(er.Error, "80ms") {
		t.Fatalf("got %d %+v, want 504 naming replica stuck", r.code, er)
	}
	eventually(t, "the slot freed", func() bool { return stats(e.p, "/").InFlight == 0 })

	// Waiting in the queue behind a lease that holds the only slot.
	hold, err := e.p.table.Load().byPrefix["/"].dep.rt.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()
	r = e.get(t, "/")
	er = decodeError(t, r.body)
	if r.code != http.StatusGatewayTimeout || !strings.Contains(er.Error, "no replica became free") {
		t.Errorf("queued: got %d %+v, want 504", r.code, er)
	}
}

// hijackAndClose is a replica that dies mid-request: it reads the
// request and drops the connection without answering.
func hijackAndClose(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

func TestReplicaDiesMidRequest(t *testing.T) {
	dead := newReplica(t, "r-dead", hijackAndClose)
	alive := newReplica(t, "r-alive", nil)
	routes := []Route{{Prefix: "/", App: "app", Deployment: "D", Replicas: []Replica{dead.desc(0), alive.desc(0)}}}

	t.Run("502 naming the replica, no retry of POST", func(t *testing.T) {
		e := newEnv(t, Options{RetryIdempotent: true, Rand: zeroRand{}}, routes...)
		r := e.do(context.Background(), http.MethodPost, "/buy", strings.NewReader("order"), nil)
		if r.err != nil {
			t.Fatal(r.err)
		}
		er := decodeError(t, r.body)
		if r.code != http.StatusBadGateway || er.Replica != "r-dead" || !strings.Contains(er.Error, "replica r-dead failed") {
			t.Fatalf("got %d %+v, want 502 naming r-dead", r.code, er)
		}
		if n := alive.served.Load(); n != 0 {
			t.Errorf("POST was retried on r-alive (%d requests)", n)
		}
		eventually(t, "the slot freed", func() bool { return stats(e.p, "/").InFlight == 0 })
		// The failed replica is avoided afterwards.
		if r := e.do(context.Background(), http.MethodPost, "/buy", strings.NewReader("order"), nil); r.code != http.StatusOK {
			t.Errorf("next POST = %d %q, want 200 from r-alive", r.code, r.body)
		}
	})
	t.Run("GET retried once on another replica", func(t *testing.T) {
		before := dead.served.Load()
		e := newEnv(t, Options{RetryIdempotent: true, Rand: zeroRand{}}, routes...)
		r := e.get(t, "/item")
		if r.code != http.StatusOK || r.body != "r-alive /item" {
			t.Fatalf("got %d %q, want 200 from r-alive", r.code, r.body)
		}
		if dead.served.Load() != before+1 {
			t.Errorf("r-dead saw %d requests, want 1", dead.served.Load()-before)
		}
	})
	t.Run("no retry without the option", func(t *testing.T) {
		e := newEnv(t, Options{Rand: zeroRand{}}, routes...)
		if r := e.get(t, "/item"); r.code != http.StatusBadGateway {
			t.Errorf("got %d %q, want 502", r.code, r.body)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		gone := newReplica(t, "r-gone", nil)
		gone.srv.Close()
		e := newEnv(t, Options{}, Route{Prefix: "/", App: "app", Deployment: "D", Replicas: []Replica{gone.desc(0)}})
		r := e.get(t, "/")
		if er := decodeError(t, r.body); r.code != http.StatusBadGateway || er.Replica != "r-gone" {
			t.Errorf("got %d %+v", r.code, er)
		}
	})
}

func TestStreaming(t *testing.T) {
	g := newGate()
	defer g.open()
	finished := make(chan struct{})
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		defer close(finished)
		io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		<-g.ch
		io.WriteString(w, "second\n")
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	resp, err := e.client.Get(e.srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	select {
	case <-finished:
		t.Fatal("handler finished before the client read the first chunk")
	default:
	}
	if s := stats(e.p, "/"); s.InFlight != 1 {
		t.Errorf("in flight while streaming = %d, want 1 (the lease is held)", s.InFlight)
	}
	g.open()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	eventually(t, "the lease released", func() bool { return stats(e.p, "/").InFlight == 0 })
}

func TestRequestBodyStreamed(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d", r.Method, len(b))
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 100 {
			pw.Write(make([]byte, 10000))
		}
		pw.Close()
	})
	r := e.do(context.Background(), http.MethodPut, "/upload", pr, nil)
	wg.Wait()
	if r.code != http.StatusOK || r.body != "PUT 1000000" {
		t.Errorf("got %d %q", r.code, r.body)
	}
}

func TestRequestID(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get(HeaderRequestID))
		mu.Unlock()
		w.Header().Set(HeaderRequestID, "replica-own") // replaced by the proxy's
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	last := func() string { mu.Lock(); defer mu.Unlock(); return seen[len(seen)-1] }

	r := e.do(context.Background(), http.MethodGet, "/", nil, http.Header{HeaderRequestID: {"client-id-42"}})
	if got := r.header.Values(HeaderRequestID); len(got) != 1 || got[0] != "client-id-42" || last() != "client-id-42" {
		t.Errorf("client id: response %q, replica saw %q", got, last())
	}
	var generated []string
	for _, hdr := range []http.Header{nil, {HeaderRequestID: {"has space"}}, {HeaderRequestID: {strings.Repeat("x", MaxRequestIDLen+1)}}} {
		r := e.do(context.Background(), http.MethodGet, "/", nil, hdr)
		got := r.header.Values(HeaderRequestID)
		if len(got) != 1 || !validRequestID(got[0]) || got[0] != last() {
			t.Errorf("sent %v: response id %q, replica saw %q", hdr, got, last())
		}
		generated = append(generated, got[0])
	}
	if generated[0] == generated[1] || generated[1] == generated[2] {
		t.Errorf("generated ids repeat: %q", generated)
	}
	// Responses the proxy makes itself carry it too.
	r = e.do(context.Background(), http.MethodGet, "/", nil, http.Header{HeaderRequestID: {"id-1"}})
	e.p.SetRoutes([]Route{{Prefix: "/x", App: "a", Deployment: "d"}})
	r = e.do(context.Background(), http.MethodGet, "/", nil, http.Header{HeaderRequestID: {"id-404"}})
	if r.header.Get(HeaderRequestID) != "id-404" || decodeError(t, r.body).RequestID != "id-404" {
		t.Errorf("404: header %q body %q", r.header.Get(HeaderRequestID), r.body)
	}
}

func TestForwardedHeaders(t *testing.T) {
	var got http.Header
	var host string
	var mu sync.Mutex
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got, host = r.Header.Clone(), r.Host
		mu.Unlock()
	})
	hdrs := func() (http.Header, string) { mu.Lock(); defer mu.Unlock(); return got, host }
	route := Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}}
	forged := http.Header{"X-Raygo-Token": {"forged"}, "X-Forwarded-For": {"10.0.0.9"}, HeaderForwardedPrefix: {"/evil"}}

	e := newEnv(t, Options{UpstreamHeaders: http.Header{"x-raygo-token": {"s3cret"}}}, route)
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/p", nil)
	req.Host = "shop.example"
	for k, v := range forged {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h, hst := hdrs()
	if v := h.Values("X-Raygo-Token"); len(v) != 1 || v[0] != "s3cret" {
		t.Errorf("token header %q, want the proxy's only", v)
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Host") != "shop.example" ||
		h.Get("X-Forwarded-Proto") != "http" || hst != "shop.example" {
		t.Errorf("forwarded: For %q Host %q Proto %q, Host header %q",
			h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Host"), h.Get("X-Forwarded-Proto"), hst)
	}
	if _, ok := h[HeaderForwardedPrefix]; ok {
		t.Errorf("X-Forwarded-Prefix %q passed on for the root route", h.Get(HeaderForwardedPrefix))
	}

	trusted := newEnv(t, Options{TrustForwardedFor: true}, route)
	r := trusted.do(context.Background(), http.MethodGet, "/", nil, http.Header{"X-Forwarded-For": {"10.0.0.9"}})
	if h, _ := hdrs(); r.code != http.StatusOK || h.Get("X-Forwarded-For") != "10.0.0.9, 127.0.0.1" {
		t.Errorf("trusted X-Forwarded-For = %q", h.Get("X-Forwarded-For"))
	}
}

func TestClientDisconnectReleasesSlot(t *testing.T) {
	canceled := make(chan struct{}, 1)
	started := make(chan struct{}, 1)
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			return
		}
		started <- struct{}{}
		<-r.Context().Done()
		canceled <- struct{}{}
	})
	obs := &recorder{}
	e := newEnv(t, Options{Observer: obs}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(1)}})

	ctx, cancel := context.WithCancel(context.Background())
	inFlight := e.asyncDo(ctx, http.MethodGet, "/slow")
	<-started
	qctx, qcancel := context.WithCancel(context.Background())
	queued := e.asyncDo(qctx, http.MethodGet, "/fast")
	eventually(t, "one queued", func() bool { return stats(e.p, "/").Queued == 1 })

	qcancel() // a waiting client leaves: it leaves the queue
	if r := <-queued; r.err == nil {
		t.Errorf("canceled queued request got %d", r.code)
	}
	eventually(t, "queue empty", func() bool { return stats(e.p, "/").Queued == 0 })
	cancel() // the client in flight leaves: the upstream request is canceled
	<-inFlight
	<-canceled
	eventually(t, "slot freed", func() bool { return stats(e.p, "/").InFlight == 0 })
	if r := e.get(t, "/fast"); r.code != http.StatusOK {
		t.Errorf("next request = %d, want 200 (no slot leaked)", r.code)
	}
	eventually(t, "observer saw 499s", func() bool {
		return obs.count(StatusClientClosedRequest) == 2 && obs.count(http.StatusOK) == 1
	})
}

func TestSetRoutesWhileInFlight(t *testing.T) {
	g := newGate()
	defer g.open()
	a := newReplica(t, "a", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-g.ch
		}
		io.WriteString(w, "a")
	})
	b := newReplica(t, "b", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "b") })
	route := func(reps ...Replica) Route {
		return Route{Prefix: "/", App: "app", Deployment: "D", Replicas: reps}
	}
	e := newEnv(t, Options{}, route(a.desc(10)))
	var pending []<-chan result
	for range 3 {
		pending = append(pending, e.asyncDo(context.Background(), http.MethodGet, "/slow"))
	}
	eventually(t, "3 in flight on a", func() bool { return a.cur.Load() == 3 })

	draining := a.desc(10)
	draining.State = router.Draining
	if err := e.p.SetRoutes([]Route{route(draining, b.desc(10))}); err != nil {
		t.Fatal(err)
	}
	if s := stats(e.p, "/"); s.InFlight != 3 || s.Running != 1 {
		t.Errorf("after SetRoutes: in flight %d running %d, want 3 and 1 (router kept)", s.InFlight, s.Running)
	}
	for range 10 {
		if r := e.get(t, "/fast"); r.body != "b" {
			t.Fatalf("new request served by %q, want b (a is draining)", r.body)
		}
	}
	g.open()
	for _, ch := range pending {
		if r := <-ch; r.code != http.StatusOK || r.body != "a" {
			t.Errorf("draining replica's request: %d %q %v", r.code, r.body, r.err)
		}
	}
	if err := e.p.SetRoutes([]Route{route(b.desc(10))}); err != nil {
		t.Fatal(err)
	}
	if s := stats(e.p, "/"); s.InFlight != 0 || len(s.Replicas) != 1 {
		t.Errorf("after removing a: %+v", s)
	}
}

func TestQueuedRequestsRerouted(t *testing.T) {
	g := newGate()
	defer g.open()
	busy := newReplica(t, "busy", func(w http.ResponseWriter, r *http.Request) { <-g.ch })
	free := newReplica(t, "free", nil)
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "app", Deployment: "D", Replicas: []Replica{busy.desc(1)}})
	first := e.asyncDo(context.Background(), http.MethodGet, "/1")
	eventually(t, "busy in flight", func() bool { return stats(e.p, "/").InFlight == 1 })
	queued := e.asyncDo(context.Background(), http.MethodGet, "/2")
	eventually(t, "one queued", func() bool { return stats(e.p, "/").Queued == 1 })

	// A new queue bound takes a new router: the waiter moves to it and
	// finds the new replica.
	if err := e.p.SetRoutes([]Route{{Prefix: "/", App: "app", Deployment: "D", MaxQueuedRequests: 5,
		Replicas: []Replica{busy.desc(1), free.desc(1)}}}); err != nil {
		t.Fatal(err)
	}
	if r := <-queued; r.code != http.StatusOK || r.body != "free /2" {
		t.Errorf("rerouted request: %d %q", r.code, r.body)
	}

	// The old router's lease on busy still counts (carried over), so a
	// request for busy alone waits; a route removed under it answers 404.
	if err := e.p.SetRoutes([]Route{{Prefix: "/", App: "app", Deployment: "D", MaxQueuedRequests: 5,
		Replicas: []Replica{busy.desc(1)}}}); err != nil {
		t.Fatal(err)
	}
	waiting := e.asyncDo(context.Background(), http.MethodGet, "/3")
	eventually(t, "one queued", func() bool { return stats(e.p, "/").Queued == 1 })
	if busy.cur.Load() != 1 {
		t.Errorf("busy serves %d requests, limit 1", busy.cur.Load())
	}
	if err := e.p.SetRoutes([]Route{{Prefix: "/other", App: "o", Deployment: "O"}}); err != nil {
		t.Fatal(err)
	}
	if r := <-waiting; r.code != http.StatusNotFound {
		t.Errorf("request waiting on a removed route: %d %q, want 404", r.code, r.body)
	}
	g.open()
	if r := <-first; r.code != http.StatusOK {
		t.Errorf("in-flight request: %d %q", r.code, r.body)
	}
}

// recorder is an Observer that keeps what it hears.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

type call struct {
	app, deployment, route string
	code                   int
	took                   time.Duration
	id                     string
}

func (r *recorder) RequestDone(i RequestInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{i.App, i.Deployment, i.Route, i.Code, i.Took, i.RequestID})
}

func (r *recorder) count(code int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c.code == code {
			n++
		}
	}
	return n
}

func TestObserverAndStats(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	obs := &recorder{}
	e := newEnv(t, Options{Observer: obs},
		Route{Prefix: "/tea", App: "shop", Deployment: "Pot", Replicas: []Replica{rep.desc(3)}},
		Route{Prefix: "/none", App: "shop", Deployment: "Zero", RequestTimeout: time.Millisecond})
	e.do(context.Background(), http.MethodGet, "/tea/green", nil, http.Header{HeaderRequestID: {"req-1"}})
	e.get(t, "/nowhere")
	e.get(t, "/none")
	e.get(t, "/-/healthz")
	eventually(t, "three calls", func() bool { obs.mu.Lock(); defer obs.mu.Unlock(); return len(obs.calls) == 3 })
	obs.mu.Lock()
	calls := append([]call(nil), obs.calls...)
	obs.mu.Unlock()
	want := []call{
		{app: "shop", deployment: "Pot", route: "/tea", code: http.StatusTeapot, id: "req-1"},
		{code: http.StatusNotFound},
		{app: "shop", deployment: "Zero", route: "/none", code: http.StatusServiceUnavailable},
	}
	for i, w := range want {
		c := calls[i]
		if c.app != w.app || c.deployment != w.deployment || c.route != w.route || c.code != w.code ||
			(w.id != "" && c.id != w.id) || c.id == "" || c.took <= 0 {
			t.Errorf("call %d = %+v, want %+v", i, c, w)
		}
	}
	st := e.p.Stats()
	if len(st) != 2 || st[0].Route != "/none" || st[1].Route != "/tea" || st[1].App != "shop" ||
		st[1].Deployment != "Pot" || len(st[1].Replicas) != 1 || st[1].Replicas[0].MaxOngoingRequests != 3 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestSetRoutesRejectsAndKeepsTable(t *testing.T) {
	rep := newReplica(t, "r", nil)
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	err := e.p.SetRoutes([]Route{{Prefix: "/x/", App: "a", Deployment: "d"}})
	if err == nil || !strings.Contains(err.Error(), `routes[0] (/x/): Prefix: prefix "/x/" ends with "/"`) {
		t.Fatalf("got %v", err)
	}
	if r := e.get(t, "/y"); r.code != http.StatusOK {
		t.Errorf("old table lost: %d", r.code)
	}
}
