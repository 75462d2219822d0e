package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/serve/goapp"
	"github.com/raygo/raygo/internal/serve/router"
	"github.com/raygo/raygo/internal/serve/routes"
	"github.com/raygo/raygo/ray"
	"github.com/raygo/raygo/serve/config"
)

// Handle limits.
const (
	// HandleRefreshPeriod is how often a handle asks the controller for
	// the deployment's replicas (besides after a call finds one gone),
	// and reports its load for autoscaling (calls in flight and queued,
	// as the proxies do; an idle handle reports once, then stays quiet).
	HandleRefreshPeriod = 1 * time.Second
)

// Handle calls a deployment's methods without an HTTP hop (Ray's
// DeploymentHandle): each call goes to one of the deployment's ready
// replicas, chosen by power of two choices on the calls this handle has
// in flight, at most the deployment's max_ongoing_requests per replica
// (more wait in a queue, bounded by max_queued_requests); its result is
// an ObjectRef, which can be awaited or passed on to another call or
// task as a ref. A handle is safe for concurrent use; Close it when done
// (a replica's handles live as long as it does).
type Handle[T any] struct {
	app, dep string
	rt       *router.Router
	ctx      context.Context // ends with Close
	stop     context.CancelFunc
	bg       sync.WaitGroup // the refresher and the calls' lease releasers

	mu     sync.Mutex
	actors map[string]ray.ActorHandle[replica[T]] // by replica id
	names  map[string]string                      // replica id → actor name
	kick   chan struct{}                          // a refresh wanted now

	reporter string // the handle's name in load reports
	reported bool   // the last report had load

	gone map[string]time.Time // replicas found dead, kept out until the controller drops them (or goneTTL)
}

// goneTTL is how long a handle keeps out a replica it found dead while
// the controller still lists it (the controller drops a dead replica
// within a second or so).
const goneTTL = 10 * time.Second

// maxPicks bounds the replicas one call tries when those picked are
// found gone before anything was sent.
const maxPicks = 3

// GetHandle returns a handle to deployment d of the application app,
// once the controller lists at least one of its replicas ready or ctx
// ends. From a replica of the same application, this is how deployments
// compose.
func GetHandle[T any](ctx context.Context, d *Deployment[T], app string) (*Handle[T], error) {
	rt, err := router.New(router.Options{})
	if err != nil {
		return nil, err
	}
	bctx, cancel := context.WithCancel(context.Background())
	h := &Handle[T]{app: app, dep: d.name, rt: rt, ctx: bctx, stop: cancel, actors: map[string]ray.ActorHandle[replica[T]]{},
		names: map[string]string{}, kick: make(chan struct{}, 1), reporter: "handle:" + newHandleID(), gone: map[string]time.Time{}}
	if err := h.refresh(ctx); err != nil {
		h.Close()
		return nil, err
	}
	h.bg.Add(1)
	go func() { // owned by the handle: ends with Close
		defer h.bg.Done()
		h.follow(bctx)
	}()
	return h, nil
}

// Close stops the handle's refreshes and releases its calls' slots
// (calls already submitted run on; their refs stay valid).
func (h *Handle[T]) Close() {
	h.stop()
	h.rt.Close()
	h.bg.Wait()
}

func (h *Handle[T]) follow(ctx context.Context) {
	t := time.NewTicker(HandleRefreshPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.kick:
		}
		// A failed refresh or report keeps the replicas known; the next
		// period tries again.
		rctx, cancel := context.WithTimeout(ctx, apiTimeout)
		if h.refresh(rctx) == nil {
			_ = h.reportLoad(rctx)
		}
		cancel()
	}
}

// reportLoad tells the controller the calls this handle has in flight
// and queued (an autoscaling input, as a proxy's report is).
func (h *Handle[T]) reportLoad(ctx context.Context) error {
	st := h.rt.Stats()
	busy := st.InFlight+st.Queued > 0
	if !busy && !h.reported {
		return nil
	}
	h.reported = busy
	return headCall(ctx, http.MethodPost, routes.LoadPath, routes.LoadReport{Node: h.reporter,
		Deployments: []routes.DeploymentLoad{{App: h.app, Deployment: h.dep, InFlight: st.InFlight, Queued: st.Queued}}}, nil)
}

