package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// KV is where API tokens are kept: the control store's key-value store,
// so that they survive a head restart on persistent storage.
type KV interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Put(ctx context.Context, key string, value []byte) error
}

// ClusterPrincipal names requests made with the cluster token.
const ClusterPrincipal = "cluster"

// tokensKey is the KV key of the token table.
const tokensKey = "tokens"

// MaxTokens bounds the named API tokens.
const MaxTokens = 1000

var tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// TokenInfo describes a named API token (never its secret).
type TokenInfo struct {
	Name    string    `json:"name"`
	Scope   string    `json:"scope"`
	Created time.Time `json:"created"`
}

type storedToken struct {
	Name    string    `json:"name"`
	Scope   Scope     `json:"scope"`
	Hash    string    `json:"hash"` // sha256 hex of the secret
	Created time.Time `json:"created"`
}

// Tokens is the token table: the cluster token, which may do anything,
// and named API tokens of scope read or write, kept hashed in a KV.
type Tokens struct {
	cluster string
	kv      KV

	mu     sync.Mutex
	byHash map[string]storedToken // guarded by mu
}

// NewTokens loads the token table from kv (nil: in memory only).
func NewTokens(ctx context.Context, clusterToken string, kv KV) (*Tokens, error) {
	t := &Tokens{cluster: clusterToken, kv: kv, byHash: map[string]storedToken{}}
	if kv == nil {
		return t, nil
	}
	raw, ok, err := kv.Get(ctx, tokensKey)
	if err != nil {
		return nil, fmt.Errorf("api: read the token table: %w", err)
	}
	if ok {
		var list []storedToken
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("api: the token table is corrupt: %w", err)
		}
		for _, st := range list {
			t.byHash[st.Hash] = st
		}
	}
	return t, nil
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Check returns the principal a token stands for, or false.
func (t *Tokens) Check(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(t.cluster)) == 1 {
		return Principal{Name: ClusterPrincipal, Scope: ScopeAdmin}, true
	}
	t.mu.Lock()
	st, ok := t.byHash[hashSecret(token)]
	t.mu.Unlock()
	if !ok {
		return Principal{}, false
	}
	return Principal{Name: st.Name, Scope: st.Scope}, true
}

