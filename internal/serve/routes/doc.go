// Package routes distributes raygo Serve's routing table from the head to
// the HTTP proxy on every node, by long poll, as Ray Serve's controller
// does with its LongPollHost (python/ray/serve/_private/long_poll.py).
//
// # How Serve uses it
//
// On the head, one Table holds the whole table ([]proxy.Route: every
// route prefix with its deployment's replicas). The controller (not built
// yet) calls Table.Set with the whole table after each change it makes
// (a replica up, draining or gone, an application deployed or deleted);
// package routesapi serves the Table on the head's HTTP API at Path
// (GET: long poll, read scope; PUT: set the table, write scope, for
// operators and tests until the controller owns the Table).
//
// On every node, the node daemon runs a Follower (internal/raylet's
// serveproxy.go): it long-polls GET /api/serve/routes?since=V&wait=30s
// with the cluster token and hands each new table to the node's
// proxy.Proxy.SetRoutes. A poll returns as soon as the head's version
// differs from V, or after the wait with no change; a failed poll is
// retried after MinBackoff, doubling up to MaxBackoff. So a change
// reaches every proxy within one round trip, and a head that restarts is
// followed again as soon as its table is set (versions start at random,
// see Table).
//
//	t := routes.NewTable()                      // head
//	v, err := t.Set([]proxy.Route{{Prefix: "/shop", App: "shop", Deployment: "Cart",
//		Replicas: []proxy.Replica{{ID: "Cart#1", Node: node, URL: "http://10.0.0.2:41233"}}}})
//
//	err = routes.Follow(ctx, apiURL, token, func(v uint64, rs []proxy.Route) { // every node
//		if err := p.SetRoutes(rs); err != nil { log… }
//	})
//
// # Limits
//
// A poll waits at most MaxWait (60 s) on the head and DefaultWait (30 s)
// by default, the range of Ray's long poll timeout; the follower gives a
// poll up RequestSlack after its wait and reads at most MaxResponseBytes
// of table. Every table is checked with the proxy's own rules at Set, so
// the head refuses what proxies would refuse.
package routes
