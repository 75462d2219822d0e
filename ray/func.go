package ray

import (
	"context"
	"fmt"
	"reflect"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker"
	"github.com/raygo/raygo/internal/coreworker/tasksubmit"
	"github.com/raygo/raygo/internal/resources"
)

// call is what every remote function handle shares: its registered name
// and the options given with Options, checked once when the handle is made.
type call struct {
	name  string
	opts  []TaskOption
	topts coreworker.TaskOptions
	err   error
	free  bool // no placement option given: a capturing parent's group applies
	group *PlacementGroupHandle
	renv  *RuntimeEnv // WithRuntimeEnv; nil: the job's (or an inherited one)
}

func newCall(name string, opts []TaskOption) call {
	c := call{name: name, opts: opts}
	c.topts, c.err = taskOptions(name, opts)
	c.free = c.topts.Placement == (tasksubmit.Placement{})
	o := collect(opts, TaskOption.applyTask)
	c.group, c.renv = o.group, o.runtimeEnv
	c.topts.Key = coreworker.SchedulingKey(c.topts)
	return c
}

func (c call) with(opts []TaskOption) call {
	return newCall(c.name, append(append([]TaskOption(nil), c.opts...), opts...))
}

func taskOptions(name string, opts []TaskOption) (coreworker.TaskOptions, error) {
	o := collect(opts, TaskOption.applyTask)
	res := resources.Set{resources.CPU: 1}
	for k, v := range o.res {
		res[k] = v
	}
	if err := resources.Validate(res); err != nil {
		return coreworker.TaskOptions{}, fmt.Errorf("%w: %s: %v", ErrInvalidRequest, name, err)
	}
	retries := 3
	if o.maxRetries != nil {
		retries = *o.maxRetries
	}
	if retries < -1 {
		return coreworker.TaskOptions{}, fmt.Errorf("%w: %s: MaxRetries(%d): want -1 or more", ErrInvalidRequest, name, retries)
	}
	oom := DefaultOOMRetries
	if o.oomRetries != nil {
		oom = *o.oomRetries
	}
	if oom < -1 {
		return coreworker.TaskOptions{}, fmt.Errorf("%w: %s: OOMRetries(%d): want -1 or more", ErrInvalidRequest, name, oom)
	}
	pl, res, err := o.placement(name, res)
	if err != nil {
		return coreworker.TaskOptions{}, err
	}
	return coreworker.TaskOptions{Resources: res, MaxRetries: retries, OOMRetries: oom, RetryExceptions: o.retryExceptions,
		RetryErrorTypes: o.retryTypes, Name: o.name, Placement: pl}, nil
}

// submit sends a task call and returns refs to its n results.
func (c call) submit(ctx context.Context, args []coreworker.Arg, n int) ([]*coreworker.Ref, error) {
	cw, err := current()
	if err != nil {
		return nil, err
	}
	if c.err != nil {
		return nil, c.err
	}
	if c.group != nil {
		// The group's create and removal, if this process sent them,
		// come first.
		if err := c.group.ordered(ctx); err != nil {
			return nil, err
		}
	}
	topts := c.topts
	topts.NumReturns = n
	if c.free {
		topts = captured(ctx, topts)
	}
	if c.renv != nil || inherited() != nil {
		env, err := callRuntimeEnv(ctx, cw.GCS(), c.renv) // uploaded once per directory
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		topts.Placement.RuntimeEnv = env
		topts.Key = coreworker.SchedulingKey(topts)
	}
	return cw.SubmitTask(ctx, c.name, args, topts)
}

func failed[R any](err error) ObjectRef[R] { return ObjectRef[R]{h: coreworker.FailedRef(err)} }

func ref1[R any](hs []*coreworker.Ref, err error) ObjectRef[R] {
	if err != nil {
		return failed[R](err)
	}
	return ObjectRef[R]{h: hs[0]}
}

func ref2[R1, R2 any](hs []*coreworker.Ref, err error) (ObjectRef[R1], ObjectRef[R2]) {
	if err != nil {
		return failed[R1](err), failed[R2](err)
	}
	return ObjectRef[R1]{h: hs[0]}, ObjectRef[R2]{h: hs[1]}
}

// args encodes a call's arguments.
type args struct {
	fn   string
	list []coreworker.Arg
	err  error
}

