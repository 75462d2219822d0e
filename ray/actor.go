package ray

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/resources"
)

// ActorHandle names a live (or dead) actor whose instances are *T. It is
// a small value: copy it, store it, pass it to tasks and other actors.
type ActorHandle[T any] struct{ h *coreworker.ActorRef }

// ID returns the actor's id in hex ("" for the zero handle).
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
	opts []Option
}

func (c actorClass[T]) className() string { return c.name }
func (c actorClass[T]) instance(*T)       {}

func registerClass[T any](name string, ctor coreworker.Constructor) actorClass[T] {
	registry.AddClass(name, ctor)
	classNames.Lock()
	classNames.m[reflect.TypeFor[T]()] = append(classNames.m[reflect.TypeFor[T]()], name)
	classNames.Unlock()
	return actorClass[T]{name: name}
}

func (c actorClass[T]) create(ctx context.Context, args []coreworker.Arg) (ActorHandle[T], error) {
	cw, err := current()
	if err != nil {
		return ActorHandle[T]{}, err
	}
	o, err := buildOptions("an actor's creation ("+c.name+")", forActor, c.opts)
	if err != nil {
		return ActorHandle[T]{}, err
	}
	res := resources.Set{}
	for k, v := range o.res {
		res[k] = v
	}
	if err := resources.Validate(res); err != nil {
		return ActorHandle[T]{}, fmt.Errorf("%w: actor %s: %v", ErrInvalidRequest, c.name, err)
	}
	if o.maxConcurrency < 0 {
		return ActorHandle[T]{}, fmt.Errorf("%w: %s: MaxConcurrency(%d) must be positive", ErrInvalidRequest, c.name, o.maxConcurrency)
	}
	if o.maxRestarts < -1 || o.maxTaskRetries < -1 {
		return ActorHandle[T]{}, fmt.Errorf("%w: %s: MaxRestarts and MaxTaskRetries must be -1 or more", ErrInvalidRequest, c.name)
	}
	if o.getIfExists && o.name == "" {
		return ActorHandle[T]{}, fmt.Errorf("%w: %s: GetIfExists needs Name", ErrInvalidRequest, c.name)
	}
	h, err := cw.CreateActor(ctx, c.name, args, coreworker.ActorOptions{
		Resources: res, Name: o.name, Namespace: o.namespace, GetIfExists: o.getIfExists, Detached: o.detached,
		MaxRestarts: o.maxRestarts, MaxTaskRetries: o.maxTaskRetries, MaxConcurrency: o.maxConcurrency, Strategy: o.strategy,
	})
	if err != nil {
		return ActorHandle[T]{}, err
	}
	if h.Class != c.name {
		return ActorHandle[T]{}, fmt.Errorf("%w: actor %q is a %s, not a %s", ErrInvalidRequest, o.name, h.Class, c.name)
	}
	return ActorHandle[T]{h: h}, nil
}

// ActorClass0 is an actor type whose constructor takes no arguments.
type ActorClass0[T any] struct{ actorClass[T] }

// Actor0 registers an actor type under name with its constructor. Call it
// at package init. Actors need no CPU by default; ask with NumCPUs.
func Actor0[T any](name string, ctor func(context.Context) (*T, error)) *ActorClass0[T] {
	c := registerClass[T](name, func(ctx context.Context, a [][]byte) (any, error) {
		if err := checkArity(name, a, 0); err != nil {
			return nil, err
		}
		return ctor(ctx)
	})
	return &ActorClass0[T]{c}
}

// Options returns a copy of the class whose creations use opts.
func (c *ActorClass0[T]) Options(opts ...Option) *ActorClass0[T] {
	return &ActorClass0[T]{actorClass[T]{name: c.name, opts: append(append([]Option(nil), c.opts...), opts...)}}
}

// Remote creates an actor. The handle is usable at once; calls wait until
// the actor is alive.
func (c *ActorClass0[T]) Remote(ctx context.Context) (ActorHandle[T], error) {
	return c.create(ctx, nil)
}

