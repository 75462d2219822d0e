// Package api is the head's HTTP server: the REST API (jobs, state, logs,
// timeline, tokens), Prometheus metrics and the dashboard, all behind one
// authentication layer (auth.go) and one audit log (audit.go).
//
// Features register their routes on a Server (Handle) with the scope a
// caller needs; the Server authenticates every request before a handler
// runs:
//
//   - a token in "Authorization: Bearer …": the cluster token (scope
//     admin) or an API token made with `raygo token create` (read or
//     write), see Tokens;
//   - or a dashboard session cookie made by POST /api/login, for requests
//     from the dashboard: HttpOnly, SameSite=Strict, and every request
//     that changes something must also carry the session's CSRF token in
//     X-Raygo-CSRF.
//
// A request with an Origin header that is not this server's own origin or
// one of Config.AllowedOrigins is refused (403) whatever it carries, so a
// web page elsewhere cannot drive the API through a user's browser.
// Errors are JSON: {"error": {"code": "…", "message": "…"}} (WriteError).
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raygo/raygo/internal/gcs"
	"github.com/raygo/raygo/internal/raylet"
	"github.com/raygo/raygo/internal/rpc"
)

// DefaultPort is the HTTP API's and dashboard's port, Ray's.
const DefaultPort = 8265

// Config configures the HTTP server.
type Config struct {
	// Address to listen on ("127.0.0.1:8265"; port 0 picks one).
	Address string
	// AllowedOrigins are origins ("https://ops.example.com") besides the
	// server's own that may call it from a browser.
	AllowedOrigins []string
	// MetricsOpen serves /metrics without a token (for a Prometheus that
	// cannot send one); everything else still needs one.
	MetricsOpen bool
	// AuditPath is the audit log file (JSON lines); empty: none is kept
	// (only for tests: the head always sets it).
	AuditPath string
	// MaxBodyBytes bounds a request body (package uploads have their own
	// limit). 0: DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// DefaultMaxBodyBytes bounds a request's body, except uploads.
const DefaultMaxBodyBytes = 8 << 20

// Scope is what a token may do.
type Scope int

const (
	// ScopeNone is a route anyone may call (the login page).
	ScopeNone Scope = iota
	// ScopeRead: every GET of the API, the dashboard, metrics.
	ScopeRead
	// ScopeWrite: also submit, stop and delete jobs, kill actors.
	ScopeWrite
	// ScopeAdmin: also manage tokens. Only the cluster token has it.
	ScopeAdmin
)

func (s Scope) String() string {
	switch s {
	case ScopeNone:
		return "none"
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// ParseScope reads "read", "write" or "admin".
func ParseScope(s string) (Scope, error) {
	switch s {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return ScopeNone, fmt.Errorf("api: unknown scope %q (want read, write or admin)", s)
}

// Principal is who made a request: the name of the token it carried and
// that token's scope.
type Principal struct {
	Name  string
	Scope Scope
}

type principalKey struct{}

// Who returns the principal of an authenticated request.
func Who(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// Server is the head's HTTP server.
type Server struct {
	cfg    Config
	tokens *Tokens
	audit  *Audit
	mux    *http.ServeMux
	sess   sessions
	log    *slog.Logger
	routes []Route // everything Handle registered, for Routes

	mu   sync.Mutex
	lis  net.Listener
	srv  *http.Server
	addr string
	done chan struct{}
}

// New makes a server; register routes with Handle, then Start it.
func New(cfg Config, tokens *Tokens) (*Server, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	a, err := OpenAudit(cfg.AuditPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, tokens: tokens, audit: a, mux: http.NewServeMux(), log: slog.Default().With("component", "api")}
	s.sess.init()
	s.Handle("POST /api/login", ScopeNone, s.login)
	s.Handle("POST /api/logout", ScopeNone, s.logout)
	s.Handle("GET /api/whoami", ScopeRead, s.whoami)
	s.registerTokenRoutes()
	return s, nil
}

// Tokens is the server's token table.
func (s *Server) Tokens() *Tokens { return s.tokens }

// Audit is the server's audit log.
func (s *Server) Audit() *Audit { return s.audit }

// Handle registers h for pattern (net/http's ServeMux syntax, with the
// method: "GET /api/jobs/{id}") for callers with at least scope.
// Mutating methods (anything but GET and HEAD) need ScopeWrite or more
// whatever scope says, so a route cannot be opened to read-only tokens
// by mistake.
func (s *Server) Handle(pattern string, scope Scope, h http.HandlerFunc) {
	method, _, _ := strings.Cut(pattern, " ")
	if method != "GET" && method != "HEAD" && scope != ScopeNone && scope < ScopeWrite {
		scope = ScopeWrite
	}
	s.routes = append(s.routes, Route{Pattern: pattern, Scope: scope})
	s.mux.Handle(pattern, s.guard(scope, h))
}

// HandleProtocol registers h for a protocol endpoint whose POSTs carry
// reads as well as changes (MCP's JSON-RPC): callers need scope, and the
// handler itself requires ScopeWrite (with Who) for each change it
// carries, and records it in the audit log. Such routes are listed with
// SelfChecked set.
func (s *Server) HandleProtocol(pattern string, scope Scope, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Pattern: pattern, Scope: scope, SelfChecked: true})
	s.mux.Handle(pattern, s.guard(scope, h))
}

// Route is a registered pattern and the scope it needs.
type Route struct {
	Pattern string
	Scope   Scope
	// SelfChecked: registered with HandleProtocol; the handler checks the
	// scope of each change a request carries.
	SelfChecked bool
}

// Routes lists every registered route (the auth tests walk it).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// MetricsScope is the scope /metrics needs: ScopeRead, or ScopeNone with
// Config.MetricsOpen.
func (s *Server) MetricsScope() Scope {
	if s.cfg.MetricsOpen {
		return ScopeNone
	}
	return ScopeRead
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w", s.cfg.Address, err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.mu.Lock()
	s.lis, s.srv, s.addr, s.done = lis, srv, lis.Addr().String(), make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api: serve", "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on (after Start).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the server's base URL, http://host:port (after Start).
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops the server: open streams (log follows) end.
func (s *Server) Close() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
		_ = srv.Close()
		<-done
	}
	_ = s.audit.Close()
}

// ServeHTTP serves a request (Start uses it; tests may call it directly).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

// Error is an API error: its HTTP status, a short code and a message a
// user (or an agent) can act on.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest, NotFound and Conflict are the common errors.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "bad_request", format, args...)
}

func NotFound(format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, "not_found", format, args...)
}

