package ray

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Values travel as msgpack, which writes a struct's exported fields only:
// an unexported field would arrive as its zero value, with no error. So
// the types a function, method or constructor takes and returns are
// checked when it is registered (a panic at init), and a Put value's type
// when it is put (an error). A type passes when every struct reachable
// from it through fields, pointers, slices, arrays and maps
//
//   - has only exported fields, apart from fields tagged `msgpack:"-"`
//     (left out on purpose) and blank (_) fields; or
//   - encodes itself: it or its pointer implements msgpack.CustomEncoder,
//     msgpack.Marshaler, encoding.BinaryMarshaler or
//     encoding.TextMarshaler (time.Time, ObjectRef and ActorHandle do).
//
// Channels, functions, complex numbers and unsafe pointers cannot be
// encoded at all and are refused the same way. Interface types (any,
// error) are not looked into: their dynamic values are encoded as they
// come, and decode into generic maps and slices on the other side.
//
// Each type is checked once per process; the result is cached.

var (
	customEncoderType   = reflect.TypeFor[msgpack.CustomEncoder]()
	marshalerType       = reflect.TypeFor[msgpack.Marshaler]()
	binaryMarshalerType = reflect.TypeFor[encoding.BinaryMarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// checkedTypes caches checkType's answers: reflect.Type -> typeCheck.
var checkedTypes sync.Map

type typeCheck struct{ err error }

// EncodingError says why values of a type cannot travel intact. It
// matches ErrInvalidRequest.
type EncodingError struct {
	// Type is the type that was checked.
	Type string
	// Path leads from Type to the problem: ".Items[].secret" is field
	// secret of the elements of field Items; "" is Type itself.
	Path string
	// Field is the offending field's struct type and name
	// ("main.Item.secret"), or "" when the problem is not a field.
	Field string
	// Reason says what is wrong.
	Reason string
}

func (e *EncodingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ray: values of type %s cannot travel intact: ", e.Type)
	if e.Path != "" {
		fmt.Fprintf(&b, "at %s, ", e.Path)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %s ", e.Field)
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Is makes an EncodingError match ErrInvalidRequest.
func (e *EncodingError) Is(target error) bool { return target == ErrInvalidRequest }

// checkType reports whether values of t travel intact (see above).
func checkType(t reflect.Type) error {
	if t == nil {
		return nil
	}
	if c, ok := checkedTypes.Load(t); ok {
		return c.(typeCheck).err
	}
	err := walkType(t, t, "", map[reflect.Type]bool{})
	checkedTypes.Store(t, typeCheck{err})
	return err
}

// checkTypeOf is checkType for T; for an interface type, v's dynamic type
// is checked instead.
func checkTypeOf[T any](v T) error {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		t = reflect.TypeOf(v)
	}
	return checkType(t)
}

func selfEncoding(t reflect.Type) bool {
	for _, x := range []reflect.Type{t, reflect.PointerTo(t)} {
		if x.Implements(customEncoderType) || x.Implements(marshalerType) ||
			x.Implements(binaryMarshalerType) || x.Implements(textMarshalerType) {
			return true
		}
	}
	return false
}

func walkType(root, t reflect.Type, path string, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true // a type met again passes here: it fails, if at all, where it was first met
	if t.Kind() != reflect.Interface && selfEncoding(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return walkType(root, t.Elem(), path, seen)
	case reflect.Slice, reflect.Array:
		return walkType(root, t.Elem(), path+"[]", seen)
	case reflect.Map:
		if err := walkType(root, t.Key(), path+"[key]", seen); err != nil {
			return err
		}
		return walkType(root, t.Elem(), path+"[]", seen)
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return &EncodingError{Type: root.String(), Path: path,
			Reason: fmt.Sprintf("%s cannot be encoded (a %s)", t, t.Kind())}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("msgpack"), ",")
			if tag == "-" || f.Name == "_" || f.Name == "_msgpack" {
				continue
			}
			fpath := path + "." + f.Name
			field := typeName(t) + "." + f.Name
			if t.Name() == "" {
				field = f.Name
			}
			if !f.IsExported() && !f.Anonymous {
				return &EncodingError{Type: root.String(), Path: fpath, Field: field,
					Reason: fmt.Sprintf("is unexported, so it would arrive as its zero value: export it, tag it `msgpack:\"-\"` "+
						"to leave it out, or have %s encode itself (msgpack.CustomEncoder, or encoding.BinaryMarshaler "+
						"with BinaryUnmarshaler)", t)}
			}
			if err := walkType(root, f.Type, fpath, seen); err != nil {
				return err
			}
		}
	}
	return nil
}
