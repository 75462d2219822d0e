package routes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/serve/proxy"
)

// Limits and defaults of the long poll.
const (
	// MaxWait bounds how long one Get (and one GET /api/serve/routes)
	// waits for a change: a longer maxWait is cut to it. Ray's long poll
	// waits 30–60 s (LISTEN_FOR_CHANGE_REQUEST_TIMEOUT_S).
	MaxWait = 60 * time.Second

	// DefaultWait is how long a Follower asks the head to wait for a
	// change, and the REST handler's wait when the request names none:
	// the low end of Ray's 30–60 s.
	DefaultWait = 30 * time.Second

	// firstVersionSpan bounds the random first version of a Table (see
	// NewTable); versions stay far below 2^53, exact in JSON numbers.
	firstVersionSpan = 1 << 32
)

// Table is the head's versioned routing table: the controller Sets the
// whole table on each change and every node's proxy long-polls it with
// Get. It is safe for concurrent use; any number of Get calls may wait
// at once, and one Set wakes them all.
//
// Versions: the first Set gives a random version in [1, 2^32], and each
// later Set that changes the table the next one. The random start is
// Ray's LongPollHost's (random initial snapshot ids): a proxy that
// followed a head which then restarted holds a version the new table is
// almost surely not at, so it gets the new table as soon as it is set,
// even if the new head's version is lower. Get therefore answers at once
// whenever the table's version differs from the caller's, not only when
// it is greater. Before the first Set the table has no version (0) and
// Get only waits: proxies keep the table they have until the controller
// sets one.
type Table struct {
	mu      sync.Mutex
	version uint64        // guarded by mu; 0 until the first Set
	routes  []proxy.Route // guarded by mu; never modified in place (Set replaces it)
	changed chan struct{} // guarded by mu; closed and replaced by each Set that changes the table, closed by Close
	closed  bool          // guarded by mu
	first   uint64        // the version of the first Set
}

// NewTable returns an empty table with no version.
func NewTable() *Table {
	return &Table{changed: make(chan struct{}), first: 1 + rand.Uint64N(firstVersionSpan)}
}

// Set replaces the table with routes and returns its version. routes
// must be a valid proxy table (every route's prefix, names and replicas,
// as proxy.Proxy.SetRoutes checks them): an invalid one changes nothing
// and the error, wrapping ErrInvalid and proxy.ErrInvalid, names every
// problem. routes is copied. A table equal to the current one keeps the
// current version and wakes no one. After Close, Set returns ErrClosed.
func (t *Table) Set(routes []proxy.Route) (uint64, error) {
	if err := Validate(routes); err != nil {
		return 0, err
	}
	routes = cloneRoutes(routes)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, ErrClosed
	}
	if t.version != 0 && equalRoutes(t.routes, routes) {
		return t.version, nil
	}
	if t.version == 0 {
		t.version = t.first
	} else {
		t.version++
	}
	t.routes = routes
	close(t.changed)
	t.changed = make(chan struct{})
	return t.version, nil
}

// Current returns the table's version (0 before the first Set) and
// routes, without waiting. The routes are shared: do not modify them.
func (t *Table) Current() (uint64, []proxy.Route) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version, t.routes
}

// Get returns the table's version and routes as soon as the table has a
// version other than since: at once when it already has, else when a Set
// gives it one, waiting at most maxWait (cut to MaxWait; 0 or less: not
// at all). When nothing changed in time it returns since and nil routes,
// with no error: callers tell a change by the version differing from
// since. It returns ctx's error when ctx ends first, and ErrClosed when
// the table is (or gets) closed. The routes are shared: do not modify
// them.
func (t *Table) Get(ctx context.Context, since uint64, maxWait time.Duration) (uint64, []proxy.Route, error) {
	maxWait = min(maxWait, MaxWait)
	var timeout <-chan time.Time
	if maxWait > 0 {
		timer := time.NewTimer(maxWait)
		defer timer.Stop()
		timeout = timer.C
	}
	for {
		t.mu.Lock()
		version, routes, changed, closed := t.version, t.routes, t.changed, t.closed
		t.mu.Unlock()
		switch {
		case closed:
			return 0, nil, ErrClosed
		case version != 0 && version != since:
			return version, routes, nil
		case maxWait <= 0:
			return since, nil, nil
		}
		select {
		case <-changed:
		case <-timeout:
			return since, nil, nil
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// Close wakes every waiting Get with ErrClosed; later Set and Get calls
// return ErrClosed. Close is idempotent.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.changed)
	}
}

// Validate reports whether routes is a routing table every proxy accepts:
// it is checked by a proxy.Proxy that serves nothing, so that the head
// refuses what the proxies would. The error wraps ErrInvalid and
// proxy.ErrInvalid and names every problem.
func Validate(routes []proxy.Route) error {
	p, err := proxy.New(proxy.Options{})
	if err != nil {
		return fmt.Errorf("routes: checking a table: %w", err)
	}
	defer p.Close()
	if err := p.SetRoutes(routes); err != nil {
		if errors.Is(err, proxy.ErrInvalid) {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return fmt.Errorf("routes: checking a table: %w", err)
	}
	return nil
}

func cloneRoutes(routes []proxy.Route) []proxy.Route {
	out := slices.Clone(routes)
	for i := range out {
		out[i].Replicas = slices.Clone(out[i].Replicas)
	}
	return out
}

func equalRoutes(a, b []proxy.Route) bool {
	return slices.EqualFunc(a, b, func(x, y proxy.Route) bool {
		return x.Prefix == y.Prefix && x.App == y.App && x.Deployment == y.Deployment &&
			x.MaxQueuedRequests == y.MaxQueuedRequests && x.RequestTimeout == y.RequestTimeout &&
			slices.Equal(x.Replicas, y.Replicas)
	})
}
