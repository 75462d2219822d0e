package grpcproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/raygo/raygo/internal/serve/router"
)

// call is one call's routing state.
type call struct {
	id     string
	method string
	entry  *entry // the application's entry; nil until matched
}

// streamDesc opens every upstream call as a bidirectional stream: the
// proxy does not know the method's shape, and a bidirectional stream
// carries unary and one-way streaming calls alike.
var streamDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// handle is the grpc.UnknownServiceHandler: it serves every call of a
// service the proxy's server does not register (every one but
// grpc.health.v1.Health).
func (p *Proxy) handle(_ any, ss grpc.ServerStream) error {
	start := time.Now()
	ctx := ss.Context()
	md, _ := metadata.FromIncomingContext(ctx)
	c := &call{}
	c.method, _ = grpc.MethodFromServerStream(ss)
	if ids := md.Get(MetadataRequestID); len(ids) > 0 && validRequestID(ids[0]) {
		c.id = ids[0]
	} else {
		c.id = p.ids.Next()
	}
	_ = ss.SetHeader(metadata.Pairs(MetadataRequestID, c.id))
	err := p.serve(ctx, ss, md, c)
	if obs := p.opts.Observer; obs != nil {
		var app, dep string
		if c.entry != nil {
			app, dep = c.entry.app, c.entry.dep.name
		}
		obs.CallDone(app, dep, c.method, status.Code(err), time.Since(start), c.id)
	}
	return err
}

func (p *Proxy) serve(cctx context.Context, ss grpc.ServerStream, md metadata.MD, c *call) error {
	if p.closed.Load() {
		return p.unavailable(ss, "serve gRPC proxy is closed")
	}
	e, err := p.table.Load().pick(md.Get(MetadataApplication))
	if errors.Is(err, errNoTable) {
		return p.unavailable(ss, "serve gRPC proxy: routing table not received yet")
	}
	if err != nil {
		return status.Error(codes.NotFound, err.Error())
	}
	c.entry = e
	ctx := cctx
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	out := upstreamMetadata(md, c.id, p.upstream)
	sub := contentSubtype(md)
	retried := false
	for {
		lease, tgt, err := p.acquire(ctx, c)
		if err != nil {
			return p.refuse(cctx, ctx, ss, c, err)
		}
		failure, err := p.forward(cctx, ctx, ss, c, tgt, out, sub)
		tgt.end()
		lease.Release()
		if !failure {
			return err
		}
		// The replica failed: keep the router off it until it is heard
		// of again, as the HTTP proxy does.
		d := c.entry.dep
		_ = d.rt.ReportQueueLen(tgt.id, unavailableLoad, time.Now()) // unknown once removed: nothing to avoid
		p.logger.Warn("serve gRPC proxy: replica failed", "app", d.app, "deployment", d.name,
			"replica", tgt.id, "address", tgt.addr, "method", c.method, "request_id", c.id, "error", err)
		if errors.Is(err, errNotStarted) && !retried && otherReplicaRunning(d, tgt.id) {
			retried = true // nothing reached the replica: safe to send elsewhere
			continue
		}
		return status.Errorf(codes.Unavailable, "deployment %s/%s: replica %s failed: %v", d.app, d.name, tgt.id, status.Convert(err).Message())
	}
}

// errNotStarted marks a replica failure before the call was opened on
// it: nothing was sent, so the call may go to another replica.
var errNotStarted = errors.New("grpcproxy: call not started on the replica")

