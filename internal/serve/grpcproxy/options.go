package grpcproxy

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/raygo/raygo/internal/serve/router"
)

// Defaults and limits. Where Ray Serve has the same knob the value is
// Ray's default.
const (
	// DefaultPort is Ray's grpc_options.port; `raygo start
	// --serve-grpc-port` has no default (the proxy is off unless asked).
	DefaultPort = 9000

	// MetadataApplication is the metadata key that names the application
	// a call is for (Ray's "application"). A call without it goes to the
	// only application when there is exactly one.
	MetadataApplication = "application"

	// MetadataRequestID carries the request id to the replica and back to
	// the client in the response header: the client's own when it is at
	// most MaxRequestIDLen printable characters, else a generated one.
	MetadataRequestID = "x-request-id"

	// MaxRequestIDLen is the longest x-request-id the proxy keeps from a
	// client.
	MaxRequestIDLen = 128

	// DefaultMaxMessageBytes bounds one message, each way, when
	// Options.MaxMessageBytes is 0. gRPC's own default receive limit is
	// 4 MiB; a proxy in front of arbitrary services allows more.
	DefaultMaxMessageBytes = 64 << 20

	// DefaultDialTimeout bounds connecting to a replica; a replica that
	// does not accept within it fails the call with codes.Unavailable.
	DefaultDialTimeout = 5 * time.Second

	// unavailableLoad is the queue length reported to a deployment's
	// router for a replica that failed, so that the router avoids it for
	// router.DefaultQueueLenTTL, as the HTTP proxy does.
	unavailableLoad = 1 << 30

	// maxReroutes bounds how many times one call is routed again because
	// its deployment's router was replaced or its replica vanished between
	// the choice and the send (only around a SetRoutes).
	maxReroutes = 8
)

// Options configure a Proxy. The zero value is valid: no locality, no
// request timeout (Ray's default), no upstream metadata.
type Options struct {
	// NodeID is the node the proxy runs on: each deployment's router
	// prefers replicas on it (Ray's prefer_local_node_routing).
	NodeID string
	// Zone is the proxy's availability zone, the next preference after
	// NodeID. May be empty.
	Zone string

	// RequestTimeout bounds a whole call (waiting for a replica and the
	// replica's complete answer, streams included) for routes whose own
	// RequestTimeout is 0; 0 means none, Ray's default. A client's own
	// deadline applies too, and travels to the replica.
	RequestTimeout time.Duration

	// UpstreamMetadata is set on every call sent to a replica, replacing
	// any value the client sent under the same keys. The node daemon puts
	// the Serve upstream token here so that replicas can refuse calls
	// that did not come through a proxy. Keys are lowercase gRPC metadata
	// keys.
	UpstreamMetadata map[string]string

	// RetryAfter is the delay suggested (the grpc-retry-pushback-ms
	// trailer) when a deployment is at its MaxQueuedRequests or has no
	// replicas; 0 means router.DefaultRetryAfter.
	RetryAfter time.Duration

	// MaxMessageBytes bounds one message each way (client to replica and
	// back); a larger one ends the call with codes.ResourceExhausted. 0
	// means DefaultMaxMessageBytes.
	MaxMessageBytes int

	// DialTimeout bounds connecting to a replica; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration

	// Observer, when not nil, hears of every call as it ends.
	Observer Observer

	// Logger receives replica failures (Warn). nil discards them.
	Logger *slog.Logger

	// Rand drives every deployment router's power-of-two-choices sample;
	// nil means math/rand/v2. For tests.
	Rand router.Rand
}

// Observer hears of calls as they end, for access logs and metrics.
// CallDone is called once per call, on the call's goroutine, after its
// status was decided: it must be safe for concurrent use and should not
// block. app and deployment are empty for a call that matched no
// application; method is the full method name ("/pkg.Service/Method"),
// which is the replica's own vocabulary and may be unbounded for a
// metric label. Calls to the proxy's own grpc.health.v1 service are not
// reported.
type Observer interface {
	CallDone(app, deployment, method string, code codes.Code, took time.Duration, requestID string)
}

// Validate reports every invalid field, naming it and its value.
func (o Options) Validate() error {
	var errs []string
	if o.RequestTimeout < 0 {
		errs = append(errs, fmt.Sprintf("RequestTimeout %s is negative", o.RequestTimeout))
	}
	if o.RetryAfter < 0 {
		errs = append(errs, fmt.Sprintf("RetryAfter %s is negative", o.RetryAfter))
	}
	if o.MaxMessageBytes < 0 {
		errs = append(errs, fmt.Sprintf("MaxMessageBytes %d is negative", o.MaxMessageBytes))
	}
	if o.DialTimeout < 0 {
		errs = append(errs, fmt.Sprintf("DialTimeout %s is negative", o.DialTimeout))
	}
	for k, v := range o.UpstreamMetadata {
		if !validMetadataKey(k) {
			errs = append(errs, fmt.Sprintf("UpstreamMetadata: %q is not a valid metadata key (lowercase letters, digits, '-', '_', '.'; not starting with \"grpc-\")", k))
		} else if !strings.HasSuffix(k, "-bin") && !printable(v) {
			errs = append(errs, fmt.Sprintf("UpstreamMetadata[%q]: the value has a byte outside printable ASCII", k))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

func validMetadataKey(k string) bool {
	if k == "" || strings.HasPrefix(k, "grpc-") {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