func addArg[A any](a *args, v A) {
	if a.err != nil {
		return
	}
	arg, err := encodeArg(a.fn, len(a.list), v)
	if err != nil {
		a.err = err
		return
	}
	a.list = append(a.list, arg)
}

func encodeArg(fn string, i int, v any) (coreworker.Arg, error) {
	data, nested, err := codec.Encode(v)
	if err != nil {
		return coreworker.Arg{}, &argError{&ArgumentError{Function: fn, Index: i, Detail: err.Error()}, err}
	}
	return coreworker.Arg{Data: data, Nested: nested}, nil
}

// argError is an *ArgumentError for an argument that could not be
// encoded, with the encoder's error kept in the chain: a failed
// ActorHandle passed as an argument still matches its creation error.
type argError struct {
	arg   *ArgumentError
	cause error
}

func (e *argError) Error() string   { return e.arg.Error() }
func (e *argError) Unwrap() []error { return []error{e.arg, e.cause} }

// add appends an Arg: a value to encode or a ref to pass.
func add[A any](a *args, x Arg[A]) {
	if a.err != nil {
		return
	}
	if x == nil {
		a.err = &ArgumentError{Function: a.fn, Index: len(a.list), Detail: "nil Arg"}
		return
	}
	arg, err := x.toArg(a.fn, len(a.list))
	if err != nil {
		a.err = err
		return
	}
	a.list = append(a.list, arg)
}

func decodeArg[A any](fn string, args [][]byte, i int) (A, error) {
	var a A
	if i >= len(args) {
		return a, &ArgumentError{Function: fn, Index: i, Detail: fmt.Sprintf("missing: got %d arguments", len(args))}
	}
	if err := codec.Decode(args[i], &a); err != nil {
		return a, &ArgumentError{Function: fn, Index: i, Detail: fmt.Sprintf("cannot decode into %s: %v", reflect.TypeFor[A](), err)}
	}
	return a, nil
}

func checkArity(fn string, args [][]byte, n int) error {
	if len(args) != n {
		return &ArgumentError{Function: fn, Index: len(args), Detail: fmt.Sprintf("got %d arguments, want %d", len(args), n)}
	}
	return nil
}

func encodeRets(vals ...any) ([]coreworker.Encoded, error) {
	out := make([]coreworker.Encoded, len(vals))
	for i, v := range vals {
		data, nested, err := codec.Encode(v)
		if err != nil {
			return nil, fmt.Errorf("ray: encode result %d: %w", i, err)
		}
		out[i] = coreworker.Encoded{Data: data, Nested: nested}
	}
	return out, nil
}

// sig lists the types a registered function takes and returns, for the
// check that their values travel intact (see checkType).
type sig struct {
	args, results []reflect.Type
}

func in(ts ...reflect.Type) sig { return sig{args: ts} }

func (s sig) out(ts ...reflect.Type) sig { s.results = ts; return s }

// check panics when a value of one of s's types could not travel intact.
func (s sig) check(what, name string) {
	for i, t := range s.args {
		if err := checkType(t); err != nil {
			panic(fmt.Sprintf("ray: %s %q: argument %d: %v", what, name, i, err))
		}
	}
	for i, t := range s.results {
		if err := checkType(t); err != nil {
			panic(fmt.Sprintf("ray: %s %q: result %d: %v", what, name, i, err))
		}
	}
}

// registerFunc registers a remote function's body under the name given
// or derived from fn, after checking its types; called from FuncN only
// (the user's call is three frames up from claim).
func registerFunc(what string, fn any, opts []RegisterOption, s sig, body coreworker.Func) string {
	name := regName(what, fn, opts)
	s.check(what, name)
	claim("function", name, 3)
	registry.AddFunc(name, body)
	return name
}

func typ[T any]() reflect.Type { return reflect.TypeFor[T]() }

// ---------------------------------------------------------------- arities

// Function0 is a remote function with no arguments, made by Func0.
type Function0[R any] struct{ c call }

// Func0 registers fn as a remote function and returns its handle. Call it
// at package initialization (in a var declaration), so that worker
// processes, started from the same binary, register it too.
//
// The function is registered under its full name as the runtime knows it
// ("main.hello", "github.com/you/app/jobs.Hello"), or under the name given
// with RegisterName. Give closures a name: theirs ("main.init.func3")
// changes when closures are added above them. A name registered twice
// panics, naming both places. The types fn takes and returns must travel
// intact (exported fields only, unless a type encodes itself; see
// EncodingError); one that cannot panics here, naming the type and field.
func Func0[R any](fn func(context.Context) (R, error), opts ...RegisterOption) *Function0[R] {
	var name string
	name = registerFunc("ray.Func0", fn, opts, in().out(typ[R]()), func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 0); err != nil {
			return nil, err
		}
		r, err := fn(ctx)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})
	return &Function0[R]{c: newCall(name, nil)}
}

