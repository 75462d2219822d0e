package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/serve/router"
)

// Replica is one replica of a deployment as the controller describes it
// to the proxy.
type Replica struct {
	// ID names the replica, unique within its deployment; it appears in
	// 502 responses and logs.
	ID string
	// Node is the node the replica runs on, for locality.
	Node string
	// Zone is the replica's availability zone, for locality; may be empty.
	Zone string
	// URL is the replica's HTTP listener, "http://host:port" (https
	// works with a Transport configured for it). It has no path: the
	// request's full path is sent.
	URL string
	// MaxOngoingRequests is how many requests this proxy sends the
	// replica at once; 0 means router.DefaultMaxOngoingRequests (Ray's
	// default, 5).
	MaxOngoingRequests int
	// State says whether it takes new requests: router.Running, or
	// router.Draining / router.Unhealthy (no new requests; those in
	// flight finish).
	State router.ReplicaState
}

// Route sends the requests under one path prefix to one deployment, and
// carries that deployment's replicas and request options.
type Route struct {
	// Prefix is the route prefix (Ray's route_prefix): "/" or a path
	// starting with "/", not ending with "/", without "{", "}", "?", "#"
	// or an empty segment. It matches itself and the paths under it, by
	// whole segments: "/shop" matches "/shop" and "/shop/cart", not
	// "/shopping". The longest matching prefix wins.
	Prefix string
	// App is the application the route belongs to.
	App string
	// Deployment is the application's ingress deployment. (App,
	// Deployment) names a deployment; a deployment has at most one route.
	Deployment string
	// Replicas is the deployment's whole replica set. Empty means the
	// deployment is scaled to zero or starting: requests wait for a
	// replica until their timeout.
	Replicas []Replica
	// MaxQueuedRequests bounds the requests waiting for a replica at this
	// proxy (Ray's max_queued_requests); beyond it the client gets 503
	// with Retry-After. -1 or 0 means unbounded, Ray's default (-1).
	MaxQueuedRequests int
	// RequestTimeout overrides Options.RequestTimeout for this route when
	// positive (Ray's request_timeout_s).
	RequestTimeout time.Duration
}

type depKey struct{ app, deployment string }

// validatePrefix reports what is wrong with a route prefix, after Ray's
// route_prefix rules.
func validatePrefix(p string) error {
	switch {
	case p == "":
		return errors.New("empty prefix")
	case p[0] != '/':
		return fmt.Errorf("prefix %q does not start with \"/\"", p)
	case p == "/":
		return nil
	case strings.HasSuffix(p, "/"):
		return fmt.Errorf("prefix %q ends with \"/\"", p)
	case strings.Contains(p, "//"):
		return fmt.Errorf("prefix %q has an empty segment", p)
	case strings.ContainsAny(p, "{}?#"):
		return fmt.Errorf("prefix %q contains one of \"{\", \"}\", \"?\", \"#\"", p)
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] == 0x7f {
			return fmt.Errorf("prefix %q contains a space or control character", p)
		}
	}
	return nil
}

// validateRoutes checks a routing table and returns every problem found,
// joined, each naming the route and the field.
func validateRoutes(routes []Route) error {
	var errs []error
	bad := func(i int, rt Route, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: routes[%d] (%s): %s", ErrInvalid, i, rt.Prefix, fmt.Sprintf(format, args...)))
	}
	prefixes := make(map[string]int, len(routes))
	deps := make(map[depKey]int, len(routes))
	for i, rt := range routes {
		if err := validatePrefix(rt.Prefix); err != nil {
			bad(i, rt, "Prefix: %v", err)
		} else if j, dup := prefixes[rt.Prefix]; dup {
			bad(i, rt, "Prefix %q is also routes[%d]'s", rt.Prefix, j)
		} else {
			prefixes[rt.Prefix] = i
		}
		if rt.App == "" {
			bad(i, rt, "App is empty")
		}
		if rt.Deployment == "" {
			bad(i, rt, "Deployment is empty")
		}
		k := depKey{rt.App, rt.Deployment}
		if j, dup := deps[k]; dup {
			bad(i, rt, "deployment %s/%s already has a route, routes[%d]", rt.App, rt.Deployment, j)
		} else {
			deps[k] = i
		}
		if rt.MaxQueuedRequests < router.Unbounded {
			bad(i, rt, "MaxQueuedRequests %d: must be -1 (unbounded), 0 (unbounded) or positive", rt.MaxQueuedRequests)
		}
		if rt.RequestTimeout < 0 {
			bad(i, rt, "RequestTimeout %s is negative", rt.RequestTimeout)
		}
		ids := make(map[string]struct{}, len(rt.Replicas))
		for j, rep := range rt.Replicas {
			if rep.ID == "" {
				bad(i, rt, "Replicas[%d]: empty ID", j)
			} else if _, dup := ids[rep.ID]; dup {
				bad(i, rt, "Replicas[%d]: replica %q listed twice", j, rep.ID)
			}
			ids[rep.ID] = struct{}{}
			if _, err := parseReplicaURL(rep.URL); err != nil {
				bad(i, rt, "Replicas[%d] (%s): %v", j, rep.ID, err)
			}
			if rep.MaxOngoingRequests < 0 {
				bad(i, rt, "Replicas[%d] (%s): MaxOngoingRequests %d is negative", j, rep.ID, rep.MaxOngoingRequests)
			}
			if rep.State < router.Running || rep.State > router.Unhealthy {
				bad(i, rt, "Replicas[%d] (%s): unknown State %d", j, rep.ID, int(rep.State))
			}
		}
	}
	return errors.Join(errs...)
}

func parseReplicaURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("URL %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("URL %q has no host", s)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("URL %q: want http://host:port, without path, query or user", s)
	}
	u.Path = ""
	return u, nil
}

// match returns the entry of the longest prefix of path, by whole
// segments, or nil. It tries path itself and then each parent: "/a/b/c",
// "/a/b", "/a", "/"; a trailing slash is ignored ("/a/" tries "/a").
func match(byPrefix map[string]*routeEntry, path string) *routeEntry {
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	for {
		if e, ok := byPrefix[path]; ok {
			return e
		}
		if path == "/" {
			return nil
		}
		i := strings.LastIndexByte(path, '/')
		if i == 0 {
			path = "/"
		} else {
			path = path[:i]
		}
	}
}

// sortedPrefixes returns the table's prefixes in order, for the 404 body
// and /-/routes.
func sortedPrefixes(byPrefix map[string]*routeEntry) []string {
	ps := make([]string, 0, len(byPrefix))
	for p := range byPrefix {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
