package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// allocated returns the bytes the process allocated while f ran.
func allocated(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// Decoding may allocate at most allocFactor times its input plus
// allocSlack: the bound the fuzz targets check. (A one-entry map decoded
// from 3 bytes costs a few hundred bytes, so the factor is generous; what
// matters is that it is fixed.)
const (
	allocFactor = 512
	allocSlack  = 256 << 10
)

func checkAllocBound(t *testing.T, what string, in int, got uint64) {
	t.Helper()
	if limit := uint64(allocFactor*in + allocSlack); got > limit {
		t.Fatalf("%s: decoding %d bytes allocated %d bytes, over the %d-byte bound", what, in, got, limit)
	}
}

// allocatedAtMost measures f's allocation like allocated, again up to
// twice more when it is over limit, and returns the least: the counter is
// the whole process's, and another goroutine (the fuzzing engine's) may
// allocate meanwhile; f is deterministic, so the least is f's own.
func allocatedAtMost(f func(), limit uint64) uint64 {
	n := allocated(f)
	for i := 0; i < 2 && n > limit; i++ {
		n = min(n, allocated(f))
	}
	return n
}

// TestDecodeBombs: inputs that claim far more than they hold, or nest
// without end, are errors, found before the decoder allocates for them.
func TestDecodeBombs(t *testing.T) {
	nested := make([]byte, 1+2_000_000)
	nested[0] = tagMsgpack
	for i := 1; i < len(nested); i++ {
		nested[i] = 0x91 // an array of one element, two million deep
	}
	bigStr := append([]byte{tagMsgpack, 0xdb}, binary.BigEndian.AppendUint32(nil, 1<<31)...)
	cases := []struct {
		name string
		data []byte
		ptr  func() any
		want error
	}{
		{"array claiming 2^32-1 elements into any", []byte{tagMsgpack, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}, func() any { return new(any) }, ErrMalformed},
		{"map claiming 2^32-1 pairs into any", []byte{tagMsgpack, 0xdf, 0xff, 0xff, 0xff, 0xff}, func() any { return new(any) }, ErrMalformed},
		{"array claiming 2^32-1 elements into []int", []byte{tagMsgpack, 0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2}, func() any { return new([]int) }, ErrMalformed},
		{"string claiming 2 GiB", bigStr, func() any { return new(string) }, ErrMalformed},
		{"two million nested arrays into any", nested, func() any { return new(any) }, ErrTooDeep},
		{"struct with a slice claiming 3e9 elements (fuzz find)", []byte("\x00\x92\xa40F\x000ݳ\xa5\xa2[\x19\xa1"), func() any { return new(withRefs) }, ErrMalformed},
		{"unknown extension type", []byte{tagMsgpack, 0xd4, 5, 0}, func() any { return new(any) }, ErrMalformed},
		{"timestamp read as a map (fuzz find)", []byte("\x00\xd7\xff\xdf0000000"), func() any { return new(map[string][]int) }, ErrMalformed},
		{"timestamp read as a map of slices", []byte{tagMsgpack, 0xd7, 0xff, 0x81, 0xa0, 0xdd, 0xff, 0xff, 0xff, 0xff, 0}, func() any { return new(map[string][]int) }, ErrMalformed},
		{"ref extension hiding a map header", []byte{tagMsgpack, 0xc7, 6, byte(RefExtID), 0xdf, 0xff, 0xff, 0xff, 0xff, 0}, func() any { return new(map[string]int) }, ErrMalformed},
		{"truncated array", []byte{tagMsgpack, 0x93, 1, 2}, func() any { return new([]int) }, ErrMalformed},
		{"reserved code", []byte{tagMsgpack, 0xc1}, func() any { return new(any) }, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { err = Decode(tc.data, tc.ptr()) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
			checkAllocBound(t, tc.name, len(tc.data), n)
		})
	}
}

// TestDecodeWithinLimits: what Encode writes passes the checks, up to
// MaxDepth levels of nesting.
func TestDecodeWithinLimits(t *testing.T) {
	var deep any = 1
	for range MaxDepth - 1 {
		deep = []any{deep}
	}
	type inner struct {
		When time.Time
		M    map[string][]float64
	}
	vals := []any{
		deep,
		map[string]any{"a": []any{1, "x", nil, true, 2.5}, "b": map[string]any{"c": []byte{1, 2}}},
		inner{When: time.Unix(1_700_000_000, 935_000_000), M: map[string][]float64{"k": {1, 2, 3}}},
		inner{When: time.Unix(1<<40, 1)},
		make([]int, 100_000),
		bytes.Repeat([]byte{7}, 70_000),
	}
	for i, v := range vals {
		b, _, err := Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := checkMsgpack(b[1:], nil); err != nil && b[0] == tagMsgpack {
			t.Fatalf("value %d: %v", i, err)
		}
	}
	var back inner
	b, _, _ := Encode(vals[2])
	if err := Decode(b, &back); err != nil || !back.When.Equal(vals[2].(inner).When) || len(back.M["k"]) != 3 {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	var tooDeep any = deep
	tooDeep = []any{[]any{tooDeep}}
	b, _, _ = Encode(tooDeep)
	var out any
	if err := Decode(b, &out); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("MaxDepth+1 levels: %v", err)
	}
}

// TestDecodeRefBomb: a 14-byte extension claiming 4 GiB is refused before
// DecodeRef allocates.
func TestDecodeRefBomb(t *testing.T) {
	in := []byte{0xc9, 0xff, 0xff, 0xff, 0xf0, byte(RefExtID), 16, 1, 2, 3, 4, 5, 6, 7}
	var err error
	n := allocated(func() {
		_, err = DecodeRef(msgpack.NewDecoder(bytes.NewReader(in)))
	})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("DecodeRef = %v, want ErrMalformed", err)
	}
	checkAllocBound(t, "ref", len(in), n)
}