// forward runs the call on a replica: it opens it with the client's
// metadata, pumps messages both ways (the client's on a goroutine of
// its own, the replica's on this one) and returns the call's status.
// failure says the replica failed rather than answered (no status of
// its own came back); err then says how, wrapping errNotStarted when
// the call could not be opened.
func (p *Proxy) forward(cctx, ctx context.Context, ss grpc.ServerStream, c *call, tgt *target, out metadata.MD, sub string) (failure bool, err error) {
	uctx, cancel := context.WithCancel(ctx)
	defer cancel()
	state := &callState{}
	uctx = metadata.NewOutgoingContext(context.WithValue(uctx, callStateKey{}, state), out)
	var opts []grpc.CallOption
	if sub != "" {
		opts = append(opts, grpc.CallContentSubtype(sub))
	}
	cs, err := tgt.cc.NewStream(uctx, streamDesc, c.method, opts...)
	if err != nil {
		if cctx.Err() != nil {
			return false, status.FromContextError(cctx.Err()).Err()
		}
		if ctx.Err() != nil {
			return false, p.timedOut(c, tgt)
		}
		return true, fmt.Errorf("%w: %w", errNotStarted, err)
	}

	// Client to replica. The goroutine ends when the client half-closes
	// or its stream ends (the grpc.Server ends it when this handler
	// returns); Close waits for it.
	clientErr := make(chan error, 1)
	p.pumpMu.Lock()
	if p.closed.Load() {
		p.pumpMu.Unlock()
		return false, status.Error(codes.Unavailable, "serve gRPC proxy is closed")
	}
	p.pumps.Add(1)
	p.pumpMu.Unlock()
	go func() {
		defer p.pumps.Done()
		if err := pumpToReplica(ss, cs); err != nil {
			clientErr <- err
			cancel() // the replica's side then ends with Canceled
		}
	}()

	// Replica to client.
	f := &frame{}
	for n := 0; ; n++ {
		rerr := cs.RecvMsg(f)
		if n == 0 {
			if h, herr := cs.Header(); herr == nil && len(h) > 0 {
				delete(h, MetadataRequestID) // the proxy's is already set
				_ = ss.SetHeader(h)
			}
		}
		if rerr == io.EOF {
			ss.SetTrailer(cs.Trailer())
			return false, nil
		}
		if rerr != nil {
			select {
			case err := <-clientErr:
				if cctx.Err() == nil {
					return false, err // the client's stream failed (a message too large, say)
				}
			default:
			}
			switch {
			case cctx.Err() != nil:
				return false, status.FromContextError(cctx.Err()).Err()
			case state.trailers.Load():
				ss.SetTrailer(cs.Trailer())
				return false, rerr // the replica's own status, unchanged
			case ctx.Err() != nil || deadlineNear(ctx):
				// The replica has the deadline too (grpc-timeout) and may
				// reset the call a moment before this proxy's timer fires.
				return false, p.timedOut(c, tgt)
			}
			return true, rerr
		}
		if err := ss.SendMsg(f); err != nil {
			f.free()
			return false, err // the client went away
		}
	}
}

// pumpToReplica copies the client's messages to the replica and
// half-closes the replica's side when the client does. It returns the
// client's stream error; a replica that stopped taking messages is not
// an error here (its status comes from its side of the call).
func pumpToReplica(ss grpc.ServerStream, cs grpc.ClientStream) error {
	for {
		f := &frame{}
		if err := ss.RecvMsg(f); err != nil {
			if err == io.EOF {
				_ = cs.CloseSend()
				return nil
			}
			return err
		}
		if err := cs.SendMsg(f); err != nil {
			f.free() // not sent: the replica's side has ended
			return nil
		}
	}
}

// deadlineSlack is how close to its deadline a context counts as
// expired when the replica's call ends without a status of its own.
const deadlineSlack = 20 * time.Millisecond

// deadlineNear reports whether ctx's deadline has passed or is within
// deadlineSlack.
func deadlineNear(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < deadlineSlack
}

func (p *Proxy) timedOut(c *call, tgt *target) error {
	e := c.entry
	return status.Errorf(codes.DeadlineExceeded, "deployment %s/%s: replica %s did not answer within the request timeout (%s)",
		e.app, e.dep.name, tgt.id, e.timeout)
}

