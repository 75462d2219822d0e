package router

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and limits. Where Ray Serve has the same knob the value is
// Ray's default.
const (
	// DefaultMaxOngoingRequests is used for a Replica whose
	// MaxOngoingRequests is 0. Ray's default max_ongoing_requests (5).
	DefaultMaxOngoingRequests = 5

	// Unbounded as Options.MaxQueuedRequests lets the wait queue grow
	// without limit. Ray's default max_queued_requests (-1).
	Unbounded = -1

	// DefaultQueueLenTTL is how long a reported queue length is trusted.
	// Ray's default RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S (10 s).
	DefaultQueueLenTTL = 10 * time.Second

	// DefaultRetryAfter is the retry delay a BackPressureError suggests.
	// Ray's proxy answers back pressure with a bare 503; raygo adds a
	// Retry-After of one second.
	DefaultRetryAfter = time.Second
)

// ReplicaState says whether a replica takes new requests.
type ReplicaState int

const (
	// Running replicas take new requests up to their MaxOngoingRequests.
	// It is the zero value.
	Running ReplicaState = iota
	// Draining replicas take no new requests; their in-flight leases stay
	// valid and count until released (Ray's graceful shutdown).
	Draining
	// Unhealthy replicas take no new requests (failed health check); like
	// Draining, their in-flight leases stay valid.
	Unhealthy
)

