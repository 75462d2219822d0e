package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// memKV is a KV in memory: the control store's KV stand-in for the token
// table's unit tests (the head test uses the real one).
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

const cluster = "cluster-token-0123456789abcdef"

func TestTokens(t *testing.T) {
	ctx := context.Background()
	kv := &memKV{}
	tk, err := NewTokens(ctx, cluster, kv)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := tk.Check(cluster); !ok || p.Scope != ScopeAdmin || p.Name != ClusterPrincipal {
		t.Fatalf("cluster token: %v %v", p, ok)
	}
	for _, bad := range []string{"", "x", cluster + "x", strings.ToUpper(cluster)} {
		if _, ok := tk.Check(bad); ok {
			t.Fatalf("token %q accepted", bad)
		}
	}
	ro, err := tk.Create(ctx, "grafana", ScopeRead, false)
	if err != nil {
		t.Fatal(err)
	}
	rw, err := tk.Create(ctx, "ci", ScopeWrite, false)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := tk.Check(ro); !ok || p != (Principal{"grafana", ScopeRead}) {
		t.Fatalf("read token: %v %v", p, ok)
	}
	if p, ok := tk.Check(rw); !ok || p != (Principal{"ci", ScopeWrite}) {
		t.Fatalf("write token: %v %v", p, ok)
	}
	for _, c := range []struct {
		name  string
		scope Scope
		want  string
	}{
		{"ci", ScopeRead, "exists"},
		{"cluster", ScopeRead, "not"},
		{"", ScopeRead, "use 1-64"},
		{"a b", ScopeRead, "use 1-64"},
		{"admin", ScopeAdmin, "scope must be read or write"},
	} {
		if _, err := tk.Create(ctx, c.name, c.scope, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Create(%q, %s) = %v, want an error with %q", c.name, c.scope, err, c.want)
		}
	}
	// Rotation: a new secret, the old one refused.
	rw2, err := tk.Create(ctx, "ci", ScopeWrite, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.Check(rw); ok {
		t.Fatal("the rotated token's old secret still works")
	}
	if _, ok := tk.Check(rw2); !ok {
		t.Fatal("the rotated token's new secret is refused")
	}
	// The table is kept in the KV, hashed: a new table reads it back.
	raw, _, _ := kv.Get(ctx, tokensKey)
	if strings.Contains(string(raw), ro) || strings.Contains(string(raw), rw2) {
		t.Fatal("a secret is stored in the clear")
	}
	tk2, err := NewTokens(ctx, cluster, kv)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := tk2.Check(rw2); !ok || p.Name != "ci" {
		t.Fatalf("reloaded table: %v %v", p, ok)
	}
	if err := tk2.Revoke(ctx, "ci"); err != nil {
		t.Fatal(err)
	}
	if _, ok := tk2.Check(rw2); ok {
		t.Fatal("a revoked token still works")
	}
	if err := tk2.Revoke(ctx, "ci"); err == nil {
		t.Fatal("revoking twice succeeded")
	}
	if got := tk2.List(); len(got) != 1 || got[0].Name != "grafana" || got[0].Scope != "read" {
		t.Fatalf("List = %v", got)
	}
}

func testServer(t *testing.T) (*Server, string, string) {
	t.Helper()
	ctx := context.Background()
	tk, err := NewTokens(ctx, cluster, &memKV{})
	if err != nil {
		t.Fatal(err)
	}
	ro, _ := tk.Create(ctx, "viewer", ScopeRead, false)
	rw, _ := tk.Create(ctx, "ci", ScopeWrite, false)
	s, err := New(Config{AuditPath: filepath.Join(t.TempDir(), "audit.log"), AllowedOrigins: []string{"https://ops.example.com"}}, tk)
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("GET /api/thing", ScopeRead, func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, Who(r.Context())) })
	s.Handle("POST /api/thing", ScopeRead, func(w http.ResponseWriter, r *http.Request) { // raised to write
		s.Audit().Record(r, Who(r.Context()), "thing.change", "thing", "ok")
		WriteJSON(w, Who(r.Context()))
	})
	t.Cleanup(s.Close)
	return s, ro, rw
}

type req struct {
	method, path, bearer, origin, cookie, csrf, body string
}