// acquire leases a replica of c.entry's deployment and counts the call
// on its connection. When the deployment's router was closed by
// SetRoutes, or the leased replica has just left the table, it routes
// the call again by the current table.
func (p *Proxy) acquire(ctx context.Context, c *call) (*router.Lease, *target, error) {
	for range maxReroutes {
		d := c.entry.dep
		lease, err := d.rt.Acquire(ctx)
		if errors.Is(err, router.ErrClosed) {
			if p.closed.Load() {
				return nil, nil, err
			}
			e := p.table.Load().byApp[c.entry.app]
			if e == nil {
				return nil, nil, errRouteGone
			}
			c.entry = e
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if t := (*d.targets.Load())[lease.Replica()]; t != nil && t.begin() {
			return lease, t, nil
		}
		lease.Release()
	}
	return nil, nil, errReroutes
}

// refuse answers a call that got no replica.
func (p *Proxy) refuse(cctx, ctx context.Context, ss grpc.ServerStream, c *call, err error) error {
	e := c.entry
	var bp *router.BackPressureError
	switch {
	case cctx.Err() != nil:
		return status.FromContextError(cctx.Err()).Err()
	case errors.As(err, &bp):
		setPushback(ss, bp.RetryAfter)
		return status.Errorf(codes.ResourceExhausted, "deployment %s/%s is overloaded: %d requests already queued at this proxy (max_queued_requests=%d); retry later",
			e.app, e.dep.name, bp.Queued, bp.MaxQueued)
	case errors.Is(err, router.ErrNoReplicas):
		return p.unavailable(ss, fmt.Sprintf("no replicas of %s/%s are running (waited %s)", e.app, e.dep.name, e.timeout))
	case ctx.Err() != nil:
		return status.Errorf(codes.DeadlineExceeded, "deployment %s/%s: no replica became free within the request timeout (%s)", e.app, e.dep.name, e.timeout)
	case errors.Is(err, errRouteGone):
		return status.Errorf(codes.NotFound, "application %q was removed while the request waited", e.app)
	}
	return p.unavailable(ss, fmt.Sprintf("deployment %s/%s: %v", e.app, e.dep.name, err)) // closed, or errReroutes
}

// unavailable is codes.Unavailable with msg and a retry pushback of
// Options.RetryAfter.
func (p *Proxy) unavailable(ss grpc.ServerStream, msg string) error {
	setPushback(ss, p.retryAfter)
	return status.Error(codes.Unavailable, msg)
}

// setPushback sets gRPC's retry pushback trailer, which a client with a
// retry policy honours (the gRPC form of Retry-After).
func setPushback(ss grpc.ServerStream, d time.Duration) {
	ss.SetTrailer(metadata.Pairs("grpc-retry-pushback-ms", strconv.FormatInt(d.Milliseconds(), 10)))
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

// upstreamMetadata is the metadata sent to the replica: the client's,
// less what gRPC sets itself (pseudo-headers, content-type, user-agent,
// grpc-* keys) and hop-by-hop keys, with the request id and the proxy's
// upstream pairs (which replace the client's values under their keys).
func upstreamMetadata(in metadata.MD, id string, upstream []string) metadata.MD {
	out := make(metadata.MD, len(in)+1+len(upstream)/2)
	for k, vs := range in {
		if strings.HasPrefix(k, ":") || strings.HasPrefix(k, "grpc-") {
			continue
		}
		switch k {
		case "content-type", "user-agent", "te", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host":
			continue
		}
		out[k] = vs
	}
	out[MetadataRequestID] = []string{id}
	for i := 0; i+1 < len(upstream); i += 2 {
		out[upstream[i]] = []string{upstream[i+1]}
	}
	return out
}

// contentSubtype is the client's content-subtype ("json" of
// "application/grpc+json"), sent on to the replica; "" for plain
// "application/grpc" (the replica then sees "application/grpc+proto").
func contentSubtype(md metadata.MD) string {
	ct := md.Get("content-type")
	if len(ct) == 0 {
		return ""
	}
	sub, ok := strings.CutPrefix(strings.ToLower(ct[0]), "application/grpc")
	if !ok {
		return ""
	}
	if s, ok := strings.CutPrefix(sub, "+"); ok {
		return s
	}
	return "" // "application/grpc" itself, or with parameters (";…")
}
