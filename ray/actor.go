package ray

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker"
	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/resources"
)

// ActorHandle names an actor whose instances are *T. It is a small
// value: copy it, store it, pass it to tasks and other actors, nest it in
// values.
//
// Like an ObjectRef, a handle carries the error of a creation that could
// not be submitted (bad options, a name taken, not initialized): Err
// reports it, and every call made through the handle fails with it at
// Get. A constructor that fails once the actor is placed makes calls fail
// with an *ActorDiedError carrying the cause.
//
// Lifetime: the handles of a NonDetached actor are counted like object
// refs, in every process that holds one, and the actor ends when none
// remains (its name becomes free). In Go a variable stops counting after
// its last use, not at the end of its scope: keep a handle you need in a
// struct or a package variable, call runtime.KeepAlive(h) after the
// actor's last needed moment, or make the actor Detached. Handles from
// GetActor, and handles of Detached actors, do not count (as in Ray).
type ActorHandle[T any] struct {
	h   *coreworker.ActorRef
	err error // creation could not be submitted
}

// ID returns the actor's id in hex ("" for the zero handle or a failed
// creation).
func (a ActorHandle[T]) ID() string {
	if a.h == nil {
		return ""
	}
	return a.h.ID.String()
}

// Name returns the actor's name ("" if unnamed).
func (a ActorHandle[T]) Name() string {
	if a.h == nil {
		return ""
	}
	return a.h.Name
}

// Err returns the error that prevented the actor's creation from being
// submitted, if any; calls through the handle fail with it.
func (a ActorHandle[T]) Err() error { return a.err }

// ref returns the core worker's handle, or why there is none.
func (a ActorHandle[T]) ref() (*coreworker.ActorRef, error) {
	if a.err != nil {
		return nil, a.err
	}
	if a.h == nil || a.h.ID.IsNil() {
		return nil, fmt.Errorf("%w: zero ActorHandle[%s]", ErrInvalidRequest, reflect.TypeFor[T]())
	}
	return a.h, nil
}

type handleWire struct {
	ID        []byte `msgpack:"i"`
	Class     string `msgpack:"c"`
	Name      string `msgpack:"n"`
	Namespace string `msgpack:"s,omitempty"`
	Retries   int    `msgpack:"r"`
	OwnerAddr string `msgpack:"oa,omitempty"`
	OwnerID   []byte `msgpack:"oi,omitempty"`
	Detached  bool   `msgpack:"d,omitempty"`
	Counted   bool   `msgpack:"k,omitempty"`
}

// EncodeMsgpack writes the handle inside a value (codec hook). A counted
// handle is recorded as a reference the value holds, so the actor lives
// while the value does.
func (a ActorHandle[T]) EncodeMsgpack(enc *msgpack.Encoder) error {
	if a.err != nil {
		return a.err
	}
	if a.h == nil {
		return enc.EncodeNil()
	}
	h := a.h
	if h.Counted {
		codec.Collect(enc, codec.Ref{ID: h.ID.Bytes(), OwnerID: h.Owner.ID.Bytes(), OwnerAddress: h.Owner.Addr})
	}
	return enc.Encode(handleWire{ID: h.ID.Bytes(), Class: h.Class, Name: h.Name, Namespace: h.Namespace, Retries: h.MaxTaskRetries,
		OwnerAddr: h.Owner.Addr, OwnerID: h.Owner.ID.Bytes(), Detached: h.Detached, Counted: h.Counted})
}

// DecodeMsgpack reads a handle (codec hook); a counted one makes this
// process a borrower of the actor.
func (a *ActorHandle[T]) DecodeMsgpack(dec *msgpack.Decoder) error {
	var w *handleWire
	if err := dec.Decode(&w); err != nil {
		return err
	}
	if w == nil {
		*a = ActorHandle[T]{}
		return nil
	}
	id, ok := ids.FromBytes(w.ID)
	if !ok {
		return fmt.Errorf("ray: malformed actor handle")
	}
	owner, _ := ids.FromBytes(w.OwnerID)
	r := coreworker.ActorRef{ID: id, Class: w.Class, Name: w.Name, Namespace: w.Namespace, MaxTaskRetries: w.Retries,
		Detached: w.Detached, Counted: w.Counted}
	r.Owner.Addr, r.Owner.ID = w.OwnerAddr, owner
	cw, err := current()
	if err != nil {
		return err
	}
	a.h = cw.ActorFromWire(r)
	return nil
}

