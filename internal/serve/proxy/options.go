package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/raygo/raygo/internal/serve/router"
)

// Defaults and limits. Where Ray Serve has the same knob the value is
// Ray's default.
const (
	// DefaultMaxIdleConnsPerHost is how many idle keep-alive connections
	// the proxy keeps to each replica. It is high so that a replica
	// serving MaxOngoingRequests requests from this proxy at once reuses
	// its connections instead of dialing a new one per request.
	DefaultMaxIdleConnsPerHost = 512

	// DefaultIdleConnTimeout closes a keep-alive connection to a replica
	// after it has been idle this long (net/http's DefaultTransport value).
	DefaultIdleConnTimeout = 90 * time.Second

	// DefaultDialTimeout bounds connecting to a replica; a replica that
	// does not accept within it is answered 502.
	DefaultDialTimeout = 5 * time.Second

	// MaxRequestIDLen is the longest X-Request-Id the proxy keeps from a
	// client; a longer one, or one with a byte outside printable ASCII
	// ('!'..'~'), is replaced by a generated id.
	MaxRequestIDLen = 128

	// HeaderRequestID carries the request id to the replica and back to
	// the client (Ray's SERVE_HTTP_REQUEST_ID_HEADER).
	HeaderRequestID = "X-Request-Id"

	// HeaderForwardedPrefix carries the matched route prefix to the
	// replica, which serves the full path under it (Ray's ASGI root_path).
	// It is not set for the root prefix "/".
	HeaderForwardedPrefix = "X-Forwarded-Prefix"

	// StatusClientClosedRequest is the status the Observer sees for a
	// request whose client went away before its response was complete
	// (nginx's and Ray's 499). Nothing is sent to the client.
	StatusClientClosedRequest = 499

	// unavailableLoad is the queue length reported to a deployment's
	// router for a replica that failed a connection, so that the router
	// avoids it for router.DefaultQueueLenTTL (Ray's router drops a
	// replica whose actor is unavailable until it hears of it again).
	unavailableLoad = 1 << 30
)

// Options configure a Proxy. The zero value is valid: no locality, no
// request timeout (Ray's default), no retries, the proxy's own tuned
// transport.
type Options struct {
	// NodeID is the node the proxy runs on: each deployment's router
	// prefers replicas whose Replica.Node equals it (Ray's
	// prefer_local_node_routing, on for proxies).
	NodeID string
	// Zone is the proxy's availability zone, the next preference after
	// NodeID (Ray's prefer_local_az_routing). May be empty.
	Zone string

	// RequestTimeout bounds a whole request (waiting for a replica, and
	// the replica's complete response) for routes whose own
	// RequestTimeout is 0. 0 means no timeout, Ray's default for
	// request_timeout_s. Past it the client gets 504, or 503 when the
	// deployment had no running replica the whole time; a response whose
	// headers were already sent is cut off.
	RequestTimeout time.Duration

	// RetryIdempotent retries a GET or HEAD request without a body once,
	// on another replica, when its replica failed before sending anything
	// (connection refused or reset). Other requests are never retried.
	RetryIdempotent bool

	// UpstreamHeaders are set on every request sent to a replica,
	// replacing any value the client sent under the same names. The node
	// daemon puts the cluster token here so that replicas can refuse
	// requests that did not come through a proxy.
	UpstreamHeaders http.Header

	// TrustForwardedFor keeps the client's own X-Forwarded-For and appends
	// the client address to it; when false (the default) the header is
	// replaced by the client address, so a client cannot forge it. Set it
	// when the proxy sits behind a trusted load balancer.
	TrustForwardedFor bool

	// RetryAfter is the delay suggested in Retry-After when a deployment
	// is at its MaxQueuedRequests or has no replicas; 0 means
	// router.DefaultRetryAfter (1 s). It is rounded up to whole seconds.
	RetryAfter time.Duration

	// Transport sends requests to replicas. nil means the proxy's own:
	// a plain-http request without a body, or with one of known length
	// up to 32 KiB, goes over the proxy's pool of keep-alive connections
	// on the handler's goroutine; any other (a larger or streamed body,
	// Expect: 100-continue, https, a protocol upgrade) through an
	// http.Transport. Both keep DefaultMaxIdleConnsPerHost idle
	// connections per replica (the pool: its MaxOngoingRequests when
	// more), close idle ones after DefaultIdleConnTimeout, dial with
	// DefaultDialTimeout, speak HTTP/1.1 and never compress. Close
	// closes their idle connections. A Transport given here carries
	// every request.
	Transport http.RoundTripper

	// Observer, when not nil, hears of every request routed to a
	// deployment or refused with 404.
	Observer Observer

	// Logger receives replica failures (Warn). nil discards them.
	Logger *slog.Logger

	// Rand drives every deployment router's power-of-two-choices sample;
	// nil means math/rand/v2. For tests.
	Rand router.Rand
}

// Validate reports every invalid field, naming it and its value.
func (o Options) Validate() error {
	if o.RequestTimeout < 0 {
		return fmt.Errorf("%w: RequestTimeout %s is negative", ErrInvalid, o.RequestTimeout)
	}
	if o.RetryAfter < 0 {
		return fmt.Errorf("%w: RetryAfter %s is negative", ErrInvalid, o.RetryAfter)
	}
	for k := range o.UpstreamHeaders {
		if !validHeaderName(k) {
			return fmt.Errorf("%w: UpstreamHeaders: %q is not a valid header name", ErrInvalid, k)
		}
	}
	return nil
}

// Observer hears of requests as they end, for access logs and metrics.
// RequestDone is called once per request routed to a deployment (and for
// 404s, with App and Deployment empty), on the request's goroutine after
// the response has been sent or abandoned: it must be safe for concurrent
// use and should not block. Requests to /-/healthz and /-/routes are not
// reported.
type Observer interface {
	RequestDone(RequestInfo)
}

// RequestInfo is what an Observer hears of one request.
type RequestInfo struct {
	App, Deployment string
	// Route is the matched prefix (never the full path, to bound metric
	// cardinality, as Ray does).
	Route string
	// Method is the client's method, as it sent it (an Observer bounds
	// the values it keeps).
	Method string
	// Code is the status sent: StatusClientClosedRequest when the client
	// left, 502 or 504 when a response was cut off after its headers
	// were sent.
	Code      int
	Took      time.Duration
	RequestID string
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		// RFC 9110 token characters.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
			c == '+' || c == '-' || c == '.' || c == '^' || c == '_' || c == '`' || c == '|' || c == '~') {
			return false
		}
	}
	return true
}
