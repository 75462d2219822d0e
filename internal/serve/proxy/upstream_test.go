package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCleanQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"a=1&b=2", "a=1&b=2"},
		{"b=2&a=1", "b=2&a=1"}, // passed on as it came, not sorted
		{"q=%20x", "q=%20x"},
		{"a=1;b=2", ""},                // ';' is not a separator: the pair is dropped
		{"a=1&b=2;c=3", "a=1"},         // what parses is kept, re-encoded
		{"q=%zz&a=1", "a=1"},           // a malformed escape
		{"q=%2", ""},                   // a truncated escape
		{"x=%41&y=%4", "x=A"},          // re-encoded: %41 becomes A
		{"flag&k=v", "flag&k=v"},       // a key without value passes
		{"k=v%26w", "k=v%26w"},         // an escaped '&' stays escaped
		{"k=%E2%82%AC", "k=%E2%82%AC"}, // UTF-8 escapes pass
	} {
		if got := cleanQuery(tc.in); got != tc.want {
			t.Errorf("cleanQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsEventStream(t *testing.T) {
	for _, tc := range []struct {
		ct   []string
		want bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"text/event-stream"}, true},
		{[]string{"Text/Event-Stream"}, true},
		{[]string{" text/event-stream; charset=utf-8"}, true},
		{[]string{"text/event-stream ;x=y"}, true},
		{[]string{"text/event-streams"}, false},
		{[]string{"text/event"}, false},
		{[]string{"application/json", "text/event-stream"}, false}, // the first value counts
	} {
		if got := isEventStream(tc.ct); got != tc.want {
			t.Errorf("isEventStream(%q) = %v, want %v", tc.ct, got, tc.want)
		}
	}
}

func TestHeaderHasToken(t *testing.T) {
	for _, tc := range []struct {
		vs    []string
		token string
		want  bool
	}{
		{nil, "upgrade", false},
		{[]string{"Upgrade"}, "upgrade", true},
		{[]string{"keep-alive, Upgrade"}, "upgrade", true},
		{[]string{"keep-alive", " upgrade "}, "upgrade", true},
		{[]string{"upgrades"}, "upgrade", false},
		{[]string{"trailers, deflate"}, "trailers", true},
		{[]string{""}, "trailers", false},
	} {
		if got := headerHasToken(tc.vs, tc.token); got != tc.want {
			t.Errorf("headerHasToken(%q, %q) = %v, want %v", tc.vs, tc.token, got, tc.want)
		}
	}
}

func TestDirectPathChoice(t *testing.T) {
	u := func(s string) *url.URL { v, _ := url.Parse(s); return v }
	body := io.NopCloser(strings.NewReader("x"))
	for _, tc := range []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"GET", &http.Request{URL: u("http://r:1/"), Header: http.Header{}}, true},
		{"small body", &http.Request{URL: u("http://r:1/"), Header: http.Header{}, Body: body, ContentLength: 100}, true},
		{"body at the bound", &http.Request{URL: u("http://r:1/"), Header: http.Header{}, Body: body, ContentLength: maxDirectBody}, true},
		{"body past the bound", &http.Request{URL: u("http://r:1/"), Header: http.Header{}, Body: body, ContentLength: maxDirectBody + 1}, false},
		{"body of unknown length", &http.Request{URL: u("http://r:1/"), Header: http.Header{}, Body: body, ContentLength: -1}, false},
		{"Expect", &http.Request{URL: u("http://r:1/"), Header: http.Header{"Expect": {"100-continue"}}, Body: body, ContentLength: 10}, false},
		{"https", &http.Request{URL: u("https://r:1/"), Header: http.Header{}}, false},
	} {
		if got := direct(tc.req); got != (tc.want && canCheckConns) {
			t.Errorf("%s: direct = %v, want %v", tc.name, got, tc.want && canCheckConns)
		}
	}
}

// TestBodiesBothPaths sends bodies that take the proxy's own connection
// pool (known length up to maxDirectBody) and http.Transport (larger).
func TestBodiesBothPaths(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d %d", r.Method, r.ContentLength, len(b))
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	for _, n := range []int{1, 1000, maxDirectBody, maxDirectBody + 1, 1 << 20} {
		for range 2 { // the second reuses the connection
			r := e.do(context.Background(), http.MethodPost, "/b", strings.NewReader(strings.Repeat("x", n)), nil)
			if want := fmt.Sprintf("POST %d %d", n, n); r.err != nil || r.code != http.StatusOK || r.body != want {
				t.Errorf("POST of %d bytes: %d %q %v, want %q", n, r.code, r.body, r.err, want)
			}
		}
	}
}