// ActorClass1 is an actor type whose constructor takes one argument.
type ActorClass1[A, T any] struct{ actorClass[T] }

// Actor1 registers an actor type whose constructor takes one argument.
func Actor1[A, T any](name string, ctor func(context.Context, A) (*T, error)) *ActorClass1[A, T] {
	c := registerClass[T](name, func(ctx context.Context, a [][]byte) (any, error) {
		if err := checkArity(name, a, 1); err != nil {
			return nil, err
		}
		x, err := decodeArg[A](name, a, 0)
		if err != nil {
			return nil, err
		}
		return ctor(ctx, x)
	})
	return &ActorClass1[A, T]{c}
}

// Options returns a copy of the class whose creations use opts.
func (c *ActorClass1[A, T]) Options(opts ...Option) *ActorClass1[A, T] {
	return &ActorClass1[A, T]{actorClass[T]{name: c.name, opts: append(append([]Option(nil), c.opts...), opts...)}}
}

// Remote creates an actor with the constructor argument a.
func (c *ActorClass1[A, T]) Remote(ctx context.Context, a A) (ActorHandle[T], error) {
	as := &args{fn: c.name}
	addArg(as, a)
	if as.err != nil {
		return ActorHandle[T]{}, as.err
	}
	return c.create(ctx, as.list)
}

// GetActor returns the live actor named name (in the job's namespace, or
// the one given with Namespace). It fails with ErrNotFound if there is
// none, and with ErrInvalidRequest if that actor's type is not T.
func GetActor[T any](ctx context.Context, name string, opts ...Option) (ActorHandle[T], error) {
	o, err := buildOptions("GetActor", forGetActor, opts)
	if err != nil {
		return ActorHandle[T]{}, err
	}
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

// Kill stops an actor's process. Calls in flight fail with
// ErrActorDied. The actor is not restarted unless AllowRestart is given
// (and it has restarts left).
func Kill[T any](ctx context.Context, a ActorHandle[T], opts ...Option) error {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	cw, err := current()
	if err != nil {
		return err
	}
	return cw.KillActor(ctx, a.h, !o.allowRestart)
}

// ---------------------------------------------------------------- methods

type method struct {
	class string
	name  string
	full  string // class.name
	opts  []Option
	// topts and err are opts resolved once, when the handle is made.
	topts coreworker.TaskOptions
	err   error
}

func newMethod(class, name string, opts []Option) method {
	m := method{class: class, name: name, full: class + "." + name, opts: opts}
	o, err := buildOptions("an actor call ("+m.full+")", forMethod, opts)
	if err != nil {
		m.err = err
		return m
	}
	m.topts = coreworker.TaskOptions{NumReturns: 1, Name: o.name, RetryExceptions: o.retryExceptions, RetryErrorTypes: o.retryTypes,
		MaxRetries: coreworker.UseActorRetries}
	return m
}

// with returns the method with more options.
func (m method) with(opts []Option) method {
	return newMethod(m.class, m.name, append(append([]Option(nil), m.opts...), opts...))
}

func (m method) submit(ctx context.Context, a *coreworker.ActorRef, args []coreworker.Arg, n int) ([]*coreworker.Ref, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	if m.err != nil {
		return nil, m.err
	}
	if a == nil || a.ID.IsNil() {
		return nil, fmt.Errorf("%w: %s.%s on a zero ActorHandle", ErrInvalidRequest, m.class, m.name)
	}
	if a.Class != m.class {
		return nil, fmt.Errorf("%w: method %s.%s called on an actor of class %s", ErrInvalidRequest, m.class, m.name, a.Class)
	}
	topts := m.topts
	topts.NumReturns = n
	return cw.SubmitActorTask(ctx, a, m.full, args, topts)
}

func registerMethod[T any](class ActorType[T], name string, fn func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error)) method {
	registry.AddMethod(class.className()+"."+name, func(ctx context.Context, self any, a [][]byte) ([]coreworker.Encoded, error) {
		t, ok := self.(*T)
		if !ok {
			return nil, fmt.Errorf("ray: actor instance is %T, not %s", self, reflect.TypeFor[*T]())
		}
		return fn(ctx, t, a)
	})
	return newMethod(class.className(), name, nil)
}