func newHandleID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// refresh asks the controller for the deployment's ready replicas and
// sets the router's.
func (h *Handle[T]) refresh(ctx context.Context) error {
	var tgt goapp.HandleTarget
	q := url.Values{"app": {h.app}, "deployment": {h.dep}}
	if err := headCall(ctx, http.MethodGet, goapp.HandlePath+"?"+q.Encode(), nil, &tgt); err != nil {
		return fmt.Errorf("serve: handle to %s/%s: %w", h.app, h.dep, err)
	}
	reps := make([]router.Replica, 0, len(tgt.Replicas))
	h.mu.Lock()
	seen := map[string]bool{}
	listed := map[string]bool{}
	for _, r := range tgt.Replicas {
		listed[r.ID] = true
	}
	for id, at := range h.gone {
		if !listed[id] || time.Since(at) > goneTTL {
			delete(h.gone, id)
		}
	}
	for _, r := range tgt.Replicas {
		if _, dead := h.gone[r.ID]; dead {
			continue
		}
		seen[r.ID] = true
		h.names[r.ID] = r.ActorName
		reps = append(reps, router.Replica{ID: r.ID, NodeID: r.Node, MaxOngoingRequests: tgt.MaxOngoingRequests, State: router.Running})
	}
	for id := range h.names {
		if !seen[id] {
			delete(h.names, id)
			delete(h.actors, id)
		}
	}
	h.mu.Unlock()
	return h.rt.Set(reps)
}

// actor returns the replica's actor handle (looked up by name once).
func (h *Handle[T]) actor(ctx context.Context, id string) (ray.ActorHandle[replica[T]], error) {
	h.mu.Lock()
	a, ok := h.actors[id]
	name := h.names[id]
	h.mu.Unlock()
	if ok {
		return a, nil
	}
	if name == "" {
		return a, fmt.Errorf("serve: %s/%s: replica %s is gone", h.app, h.dep, id)
	}
	a, err := ray.GetActor[replica[T]](ctx, name, ray.Namespace(goapp.ReplicaNamespace))
	if err != nil {
		return a, fmt.Errorf("serve: %s/%s: replica %s: %w", h.app, h.dep, id, err)
	}
	h.mu.Lock()
	h.actors[id] = a
	h.mu.Unlock()
	return a, nil
}

// callReplica picks a replica (waiting for a slot), submits through
// submit and releases the slot when the call ends; it returns the call's
// ref and the replica's id ("" when none was picked).
func callReplica[T, R any](ctx context.Context, h *Handle[T], submit func(ray.ActorHandle[replica[T]]) ray.ObjectRef[R]) (ray.ObjectRef[R], string) {
	var (
		lease *router.Lease
		id    string
		a     ray.ActorHandle[replica[T]]
		err   error
	)
	for range maxPicks { // a replica found gone before anything was sent: another
		if lease, err = h.rt.Acquire(ctx); err != nil {
			return ray.FailedRef[R](fmt.Errorf("serve: call %s/%s: %w", h.app, h.dep, err)), ""
		}
		id = lease.Replica()
		if a, err = h.actor(ctx, id); err == nil {
			break
		}
		lease.Release()
		h.forget(id)
	}
	if err != nil {
		return ray.FailedRef[R](err), id
	}
	ref := submit(a)
	if ref.Err() != nil {
		lease.Release()
		h.forget(id)
		return ref, id
	}
	h.bg.Add(1)
	go func() { // owned by the handle: the slot is held until the call ends
		defer h.bg.Done()
		defer lease.Release()
		_, _, _ = ray.Wait(h.ctx, []ray.ObjectRef[R]{ref}, 1, -1)
	}()
	return ref, id
}

// forget stops routing to a replica whose call failed to reach it until
// the controller lists it again, and asks for the list now.
func (h *Handle[T]) forget(id string) {
	h.rt.Remove(id)
	h.mu.Lock()
	delete(h.actors, id)
	h.gone[id] = time.Now()
	h.mu.Unlock()
	h.refreshSoon()
}

func (h *Handle[T]) refreshSoon() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// MethodOption configures a deployment method.
type MethodOption func(*methodOptions)

type methodOptions struct{ idempotent bool }

// Idempotent marks a method safe to run twice: Do retries a call whose
// replica died before answering (its process crashed, its node died, it
// was replaced) once on another replica. Calls of other methods fail
// with the replica's error (ray.ErrActorDied), as in Ray.
func Idempotent() MethodOption { return func(o *methodOptions) { o.idempotent = true } }

