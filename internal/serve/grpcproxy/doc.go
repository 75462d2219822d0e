// Package grpcproxy is the data path of raygo Serve's gRPC ingress: a
// generic gRPC proxy that forwards any call, whatever its service and
// method, unchanged to a replica of the application it names, as Ray
// Serve's gRPC proxy does (python/ray/serve/_private/proxy.py gRPCProxy;
// Ray's "Set Up a gRPC Service" guide).
//
// # How Serve uses it
//
// A node daemon started with `raygo start --serve-port N
// --serve-grpc-port M` runs one Proxy beside its HTTP proxy
// (internal/raylet's servegrpc.go):
//
//   - New(Options{NodeID: <this node>, UpstreamMetadata: <the Serve
//     upstream token>}) once, served by the grpc.Server of NewServer on
//     its own port.
//   - The routing table is the HTTP proxy's ([]proxy.Route, distributed
//     by internal/serve/routes): the daemon hands every table its
//     follower receives to both proxies' SetRoutes. A route's App and
//     Deployment (the application's ingress) and its replicas are what
//     the gRPC proxy uses; the route prefix plays no part.
//   - Its Stats are added to the HTTP proxy's in the node's load report,
//     so that the autoscaler sees gRPC calls too.
//   - Close when the daemon stops, after stopping the grpc.Server.
//
// # Calls
//
// A call names its application in the "application" metadata
// (MetadataApplication); without it, a table with exactly one
// application routes to that one, else the call fails with
// codes.NotFound naming the applications. Each deployment has its own
// internal/serve/router Router, configured as the HTTP proxy's: power of
// two choices preferring this node's replicas, MaxOngoingRequests per
// replica, a FIFO queue bounded by MaxQueuedRequests.
//
// Messages are never decoded: a pass-through codec hands each message's
// bytes on (unary and streaming calls alike, both ways, each direction
// flowing as the other side takes it). The replica gets the client's
// metadata (less gRPC's own keys: content-type, user-agent, grpc-*,
// pseudo-headers), its deadline (grpc-timeout) and its cancellation, an
// x-request-id (the client's when at most MaxRequestIDLen printable
// characters, else generated; also sent back in the response header),
// and Options.UpstreamMetadata, which replaces any client value under
// the same keys. The replica's header, messages, trailer and status come
// back unchanged.
//
// What the proxy answers itself:
//
//   - codes.NotFound: no application of that name, or none named while
//     the table does not have exactly one.
//   - codes.ResourceExhausted + grpc-retry-pushback-ms: the deployment's
//     queue is full (router.BackPressureError).
//   - codes.Unavailable: no routing table yet, the proxy closed, no
//     running replica until the call's timeout, or the replica failed:
//     refused or lost the connection, or answered without a gRPC status.
//     The message names the deployment and the replica. A call that could
//     not be opened on its replica (nothing was sent) is tried once more
//     on another running replica; others are never retried. A replica
//     that failed is avoided for router.DefaultQueueLenTTL.
//   - codes.DeadlineExceeded: the route's request timeout
//     (Route.RequestTimeout or Options.RequestTimeout) passed.
//
// A status the replica sent (its trailers arrived) is passed on as it is,
// codes.Unavailable included. grpc.health.v1.Health is answered by the
// proxy itself, for its own liveness: SERVING once it has a routing
// table, NOT_SERVING before it and after Close; a replica's own health
// service is not reachable through the proxy.
//
// # Limits
//
// Replicas are reached over cleartext HTTP/2 (h2c) at their route URL's
// host:port, one connection per replica (gRPC multiplexes calls on it),
// dialled lazily within DialTimeout, never through a proxy from the
// environment. One message is at most MaxMessageBytes (64 MiB by
// default) each way. Compressed client messages (gzip) are
// decompressed by the proxy and sent on uncompressed; answers go back
// uncompressed. MaxOngoingRequests and MaxQueuedRequests are counted per
// proxy and per protocol: a node's HTTP and gRPC proxies each have their
// own router per deployment, so one node may send a replica up to twice
// its MaxOngoingRequests when both protocols are busy. The proxy starts
// one goroutine per call (the client-to-replica pump), which ends with
// the call's server stream; Close waits for them.
package grpcproxy