func TestRefRoundTripAndLimits(t *testing.T) {
	r := Ref{ID: bytes.Repeat([]byte{1}, 16), OwnerID: bytes.Repeat([]byte{2}, 16), OwnerAddress: "127.0.0.1:4242"}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := EncodeRef(enc, r); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRef(msgpack.NewDecoder(bytes.NewReader(buf.Bytes())))
	if err != nil || !bytes.Equal(got.ID, r.ID) || !bytes.Equal(got.OwnerID, r.OwnerID) || got.OwnerAddress != r.OwnerAddress {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if err := EncodeRef(enc, Ref{ID: make([]byte, 128)}); err == nil {
		t.Fatal("a 128-byte id encoded")
	}
	if err := EncodeRef(enc, Ref{OwnerAddress: string(make([]byte, MaxRefBytes))}); err == nil {
		t.Fatal("an oversized owner address encoded")
	}
}

// FuzzDecode: Decode never panics (checkMsgpack is called bare too, so a
// bug in it is not hidden by Decode's recover) and never allocates more
// than allocFactor times its input.
func FuzzDecode(f *testing.F) {
	b, _, _ := Encode(withRefs{Name: "a", Refs: []*refHolder{{Ref{ID: []byte{1}}}}})
	f.Add(b)
	b, _, _ = Encode(map[string]any{"a": []any{1, "x", nil, 2.5, map[string]any{}}, "t": time.Unix(5, 6)})
	f.Add(b)
	f.Add([]byte{tagRaw, 1, 2})
	f.Add([]byte{tagMsgpack, 0xdd, 0, 0, 0, 3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0] == tagMsgpack {
			_, _ = checkMsgpack(data[1:], nil)
		}
		n := allocatedAtMost(func() {
			var s withRefs
			var a any
			var m map[string][]int
			_ = Decode(data, &s)
			_ = Decode(data, &a)
			_ = Decode(data, &m)
		}, uint64(allocFactor*3*len(data)+allocSlack))
		checkAllocBound(t, "Decode", 3*len(data), n)
	})
}

// FuzzDecodeRef: DecodeRef never panics and never allocates more than
// allocFactor times its input.
func FuzzDecodeRef(f *testing.F) {
	var buf bytes.Buffer
	_ = EncodeRef(msgpack.NewEncoder(&buf), Ref{ID: []byte{1, 2}, OwnerID: []byte{3}, OwnerAddress: "127.0.0.1:1"})
	f.Add(buf.Bytes())
	f.Add([]byte{0xc0})
	f.Add([]byte{0xc9, 0xff, 0xff, 0xff, 0xf0, byte(RefExtID), 16})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := allocatedAtMost(func() {
			_, _ = DecodeRef(msgpack.NewDecoder(bytes.NewReader(data)))
		}, uint64(allocFactor*len(data)+allocSlack))
		checkAllocBound(t, "DecodeRef", len(data), n)
	})
}