// ActorType is implemented by the actor classes whose instances are *T;
// methods are registered against it.
type ActorType[T any] interface {
	className() string
	instance(*T)
}

// classNames maps an instance type T to the actor classes built on it.
var classNames = struct {
	sync.RWMutex
	m map[reflect.Type][]string
}{m: map[reflect.Type][]string{}}

func classIs[T any](class string) bool {
	classNames.RLock()
	defer classNames.RUnlock()
	for _, c := range classNames.m[reflect.TypeFor[T]()] {
		if c == class {
			return true
		}
	}
	return false
}

type actorClass[T any] struct {
	name string
	opts []ActorOption
}

func (c actorClass[T]) className() string { return c.name }
func (c actorClass[T]) instance(*T)       {}

// registerClass registers an actor class; called from ActorN only (the
// user's call is three frames up from claim).
func registerClass[T any](what string, opts []RegisterOption, s sig, ctor coreworker.Constructor) actorClass[T] {
	name := className[T](what, opts)
	s.check(what, name)
	claim("actor class", name, 3)
	registry.AddClass(name, ctor)
	classNames.Lock()
	classNames.m[reflect.TypeFor[T]()] = append(classNames.m[reflect.TypeFor[T]()], name)
	classNames.Unlock()
	return actorClass[T]{name: name}
}

func (c actorClass[T]) with(opts []ActorOption) actorClass[T] {
	return actorClass[T]{name: c.name, opts: append(append([]ActorOption(nil), c.opts...), opts...)}
}

// actorOptions checks an actor's creation options and resolves its
// lifetime against the job's default.
func (c actorClass[T]) actorOptions() (coreworker.ActorOptions, error) {
	o := collect(c.opts, ActorOption.applyActor)
	res := resources.Set{}
	for k, v := range o.res {
		res[k] = v
	}
	if err := resources.Validate(res); err != nil {
		return coreworker.ActorOptions{}, fmt.Errorf("%w: actor %s: %v", ErrInvalidRequest, c.name, err)
	}
	if o.maxConcurrency < 0 {
		return coreworker.ActorOptions{}, fmt.Errorf("%w: actor %s: MaxConcurrency(%d): want 1 or more", ErrInvalidRequest, c.name, o.maxConcurrency)
	}
	if o.maxRestarts < -1 {
		return coreworker.ActorOptions{}, fmt.Errorf("%w: actor %s: MaxRestarts(%d): want -1 or more", ErrInvalidRequest, c.name, o.maxRestarts)
	}
	retries := 0
	if o.maxTaskRetries != nil {
		retries = *o.maxTaskRetries
	}
	if retries < -1 {
		return coreworker.ActorOptions{}, fmt.Errorf("%w: actor %s: MaxTaskRetries(%d): want -1 or more", ErrInvalidRequest, c.name, retries)
	}
	if o.getIfExists && o.name == "" {
		return coreworker.ActorOptions{}, fmt.Errorf("%w: actor %s: GetIfExists needs Name", ErrInvalidRequest, c.name)
	}
	lifetime, why := o.lifetime, "Lifetime(Detached)"
	switch lifetime {
	case 0:
		lifetime, why = jobActorLifetime(), "the job's DefaultActorLifetime(Detached)"
	case Detached, NonDetached:
	default:
		return coreworker.ActorOptions{}, fmt.Errorf("%w: actor %s: Lifetime(%d): want Detached or NonDetached", ErrInvalidRequest, c.name, int(lifetime))
	}
	if lifetime == Detached && o.name == "" {
		return coreworker.ActorOptions{}, fmt.Errorf("%w: actor %s is detached (%s) but has no name: a detached actor outlives "+
			"its creator and can only be found by name, so give it one with Name(…), or make it NonDetached with Lifetime(NonDetached)",
			ErrInvalidRequest, c.name, why)
	}
	pl, res, err := o.placement("actor "+c.name, res)
	if err != nil {
		return coreworker.ActorOptions{}, err
	}
	return coreworker.ActorOptions{
		Resources: res, Name: o.name, Namespace: o.namespace, GetIfExists: o.getIfExists, Detached: lifetime == Detached,
		MaxRestarts: o.maxRestarts, MaxTaskRetries: retries, MaxConcurrency: o.maxConcurrency, Placement: pl,
	}, nil
}