func (q req) do(t *testing.T, s *Server) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(q.method, "http://127.0.0.1:8265"+q.path, strings.NewReader(q.body))
	r.Host = "127.0.0.1:8265"
	if q.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.origin != "" {
		r.Header.Set("Origin", q.origin)
	}
	if q.cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: q.cookie})
	}
	if q.csrf != "" {
		r.Header.Set(CSRFHeader, q.csrf)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestGuard(t *testing.T) {
	s, ro, rw := testServer(t)
	for _, c := range []struct {
		name string
		req  req
		want int
	}{
		{"no token", req{method: "GET", path: "/api/thing"}, 401},
		{"wrong token", req{method: "GET", path: "/api/thing", bearer: "nope"}, 401},
		{"read token reads", req{method: "GET", path: "/api/thing", bearer: ro}, 200},
		{"read token may not change", req{method: "POST", path: "/api/thing", bearer: ro}, 403},
		{"write token changes", req{method: "POST", path: "/api/thing", bearer: rw}, 200},
		{"cluster token changes", req{method: "POST", path: "/api/thing", bearer: cluster}, 200},
		{"foreign origin refused even with a token", req{method: "GET", path: "/api/thing", bearer: cluster, origin: "http://evil.example"}, 403},
		{"own origin", req{method: "GET", path: "/api/thing", bearer: ro, origin: "http://127.0.0.1:8265"}, 200},
		{"allowed origin", req{method: "GET", path: "/api/thing", bearer: ro, origin: "https://ops.example.com"}, 200},
		{"write token may not manage tokens", req{method: "GET", path: "/api/tokens", bearer: rw}, 403},
		{"cluster token manages tokens", req{method: "GET", path: "/api/tokens", bearer: cluster}, 200},
		{"unknown session", req{method: "GET", path: "/api/thing", cookie: "forged"}, 401},
	} {
		if got := c.req.do(t, s); got.Code != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, got.Code, c.want, got.Body.String())
		}
	}
}

func TestDashboardSession(t *testing.T) {
	s, ro, rw := testServer(t)
	login := func(tok, origin string) (*httptest.ResponseRecorder, string, string) {
		w := req{method: "POST", path: "/api/login", body: `{"token":"` + tok + `"}`, origin: origin}.do(t, s)
		var reply LoginReply
		_ = json.Unmarshal(w.Body.Bytes(), &reply)
		for _, c := range w.Result().Cookies() {
			if c.Name == SessionCookie {
				if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
					t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict", c)
				}
				return w, c.Value, reply.CSRF
			}
		}
		return w, "", reply.CSRF
	}
	if w, c, _ := login("wrong", ""); w.Code != 401 || c != "" {
		t.Fatalf("login with a wrong token: %d, cookie %q", w.Code, c)
	}
	if w, c, _ := login(rw, "http://evil.example"); w.Code != 403 || c != "" {
		t.Fatalf("login from a foreign origin: %d, cookie %q", w.Code, c)
	}
	_, cookie, csrf := login(rw, "http://127.0.0.1:8265")
	if cookie == "" || csrf == "" {
		t.Fatal("no session")
	}
	for _, c := range []struct {
		name string
		req  req
		want int
	}{
		{"session reads", req{method: "GET", path: "/api/thing", cookie: cookie}, 200},
		{"session change without CSRF", req{method: "POST", path: "/api/thing", cookie: cookie}, 403},
		{"session change with a wrong CSRF", req{method: "POST", path: "/api/thing", cookie: cookie, csrf: "x"}, 403},
		{"session change with CSRF", req{method: "POST", path: "/api/thing", cookie: cookie, csrf: csrf}, 200},
	} {
		if got := c.req.do(t, s); got.Code != c.want {
			t.Errorf("%s: status %d, want %d (%s)", c.name, got.Code, c.want, got.Body.String())
		}
	}
	if w := (req{method: "GET", path: "/api/whoami", cookie: cookie}).do(t, s); !strings.Contains(w.Body.String(), csrf) {
		t.Errorf("whoami does not give the session's CSRF token back: %s", w.Body.String())
	}
	// Rotating the token ends its sessions.
	if _, err := s.Tokens().Create(context.Background(), "ci", ScopeWrite, true); err != nil {
		t.Fatal(err)
	}
	if w := (req{method: "GET", path: "/api/thing", cookie: cookie}).do(t, s); w.Code != 401 {
		t.Fatalf("a session of a rotated token: %d", w.Code)
	}
	// A read-only session stays read-only.
	_, rc, rcsrf := login(ro, "")
	if w := (req{method: "POST", path: "/api/thing", cookie: rc, csrf: rcsrf}).do(t, s); w.Code != 403 {
		t.Fatalf("read-only session changed something: %d", w.Code)
	}
}

func TestAuditLog(t *testing.T) {
	s, ro, rw := testServer(t)
	req{method: "POST", path: "/api/thing", bearer: rw}.do(t, s)
	req{method: "POST", path: "/api/thing", bearer: ro}.do(t, s)
	req{method: "POST", path: "/api/thing"}.do(t, s)
	req{method: "POST", path: "/api/tokens", bearer: cluster, body: `{"name":"new","scope":"read"}`}.do(t, s)
	got := s.Audit().Recent()
	want := []struct{ who, action, outcome string }{
		{"ci", "thing.change", "ok"},
		{"viewer", "denied", "scope read"},
		{"(none)", "denied", "unauthenticated"},
		{"cluster", "token.create", "ok"},
	}
	if len(got) != len(want) {
		t.Fatalf("audit has %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Who != w.who || got[i].Action != w.action || got[i].Outcome != w.outcome {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], w)
		}
	}
	s.Close()
	raw, err := os.ReadFile(s.cfg.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), "\n"); n != len(want) {
		t.Fatalf("audit file has %d lines, want %d", n, len(want))
	}
	if st, _ := os.Stat(s.cfg.AuditPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("audit file mode %v, want 0600", st.Mode().Perm())
	}
}