// Name returns the name the function is registered under.
func (f *Function0[R]) Name() string { return f.c.name }

// Options returns a copy of the handle whose calls use opts (after the
// handle's own). A bad value makes every call of the copy fail with it.
func (f *Function0[R]) Options(opts ...TaskOption) *Function0[R] {
	return &Function0[R]{c: f.c.with(opts)}
}

// Remote submits a call and returns a ref to its result at once. A call
// that cannot be submitted (bad options, not initialized) returns a ref
// carrying the error: Err reports it and Get returns it.
func (f *Function0[R]) Remote(ctx context.Context) ObjectRef[R] {
	return ref1[R](f.c.submit(ctx, nil, 1))
}

// Function1 is a remote function of one argument, made by Func1.
type Function1[A, R any] struct{ c call }

// Func1 registers a function of one argument; see Func0.
func Func1[A, R any](fn func(context.Context, A) (R, error), opts ...RegisterOption) *Function1[A, R] {
	var name string
	name = registerFunc("ray.Func1", fn, opts, in(typ[A]()).out(typ[R]()), func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 1); err != nil {
			return nil, err
		}
		x, err := decodeArg[A](name, a, 0)
		if err != nil {
			return nil, err
		}
		r, err := fn(ctx, x)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})
	return &Function1[A, R]{c: newCall(name, nil)}
}

// Name returns the name the function is registered under.
func (f *Function1[A, R]) Name() string { return f.c.name }

// Options returns a copy of the handle whose calls use opts; see
// Function0.Options.
func (f *Function1[A, R]) Options(opts ...TaskOption) *Function1[A, R] {
	return &Function1[A, R]{c: f.c.with(opts)}
}