func (c actorClass[T]) create(ctx context.Context, as *args) ActorHandle[T] {
	if as != nil && as.err != nil {
		return ActorHandle[T]{err: as.err}
	}
	cw, err := current()
	if err != nil {
		return ActorHandle[T]{err: err}
	}
	opts, err := c.actorOptions()
	if err != nil {
		return ActorHandle[T]{err: err}
	}
	if g := collect(c.opts, ActorOption.applyActor).group; g != nil {
		if err := g.ordered(ctx); err != nil {
			return ActorHandle[T]{err: err}
		}
	}
	if capture := coreworker.CaptureFrom(ctx); capture != nil && opts.Placement == (tasksubmit.Placement{}) {
		// Created by a task that captures child tasks: in its group.
		g, _ := ids.FromBytes(capture.GetPlacementGroupId())
		opts.Resources = resources.InBundle(opts.Resources, g.String(), AnyBundle)
		opts.Placement = tasksubmit.Placement{Options: capture}
	}
	if own := collect(c.opts, ActorOption.applyActor).runtimeEnv; own != nil || inherited() != nil {
		env, err := callRuntimeEnv(ctx, cw.GCS(), own) // runtimeenv.go
		if err != nil {
			return ActorHandle[T]{err: fmt.Errorf("actor %s: %w", c.name, err)}
		}
		opts.Placement.RuntimeEnv = env
	}
	var list []coreworker.Arg
	if as != nil {
		list = as.list
	}
	h, err := cw.CreateActor(ctx, c.name, list, opts)
	if err != nil {
		return ActorHandle[T]{err: err}
	}
	if h.Class != c.name {
		return ActorHandle[T]{err: fmt.Errorf("%w: actor %q is a %s, not a %s", ErrInvalidRequest, opts.Name, h.Class, c.name)}
	}
	return ActorHandle[T]{h: h}
}

// ActorClass0 is an actor class whose constructor takes no arguments,
// made by Actor0.
type ActorClass0[T any] struct{ actorClass[T] }

// Actor0 registers an actor class: ctor makes its instances, and methods
// registered with Method0…Method2 run on them. Call it at package
// initialization, like Func0.
//
// The class is registered under its instance type's full name
// ("main.Counter", "github.com/you/app/pkg.Counter"), or the name given
// with RegisterName; a second class on the same type needs one. Actors
// need no CPU by default; ask with NumCPUs.
func Actor0[T any](ctor func(context.Context) (*T, error), opts ...RegisterOption) *ActorClass0[T] {
	if ctor == nil {
		panic("ray: ray.Actor0: nil constructor")
	}
	var c actorClass[T]
	c = registerClass[T]("ray.Actor0", opts, in(), func(ctx context.Context, a [][]byte) (any, error) {
		if err := checkArity(c.name, a, 0); err != nil {
			return nil, err
		}
		return ctor(ctx)
	})
	return &ActorClass0[T]{c}
}

// Name returns the name the class is registered under.
func (c *ActorClass0[T]) Name() string { return c.name }

// Options returns a copy of the class whose creations use opts (after the
// class's own).
func (c *ActorClass0[T]) Options(opts ...ActorOption) *ActorClass0[T] {
	return &ActorClass0[T]{c.with(opts)}
}

// Remote creates an actor and returns its handle, usable at once: calls
// wait until the actor is alive. A creation that cannot be submitted
// returns a handle carrying the error (see ActorHandle).
func (c *ActorClass0[T]) Remote(ctx context.Context) ActorHandle[T] {
	return c.create(ctx, nil)
}

// ActorClass1 is an actor class whose constructor takes one argument,
// made by Actor1.
type ActorClass1[A, T any] struct{ actorClass[T] }

// Actor1 registers an actor class whose constructor takes one argument;
// see Actor0.
func Actor1[A, T any](ctor func(context.Context, A) (*T, error), opts ...RegisterOption) *ActorClass1[A, T] {
	if ctor == nil {
		panic("ray: ray.Actor1: nil constructor")
	}
	var c actorClass[T]
	c = registerClass[T]("ray.Actor1", opts, in(typ[A]()), func(ctx context.Context, a [][]byte) (any, error) {
		if err := checkArity(c.name, a, 1); err != nil {
			return nil, err
		}
		x, err := decodeArg[A](c.name, a, 0)
		if err != nil {
			return nil, err
		}
		return ctor(ctx, x)
	})
	return &ActorClass1[A, T]{c}
}

// Name returns the name the class is registered under.
func (c *ActorClass1[A, T]) Name() string { return c.name }