// TestStaleConnections: a replica that closes kept-alive connections
// while they are idle costs no request, with or without a body.
func TestStaleConnections(t *testing.T) {
	rep := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d", r.Method, len(b))
	}))
	rep.Config.IdleTimeout = 20 * time.Millisecond
	rep.Start()
	defer rep.Close()
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d",
		Replicas: []Replica{{ID: "r", Node: "n1", URL: rep.URL}}})
	for i := range 4 {
		method, body, want := http.MethodGet, io.Reader(nil), "GET 0"
		if i%2 == 1 {
			method, body, want = http.MethodPost, strings.NewReader("order"), "POST 5"
		}
		if r := e.do(context.Background(), method, "/", body, nil); r.code != http.StatusOK || r.body != want {
			t.Fatalf("request %d after the replica closed idle connections: %d %q %v", i, r.code, r.body, r.err)
		}
		time.Sleep(60 * time.Millisecond) // past the replica's idle timeout
	}
}

// TestStaleConnectionRetry: a kept-alive connection the replica drops
// on the next request, before answering (it closed it just as the proxy
// reused it), costs a request without a body nothing: it is sent again
// on a new connection, as http.Transport does. One with a body is not
// (it may have been seen), and gets 502.
func TestStaleConnectionRetry(t *testing.T) {
	if !canCheckConns {
		t.Skip("the proxy's own connection pool is not used on this platform")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { ln.Close() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Answers the first request of each connection, and drops
			// the connection on the second.
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				http.ReadRequest(br)
			})
		}
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d",
		Replicas: []Replica{{ID: "r", Node: "n1", URL: "http://" + ln.Addr().String()}}})
	for i := range 3 {
		if r := e.get(t, "/"); r.code != http.StatusOK || r.body != "ok" {
			t.Fatalf("GET %d: %d %q, want it sent again on a new connection", i, r.code, r.body)
		}
	}
	r := e.do(context.Background(), http.MethodPost, "/", strings.NewReader("order"), nil)
	if er := decodeError(t, r.body); r.code != http.StatusBadGateway || er.Replica != "r" {
		t.Errorf("POST on a connection the replica dropped: %d %+v, want 502", r.code, er)
	}
}

func TestIdleConnectionsClosedWhenReplicaLeaves(t *testing.T) {
	if !canCheckConns {
		t.Skip("the proxy's own connection pool is not used on this platform")
	}
	a, b := newReplica(t, "a", nil), newReplica(t, "b", nil)
	route := func(reps ...Replica) Route { return Route{Prefix: "/", App: "a", Deployment: "d", Replicas: reps} }
	e := newEnv(t, Options{}, route(a.desc(0)))
	e.get(t, "/")
	idle := func(u string) int {
		e.p.conns.mu.Lock()
		defer e.p.conns.mu.Unlock()
		return len(e.p.conns.idle[strings.TrimPrefix(u, "http://")])
	}
	if n := idle(a.srv.URL); n != 1 {
		t.Fatalf("idle connections to a: %d, want 1", n)
	}
	if err := e.p.SetRoutes([]Route{route(b.desc(0))}); err != nil {
		t.Fatal(err)
	}
	if n := idle(a.srv.URL); n != 0 {
		t.Errorf("idle connections to a after it left: %d, want 0", n)
	}
}

