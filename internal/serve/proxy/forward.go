package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raygo/raygo/internal/serve/router"
)

// maxReroutes bounds how many times one request is routed again because
// its deployment's router was replaced or its replica vanished between
// the choice and the send. Each happens only around a SetRoutes, so the
// bound is never reached in practice; past it the client gets 503.
const maxReroutes = 8

var (
	errRouteGone = errors.New("proxy: route removed while the request waited")
	errReroutes  = errors.New("proxy: routing table changed too often while the request waited")
)

type ctxKey struct{}

// exchange is one request's routing state. For a protocol upgrade,
// forwarded by ReverseProxy, its callbacks reach it through the upstream
// request's context.
type exchange struct {
	id    string
	ctx   context.Context // the request's context with its timeout
	entry *routeEntry     // the matched route; nil for a 404
	tgt   *target         // the replica of the current attempt
	err   error           // the current attempt's upstream error, if any
}

// state is what one request allocates up front: its routing state and
// the writer that records its status, in one allocation.
type state struct {
	ex exchange
	rw responseWriter
}

// ServeHTTP routes r by the longest matching route prefix, waits for a
// replica of its deployment (power of two choices, MaxOngoingRequests,
// queue bound) and forwards the request to it, streaming both bodies.
// The replica's slot is held until the response body has been copied to
// the client. The request gets an X-Request-Id (the client's own when it
// is at most MaxRequestIDLen printable characters), sent to the replica
// and back to the client. What the proxy answers itself is JSON
// (ErrorResponse):
//
//   - 404: no route matches; the body lists the route prefixes.
//   - 503 + Retry-After: the deployment's queue is full
//     (MaxQueuedRequests), or it had no running replica until the
//     request timed out, or the proxy is closed.
//   - 504: the request timeout passed while waiting for a replica or for
//     its response.
//   - 502: the replica refused the connection or failed before
//     answering; the body names it.
//
// A response already under way when its replica fails or the timeout
// passes is cut off (the connection is aborted). A client that goes
// away cancels the upstream request and frees the slot.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Path) > 2 && r.URL.Path[1] == '-' && p.serveSystem(w, r) {
		return
	}
	start := time.Now()
	id := r.Header.Get(HeaderRequestID)
	if !validRequestID(id) {
		id = p.ids.Next()
	}
	w.Header()[HeaderRequestID] = []string{id}
	st := &state{ex: exchange{id: id}, rw: responseWriter{ResponseWriter: w}}
	ex, rw := &st.ex, &st.rw
	if obs := p.opts.Observer; obs != nil {
		defer func() {
			v := recover()
			code := rw.code
			if v != nil {
				code = abortCode(r, ex)
			}
			var app, dep, route string
			if e := ex.entry; e != nil {
				app, dep, route = e.app, e.dep.name, e.prefix
			}
			obs.RequestDone(RequestInfo{App: app, Deployment: dep, Route: route, Method: r.Method, Code: code, Took: time.Since(start), RequestID: id})
			if v != nil {
				panic(v)
			}
		}()
	}
	p.serve(rw, r, ex)
}

// abortCode is the status reported for a response cut off after its
// headers were sent.
func abortCode(r *http.Request, ex *exchange) int {
	switch {
	case r.Context().Err() != nil:
		return StatusClientClosedRequest
	case ex.ctx != nil && ex.ctx.Err() != nil:
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func (p *Proxy) serve(w *responseWriter, r *http.Request, ex *exchange) {
	if p.closed.Load() {
		w.Header().Set("Retry-After", retryAfterSeconds(p.retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "proxy is closed", RequestID: ex.id})
		return
	}
	t := p.table.Load()
	if t != nil {
		ex.entry = match(t.byPrefix, r.URL.Path)
	}
	if ex.entry == nil {
		p.notFound(w, r, t, ex)
		return
	}
	ctx := r.Context()
	if ex.entry.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ex.entry.timeout)
		defer cancel()
	}
	ex.ctx = ctx
	retried := false
	for {
		lease, err := p.acquire(ctx, r, ex)
		if err != nil {
			p.refuse(w, r, ctx, ex, err)
			return
		}
		p.forward(w, r, lease, ex)
		if ex.err == nil {
			return
		}
		if r.Context().Err() != nil {
			w.code = StatusClientClosedRequest // nobody to tell
			return
		}
		if w.code != 0 {
			return // a response was started (an upgrade); ReverseProxy has aborted it
		}
		if ctx.Err() != nil {
			writeJSON(w, http.StatusGatewayTimeout, ErrorResponse{
				Error: fmt.Sprintf("deployment %s/%s: replica %s did not answer within the request timeout (%s)",
					ex.entry.app, ex.entry.dep.name, ex.tgt.id, ex.entry.timeout),
				App: ex.entry.app, Deployment: ex.entry.dep.name, Replica: ex.tgt.id, RequestID: ex.id})
			return
		}
		// The replica failed: keep the router off it until it is heard
		// of again, as Ray's router does with an unavailable actor.
		d := ex.entry.dep
		_ = d.rt.ReportQueueLen(ex.tgt.id, unavailableLoad, time.Now()) // unknown once removed: nothing to avoid
		p.logger.Warn("serve proxy: replica failed", "app", d.app, "deployment", d.name,
			"replica", ex.tgt.id, "url", ex.tgt.raw, "request_id", ex.id, "error", ex.err)
		if !retried && p.opts.RetryIdempotent && retryable(r) && otherReplicaRunning(d, ex.tgt.id) {
			retried = true
			continue
		}
		writeJSON(w, http.StatusBadGateway, ErrorResponse{
			Error: fmt.Sprintf("deployment %s/%s: replica %s failed: %v", d.app, d.name, ex.tgt.id, ex.err),
			App:   d.app, Deployment: d.name, Replica: ex.tgt.id, RequestID: ex.id})
		return
	}
}