// ActorMethod0 is an actor method with no arguments, made by Method0.
type ActorMethod0[T, R any] struct{ m method }

// Method0 registers a method of the actor type class under name; m is
// usually a method expression such as (*Counter).Get. Call it at package
// init.
func Method0[T, R any](class ActorType[T], name string, m func(*T, context.Context) (R, error)) *ActorMethod0[T, R] {
	return &ActorMethod0[T, R]{registerMethod(class, name, func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 0); err != nil {
			return nil, err
		}
		r, err := m(self, ctx)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})}
}

// Options returns a copy of the method whose calls use opts.
func (f *ActorMethod0[T, R]) Options(opts ...Option) *ActorMethod0[T, R] {
	return &ActorMethod0[T, R]{f.m.with(opts)}
}

// Remote calls the method on the actor a. Calls from one process run in
// the order they were made.
func (f *ActorMethod0[T, R]) Remote(ctx context.Context, a ActorHandle[T]) ObjectRef[R] {
	return ref1[R](f.m.submit(ctx, a.h, nil, 1))
}

// ActorMethod1 is an actor method with one argument, made by Method1.
type ActorMethod1[T, A, R any] struct{ m method }

// Method1 registers a one-argument method; see Method0.
func Method1[T, A, R any](class ActorType[T], name string, m func(*T, context.Context, A) (R, error)) *ActorMethod1[T, A, R] {
	return &ActorMethod1[T, A, R]{registerMethod(class, name, func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error) {
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
}

// Options returns a copy of the method whose calls use opts.
func (f *ActorMethod1[T, A, R]) Options(opts ...Option) *ActorMethod1[T, A, R] {
	return &ActorMethod1[T, A, R]{f.m.with(opts)}
}

// Remote calls the method on the actor a with x.
func (f *ActorMethod1[T, A, R]) Remote(ctx context.Context, a ActorHandle[T], x A) ObjectRef[R] {
	as := &args{fn: f.m.full}
	addArg(as, x)
	if as.err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(as.err)}
	}
	return ref1[R](f.m.submit(ctx, a.h, as.list, 1))
}

// RemoteArgs calls the method with an A or an ObjectRef[A].
func (f *ActorMethod1[T, A, R]) RemoteArgs(ctx context.Context, a ActorHandle[T], args ...any) ObjectRef[R] {
	list, err := dynamicArgs(f.m.class+"."+f.m.name, types(reflect.TypeFor[A]()), args)
	if err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(err)}
	}
	return ref1[R](f.m.submit(ctx, a.h, list, 1))
}

// ActorMethod2 is an actor method with two arguments, made by Method2.
type ActorMethod2[T, A, B, R any] struct{ m method }

// Method2 registers a two-argument method; see Method0.
func Method2[T, A, B, R any](class ActorType[T], name string, m func(*T, context.Context, A, B) (R, error)) *ActorMethod2[T, A, B, R] {
	return &ActorMethod2[T, A, B, R]{registerMethod(class, name, func(ctx context.Context, self *T, a [][]byte) ([]coreworker.Encoded, error) {
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
}

// Options returns a copy of the method whose calls use opts.
func (f *ActorMethod2[T, A, B, R]) Options(opts ...Option) *ActorMethod2[T, A, B, R] {
	return &ActorMethod2[T, A, B, R]{f.m.with(opts)}
}

// Remote calls the method on the actor a with x and y.
func (f *ActorMethod2[T, A, B, R]) Remote(ctx context.Context, a ActorHandle[T], x A, y B) ObjectRef[R] {
	as := &args{fn: f.m.full}
	addArg(as, x)
	addArg(as, y)
	if as.err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(as.err)}
	}
	return ref1[R](f.m.submit(ctx, a.h, as.list, 1))
}