// Options returns a copy of the class whose creations use opts.
func (c *ActorClass1[A, T]) Options(opts ...ActorOption) *ActorClass1[A, T] {
	return &ActorClass1[A, T]{c.with(opts)}
}

// Remote creates an actor with the constructor argument a; see
// ActorClass0.Remote.
func (c *ActorClass1[A, T]) Remote(ctx context.Context, a A) ActorHandle[T] {
	as := &args{fn: c.name}
	addArg(as, a)
	return c.create(ctx, as)
}

// RemoteArgs creates an actor whose constructor argument is an
// ObjectRef[A] (the constructor receives its value) or a value given with
// Val.
func (c *ActorClass1[A, T]) RemoteArgs(ctx context.Context, a Arg[A]) ActorHandle[T] {
	as := &args{fn: c.name}
	add(as, a)
	return c.create(ctx, as)
}

// GetActor returns the live actor named name, in the job's namespace or
// the one given with Namespace. It fails with ErrNotFound if there is
// none, and with ErrInvalidRequest if that actor's class is not one whose
// instances are *T. The handle does not count (see ActorHandle): it does
// not keep the actor alive.
func GetActor[T any](ctx context.Context, name string, opts ...GetActorOption) (ActorHandle[T], error) {
	o := collect(opts, GetActorOption.applyGetActor)
	cw, err := current()
	if err != nil {
		return ActorHandle[T]{}, err
	}
	h, err := cw.GetActor(ctx, name, o.namespace)
	if err != nil {
		return ActorHandle[T]{}, err
	}
	if !classIs[T](h.Class) {
		return ActorHandle[T]{}, fmt.Errorf("%w: actor %q is a %s, not a %s", ErrInvalidRequest, name, h.Class, reflect.TypeFor[T]())
	}
	return ActorHandle[T]{h: h}, nil
}

// NamedActor is a live named actor, as ListNamedActors reports it.
type NamedActor struct {
	Name      string
	Namespace string
	Class     string // the name its class is registered under
	ID        string // hex, as ActorHandle.ID
	Detached  bool
}

// ListNamedActors lists the live named actors of the job's namespace (or
// the one given with Namespace, or every namespace with AllNamespaces),
// sorted by namespace and name, like Ray's ray.util.list_named_actors.
func ListNamedActors(ctx context.Context, opts ...ListOption) ([]NamedActor, error) {
	o := collect(opts, ListOption.applyList)
	cw, err := current()
	if err != nil {
		return nil, err
	}
	list, err := cw.ListNamedActors(ctx, o.namespace, o.allNamespaces)
	if err != nil {
		return nil, err
	}
	out := make([]NamedActor, len(list))
	for i, a := range list {
		out[i] = NamedActor{Name: a.Name, Namespace: a.Namespace, Class: a.Class, ID: a.ID.String(), Detached: a.Detached}
	}
	return out, nil
}

// Kill stops an actor's process now, like Ray's ray.kill: calls in
// flight and queued fail with an *ActorDiedError. The actor is not
// restarted unless AllowRestart is given (and it has restarts left). To
// let earlier calls finish first, use Terminate.
func Kill[T any](ctx context.Context, a ActorHandle[T], opts ...KillOption) error {
	o := collect(opts, KillOption.applyKill)
	h, err := a.ref()
	if err != nil {
		return err
	}
	cw, err := current()
	if err != nil {
		return err
	}
	return cw.KillActor(ctx, h, !o.allowRestart)
}

// Terminate ends an actor gracefully, like calling Ray's
// actor.__ray_terminate__: the end is queued behind the calls this
// process already made to the actor, which run first. The actor is not
// restarted; calls made later fail with an *ActorDiedError. The returned
// ref is ready once the actor has ended (Get returns nil then), and
// carries an error if the terminate could not be submitted.
func Terminate[T any](ctx context.Context, a ActorHandle[T]) ObjectRef[struct{}] {
	h, err := a.ref()
	if err != nil {
		return failed[struct{}](err)
	}
	cw, err := current()
	if err != nil {
		return failed[struct{}](err)
	}
	r, err := cw.TerminateActor(ctx, h)
	if err != nil {
		return failed[struct{}](err)
	}
	return ObjectRef[struct{}]{h: r}
}

// ExitActor ends the actor whose method ctx belongs to, once the method
// returns (Ray's ray.actor.exit_actor): the method's result is delivered,
// the actor is not restarted whatever its MaxRestarts, and calls queued
// behind it fail with an *ActorDiedError. Called outside an actor method
// it fails with ErrInvalidRequest.
func ExitActor(ctx context.Context) error {
	return coreworker.ExitActor(ctx)
}

