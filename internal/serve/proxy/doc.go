// Package proxy is the data path of raygo Serve's HTTP proxy: an
// http.Handler that routes each request by route prefix to a deployment,
// chooses one of its replicas with internal/serve/router (power of two
// choices, MaxOngoingRequests, a bounded queue) and forwards the request
// to the replica's HTTP listener, as Ray Serve's proxy does
// (python/ray/serve/_private/proxy.py). Forwarding does what
// net/http/httputil.ReverseProxy does, leaner: one round trip over a
// pooled keep-alive connection, written and read on the handler's own
// goroutine for a request without a body or with a small one of known
// length, through an http.Transport for any other; protocol upgrades
// (WebSocket) go through ReverseProxy itself.
//
// # How Serve uses it
//
// The node daemon runs one Proxy per node behind its own http.Server
// (internal/raylet/serveproxy.go, `raygo start --serve-port`):
//
//   - New(Options{NodeID: <this node>, UpstreamHeaders: <cluster token
//     header>, ...}) once; the proxy then prefers replicas on its own node.
//   - The controller pushes the routing table: every application's route
//     prefix, ingress deployment and replica set (ID, node, listener URL,
//     MaxOngoingRequests, Running/Draining/Unhealthy) and the
//     deployment's MaxQueuedRequests and RequestTimeout. Each push
//     becomes one SetRoutes call with the whole table, which replaces it
//     atomically; deployments keep their router (in-flight counts, queue)
//     across pushes. A rolling update is two pushes: new replicas
//     Running and old ones Draining, then the old ones left out once
//     drained.
//   - Every metrics interval the daemon reads Stats and reports each
//     deployment's InFlight+Queued to the controller's autoscaler; an
//     Observer feeds access logs and request metrics.
//   - Close when the daemon stops, after shutting down its http.Server.
//
// # Requests
//
// Routes match by whole path segments, longest prefix first: "/shop"
// takes "/shop" and "/shop/cart" but not "/shopping". The replica gets
// the full path (Ray's root_path convention): X-Forwarded-Prefix carries
// the matched prefix, X-Forwarded-For/-Host/-Proto the client's address,
// host and scheme, Host the client's Host, and X-Request-Id the request
// id (the client's when valid, else generated), which is also on the
// response. Hop-by-hop headers (Connection and those it names,
// Keep-Alive, Te, Upgrade, ...) are not passed on either way, nor a
// client's Forwarded; trailers are, and query strings that a replica
// could parse differently (a ';', a bad %-escape) are re-encoded, as
// ReverseProxy does. Informational responses (103 Early Hints) are not
// passed on. Bodies stream both ways; a response without a
// Content-Length, or of type text/event-stream, is flushed to the client
// after its headers and after every write. The replica's slot is held
// until the response body has been copied, so a long stream (or an
// upgraded connection) counts as one ongoing request.
//
// What the proxy answers itself is JSON (ErrorResponse): 404 with the
// known prefixes; 503 with Retry-After when the deployment's queue is
// full (router.BackPressureError), when it had no running replica until
// the request timed out (scaled to zero, all unhealthy), or when the
// proxy is closed; 504 when the request timeout passed; 502 naming the
// replica when it refused the connection or failed before answering.
// Only GET and HEAD requests without a body are retried, once, on
// another replica, and only with Options.RetryIdempotent. A replica that
// failed is avoided by this proxy for router.DefaultQueueLenTTL.
// A client that goes away cancels the upstream request and releases the
// slot. GET /-/healthz answers 200 "ok" (503 before the first SetRoutes
// and after Close) and GET /-/routes the JSON object prefix → app, as
// Ray's proxy does.
//
// # Security
//
// Replicas listen on cluster-internal ports; to let them refuse requests
// that do not come from a proxy, the daemon passes the cluster token in
// Options.UpstreamHeaders (for example "X-Raygo-Token"), which the proxy
// sets on every upstream request, overwriting any value a client sent,
// and replicas check. The client's own X-Forwarded-For is dropped unless
// Options.TrustForwardedFor is set.
//
// # Limits
//
// Every knob is a field of Options or Route, with Ray's default where
// Ray has one: no request timeout, unbounded queue, MaxOngoingRequests 5
// per replica. The proxy keeps DefaultMaxIdleConnsPerHost idle
// connections per replica (or its MaxOngoingRequests, when more, so that
// a busy replica's connections are all reused), dials with
// DefaultDialTimeout and closes idle ones after DefaultIdleConnTimeout,
// and those of a replica that left the routing table at once. A request
// without a body that meets a connection the replica had closed while
// idle is sent again on a new one; others are sent only on a connection
// just checked to be open (http.Transport's rules). Client request ids
// longer than MaxRequestIDLen are replaced. The proxy starts no
// goroutine of its own for a request without a body or with one of known
// length up to 32 KiB; http.Transport (larger and streamed bodies) and
// ReverseProxy (upgrades) own theirs, per request and per connection.
// A router cannot change its queue bound in place, so a
// deployment whose MaxQueuedRequests changes gets a new router: its
// waiting requests move to it, and the old router's in-flight requests
// are carried over as queue-length reports (trusted for 10 s, see
// carryInFlight).
//
// Measured on the shared 2-vCPU development VM against the same handler
// served by net/http directly, side by side (docs/benchmarks.md has the
// runs). With client, proxy and replica in one process (go test -bench
// 'Direct|Proxy' ./internal/serve/proxy/) the proxy adds 28–33 µs to the
// median latency of a trivial request and serves 0.49–0.51× the
// requests/s with 8 clients (115 allocations per request, client and
// replica included; 154 through ReverseProxy, at 0.38–0.47×). With each
// in its own process (TestProxyThroughputProcesses) it adds 128–160 µs
// and serves 0.29–0.53×: the proxy process spends 74–86 µs of CPU per
// request, more than client and replica together on the direct path,
// most of it in the kernel's socket work and the Go scheduler's
// wake-ups of a full HTTP server and client exchange.
package proxy
