package ray

import (
	"context"
	"fmt"
	"reflect"

	"github.com/raygo/raygo/internal/codec"
	"github.com/raygo/raygo/internal/coreworker"
	"github.com/raygo/raygo/internal/resources"
)

// call is what every remote function handle shares: its registered name
// and the options given with Options, checked once when the handle is made.
type call struct {
	name  string
	opts  []Option
	topts coreworker.TaskOptions
	err   error
}

func newCall(name string, opts []Option) call {
	c := call{name: name, opts: opts}
	c.topts, c.err = taskOptions(name, opts)
	c.topts.Key = coreworker.SchedulingKey(c.topts)
	return c
}

func (c call) with(opts []Option) call {
	return newCall(c.name, append(append([]Option(nil), c.opts...), opts...))
}

func taskOptions(name string, opts []Option) (coreworker.TaskOptions, error) {
	o, err := buildOptions("a task call ("+name+")", forTask, opts)
	if err != nil {
		return coreworker.TaskOptions{}, err
	}
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
	return coreworker.TaskOptions{Resources: res, MaxRetries: retries, OOMRetries: oom, RetryExceptions: o.retryExceptions,
		RetryErrorTypes: o.retryTypes, Name: o.name, Strategy: o.strategy}, nil
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
	topts := c.topts
	topts.NumReturns = n
	return cw.SubmitTask(ctx, c.name, args, topts)
}

func ref1[R any](hs []*coreworker.Ref, err error) ObjectRef[R] {
	if err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(err)}
	}
	return ObjectRef[R]{h: hs[0]}
}

func ref2[R1, R2 any](hs []*coreworker.Ref, err error) (ObjectRef[R1], ObjectRef[R2]) {
	if err != nil {
		return ObjectRef[R1]{h: coreworker.FailedRef(err)}, ObjectRef[R2]{h: coreworker.FailedRef(err)}
	}
	return ObjectRef[R1]{h: hs[0]}, ObjectRef[R2]{h: hs[1]}
}

// args encodes typed arguments for a call.
type args struct {
	fn   string
	list []coreworker.Arg
	err  error
}

func addArg[A any](a *args, v A) {
	if a.err != nil {
		return
	}
	data, nested, err := codec.Encode(v)
	if err != nil {
		a.err = &ArgumentError{Function: a.fn, Index: len(a.list), Detail: err.Error()}
		return
	}
	a.list = append(a.list, coreworker.Arg{Data: data, Nested: nested})
}