// forward sends one attempt to the leased replica and releases the lease
// when the response has been copied, or when the response is aborted
// (a panic with http.ErrAbortHandler). A failure before the response
// started is left in ex.err for serve to answer or retry. Protocol
// upgrades (WebSocket and the like) go through ReverseProxy, which
// copies both directions once the replica has switched.
func (p *Proxy) forward(w *responseWriter, r *http.Request, lease *router.Lease, ex *exchange) {
	defer lease.Release()
	ex.err = nil
	if isUpgrade(r.Header) {
		p.rp.ServeHTTP(w, r.WithContext(context.WithValue(ex.ctx, ctxKey{}, ex)))
		return
	}
	p.roundTrip(w, r, ex)
}

// acquire leases a replica of ex.entry's deployment and sets ex.tgt to
// it. When the deployment's router was closed by SetRoutes, or the
// leased replica has just been removed, it routes the request again by
// the current table.
func (p *Proxy) acquire(ctx context.Context, r *http.Request, ex *exchange) (*router.Lease, error) {
	for range maxReroutes {
		d := ex.entry.dep
		lease, err := d.rt.Acquire(ctx)
		if errors.Is(err, router.ErrClosed) {
			if p.closed.Load() {
				return nil, err
			}
			e := match(p.table.Load().byPrefix, r.URL.Path)
			if e == nil {
				return nil, errRouteGone
			}
			ex.entry = e
			continue
		}
		if err != nil {
			return nil, err
		}
		if t := (*d.targets.Load())[lease.Replica()]; t != nil {
			ex.tgt = t
			return lease, nil
		}
		lease.Release()
	}
	return nil, errReroutes
}

