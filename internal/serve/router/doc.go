// Package router chooses a replica of one Serve deployment for each
// request: the request router that raygo Serve's HTTP proxies and
// deployment handles share, after Ray Serve's
// PowerOfTwoChoicesRequestRouter.
//
// A Router holds the deployment's replicas, as the controller last
// described them, and counts the requests it has in flight on each. For
// every request, Acquire samples two replicas that take new requests
// (state Running, below their MaxOngoingRequests) and leases a slot on
// the one with fewer requests in flight ("power of two choices"), looking
// first among replicas on the caller's node, then in its availability
// zone, then everywhere, as Ray prefers. When no replica has room the
// request waits in a FIFO queue, bounded by MaxQueuedRequests, and is
// served in arrival order as leases are released; beyond the bound it is
// refused with a *BackPressureError. Nothing here does I/O or starts a
// goroutine per request; a single timer wakes the Router when a
// queue-length report that held a replica at its limit goes stale.
//
// # How Serve uses it
//
// Each proxy (and each deployment handle) keeps one Router per deployment
// it routes to:
//
//   - The controller's replica-set updates (replica started, draining,
//     failed its health check, stopped) become Set calls with the whole
//     set, or Update/Remove calls with one replica.
//   - Per request, the proxy calls Acquire with the request's context and
//     sends the request to Lease.Replica(), releasing the lease when the
//     response ends. A *BackPressureError becomes HTTP 503 with a
//     Retry-After of RetryAfter; an error matching ErrNoReplicas becomes
//     503 "no replicas" (the deployment is scaled to zero or starting);
//     the context's own error means the client went away or timed out.
//   - The proxy may probe replicas for their own queue length (requests
//     from every proxy, Ray's queue_len probe) and pass the answers to
//     ReportQueueLen; the Router then counts that load too, for
//     QueueLenTTL.
//   - The autoscaler reads Stats: InFlight+Queued is this Router's share of
//     the deployment's ongoing requests, and Queued with Running == 0 is
//     the signal to scale up from zero.
//
// # Example
//
//	rt, _ := router.New(router.Options{LocalNode: "node-1", MaxQueuedRequests: 100})
//	defer rt.Close()
//	rt.Set([]router.Replica{
//		{ID: "r1", NodeID: "node-1", MaxOngoingRequests: 5},
//		{ID: "r2", NodeID: "node-2", MaxOngoingRequests: 5},
//	})
//	lease, err := rt.Acquire(ctx)
//	if err != nil {
//		return err // *BackPressureError, ErrNoReplicas+ctx error, ctx error, ErrClosed
//	}
//	defer lease.Release()
//	forward(req, lease.Replica())
//
// # Limits
//
// Every knob is a field of Options or Replica, with Ray's default where
// Ray has one: MaxOngoingRequests 5, MaxQueuedRequests unbounded,
// QueueLenTTL 10 s. Locality is fixed per Router (LocalNode, LocalZone),
// as it is per handle in Ray. Removed replicas' leases no longer count in
// Stats.InFlight.
package router