// List returns the named tokens, by name.
func (t *Tokens) List() []TokenInfo {
	t.mu.Lock()
	out := make([]TokenInfo, 0, len(t.byHash))
	for _, st := range t.byHash {
		out = append(out, TokenInfo{Name: st.Name, Scope: st.Scope.String(), Created: st.Created})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Create makes a named token of scope read or write and returns its
// secret, shown once. With replace, a token of that name is replaced (its
// old secret stops working: rotation); without, an existing name is an
// error.
func (t *Tokens) Create(ctx context.Context, name string, scope Scope, replace bool) (string, error) {
	if !tokenNameRE.MatchString(name) || name == ClusterPrincipal {
		return "", BadRequest("token name %q: use 1-64 letters, digits, '.', '_' or '-' (and not %q)", name, ClusterPrincipal)
	}
	if scope != ScopeRead && scope != ScopeWrite {
		return "", BadRequest("token %q: scope must be read or write, not %s (only the cluster token is admin)", name, scope)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	secret := "rgo_" + base64.RawURLEncoding.EncodeToString(b[:])
	t.mu.Lock()
	defer t.mu.Unlock()
	old, exists := t.findLocked(name)
	if exists && !replace {
		return "", Conflict("a token named %q exists; rotate it or revoke it first", name)
	}
	if !exists && replace {
		return "", NotFound("no token named %q", name)
	}
	if !exists && len(t.byHash) >= MaxTokens {
		return "", Conflict("%d tokens exist, the most there may be; revoke one first", MaxTokens)
	}
	next := maps2(t.byHash)
	if exists {
		delete(next, old.Hash)
	}
	st := storedToken{Name: name, Scope: scope, Hash: hashSecret(secret), Created: time.Now().UTC()}
	next[st.Hash] = st
	if err := t.saveLocked(ctx, next); err != nil {
		return "", err
	}
	t.byHash = next
	return secret, nil
}

// Revoke deletes a named token.
func (t *Tokens) Revoke(ctx context.Context, name string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.findLocked(name)
	if !ok {
		return NotFound("no token named %q", name)
	}
	next := maps2(t.byHash)
	delete(next, old.Hash)
	if err := t.saveLocked(ctx, next); err != nil {
		return err
	}
	t.byHash = next
	return nil
}

func (t *Tokens) findLocked(name string) (storedToken, bool) {
	for _, st := range t.byHash {
		if st.Name == name {
			return st, true
		}
	}
	return storedToken{}, false
}

func (t *Tokens) saveLocked(ctx context.Context, m map[string]storedToken) error {
	if t.kv == nil {
		return nil
	}
	list := make([]storedToken, 0, len(m))
	for _, st := range m {
		list = append(list, st)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	raw, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := t.kv.Put(ctx, tokensKey, raw); err != nil {
		return fmt.Errorf("api: save the token table: %w", err)
	}
	return nil
}

func maps2(m map[string]storedToken) map[string]storedToken {
	out := make(map[string]storedToken, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---------------------------------------------------------------- sessions

// SessionCookie is the dashboard's session cookie.
const SessionCookie = "raygo_session"

// CSRFHeader carries a cookie session's CSRF token on requests that
// change something.
const CSRFHeader = "X-Raygo-CSRF"

// Session limits: a dashboard login lasts SessionLifetime; at most
// MaxSessions are kept (the oldest go first).
const (
	SessionLifetime = 12 * time.Hour
	MaxSessions     = 10000
)

type session struct {
	who     Principal
	token   string // the token it was made with: revoked, the session ends
	csrf    string
	expires time.Time
}

type sessions struct {
	mu sync.Mutex
	m  map[string]*session // guarded by mu
}

func (s *sessions) init() { s.m = map[string]*session{} }

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) add(who Principal, token string) (id string, sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if len(s.m) >= MaxSessions {
		var oldest string
		var at time.Time
		for k, v := range s.m {
			if oldest == "" || v.expires.Before(at) {
				oldest, at = k, v.expires
			}
		}
		delete(s.m, oldest)
	}
	id = randomID()
	sess = &session{who: who, token: token, csrf: randomID(), expires: now.Add(SessionLifetime)}
	s.m[id] = sess
	return id, sess
}

func (s *sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if ok && time.Now().After(v.expires) {
		delete(s.m, id)
		return nil, false
	}
	return v, ok
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// ---------------------------------------------------------------- the guard

// originAllowed: no Origin (not a browser, or a same-origin GET), the
// server's own origin, or one of Config.AllowedOrigins.
func (s *Server) originAllowed(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if o == "http://"+r.Host || o == "https://"+r.Host {
		return true
	}
	for _, a := range s.cfg.AllowedOrigins {
		if o == a {
			return true
		}
	}
	return false
}

// authenticate finds the principal of a request: its bearer token, else
// its session cookie (and then whether it came with the session's CSRF
// token).
func (s *Server) authenticate(r *http.Request) (who Principal, viaCookie, csrfOK, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, found := strings.CutPrefix(h, "Bearer ")
		if !found {
			return Principal{}, false, false, false
		}
		who, ok = s.tokens.Check(strings.TrimSpace(tok))
		return who, false, false, ok
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return Principal{}, false, false, false
	}
	sess, found := s.sess.get(c.Value)
	if !found {
		return Principal{}, true, false, false
	}
	// A session ends with its token (revoked or rotated).
	if _, still := s.tokens.Check(sess.token); !still {
		s.sess.remove(c.Value)
		return Principal{}, true, false, false
	}
	csrfOK = subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(sess.csrf)) == 1
	return sess.who, true, csrfOK, true
}

func (s *Server) guard(scope Scope, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.originAllowed(r) {
			WriteError(w, Errorf(http.StatusForbidden, "bad_origin", "origin %q may not call this server (allow it with --dashboard-allow-origin)", r.Header.Get("Origin")))
			return
		}
		mutating := r.Method != http.MethodGet && r.Method != http.MethodHead
		if scope == ScopeNone {
			h(w, r)
			return
		}
		who, viaCookie, csrfOK, ok := s.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="raygo"`)
			msg := "missing or wrong token: send Authorization: Bearer <token> (`raygo token` prints the cluster's)"
			if viaCookie {
				msg = "the dashboard session has expired or its token was revoked: log in again"
			}
			if mutating {
				s.audit.Record(r, Principal{Name: "(none)"}, "denied", r.Method+" "+r.URL.Path, "unauthenticated")
			}
			WriteError(w, Errorf(http.StatusUnauthorized, "unauthenticated", "%s", msg))
			return
		}
		if viaCookie && mutating && !csrfOK {
			s.audit.Record(r, who, "denied", r.Method+" "+r.URL.Path, "missing CSRF token")
			WriteError(w, Errorf(http.StatusForbidden, "csrf", "a dashboard session's change needs its %s header", CSRFHeader))
			return
		}
		if who.Scope < scope {
			if mutating {
				s.audit.Record(r, who, "denied", r.Method+" "+r.URL.Path, "scope "+who.Scope.String())
			}
			WriteError(w, Errorf(http.StatusForbidden, "forbidden", "token %q has scope %s; this needs %s", who.Name, who.Scope, scope))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, who)))
	})
}

// ---------------------------------------------------------------- routes

type loginRequest struct {
	Token string `json:"token"`
}

// LoginReply is what login and whoami answer.
type LoginReply struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
	CSRF  string `json:"csrf,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := s.ReadJSON(w, r, &req); err != nil {
		WriteError(w, err)
		return
	}
	who, ok := s.tokens.Check(req.Token)
	if !ok {
		s.audit.Record(r, Principal{Name: "(none)"}, "login", "dashboard", "wrong token")
		WriteError(w, Errorf(http.StatusUnauthorized, "unauthenticated", "wrong token"))
		return
	}
	id, sess := s.sess.add(who, req.Token)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, Expires: sess.expires})
	s.audit.Record(r, who, "login", "dashboard", "ok")
	WriteJSON(w, LoginReply{Name: who.Name, Scope: who.Scope.String(), CSRF: sess.csrf})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.sess.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	WriteJSON(w, struct{}{})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	who := Who(r.Context())
	reply := LoginReply{Name: who.Name, Scope: who.Scope.String()}
	if c, err := r.Cookie(SessionCookie); err == nil && r.Header.Get("Authorization") == "" {
		if sess, ok := s.sess.get(c.Value); ok {
			reply.CSRF = sess.csrf
		}
	}
	WriteJSON(w, reply)
}

type createTokenRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// CreateTokenReply carries a new token's secret, shown once.
type CreateTokenReply struct {
	Name   string `json:"name"`
	Scope  string `json:"scope"`
	Secret string `json:"token"`
}

func (s *Server) registerTokenRoutes() {
	s.Handle("GET /api/tokens", ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, struct {
			Tokens []TokenInfo `json:"tokens"`
		}{s.tokens.List()})
	})
	s.Handle("POST /api/tokens", ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		var req createTokenRequest
		if err := s.ReadJSON(w, r, &req); err != nil {
			WriteError(w, err)
			return
		}
		scope, err := ParseScope(req.Scope)
		if err != nil {
			WriteError(w, BadRequest("%v", err))
			return
		}
		secret, err := s.tokens.Create(r.Context(), req.Name, scope, false)
		s.audit.Record(r, Who(r.Context()), "token.create", req.Name+" ("+req.Scope+")", outcome(err))
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, CreateTokenReply{Name: req.Name, Scope: scope.String(), Secret: secret})
	})
	s.Handle("POST /api/tokens/{name}/rotate", ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		var scope Scope
		for _, t := range s.tokens.List() {
			if t.Name == name {
				scope, _ = ParseScope(t.Scope)
			}
		}
		secret, err := s.tokens.Create(r.Context(), name, scope, true)
		s.audit.Record(r, Who(r.Context()), "token.rotate", name, outcome(err))
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, CreateTokenReply{Name: name, Scope: scope.String(), Secret: secret})
	})
	s.Handle("DELETE /api/tokens/{name}", ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := s.tokens.Revoke(r.Context(), name)
		s.audit.Record(r, Who(r.Context()), "token.revoke", name, outcome(err))
		if err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, struct{}{})
	})
	s.Handle("GET /api/audit", ScopeAdmin, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, struct {
			Entries []AuditEntry `json:"entries"`
		}{s.audit.Recent()})
	})
}

func outcome(err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return "ok"
}
