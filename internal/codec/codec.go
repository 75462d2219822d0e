// Package codec encodes task arguments and object values. The default
// format is msgpack; []byte and string travel as raw bytes, and
// encoding.BinaryMarshaler values use their own encoding. Object refs
// inside values are written as a msgpack extension and collected so the
// owner's reference count can account for them. No format here executes
// code on decode.
package codec

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// Format tags: the first byte of every encoded value.
const (
	tagMsgpack byte = 0
	tagRaw     byte = 1
	tagBinary  byte = 2
)

// RefExtID is the msgpack extension id for an object ref.
const RefExtID int8 = 17

// Ref is the wire form of an object ref nested in a value.
type Ref struct {
	ID           []byte
	OwnerID      []byte
	OwnerAddress string
}

// collectors maps an encoder in use to the refs found while encoding.
var collectors sync.Map // *msgpack.Encoder -> *[]Ref

var encPool = sync.Pool{New: func() any {
	e := msgpack.NewEncoder(nil)
	e.UseCompactInts(true)
	return e
}}

var (
	bytesType  = reflect.TypeFor[[]byte]()
	stringType = reflect.TypeFor[string]()
)

var rawHeader = []byte{tagRaw}

// EncodeParts encodes v like Encode, as parts whose concatenation is the
// encoding: raw bytes and strings come back as a one-byte header and the
// value's own memory, uncopied (callers copy the parts once, into the
// object store). The parts must not be modified.
func EncodeParts(v any) ([][]byte, []Ref, error) {
	switch x := v.(type) {
	case []byte:
		return [][]byte{rawHeader, x}, nil, nil
	case string:
		return [][]byte{rawHeader, unsafe.Slice(unsafe.StringData(x), len(x))}, nil, nil
	}
	data, refs, err := Encode(v)
	return [][]byte{data}, refs, err
}

// RawPayload returns the bytes of an encoded []byte or string value
// (aliasing data), or false for other encodings.
func RawPayload(data []byte) ([]byte, bool) {
	if len(data) == 0 || data[0] != tagRaw {
		return nil, false
	}
	return data[1:], true
}

// WriteRawHeader prepares dst, of 1+n bytes, to hold an n-byte raw value
// written at dst[1:]; it returns that payload slice.
func WriteRawHeader(dst []byte) []byte {
	dst[0] = tagRaw
	return dst[1:]
}

// Encode encodes v and returns the refs it contains.
func Encode(v any) ([]byte, []Ref, error) {
	switch x := v.(type) {
	case []byte:
		out := make([]byte, 1+len(x))
		out[0] = tagRaw
		copy(out[1:], x)
		return out, nil, nil
	case string:
		out := make([]byte, 1+len(x))
		out[0] = tagRaw
		copy(out[1:], x)
		return out, nil, nil
	case encoding.BinaryMarshaler:
		if _, isRef := v.(msgpack.CustomEncoder); !isRef {
			b, err := x.MarshalBinary()
			if err != nil {
				return nil, nil, fmt.Errorf("codec: MarshalBinary: %w", err)
			}
			return append([]byte{tagBinary}, b...), nil, nil
		}
	}
	var buf bytes.Buffer
	buf.WriteByte(tagMsgpack)
	enc := encPool.Get().(*msgpack.Encoder)
	enc.Reset(&buf)
	var refs []Ref
	collectors.Store(enc, &refs)
	err := enc.Encode(v)
	collectors.Delete(enc)
	enc.Reset(nil)
	encPool.Put(enc)
	if err != nil {
		return nil, nil, fmt.Errorf("codec: encode %T: %w", v, err)
	}
	return buf.Bytes(), refs, nil
}

// extOffsetsPool holds the extension offsets checkMsgpack collects, so a
// value holding many refs is not a fresh slice per Decode.
var extOffsetsPool = sync.Pool{New: func() any { return new([]int) }}