// String returns "running", "draining" or "unhealthy".
func (s ReplicaState) String() string {
	switch s {
	case Running:
		return "running"
	case Draining:
		return "draining"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("ReplicaState(%d)", int(s))
}

// Replica describes one replica of the deployment as the controller sees
// it.
type Replica struct {
	// ID names the replica; unique within the deployment, not empty.
	ID string
	// NodeID is the node the replica runs on, for locality.
	NodeID string
	// Zone is the replica's availability zone, for locality; may be empty.
	Zone string
	// MaxOngoingRequests is how many requests this Router sends to the
	// replica at once (Ray's max_ongoing_requests); 0 means
	// DefaultMaxOngoingRequests.
	MaxOngoingRequests int
	// State says whether it takes new requests.
	State ReplicaState
}

func (r Replica) validate() error {
	if r.ID == "" {
		return fmt.Errorf("%w: replica with an empty ID", ErrInvalid)
	}
	if r.MaxOngoingRequests < 0 {
		return fmt.Errorf("%w: replica %q: MaxOngoingRequests %d is negative", ErrInvalid, r.ID, r.MaxOngoingRequests)
	}
	if r.State < Running || r.State > Unhealthy {
		return fmt.Errorf("%w: replica %q: unknown state %d", ErrInvalid, r.ID, int(r.State))
	}
	return nil
}

// Options configure a Router. The zero value is valid and gives Ray's
// defaults.
type Options struct {
	// MaxQueuedRequests bounds how many requests may wait for a replica
	// (Ray's max_queued_requests); the next one gets a BackPressureError.
	// Unbounded (-1) or 0 means no bound (Ray's default is -1).
	MaxQueuedRequests int
	// LocalNode, when not empty, makes the Router prefer replicas on this
	// node: while one of them has room, requests go only to them (Ray's
	// prefer_local_node_routing, on by default for proxies).
	LocalNode string
	// LocalZone, when not empty, is the next preference after LocalNode:
	// replicas in this availability zone (Ray's prefer_local_az_routing).
	LocalZone string
	// QueueLenTTL is how long a ReportQueueLen value is trusted; older
	// reports are ignored. 0 means DefaultQueueLenTTL.
	QueueLenTTL time.Duration
	// RetryAfter is the delay a BackPressureError suggests; 0 means
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// Rand drives the power-of-two-choices sample; nil means math/rand/v2.
	Rand Rand
	// Clock is the time source for queue-length reports; nil means the
	// system clock.
	Clock Clock
}

// Validate reports the first invalid field, naming it and its value.
func (o Options) Validate() error {
	if o.MaxQueuedRequests < Unbounded {
		return fmt.Errorf("%w: MaxQueuedRequests %d: must be -1 (unbounded), 0 (unbounded) or positive", ErrInvalid, o.MaxQueuedRequests)
	}
	if o.QueueLenTTL < 0 {
		return fmt.Errorf("%w: QueueLenTTL %s is negative", ErrInvalid, o.QueueLenTTL)
	}
	if o.RetryAfter < 0 {
		return fmt.Errorf("%w: RetryAfter %s is negative", ErrInvalid, o.RetryAfter)
	}
	return nil
}

// Locality tiers, most preferred first. A replica is in tierAll always,
// and in the others when its node or zone matches the Router's.
const (
	tierNode = iota
	tierZone
	tierAll
	numTiers
)

// replica is the Router's record of one replica. Every field is guarded
// by Router.mu. A removed replica's record is dropped from the Router but
// stays reachable from its leases, which then release harmlessly.
type replica struct {
	id       string
	desc     Replica
	max      int
	member   [numTiers]bool
	pos      [numTiers]int // index in Router.avail[t], or -1
	inFlight int
	removed  bool

	// The replica's own queue length as last reported, kept current by
	// this Router's acquires and releases until it goes stale.
	hasReport  bool
	reported   int
	reportedAt time.Time
}

// waiter is a request queued for a slot, in an intrusive FIFO list.
// Fields other than ready are guarded by Router.mu; lease and err are
// set before ready is closed and read by the waiter after.
type waiter struct {
	prev, next *waiter
	ready      chan struct{}
	lease      *Lease
	err        error
	queued     bool
}

// Router chooses a replica of one deployment for each request. It is
// safe for concurrent use; Acquire never starts a goroutine and never
// polls. Create it with New and stop it with Close.
type Router struct {
	maxQueued  int // 0: unbounded
	localNode  string
	localZone  string
	ttl        time.Duration
	retryAfter time.Duration
	rnd        Rand
	clock      Clock

	timers sync.WaitGroup // running or pending clock.AfterFunc callbacks

	mu        sync.Mutex
	replicas  map[string]*replica  // guarded by mu
	avail     [numTiers][]*replica // guarded by mu; running, below limit
	running   int                  // guarded by mu; replicas in state Running
	inFlight  int                  // guarded by mu; leases on current replicas
	head      *waiter              // guarded by mu
	tail      *waiter              // guarded by mu
	queued    int                  // guarded by mu
	closed    bool                 // guarded by mu
	timerAt   time.Time            // guarded by mu; when the armed timer fires
	timerGen  uint64               // guarded by mu
	stopTimer func() bool          // guarded by mu; nil when none armed
}

// New returns a Router with no replicas; requests wait until Set gives it
// some.
func New(opts Options) (*Router, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &Router{
		maxQueued:  max(opts.MaxQueuedRequests, 0),
		localNode:  opts.LocalNode,
		localZone:  opts.LocalZone,
		ttl:        opts.QueueLenTTL,
		retryAfter: opts.RetryAfter,
		rnd:        opts.Rand,
		clock:      opts.Clock,
		replicas:   make(map[string]*replica),
	}
	if r.ttl == 0 {
		r.ttl = DefaultQueueLenTTL
	}
	if r.retryAfter == 0 {
		r.retryAfter = DefaultRetryAfter
	}
	if r.rnd == nil {
		r.rnd = globalRand{}
	}
	if r.clock == nil {
		r.clock = systemClock{}
	}
	return r, nil
}

// Lease is one request's slot on a replica, from Acquire until Release.
type Lease struct {
	r        *Router
	rep      *replica
	id       string
	released atomic.Bool
}

// Replica returns the ID of the replica the request must be sent to.
func (l *Lease) Replica() string { return l.id }

// Release frees the slot and hands it to the oldest waiting request, if
// the replica still takes requests. Calls after the first do nothing, as
// does releasing a lease whose replica has been removed. Safe for
// concurrent use.
func (l *Lease) Release() {
	if !l.released.CompareAndSwap(false, true) {
		return
	}
	r, rep := l.r, l.rep
	r.mu.Lock()
	rep.inFlight--
	if rep.hasReport && rep.reported > 0 {
		rep.reported--
	}
	if !rep.removed {
		r.inFlight--
		r.refreshLocked(rep)
		r.dispatchLocked()
	}
	r.mu.Unlock()
}

// Acquire returns a lease on a replica for one request. It chooses
// among the running replicas below their MaxOngoingRequests by power of
// two choices (two sampled at random, the one with fewer requests in
// flight wins), from the most local tier that has one (LocalNode, then
// LocalZone, then all).
//
// When no replica has room, or earlier requests are already waiting, the
// request waits its turn in a FIFO queue and is served as slots free up.
// If MaxQueuedRequests requests already wait, Acquire returns a
// *BackPressureError at once. If ctx ends first, Acquire returns ctx's
// error, joined with ErrNoReplicas when the deployment had no running
// replica at that moment. After Close it returns ErrClosed.
//
// The caller must Release the lease when the request ends.
func (r *Router) Acquire(ctx context.Context) (*Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	// FIFO: a slot goes to a newcomer only when nobody is waiting. The
	// queue is never non-empty while a replica has room (dispatchLocked
	// runs after every change that frees one), so this is no loss.
	if r.head == nil {
		if rep := r.chooseLocked(); rep != nil {
			l := r.grantLocked(rep)
			r.mu.Unlock()
			return l, nil
		}
	}
	if r.maxQueued > 0 && r.queued >= r.maxQueued {
		err := &BackPressureError{Queued: r.queued, MaxQueued: r.maxQueued, RetryAfter: r.retryAfter}
		r.mu.Unlock()
		return nil, err
	}
	w := &waiter{ready: make(chan struct{})}
	r.pushLocked(w)
	r.mu.Unlock()

	select {
	case <-w.ready:
		return w.lease, w.err
	case <-ctx.Done():
	}
	r.mu.Lock()
	select {
	case <-w.ready:
		// Served just as ctx ended: give the slot to the next in line.
		r.mu.Unlock()
		if w.lease != nil {
			w.lease.Release()
		}
		return nil, ctx.Err()
	default:
	}
	r.removeLocked(w)
	noReplicas := r.running == 0
	r.mu.Unlock()
	if noReplicas {
		return nil, fmt.Errorf("%w: %w", ErrNoReplicas, ctx.Err())
	}
	return nil, ctx.Err()
}

// Set replaces the replica set with replicas, as the controller's view
// changes. Replicas kept (same ID) keep their in-flight counts and
// reports; their node, zone, limit and state are updated. Replicas left
// out are removed: no request goes to them again and releasing their
// leases does nothing. On an invalid or duplicate entry Set changes
// nothing and returns an error naming it.
func (r *Router) Set(replicas []Replica) error {
	seen := make(map[string]struct{}, len(replicas))
	for _, d := range replicas {
		if err := d.validate(); err != nil {
			return err
		}
		if _, dup := seen[d.ID]; dup {
			return fmt.Errorf("%w: replica %q listed twice", ErrInvalid, d.ID)
		}
		seen[d.ID] = struct{}{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rep := range r.replicas {
		if _, keep := seen[id]; !keep {
			r.removeReplicaLocked(rep)
		}
	}
	for _, d := range replicas {
		r.upsertLocked(d)
	}
	r.dispatchLocked()
	return nil
}

// Update adds the replica d or, if its ID is known, updates it in place
// as Set does for a kept replica.
func (r *Router) Update(d Replica) error {
	if err := d.validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upsertLocked(d)
	r.dispatchLocked()
	return nil
}

// Remove removes the replica id as Set does for one left out, and reports
// whether it was there.
func (r *Router) Remove(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, ok := r.replicas[id]
	if ok {
		r.removeReplicaLocked(rep)
	}
	return ok
}

// SetMaxQueuedRequests changes the queue bound (Options.MaxQueuedRequests:
// -1 or 0 unbounded). Requests already waiting keep their places even
// past a lowered bound; new ones are refused until the queue is below it.
func (r *Router) SetMaxQueuedRequests(n int) error {
	if n < Unbounded {
		return fmt.Errorf("%w: MaxQueuedRequests %d: must be -1 (unbounded), 0 (unbounded) or positive", ErrInvalid, n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.maxQueued = max(n, 0)
	return nil
}

// ReportQueueLen records the replica's own count of requests it is
// handling or queueing, from every caller (Ray's queue_len probe), as
// measured at time at. Until the report is QueueLenTTL old, the Router
// takes the replica's load to be the larger of this count and its own
// in-flight count, for both the choice and the MaxOngoingRequests limit,
// and keeps it current by adding its own acquires and subtracting its
// releases. A report older than the one held is ignored. It returns
// ErrUnknownReplica for an id the Router does not hold and ErrInvalid for
// a negative length.
func (r *Router) ReportQueueLen(id string, queueLen int, at time.Time) error {
	if queueLen < 0 {
		return fmt.Errorf("%w: replica %q: queue length %d is negative", ErrInvalid, id, queueLen)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, ok := r.replicas[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownReplica, id)
	}
	if rep.hasReport && at.Before(rep.reportedAt) {
		return nil
	}
	rep.hasReport, rep.reported, rep.reportedAt = true, queueLen, at
	r.refreshLocked(rep)
	r.dispatchLocked()
	return nil
}

// Close fails every waiting request with ErrClosed, makes later Acquire
// calls fail the same way and stops the Router's timer, waiting for a
// callback already running. Leases stay valid and may still be released.
// Close is idempotent.
func (r *Router) Close() {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		for r.head != nil {
			w := r.head
			r.removeLocked(w)
			w.err = ErrClosed
			close(w.ready)
		}
		r.disarmLocked()
	}
	r.mu.Unlock()
	r.timers.Wait()
}

// Stats is a snapshot of the Router's load, for autoscaling and metrics.
// InFlight+Queued is what Ray's handle reports to the autoscaler as its
// ongoing requests.
type Stats struct {
	// InFlight counts unreleased leases on current replicas.
	InFlight int
	// Queued counts requests waiting for a slot.
	Queued int
	// Running counts replicas in state Running.
	Running int
	// Replicas lists every current replica, by ID.
	Replicas []ReplicaStats
}

// ReplicaStats is one replica's part of Stats.
type ReplicaStats struct {
	ID                 string
	NodeID             string
	State              ReplicaState
	MaxOngoingRequests int
	// InFlight counts this Router's unreleased leases on it.
	InFlight int
	// QueueLen is the replica's reported queue length as kept current by
	// this Router, or -1 when it has no report younger than QueueLenTTL.
	QueueLen int
}

// Stats returns a snapshot of the Router's counts.
func (r *Router) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{InFlight: r.inFlight, Queued: r.queued, Running: r.running,
		Replicas: make([]ReplicaStats, 0, len(r.replicas))}
	for _, rep := range r.replicas {
		q := -1
		if r.reportFreshLocked(rep) {
			q = rep.reported
		}
		s.Replicas = append(s.Replicas, ReplicaStats{
			ID: rep.id, NodeID: rep.desc.NodeID, State: rep.desc.State,
			MaxOngoingRequests: rep.max, InFlight: rep.inFlight, QueueLen: q,
		})
	}
	slices.SortFunc(s.Replicas, func(a, b ReplicaStats) int { return strings.Compare(a.ID, b.ID) })
	return s
}

// chooseLocked picks a replica with room by power of two choices in the
// most local tier that has one, or returns nil.
func (r *Router) chooseLocked() *replica {
	for t := range numTiers {
		list := r.avail[t]
		if len(list) == 0 {
			continue
		}
		i, j := pickTwo(len(list), r.rnd)
		a := list[i]
		if j < 0 {
			return a
		}
		b := list[j]
		if r.loadLocked(b) < r.loadLocked(a) {
			return b
		}
		return a
	}
	return nil
}

func (r *Router) grantLocked(rep *replica) *Lease {
	rep.inFlight++
	r.inFlight++
	if rep.hasReport {
		rep.reported++
	}
	r.refreshLocked(rep)
	return &Lease{r: r, rep: rep, id: rep.id}
}

// dispatchLocked serves waiters in order while some replica has room.
func (r *Router) dispatchLocked() {
	for r.head != nil {
		rep := r.chooseLocked()
		if rep == nil {
			return
		}
		w := r.head
		r.removeLocked(w)
		w.lease = r.grantLocked(rep)
		close(w.ready)
	}
}

// reportFreshLocked reports whether rep's queue-length report is younger
// than the TTL, dropping it once it is not.
func (r *Router) reportFreshLocked(rep *replica) bool {
	if !rep.hasReport {
		return false
	}
	if r.clock.Now().Sub(rep.reportedAt) > r.ttl {
		rep.hasReport = false
		return false
	}
	return true
}

// loadLocked is rep's load as the choice and the limit see it.
func (r *Router) loadLocked(rep *replica) int {
	if r.reportFreshLocked(rep) && rep.reported > rep.inFlight {
		return rep.reported
	}
	return rep.inFlight
}

// refreshLocked puts rep in or out of the available lists after a change
// of its counts, state, report or locality. When only a fresh report
// keeps it out, it arms the timer to look again when the report expires.
func (r *Router) refreshLocked(rep *replica) {
	ok := !rep.removed && rep.desc.State == Running && rep.inFlight < rep.max
	if ok && r.loadLocked(rep) >= rep.max {
		ok = false
		r.armLocked(rep.reportedAt.Add(r.ttl + 1))
	}
	for t := range numTiers {
		want := ok && rep.member[t]
		have := rep.pos[t] >= 0
		switch {
		case want && !have:
			rep.pos[t] = len(r.avail[t])
			r.avail[t] = append(r.avail[t], rep)
		case !want && have:
			list := r.avail[t]
			i, last := rep.pos[t], len(list)-1
			list[i] = list[last]
			list[i].pos[t] = i
			list[last] = nil
			r.avail[t] = list[:last]
			rep.pos[t] = -1
		}
	}
}

func (r *Router) upsertLocked(d Replica) {
	rep, ok := r.replicas[d.ID]
	if !ok {
		rep = &replica{id: d.ID, pos: [numTiers]int{-1, -1, -1}}
		r.replicas[d.ID] = rep
	} else if rep.desc.State == Running {
		r.running--
	}
	rep.desc = d
	rep.max = d.MaxOngoingRequests
	if rep.max == 0 {
		rep.max = DefaultMaxOngoingRequests
	}
	if d.State == Running {
		r.running++
	}
	rep.member[tierNode] = r.localNode != "" && d.NodeID == r.localNode
	rep.member[tierZone] = r.localZone != "" && d.Zone == r.localZone
	rep.member[tierAll] = true
	r.refreshLocked(rep)
}

func (r *Router) removeReplicaLocked(rep *replica) {
	delete(r.replicas, rep.id)
	rep.removed = true
	r.refreshLocked(rep)
	r.inFlight -= rep.inFlight
	if rep.desc.State == Running {
		r.running--
	}
}

func (r *Router) pushLocked(w *waiter) {
	w.queued = true
	w.prev = r.tail
	if r.tail != nil {
		r.tail.next = w
	} else {
		r.head = w
	}
	r.tail = w
	r.queued++
}

func (r *Router) removeLocked(w *waiter) {
	if !w.queued {
		return
	}
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		r.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		r.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	r.queued--
}

// armLocked makes sure the timer fires no later than at.
func (r *Router) armLocked(at time.Time) {
	if r.closed || (r.stopTimer != nil && !r.timerAt.After(at)) {
		return
	}
	r.disarmLocked()
	r.timerGen++
	gen := r.timerGen
	r.timerAt = at
	r.timers.Add(1)
	r.stopTimer = r.clock.AfterFunc(at.Sub(r.clock.Now()), func() {
		defer r.timers.Done()
		r.onTimer(gen)
	})
}

func (r *Router) disarmLocked() {
	if r.stopTimer == nil {
		return
	}
	if r.stopTimer() {
		r.timers.Done()
	}
	r.stopTimer = nil
}

// onTimer looks again at every replica once a report that held one at its
// limit may have gone stale.
func (r *Router) onTimer(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	if gen == r.timerGen {
		r.stopTimer = nil
	}
	for _, rep := range r.replicas {
		r.refreshLocked(rep)
	}
	r.dispatchLocked()
}

// Keep is how a proxy that keeps a Router per deployment across routing
// tables applies a table's entry: cur (nil: none yet) with its queue
// bound set to opts.MaxQueuedRequests, or a new Router with opts.
func Keep(cur *Router, opts Options) (*Router, error) {
	if cur == nil {
		return New(opts)
	}
	if err := cur.SetMaxQueuedRequests(opts.MaxQueuedRequests); err != nil {
		return nil, err
	}
	return cur, nil
}