func Conflict(format string, args ...any) *Error {
	return Errorf(http.StatusConflict, "conflict", format, args...)
}

// WriteError writes err as the API's JSON error: an *Error as it is,
// anything else as a 500 with its text.
func WriteError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(struct {
		Error *Error `json:"error"`
	}{e})
}

// WriteJSON writes v as JSON with status 200.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ReadJSON decodes a request body into v, refusing unknown fields and
// bodies over the server's limit.
func (s *Server) ReadJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
		}
		return BadRequest("request body: %v", err)
	}
	return nil
}

// Cluster is what route handlers reach the cluster through: the head's
// control store in this process, and the node daemons by gRPC.
type Cluster struct {
	GCS *gcs.Server
	// Pool dials node daemons (and workers) with the cluster token.
	Pool *rpc.Pool
	// Address is the control store's address (the cluster's).
	Address string
	// SessionDir is the head's session directory.
	SessionDir string
	// HeadNode is the head's node daemon, in this process.
	HeadNode *raylet.Raylet
	// Metrics is the head's Prometheus registry, served by GET /metrics:
	// set by the metrics feature (internal/metrics.Register), which the
	// head registers before the features that add their collectors to it;
	// nil without it.
	Metrics prometheus.Registerer
}

// Feature registers a feature's routes; the head calls each in turn
// (internal/node/api.go).
type Feature func(s *Server, c *Cluster) (stop func(), err error)