// ---------------------------------------------------------------- methods

type method struct {
	class string
	name  string
	full  string // class.name
	opts  []CallOption
	// topts and err are opts resolved once, when the handle is made.
	topts coreworker.TaskOptions
	err   error
}

func newMethod(class, name string, opts []CallOption) method {
	m := method{class: class, name: name, full: class + "." + name, opts: opts}
	o := collect(opts, CallOption.applyCall)
	retries := coreworker.UseActorRetries
	if o.maxTaskRetries != nil {
		retries = *o.maxTaskRetries
		if retries < -1 {
			m.err = fmt.Errorf("%w: %s: MaxTaskRetries(%d): want -1 or more", ErrInvalidRequest, m.full, retries)
			return m
		}
	}
	m.topts = coreworker.TaskOptions{NumReturns: 1, Name: o.name, RetryExceptions: o.retryExceptions, RetryErrorTypes: o.retryTypes,
		MaxRetries: retries}
	return m
}

// with returns the method with more options.
func (m method) with(opts []CallOption) method {
	return newMethod(m.class, m.name, append(append([]CallOption(nil), m.opts...), opts...))
}

func (m method) submit(ctx context.Context, a *coreworker.ActorRef, args []coreworker.Arg, n int) ([]*coreworker.Ref, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	if m.err != nil {
		return nil, m.err
	}
	if a.Class != m.class {
		return nil, fmt.Errorf("%w: method %s.%s called on an actor of class %s", ErrInvalidRequest, m.class, m.name, a.Class)
	}
	topts := m.topts
	topts.NumReturns = n
	return cw.SubmitActorTask(ctx, a, m.full, args, topts)
}

// registerMethod registers a method of class; called from MethodN only
// (the user's call is three frames up from claim).
func registerMethod[T any](what string, class ActorType[T], fn any, opts []RegisterOption, s sig,
	body func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error)) method {
	if class == nil {
		panic("ray: " + what + ": nil actor class")
	}
	name := methodName[T](what, fn, opts)
	full := class.className() + "." + name
	s.check(what, full)
	claim("actor method", full, 3)
	registry.AddMethod(full, func(ctx context.Context, self any, a [][]byte) ([]coreworker.Encoded, error) {
		t, ok := self.(*T)
		if !ok {
			return nil, fmt.Errorf("ray: actor instance is %T, not %s", self, reflect.TypeFor[*T]())
		}
		return body(ctx, t, a)
	})
	return newMethod(class.className(), name, nil)
}

// callMethod submits a call of m on a with encoded arguments.
func callMethod[T, R any](ctx context.Context, m method, a ActorHandle[T], as *args) ObjectRef[R] {
	h, err := a.ref()
	if err != nil {
		return failed[R](err)
	}
	var list []coreworker.Arg
	if as != nil {
		if as.err != nil {
			return failed[R](as.err)
		}
		list = as.list
	}
	return ref1[R](m.submit(ctx, h, list, 1))
}

// ActorMethod0 is an actor method with no arguments, made by Method0.
type ActorMethod0[T, R any] struct{ m method }

// Method0 registers a method of the actor class: usually a method
// expression such as (*Counter).Value, registered under the method's name
// ("Value"); any other function is registered under its full name, as
// with Func0, or give one with RegisterName. Call it at package
// initialization. Names are per class: two classes may both have an
// "Inc".
//
// Method defaults (MaxTaskRetries, RetryExceptions) go on the handle:
// ray.Method0(Counter, (*Counter).Value).Options(ray.MaxTaskRetries(3)).
func Method0[T, R any](class ActorType[T], m func(*T, context.Context) (R, error), opts ...RegisterOption) *ActorMethod0[T, R] {
	var name string
	h := &ActorMethod0[T, R]{registerMethod("ray.Method0", class, m, opts, in().out(typ[R]()), func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 0); err != nil {
			return nil, err
		}
		r, err := m(self, ctx)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})}
	name = h.m.full
	return h
}

// Name returns the name the method is registered under, without its
// class.
func (f *ActorMethod0[T, R]) Name() string { return f.m.name }

// Options returns a copy of the method whose calls use opts (after the
// handle's own, which they override).
func (f *ActorMethod0[T, R]) Options(opts ...CallOption) *ActorMethod0[T, R] {
	return &ActorMethod0[T, R]{f.m.with(opts)}
}