func collectMethod(opts []MethodOption) methodOptions {
	var o methodOptions
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Method0 is a deployment method without arguments, called through
// handles; make one with NewMethod0 at package initialization.
type Method0[T, R any] struct {
	m    *ray.ActorMethod0[replica[T], R]
	opts methodOptions
}

// NewMethod0 registers fn as the method name of d's replicas.
func NewMethod0[T, R any](d *Deployment[T], name string, fn func(*T, context.Context) (R, error), opts ...MethodOption) *Method0[T, R] {
	checkMethod(d.name, name, fn == nil)
	return &Method0[T, R]{m: ray.Method0(d.class, func(r *replica[T], ctx context.Context) (R, error) {
		defer r.begin()()
		return fn(r.user, ctx)
	}, ray.RegisterName(name)), opts: collectMethod(opts)}
}

// Call calls the method on one of the deployment's replicas.
func (m *Method0[T, R]) Call(ctx context.Context, h *Handle[T]) ray.ObjectRef[R] {
	ref, _ := m.call(ctx, h)
	return ref
}

func (m *Method0[T, R]) call(ctx context.Context, h *Handle[T]) (ray.ObjectRef[R], string) {
	return callReplica(ctx, h, func(a ray.ActorHandle[replica[T]]) ray.ObjectRef[R] { return m.m.Remote(ctx, a) })
}

// Do calls the method and waits for its result; an Idempotent method's
// call whose replica died is retried once on another.
func (m *Method0[T, R]) Do(ctx context.Context, h *Handle[T]) (R, error) {
	return do(ctx, h, m.opts, func() (ray.ObjectRef[R], string) { return m.call(ctx, h) })
}

// Method1 is a deployment method of one argument, called through
// handles; make one with NewMethod1 at package initialization.
type Method1[T, A, R any] struct {
	m    *ray.ActorMethod1[replica[T], A, R]
	opts methodOptions
}

// NewMethod1 registers fn as the method name of d's replicas.
func NewMethod1[T, A, R any](d *Deployment[T], name string, fn func(*T, context.Context, A) (R, error), opts ...MethodOption) *Method1[T, A, R] {
	checkMethod(d.name, name, fn == nil)
	return &Method1[T, A, R]{m: ray.Method1(d.class, func(r *replica[T], ctx context.Context, a A) (R, error) {
		defer r.begin()()
		return fn(r.user, ctx, a)
	}, ray.RegisterName(name)), opts: collectMethod(opts)}
}

// Call calls the method with a on one of the deployment's replicas.
func (m *Method1[T, A, R]) Call(ctx context.Context, h *Handle[T], a A) ray.ObjectRef[R] {
	ref, _ := m.call(ctx, h, a)
	return ref
}

func (m *Method1[T, A, R]) call(ctx context.Context, h *Handle[T], a A) (ray.ObjectRef[R], string) {
	return callReplica(ctx, h, func(ah ray.ActorHandle[replica[T]]) ray.ObjectRef[R] { return m.m.Remote(ctx, ah, a) })
}

// Do calls the method with a and waits for its result; an Idempotent
// method's call whose replica died is retried once on another.
func (m *Method1[T, A, R]) Do(ctx context.Context, h *Handle[T], a A) (R, error) {
	return do(ctx, h, m.opts, func() (ray.ObjectRef[R], string) { return m.call(ctx, h, a) })
}

// do waits for call's result; when the replica died, the handle stops
// routing to it, and an idempotent method is called once more (on
// another replica).
func do[T, R any](ctx context.Context, h *Handle[T], o methodOptions, call func() (ray.ObjectRef[R], string)) (R, error) {
	ref, id := call()
	r, err := ref.Get(ctx)
	if err != nil && id != "" && ctx.Err() == nil && replicaGone(err) {
		h.forget(id)
		if o.idempotent {
			ref, _ = call()
			return ref.Get(ctx)
		}
	}
	return r, err
}

// replicaGone reports whether err says the replica died or left.
func replicaGone(err error) bool {
	return errors.Is(err, ray.ErrActorDied) || errors.Is(err, ray.ErrWorkerCrashed) || errors.Is(err, ray.ErrNodeDied)
}

// CallArg is Call with a ray.Arg: pass another call's ObjectRef and the
// replica receives its value once it is ready, without a trip through
// the caller (composition: model → postprocess).
func (m *Method1[T, A, R]) CallArg(ctx context.Context, h *Handle[T], a ray.Arg[A]) ray.ObjectRef[R] {
	ref, _ := callReplica(ctx, h, func(ah ray.ActorHandle[replica[T]]) ray.ObjectRef[R] { return m.m.RemoteArgs(ctx, ah, a) })
	return ref
}

func checkMethod(dep, name string, nilFn bool) {
	if !goapp.ValidName(name) {
		panic(fmt.Sprintf("serve: deployment %s: method name %q: want letters, digits, '_', '-' and '.', starting with a letter or digit, at most %d bytes", dep, name, config.MaxNameLen))
	}
	if nilFn {
		panic(fmt.Sprintf("serve: deployment %s: method %s: nil function", dep, name))
	}
}