// Decode decodes data into ptr, which must be a non-nil pointer. Msgpack
// input is checked against the limits in limits.go before it is decoded
// (a bad length, count or nesting is ErrMalformed or ErrTooDeep), and a
// panic while decoding (in the decoder, or in a type's own DecodeMsgpack
// or UnmarshalBinary) is returned as an error wrapping ErrMalformed:
// input from another process must not crash this one.
func Decode(data []byte, ptr any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: decode into %T: %v", ErrMalformed, ptr, p)
		}
	}()
	if len(data) == 0 {
		return errors.New("codec: empty value")
	}
	switch data[0] {
	case tagRaw:
		switch p := ptr.(type) {
		case *[]byte:
			*p = append([]byte(nil), data[1:]...)
			return nil
		case *string:
			*p = string(data[1:])
			return nil
		case *any:
			*p = append([]byte(nil), data[1:]...)
			return nil
		}
		rv := reflect.ValueOf(ptr).Elem()
		switch rv.Type().Kind() {
		case reflect.Slice:
			if rv.Type().ConvertibleTo(bytesType) {
				rv.Set(reflect.ValueOf(append([]byte(nil), data[1:]...)).Convert(rv.Type()))
				return nil
			}
		case reflect.String:
			rv.Set(reflect.ValueOf(string(data[1:])).Convert(rv.Type()))
			return nil
		}
		return fmt.Errorf("codec: cannot decode raw bytes into %T", ptr)
	case tagBinary:
		u, ok := ptr.(encoding.BinaryUnmarshaler)
		if !ok {
			return fmt.Errorf("codec: value was encoded with MarshalBinary but %T has no UnmarshalBinary", ptr)
		}
		return u.UnmarshalBinary(data[1:])
	case tagMsgpack:
		// The extensions' offsets go in a pooled slice, returned without a
		// defer (a panic, recovered above, leaves it to the GC).
		offsets := extOffsetsPool.Get().(*[]int)
		exts, err := checkMsgpack(data[1:], (*offsets)[:0])
		switch {
		case err != nil:
		case len(exts) == 0:
			err = msgpack.Unmarshal(data[1:], ptr)
		default:
			dec := msgpack.GetDecoder()
			dec.Reset(&guardReader{data: data[1:], guard: exts})
			dec.UsePreallocateValues(true) // as msgpack.Unmarshal does
			err = dec.Decode(ptr)
			msgpack.PutDecoder(dec)
		}
		if exts != nil { // nil after an error: keep the pooled array
			*offsets = exts[:0]
		}
		extOffsetsPool.Put(offsets)
		if err != nil {
			return fmt.Errorf("codec: decode into %T: %w", ptr, err)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown format tag %d", ErrMalformed, data[0])
}

// Collect records r as a reference held by the value being encoded on
// enc, without writing anything: types that carry a counted reference in
// a form of their own (actor handles) call it from EncodeMsgpack, so the
// owner's reference count follows the value.
func Collect(enc *msgpack.Encoder, r Ref) {
	if c, ok := collectors.Load(enc); ok {
		p := c.(*[]Ref)
		*p = append(*p, r)
	}
}

// EncodeRef writes r as a ref extension on enc and records it in the
// encoding in progress. Object ref types call it from EncodeMsgpack. Ids
// longer than 127 bytes, or a ref longer than MaxRefBytes, are an error.
func EncodeRef(enc *msgpack.Encoder, r Ref) error {
	if len(r.ID) > 127 || len(r.OwnerID) > 127 || 2+len(r.ID)+len(r.OwnerID)+binary.MaxVarintLen64+len(r.OwnerAddress) > MaxRefBytes {
		return fmt.Errorf("codec: object ref too large (ids of %d and %d bytes, owner address of %d)", len(r.ID), len(r.OwnerID), len(r.OwnerAddress))
	}
	Collect(enc, r)
	b := make([]byte, 0, 4+len(r.ID)+len(r.OwnerID)+len(r.OwnerAddress))
	b = append(b, byte(len(r.ID)))
	b = append(b, r.ID...)
	b = append(b, byte(len(r.OwnerID)))
	b = append(b, r.OwnerID...)
	b = binary.AppendUvarint(b, uint64(len(r.OwnerAddress)))
	b = append(b, r.OwnerAddress...)
	if err := enc.EncodeExtHeader(RefExtID, len(b)); err != nil {
		return err
	}
	_, err := enc.Writer().Write(b)
	return err
}

// DecodeRef reads a ref extension written by EncodeRef. A nil value decodes
// to a zero Ref. An extension longer than MaxRefBytes is refused before
// anything is read or allocated.
func DecodeRef(dec *msgpack.Decoder) (Ref, error) {
	var r Ref
	code, err := dec.PeekCode()
	if err != nil {
		return r, err
	}
	if code == 0xc0 { // msgpack nil
		return r, dec.DecodeNil()
	}
	id, n, err := dec.DecodeExtHeader()
	if err != nil {
		return r, fmt.Errorf("codec: object ref: %w", err)
	}
	if id != RefExtID {
		return r, fmt.Errorf("%w: object ref: extension %d is not a ref", ErrMalformed, id)
	}
	if n < 0 || n > MaxRefBytes {
		return r, fmt.Errorf("%w: object ref of %d bytes exceeds the %d-byte limit", ErrMalformed, n, MaxRefBytes)
	}
	b := make([]byte, n)
	if err := dec.ReadFull(b); err != nil {
		return r, fmt.Errorf("codec: object ref: %w", err)
	}
	return parseRef(b)
}