// Remote calls the method on the actor a and returns a ref to its result
// at once. Calls from one process to one actor start in the order they
// were made. A call that cannot be submitted, or made through a handle
// whose creation failed, returns a ref carrying the error.
func (f *ActorMethod0[T, R]) Remote(ctx context.Context, a ActorHandle[T]) ObjectRef[R] {
	return callMethod[T, R](ctx, f.m, a, nil)
}

// ActorMethod1 is an actor method with one argument, made by Method1.
type ActorMethod1[T, A, R any] struct{ m method }

// Method1 registers a one-argument method; see Method0.
func Method1[T, A, R any](class ActorType[T], m func(*T, context.Context, A) (R, error), opts ...RegisterOption) *ActorMethod1[T, A, R] {
	var name string
	h := &ActorMethod1[T, A, R]{registerMethod("ray.Method1", class, m, opts, in(typ[A]()).out(typ[R]()), func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 1); err != nil {
			return nil, err
		}
		x, err := decodeArg[A](name, a, 0)
		if err != nil {
			return nil, err
		}
		r, err := m(self, ctx, x)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})}
	name = h.m.full
	return h
}

// Name returns the name the method is registered under, without its
// class.
func (f *ActorMethod1[T, A, R]) Name() string { return f.m.name }

// Options returns a copy of the method whose calls use opts; see
// ActorMethod0.Options.
func (f *ActorMethod1[T, A, R]) Options(opts ...CallOption) *ActorMethod1[T, A, R] {
	return &ActorMethod1[T, A, R]{f.m.with(opts)}
}

// Remote calls the method on the actor a with x; see ActorMethod0.Remote.
func (f *ActorMethod1[T, A, R]) Remote(ctx context.Context, a ActorHandle[T], x A) ObjectRef[R] {
	as := &args{fn: f.m.full}
	addArg(as, x)
	return callMethod[T, R](ctx, f.m, a, as)
}

// RemoteArgs calls the method with an ObjectRef[A] (the method receives
// its value) or a value given with Val.
func (f *ActorMethod1[T, A, R]) RemoteArgs(ctx context.Context, a ActorHandle[T], x Arg[A]) ObjectRef[R] {
	as := &args{fn: f.m.full}
	add(as, x)
	return callMethod[T, R](ctx, f.m, a, as)
}

// ActorMethod2 is an actor method with two arguments, made by Method2.
type ActorMethod2[T, A, B, R any] struct{ m method }

// Method2 registers a two-argument method; see Method0. For more, pass a
// struct.
func Method2[T, A, B, R any](class ActorType[T], m func(*T, context.Context, A, B) (R, error), opts ...RegisterOption) *ActorMethod2[T, A, B, R] {
	var name string
	h := &ActorMethod2[T, A, B, R]{registerMethod("ray.Method2", class, m, opts, in(typ[A](), typ[B]()).out(typ[R]()), func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 2); err != nil {
			return nil, err
		}
		x, err := decodeArg[A](name, a, 0)
		if err != nil {
			return nil, err
		}
		y, err := decodeArg[B](name, a, 1)
		if err != nil {
			return nil, err
		}
		r, err := m(self, ctx, x, y)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})}
	name = h.m.full
	return h
}

// Name returns the name the method is registered under, without its
// class.
func (f *ActorMethod2[T, A, B, R]) Name() string { return f.m.name }

// Options returns a copy of the method whose calls use opts; see
// ActorMethod0.Options.
func (f *ActorMethod2[T, A, B, R]) Options(opts ...CallOption) *ActorMethod2[T, A, B, R] {
	return &ActorMethod2[T, A, B, R]{f.m.with(opts)}
}

// Remote calls the method on the actor a with x and y; see
// ActorMethod0.Remote.
func (f *ActorMethod2[T, A, B, R]) Remote(ctx context.Context, a ActorHandle[T], x A, y B) ObjectRef[R] {
	as := &args{fn: f.m.full}
	addArg(as, x)
	addArg(as, y)
	return callMethod[T, R](ctx, f.m, a, as)
}

// RemoteArgs calls the method with ObjectRefs or values given with Val;
// see ActorMethod1.RemoteArgs.
func (f *ActorMethod2[T, A, B, R]) RemoteArgs(ctx context.Context, a ActorHandle[T], x Arg[A], y Arg[B]) ObjectRef[R] {
	as := &args{fn: f.m.full}
	add(as, x)
	add(as, y)
	return callMethod[T, R](ctx, f.m, a, as)
}