// Remote submits a call with a value and returns a ref to its result; see
// Function0.Remote.
func (f *Function1[A, R]) Remote(ctx context.Context, a A) ObjectRef[R] {
	as := &args{fn: f.c.name}
	addArg(as, a)
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose argument is an ObjectRef[A] (the
// function receives its value once it is ready, without a trip through
// the caller) or a value given with Val.
func (f *Function1[A, R]) RemoteArgs(ctx context.Context, a Arg[A]) ObjectRef[R] {
	as := &args{fn: f.c.name}
	add(as, a)
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// Function2 is a remote function of two arguments, made by Func2.
type Function2[A, B, R any] struct{ c call }

// Func2 registers a function of two arguments; see Func0.
func Func2[A, B, R any](fn func(context.Context, A, B) (R, error), opts ...RegisterOption) *Function2[A, B, R] {
	var name string
	name = registerFunc("ray.Func2", fn, opts, in(typ[A](), typ[B]()).out(typ[R]()), func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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
		r, err := fn(ctx, x, y)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})
	return &Function2[A, B, R]{c: newCall(name, nil)}
}

// Name returns the name the function is registered under.
func (f *Function2[A, B, R]) Name() string { return f.c.name }

// Options returns a copy of the handle whose calls use opts; see
// Function0.Options.
func (f *Function2[A, B, R]) Options(opts ...TaskOption) *Function2[A, B, R] {
	return &Function2[A, B, R]{c: f.c.with(opts)}
}

// Remote submits a call with values and returns a ref to its result; see
// Function0.Remote.
func (f *Function2[A, B, R]) Remote(ctx context.Context, a A, b B) ObjectRef[R] {
	as := &args{fn: f.c.name}
	addArg(as, a)
	addArg(as, b)
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose arguments are ObjectRefs or values
// given with Val; see Function1.RemoteArgs.
func (f *Function2[A, B, R]) RemoteArgs(ctx context.Context, a Arg[A], b Arg[B]) ObjectRef[R] {
	as := &args{fn: f.c.name}
	add(as, a)
	add(as, b)
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// Function3 is a remote function of three arguments, made by Func3.
type Function3[A, B, C, R any] struct{ c call }

// Func3 registers a function of three arguments; see Func0. For more,
// pass a struct.
func Func3[A, B, C, R any](fn func(context.Context, A, B, C) (R, error), opts ...RegisterOption) *Function3[A, B, C, R] {
	var name string
	name = registerFunc("ray.Func3", fn, opts, in(typ[A](), typ[B](), typ[C]()).out(typ[R]()), func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 3); err != nil {
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
		z, err := decodeArg[C](name, a, 2)
		if err != nil {
			return nil, err
		}
		r, err := fn(ctx, x, y, z)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})
	return &Function3[A, B, C, R]{c: newCall(name, nil)}
}

// Name returns the name the function is registered under.
func (f *Function3[A, B, C, R]) Name() string { return f.c.name }

// Options returns a copy of the handle whose calls use opts; see
// Function0.Options.
func (f *Function3[A, B, C, R]) Options(opts ...TaskOption) *Function3[A, B, C, R] {
	return &Function3[A, B, C, R]{c: f.c.with(opts)}
}

// Remote submits a call with values and returns a ref to its result; see
// Function0.Remote.
func (f *Function3[A, B, C, R]) Remote(ctx context.Context, a A, b B, c C) ObjectRef[R] {
	as := &args{fn: f.c.name}
	addArg(as, a)
	addArg(as, b)
	addArg(as, c)
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose arguments are ObjectRefs or values
// given with Val; see Function1.RemoteArgs.
func (f *Function3[A, B, C, R]) RemoteArgs(ctx context.Context, a Arg[A], b Arg[B], c Arg[C]) ObjectRef[R] {
	as := &args{fn: f.c.name}
	add(as, a)
	add(as, b)
	add(as, c)
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// Function1x2 is a remote function of one argument with two results,
// made by Func1x2; each result has its own ref.
type Function1x2[A, R1, R2 any] struct{ c call }

// Func1x2 registers a function with two results; see Func0.
func Func1x2[A, R1, R2 any](fn func(context.Context, A) (R1, R2, error), opts ...RegisterOption) *Function1x2[A, R1, R2] {
	var name string
	name = registerFunc("ray.Func1x2", fn, opts, in(typ[A]()).out(typ[R1](), typ[R2]()), func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 1); err != nil {
			return nil, err
		}
		x, err := decodeArg[A](name, a, 0)
		if err != nil {
			return nil, err
		}
		r1, r2, err := fn(ctx, x)
		if err != nil {
			return nil, err
		}
		return encodeRets(r1, r2)
	})
	return &Function1x2[A, R1, R2]{c: newCall(name, nil)}
}

// Name returns the name the function is registered under.
func (f *Function1x2[A, R1, R2]) Name() string { return f.c.name }

// Options returns a copy of the handle whose calls use opts; see
// Function0.Options.
func (f *Function1x2[A, R1, R2]) Options(opts ...TaskOption) *Function1x2[A, R1, R2] {
	return &Function1x2[A, R1, R2]{c: f.c.with(opts)}
}

// Remote submits a call and returns refs to its two results; see
// Function0.Remote.
func (f *Function1x2[A, R1, R2]) Remote(ctx context.Context, a A) (ObjectRef[R1], ObjectRef[R2]) {
	as := &args{fn: f.c.name}
	addArg(as, a)
	if as.err != nil {
		return failed[R1](as.err), failed[R2](as.err)
	}
	return ref2[R1, R2](f.c.submit(ctx, as.list, 2))
}

// RemoteArgs is Remote with an ObjectRef or a value given with Val; see
// Function1.RemoteArgs.
func (f *Function1x2[A, R1, R2]) RemoteArgs(ctx context.Context, a Arg[A]) (ObjectRef[R1], ObjectRef[R2]) {
	as := &args{fn: f.c.name}
	add(as, a)
	if as.err != nil {
		return failed[R1](as.err), failed[R2](as.err)
	}
	return ref2[R1, R2](f.c.submit(ctx, as.list, 2))
}

// Function1xN is a remote function of one argument whose results, chosen
// in number by the caller, each get their own ref (Ray's num_returns).
// Made by Func1xN.
type Function1xN[A, R any] struct{ c call }

// Func1xN registers a function returning a slice whose elements become
// separate objects; see Func0. The function must return exactly as many
// elements as the call asked for, or the call fails.
func Func1xN[A, R any](fn func(context.Context, A) ([]R, error), opts ...RegisterOption) *Function1xN[A, R] {
	var name string
	name = registerFunc("ray.Func1xN", fn, opts, in(typ[A]()).out(typ[R]()), func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
		if err := checkArity(name, a, 1); err != nil {
			return nil, err
		}
		x, err := decodeArg[A](name, a, 0)
		if err != nil {
			return nil, err
		}
		rs, err := fn(ctx, x)
		if err != nil {
			return nil, err
		}
		vals := make([]any, len(rs))
		for i, r := range rs {
			vals[i] = r
		}
		return encodeRets(vals...)
	})
	return &Function1xN[A, R]{c: newCall(name, nil)}
}

// Name returns the name the function is registered under.
func (f *Function1xN[A, R]) Name() string { return f.c.name }

// Options returns a copy of the handle whose calls use opts; see
// Function0.Options.
func (f *Function1xN[A, R]) Options(opts ...TaskOption) *Function1xN[A, R] {
	return &Function1xN[A, R]{c: f.c.with(opts)}
}

// Remote submits a call expecting n results (1 to 65,535) and returns a
// ref to each; see Function0.Remote.
func (f *Function1xN[A, R]) Remote(ctx context.Context, a A, n int) []ObjectRef[R] {
	as := &args{fn: f.c.name}
	addArg(as, a)
	return f.submit(ctx, as, n)
}

// RemoteArgs is Remote with an ObjectRef or a value given with Val; see
// Function1.RemoteArgs.
func (f *Function1xN[A, R]) RemoteArgs(ctx context.Context, a Arg[A], n int) []ObjectRef[R] {
	as := &args{fn: f.c.name}
	add(as, a)
	return f.submit(ctx, as, n)
}

func (f *Function1xN[A, R]) submit(ctx context.Context, as *args, n int) []ObjectRef[R] {
	out := make([]ObjectRef[R], max(n, 1))
	fail := func(err error) []ObjectRef[R] {
		for i := range out {
			out[i] = failed[R](err)
		}
		return out
	}
	if n < 1 {
		return fail(fmt.Errorf("%w: %s: %d results requested, want at least 1", ErrInvalidRequest, f.c.name, n))
	}
	if as.err != nil {
		return fail(as.err)
	}
	hs, err := f.c.submit(ctx, as.list, n)
	if err != nil {
		return fail(err)
	}
	for i, h := range hs {
		out[i] = ObjectRef[R]{h: h}
	}
	return out
}

// FunctionV is a remote function of any number of arguments of one type,
// made by FuncV.
type FunctionV[A, R any] struct{ c call }

// FuncV registers a variadic function; see Func0.
func FuncV[A, R any](fn func(context.Context, ...A) (R, error), opts ...RegisterOption) *FunctionV[A, R] {
	var name string
	name = registerFunc("ray.FuncV", fn, opts, in(typ[A]()).out(typ[R]()), func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
		xs := make([]A, len(a))
		for i := range a {
			x, err := decodeArg[A](name, a, i)
			if err != nil {
				return nil, err
			}
			xs[i] = x
		}
		r, err := fn(ctx, xs...)
		if err != nil {
			return nil, err
		}
		return encodeRets(r)
	})
	return &FunctionV[A, R]{c: newCall(name, nil)}
}

// Name returns the name the function is registered under.
func (f *FunctionV[A, R]) Name() string { return f.c.name }

// Options returns a copy of the handle whose calls use opts; see
// Function0.Options.
func (f *FunctionV[A, R]) Options(opts ...TaskOption) *FunctionV[A, R] {
	return &FunctionV[A, R]{c: f.c.with(opts)}
}

// Remote submits a call with values and returns a ref to its result; see
// Function0.Remote.
func (f *FunctionV[A, R]) Remote(ctx context.Context, xs ...A) ObjectRef[R] {
	as := &args{fn: f.c.name}
	for _, x := range xs {
		addArg(as, x)
	}
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose arguments are ObjectRef[A]s and values
// given with Val, in any mix; see Function1.RemoteArgs.
func (f *FunctionV[A, R]) RemoteArgs(ctx context.Context, xs ...Arg[A]) ObjectRef[R] {
	as := &args{fn: f.c.name, list: make([]coreworker.Arg, 0, len(xs))}
	for _, x := range xs {
		add(as, x)
	}
	if as.err != nil {
		return failed[R](as.err)
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}