// dynamicArgs checks untyped arguments against the parameter types: each
// must be a value of the parameter's type or an ObjectRef of it.
func dynamicArgs(fn string, want []reflect.Type, vals []any) ([]coreworker.Arg, error) {
	if len(vals) != len(want) {
		return nil, &ArgumentError{Function: fn, Index: len(vals), Detail: fmt.Sprintf("got %d arguments, want %d", len(vals), len(want))}
	}
	out := make([]coreworker.Arg, len(vals))
	for i, v := range vals {
		if r, ok := v.(AnyRef); ok {
			if r.elemType() != want[i] {
				return nil, &ArgumentError{Function: fn, Index: i, Detail: fmt.Sprintf("got ObjectRef[%s], want %s or ObjectRef[%s]", r.elemType(), want[i], want[i])}
			}
			h, err := r.handle()
			if err != nil {
				return nil, err
			}
			out[i] = coreworker.Arg{Ref: h}
			continue
		}
		if v == nil || !reflect.TypeOf(v).AssignableTo(want[i]) {
			return nil, &ArgumentError{Function: fn, Index: i, Detail: fmt.Sprintf("got %T, want %s or ObjectRef[%s]", v, want[i], want[i])}
		}
		data, nested, err := codec.Encode(v)
		if err != nil {
			return nil, &ArgumentError{Function: fn, Index: i, Detail: err.Error()}
		}
		out[i] = coreworker.Arg{Data: data, Nested: nested}
	}
	return out, nil
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

func types(ts ...reflect.Type) []reflect.Type { return ts }

// ---------------------------------------------------------------- arities

// Function0 is a remote function with no arguments, made by Func0.
type Function0[R any] struct{ c call }

// Func0 registers fn under name and returns its remote handle. Call it at
// package init (in a var declaration), so workers started from the same
// binary register it too.
func Func0[R any](name string, fn func(context.Context) (R, error)) *Function0[R] {
	registry.AddFunc(name, func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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

// Options returns a copy of the handle whose calls use opts.
func (f *Function0[R]) Options(opts ...Option) *Function0[R] { return &Function0[R]{c: f.c.with(opts)} }

// Remote submits a call and returns a ref to its result.
func (f *Function0[R]) Remote(ctx context.Context) ObjectRef[R] {
	return ref1[R](f.c.submit(ctx, nil, 1))
}

// Function1 is a remote function of one argument, made by Func1.
type Function1[A, R any] struct{ c call }

// Func1 registers fn under name; see Func0.
func Func1[A, R any](name string, fn func(context.Context, A) (R, error)) *Function1[A, R] {
	registry.AddFunc(name, func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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

// Options returns a copy of the handle whose calls use opts.
func (f *Function1[A, R]) Options(opts ...Option) *Function1[A, R] {
	return &Function1[A, R]{c: f.c.with(opts)}
}

// Remote submits a call with a value and returns a ref to its result.
func (f *Function1[A, R]) Remote(ctx context.Context, a A) ObjectRef[R] {
	as := &args{fn: f.c.name}
	addArg(as, a)
	if as.err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(as.err)}
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose argument may be an A or an ObjectRef[A]
// (resolved to its value before the function runs). A wrong type fails
// with an *ArgumentError.
func (f *Function1[A, R]) RemoteArgs(ctx context.Context, args ...any) ObjectRef[R] {
	list, err := dynamicArgs(f.c.name, types(reflect.TypeFor[A]()), args)
	if err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(err)}
	}
	return ref1[R](f.c.submit(ctx, list, 1))
}

// Function2 is a remote function of two arguments, made by Func2.
type Function2[A, B, R any] struct{ c call }

// Func2 registers fn under name; see Func0.
func Func2[A, B, R any](name string, fn func(context.Context, A, B) (R, error)) *Function2[A, B, R] {
	registry.AddFunc(name, func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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

// Options returns a copy of the handle whose calls use opts.
func (f *Function2[A, B, R]) Options(opts ...Option) *Function2[A, B, R] {
	return &Function2[A, B, R]{c: f.c.with(opts)}
}

// Remote submits a call with values and returns a ref to its result.
func (f *Function2[A, B, R]) Remote(ctx context.Context, a A, b B) ObjectRef[R] {
	as := &args{fn: f.c.name}
	addArg(as, a)
	addArg(as, b)
	if as.err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(as.err)}
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose arguments may be values or ObjectRefs of
// the parameter types; see Function1.RemoteArgs.
func (f *Function2[A, B, R]) RemoteArgs(ctx context.Context, args ...any) ObjectRef[R] {
	list, err := dynamicArgs(f.c.name, types(reflect.TypeFor[A](), reflect.TypeFor[B]()), args)
	if err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(err)}
	}
	return ref1[R](f.c.submit(ctx, list, 1))
}

// Function3 is a remote function of three arguments, made by Func3.
type Function3[A, B, C, R any] struct{ c call }

// Func3 registers fn under name; see Func0.
func Func3[A, B, C, R any](name string, fn func(context.Context, A, B, C) (R, error)) *Function3[A, B, C, R] {
	registry.AddFunc(name, func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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

// Options returns a copy of the handle whose calls use opts.
func (f *Function3[A, B, C, R]) Options(opts ...Option) *Function3[A, B, C, R] {
	return &Function3[A, B, C, R]{c: f.c.with(opts)}
}

// Remote submits a call with values and returns a ref to its result.
func (f *Function3[A, B, C, R]) Remote(ctx context.Context, a A, b B, c C) ObjectRef[R] {
	as := &args{fn: f.c.name}
	addArg(as, a)
	addArg(as, b)
	addArg(as, c)
	if as.err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(as.err)}
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose arguments may be values or ObjectRefs of
// the parameter types; see Function1.RemoteArgs.
func (f *Function3[A, B, C, R]) RemoteArgs(ctx context.Context, args ...any) ObjectRef[R] {
	list, err := dynamicArgs(f.c.name, types(reflect.TypeFor[A](), reflect.TypeFor[B](), reflect.TypeFor[C]()), args)
	if err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(err)}
	}
	return ref1[R](f.c.submit(ctx, list, 1))
}

// Function1x2 is a remote function of one argument with two results,
// made by Func1x2; each result has its own ref.
type Function1x2[A, R1, R2 any] struct{ c call }

// Func1x2 registers a function with two results; see Func0.
func Func1x2[A, R1, R2 any](name string, fn func(context.Context, A) (R1, R2, error)) *Function1x2[A, R1, R2] {
	registry.AddFunc(name, func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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

// Options returns a copy of the handle whose calls use opts.
func (f *Function1x2[A, R1, R2]) Options(opts ...Option) *Function1x2[A, R1, R2] {
	return &Function1x2[A, R1, R2]{c: f.c.with(opts)}
}

// Remote submits a call and returns refs to its two results.
func (f *Function1x2[A, R1, R2]) Remote(ctx context.Context, a A) (ObjectRef[R1], ObjectRef[R2]) {
	as := &args{fn: f.c.name}
	addArg(as, a)
	if as.err != nil {
		return ObjectRef[R1]{h: coreworker.FailedRef(as.err)}, ObjectRef[R2]{h: coreworker.FailedRef(as.err)}
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
func Func1xN[A, R any](name string, fn func(context.Context, A) ([]R, error)) *Function1xN[A, R] {
	registry.AddFunc(name, func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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

// Options returns a copy of the handle whose calls use opts.
func (f *Function1xN[A, R]) Options(opts ...Option) *Function1xN[A, R] {
	return &Function1xN[A, R]{c: f.c.with(opts)}
}

// Remote submits a call expecting n results (1 to 65,535) and returns a
// ref to each.
func (f *Function1xN[A, R]) Remote(ctx context.Context, a A, n int) []ObjectRef[R] {
	out := make([]ObjectRef[R], max(n, 1))
	fail := func(err error) []ObjectRef[R] {
		for i := range out {
			out[i] = ObjectRef[R]{h: coreworker.FailedRef(err)}
		}
		return out
	}
	if n < 1 {
		return fail(fmt.Errorf("%w: %s: %d results requested, want at least 1", ErrInvalidRequest, f.c.name, n))
	}
	as := &args{fn: f.c.name}
	addArg(as, a)
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

// FuncV registers a variadic function; see Func0. Calls may pass values
// of type A and ObjectRef[A]s in any mix (RemoteArgs); refs are resolved
// to their values before the function runs.
func FuncV[A, R any](name string, fn func(context.Context, ...A) (R, error)) *FunctionV[A, R] {
	registry.AddFunc(name, func(ctx context.Context, a [][]byte) ([]coreworker.Encoded, error) {
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

// Options returns a copy of the handle whose calls use opts.
func (f *FunctionV[A, R]) Options(opts ...Option) *FunctionV[A, R] {
	return &FunctionV[A, R]{c: f.c.with(opts)}
}

// Remote submits a call with values and returns a ref to its result.
func (f *FunctionV[A, R]) Remote(ctx context.Context, xs ...A) ObjectRef[R] {
	as := &args{fn: f.c.name}
	for _, x := range xs {
		addArg(as, x)
	}
	if as.err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(as.err)}
	}
	return ref1[R](f.c.submit(ctx, as.list, 1))
}

// RemoteArgs submits a call whose arguments are As or ObjectRef[A]s.
func (f *FunctionV[A, R]) RemoteArgs(ctx context.Context, args ...any) ObjectRef[R] {
	want := make([]reflect.Type, len(args))
	for i := range want {
		want[i] = reflect.TypeFor[A]()
	}
	list, err := dynamicArgs(f.c.name, want, args)
	if err != nil {
		return ObjectRef[R]{h: coreworker.FailedRef(err)}
	}
	return ref1[R](f.c.submit(ctx, list, 1))
}