func TestHopByHopHeaders(t *testing.T) {
	var got http.Header
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		h := w.Header()
		h.Set("Connection", "X-Hop")
		h.Set("X-Hop", "replica's")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("X-End", "kept")
		io.WriteString(w, "ok")
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	r := e.do(context.Background(), http.MethodGet, "/", nil, http.Header{
		"Connection":          {"X-Secret"},
		"X-Secret":            {"1"},
		"Proxy-Authorization": {"Basic eDp5"},
		"Te":                  {"trailers"},
		"X-Forwarded-Host":    {"forged"},
		"Forwarded":           {"for=10.0.0.9"},
		"X-End":               {"kept"},
		"User-Agent":          {""}, // the client sends none
	})
	if r.code != http.StatusOK {
		t.Fatalf("got %d %q", r.code, r.body)
	}
	for _, k := range []string{"X-Secret", "Proxy-Authorization", "Forwarded", "Connection"} {
		if v, ok := got[k]; ok {
			t.Errorf("replica got %s: %q", k, v)
		}
	}
	if got.Get("Te") != "trailers" || got.Get("X-End") != "kept" || got.Get("X-Forwarded-Host") == "forged" {
		t.Errorf("replica got Te %q X-End %q X-Forwarded-Host %q", got.Get("Te"), got.Get("X-End"), got.Get("X-Forwarded-Host"))
	}
	if got.Get("User-Agent") != "" {
		t.Errorf("replica got User-Agent %q, want none, as the client sent", got.Get("User-Agent"))
	}
	for _, k := range []string{"X-Hop", "Keep-Alive"} {
		if v, ok := r.header[k]; ok {
			t.Errorf("client got %s: %q", k, v)
		}
	}
	if r.header.Get("X-End") != "kept" {
		t.Errorf("client lost X-End: %v", r.header)
	}
}

func TestTrailersPassedOn(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
		w.Header().Set(http.TrailerPrefix+"X-Late", "unannounced")
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	resp, err := e.client.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "body" {
		t.Fatalf("body %q, %v", b, err)
	}
	if resp.Trailer.Get("X-Checksum") != "abc" || resp.Trailer.Get("X-Late") != "unannounced" {
		t.Errorf("trailers %v", resp.Trailer)
	}
}

func TestInformationalResponsesSkipped(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "final")
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(0)}})
	if r := e.get(t, "/"); r.code != http.StatusOK || r.body != "final" {
		t.Errorf("got %d %q, want 200 final", r.code, r.body)
	}
}

// TestResponseCutOff: a replica that dies in the middle of its body cuts
// the client's response off; the Observer sees 502 and the slot is freed.
func TestResponseCutOff(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "only ten b")
		http.NewResponseController(w).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	})
	obs := &recorder{}
	e := newEnv(t, Options{Observer: obs}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(1)}})
	r := e.do(context.Background(), http.MethodGet, "/", nil, nil)
	if r.err == nil {
		t.Fatalf("got %d %q, want the response cut off", r.code, r.body)
	}
	eventually(t, "the observer's 502", func() bool { return obs.count(http.StatusBadGateway) == 1 })
	eventually(t, "the slot freed", func() bool { return stats(e.p, "/").InFlight == 0 })
}

// TestUpgrade: a protocol upgrade (as WebSocket does) passes through,
// and the two sides then talk over the switched connection.
func TestUpgrade(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" || r.Header.Get("X-Request-Id") == "" {
			http.Error(w, "want Upgrade: echo", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		line, err := brw.ReadString('\n')
		if err == nil {
			io.WriteString(conn, "echo "+line)
		}
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(1)}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %v, %v", resp, err)
	}
	io.WriteString(conn, "hello\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo hello\n" {
		t.Fatalf("over the switched connection: %q, %v", line, err)
	}
	if s := stats(e.p, "/"); s.InFlight != 1 {
		t.Errorf("in flight while upgraded = %d, want 1", s.InFlight)
	}
	conn.Close()
	eventually(t, "the slot freed", func() bool { return stats(e.p, "/").InFlight == 0 })
}

// TestUnaskedSwitchingProtocols: a replica that answers 101 to a request
// that asked for no upgrade gets a 502, and its connection is not reused.
func TestUnaskedSwitchingProtocols(t *testing.T) {
	rep := newReplica(t, "r", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ok" {
			io.WriteString(w, "ok")
			return
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
			conn.Close()
		}
	})
	e := newEnv(t, Options{}, Route{Prefix: "/", App: "a", Deployment: "d", Replicas: []Replica{rep.desc(1)}})
	r := e.get(t, "/switch")
	if er := decodeError(t, r.body); r.code != http.StatusBadGateway || !strings.Contains(er.Error, "101") {
		t.Fatalf("got %d %+v, want 502 naming the 101", r.code, er)
	}
	if !canCheckConns {
		return
	}
	e.p.conns.mu.Lock()
	n := len(e.p.conns.idle[strings.TrimPrefix(rep.srv.URL, "http://")])
	e.p.conns.mu.Unlock()
	if n != 0 {
		t.Errorf("%d idle connections after a 101, want 0", n)
	}
}