// refuse answers a request that got no replica.
func (p *Proxy) refuse(w *responseWriter, r *http.Request, ctx context.Context, ex *exchange, err error) {
	e := ex.entry
	body := ErrorResponse{App: e.app, Deployment: e.dep.name, RequestID: ex.id}
	var bp *router.BackPressureError
	switch {
	case r.Context().Err() != nil:
		w.code = StatusClientClosedRequest
		return
	case errors.As(err, &bp):
		body.Error = fmt.Sprintf("deployment %s/%s is overloaded: %d requests already queued at this proxy (max_queued_requests=%d); retry later",
			e.app, e.dep.name, bp.Queued, bp.MaxQueued)
		body.MaxQueuedRequests = bp.MaxQueued
		w.Header().Set("Retry-After", retryAfterSeconds(bp.RetryAfter))
		writeJSON(w, http.StatusServiceUnavailable, body)
	case errors.Is(err, router.ErrNoReplicas):
		body.Error = fmt.Sprintf("no replicas of %s/%s are running (waited %s)", e.app, e.dep.name, e.timeout)
		w.Header().Set("Retry-After", retryAfterSeconds(p.retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, body)
	case ctx.Err() != nil:
		body.Error = fmt.Sprintf("deployment %s/%s: no replica became free within the request timeout (%s)", e.app, e.dep.name, e.timeout)
		writeJSON(w, http.StatusGatewayTimeout, body)
	case errors.Is(err, errRouteGone):
		p.notFound(w, r, p.table.Load(), ex)
	default: // the proxy closed, or errReroutes
		body.Error = fmt.Sprintf("deployment %s/%s: %v", e.app, e.dep.name, err)
		w.Header().Set("Retry-After", retryAfterSeconds(p.retryAfter))
		writeJSON(w, http.StatusServiceUnavailable, body)
	}
}

func (p *Proxy) notFound(w *responseWriter, r *http.Request, t *table, ex *exchange) {
	ex.entry = nil
	writeJSON(w, http.StatusNotFound, ErrorResponse{
		Error:     fmt.Sprintf("path %q matches no route; GET /-/routes lists them", r.URL.Path),
		Routes:    t.routesList(),
		RequestID: ex.id,
	})
}

// retryable reports whether r may be sent again: GET or HEAD without a
// body.
func retryable(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.ContentLength == 0 && len(r.TransferEncoding) == 0
}

// otherReplicaRunning reports whether d has a running replica other than
// failed that is not itself marked unavailable.
func otherReplicaRunning(d *deployment, failed string) bool {
	for _, r := range d.rt.Stats().Replicas {
		if r.ID != failed && r.State == router.Running && r.QueueLen < unavailableLoad/2 {
			return true
		}
	}
	return false
}

// rewrite builds the upstream request of a protocol upgrade, with the
// same headers as upstreamRequest: the replica's address, the full path,
// the client's Host, X-Forwarded-For/-Host/-Proto, X-Forwarded-Prefix,
// X-Request-Id and Options.UpstreamHeaders.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	ex := pr.In.Context().Value(ctxKey{}).(*exchange)
	pr.SetURL(ex.tgt.url)
	pr.Out.Host = pr.In.Host // as Ray passes the client's request scope on
	if p.opts.TrustForwardedFor {
		if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
			pr.Out.Header["X-Forwarded-For"] = prior
		}
	}
	pr.SetXForwarded()
	h := pr.Out.Header
	h[HeaderRequestID] = []string{ex.id}
	if ex.entry.prefix != "/" {
		h[HeaderForwardedPrefix] = []string{ex.entry.prefix}
	} else {
		delete(h, HeaderForwardedPrefix)
	}
	for k, vs := range p.upstream {
		h[k] = vs[:len(vs):len(vs)] // full slice: an append copies
	}
}

// upstreamError records the failure of an upgrade attempt; serve
// answers it, or retries.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if ex, ok := r.Context().Value(ctxKey{}).(*exchange); ok {
		ex.err = err
		return
	}
	w.WriteHeader(http.StatusBadGateway)
}

// modifyResponse drops the replica's own X-Request-Id from an upgrade's
// response: the proxy has set the request's on the response already.
func modifyResponse(res *http.Response) error {
	delete(res.Header, HeaderRequestID)
	return nil
}

// responseWriter records the status sent to the client.
type responseWriter struct {
	http.ResponseWriter
	code int // the final status sent, 0 until then
}

func (w *responseWriter) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// FlushError flushes to the client, after every write of a streamed
// response.
func (w *responseWriter) FlushError() error {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(interface{ FlushError() error }); ok {
		return f.FlushError() // net/http's own writer: no ResponseController to allocate
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { _ = w.FlushError() }

// Unwrap lets http.ResponseController reach the server's writer (Hijack
// for protocol upgrades).
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// validRequestID reports whether a client's X-Request-Id is kept: 1 to
// MaxRequestIDLen characters, each printable ASCII other than space.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return false
		}
	}
	return true
}

// RequestIDs makes request ids unique across proxies and restarts: a
// random 64-bit prefix per generator and a counter, "9f86d081884c7d65-1a"
// (the HTTP and gRPC proxies' X-Request-Id). Its zero value is not
// ready: Init it once. Next is safe for concurrent use.
type RequestIDs struct {
	prefix [17]byte
	n      atomic.Uint64
}

// Init draws the generator's prefix.
func (g *RequestIDs) Init() {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	hex.Encode(g.prefix[:16], b[:])
	g.prefix[16] = '-'
}

// Next returns a new id.
func (g *RequestIDs) Next() string {
	var b [17 + 16]byte
	copy(b[:], g.prefix[:])
	return string(strconv.AppendUint(b[:17], g.n.Add(1), 16))
}

// copyBufferSize is the size of the buffers response bodies are copied
// through (ReverseProxy's size).
const copyBufferSize = 32 << 10

// copyBuffers recycles the body copy buffers, of copyBufferSize bytes.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// bufferPool lends ReverseProxy the same buffers, for upgrades.
type bufferPool struct{}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
