//go:build !windows

package ray_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raygo/raygo/ray"
)

// point has an unexported field: msgpack would drop it.
type point struct {
	X int
	y int
}

// order reaches an unexported field through a slice of structs.
type order struct {
	ID    string
	Items []item
}

type item struct {
	SKU    string
	secret string
}

// opaque encodes itself, so its unexported fields travel.
type opaque struct{ n int }

func (o opaque) MarshalBinary() ([]byte, error) { return []byte{byte(o.n)}, nil }
func (o *opaque) UnmarshalBinary(b []byte) error {
	if len(b) != 1 {
		return errors.New("opaque: want one byte")
	}
	o.n = int(b[0])
	return nil
}

// fine has only what travels: exported fields, a field left out on
// purpose, types that encode themselves, refs, and itself recursively.
type fine struct {
	A     int
	cache map[string]int `msgpack:"-"`
	_     struct{}
	When  time.Time
	O     opaque
	Ref   ray.ObjectRef[int]
	Next  *fine
	Any   any
}

type withChan struct{ C chan int }

// lossyError would arrive without its code.
type lossyError struct{ code int }

func (e *lossyError) Error() string { return fmt.Sprint("code ", e.code) }

// TestUnexportedFieldsRefused (behaviour 14): a struct with unexported
// fields used to round-trip as zero values with no error. Now Put refuses
// it with an error naming the type and the field, and registering a
// function that takes or returns one panics at init the same way; types
// that encode themselves and fields tagged `msgpack:"-"` pass.
func TestUnexportedFieldsRefused(t *testing.T) {
	ctx := initCluster(t, ray.NumCPUs(1))

	_, err := ray.Put(ctx, point{X: 1, y: 2})
	var ee *ray.EncodingError
	if !errors.As(err, &ee) || !errors.Is(err, ray.ErrInvalidRequest) || ee.Field != "github.com/raygo/raygo/ray_test.point.y" {
		t.Fatalf("Put(point{X: 1, y: 2}) = %v, want an EncodingError for field y", err)
	}
	for _, w := range []string{"ray_test.point", "field", ".y", "unexported", "zero value", `msgpack:"-"`, "BinaryMarshaler"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	_, err = ray.Put(ctx, []order{{ID: "o1"}})
	if !errors.As(err, &ee) || ee.Path != "[].Items[].secret" || !strings.Contains(err.Error(), "ray_test.item.secret") {
		t.Fatalf("Put([]order) = %v, want the path to item.secret", err)
	}
	// Behind an interface type, the dynamic type is checked.
	if _, err := ray.Put[any](ctx, point{}); !errors.As(err, &ee) {
		t.Fatalf("Put[any](point{}) = %v", err)
	}
	if _, err := ray.Put(ctx, withChan{}); !errors.As(err, &ee) || !strings.Contains(err.Error(), "chan int cannot be encoded") {
		t.Fatalf("Put(withChan{}) = %v", err)
	}

	// What passes, round-trips.
	now := time.Now().Truncate(time.Second)
	in := fine{A: 1, cache: map[string]int{"x": 1}, When: now, O: opaque{n: 7}, Next: &fine{A: 2}}
	ref, err := ray.Put(ctx, in)
	if err != nil {
		t.Fatalf("Put(fine) = %v", err)
	}
	out, err := ref.Get(ctx)
	if err != nil || out.A != 1 || out.cache != nil || !out.When.Equal(now) || out.O.n != 7 || out.Next == nil || out.Next.A != 2 {
		t.Fatalf("fine round trip: %+v, %v", out, err)
	}
	if ref, err := ray.Put(ctx, opaque{n: 9}); err != nil {
		t.Fatal(err)
	} else if v, err := ref.Get(ctx); err != nil || v.n != 9 {
		t.Fatalf("opaque round trip: %+v, %v", v, err)
	}

	// Registration: arguments and results are checked once, at init.
	for what, tc := range map[string]struct {
		f    func()
		want string
	}{
		"argument": {func() {
			ray.Func1(func(ctx context.Context, p point) (int, error) { return p.X, nil }, ray.RegisterName("test.TakesPoint"))
		}, `"test.TakesPoint": argument 0: ray: values of type ray_test.point cannot travel intact: at .y, field github.com/raygo/raygo/ray_test.point.y is unexported`},
		"result": {func() {
			ray.Func0(func(ctx context.Context) ([]order, error) { return nil, nil }, ray.RegisterName("test.MakesOrders"))
		}, `"test.MakesOrders": result 0`},
		"constructor": {func() {
			ray.Actor1(func(ctx context.Context, p point) (*struct{}, error) { return nil, nil }, ray.RegisterName("test.PointActor"))
		}, `"test.PointActor": argument 0`},
		"error type": {func() { ray.RegisterError[*lossyError]("test.LossyError") }, `RegisterError "test.LossyError": ray: values of type *ray_test.lossyError cannot travel intact: at .code`},
		"method": {func() {
			ray.Method1(Counter, func(c *counter, ctx context.Context, o map[string]item) (int, error) { return 0, nil }, ray.RegisterName("ByItem"))
		}, `"test.Counter.ByItem": argument 0: ray: values of type map[string]ray_test.item cannot travel intact: at [].secret`},
	} {
		if msg := panicOf(tc.f); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: panic %q does not say %q", what, msg, tc.want)
		}
	}
	// A function of types that travel registers, and its values arrive.
	if o, err := TakesFine.Remote(ctx, in).Get(ctx); err != nil || o.n != 7 {
		t.Fatalf("TakesFine = %+v, %v", o, err)
	}
}

var TakesFine = ray.Func1(func(ctx context.Context, f fine) (opaque, error) {
	if f.Next == nil || f.Next.A != 2 || f.cache != nil {
		return opaque{}, errors.New("fine arrived changed")
	}
	return f.O, nil
}, ray.RegisterName("test.TakesFine"))
