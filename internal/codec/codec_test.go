package codec

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

type refHolder struct{ r Ref }

func (h *refHolder) EncodeMsgpack(enc *msgpack.Encoder) error { return EncodeRef(enc, h.r) }
func (h *refHolder) DecodeMsgpack(dec *msgpack.Decoder) error {
	r, err := DecodeRef(dec)
	h.r = r
	return err
}

type withRefs struct {
	Name string
	Refs []*refHolder
}

func TestRoundTrip(t *testing.T) {
	for _, v := range []any{42, "hello", []byte{1, 2, 3}, []int{1, 2}, map[string]float64{"a": 1.5}} {
		b, refs, err := Encode(v)
		if err != nil || len(refs) != 0 {
			t.Fatalf("Encode(%v) = %v, %v", v, refs, err)
		}
		switch want := v.(type) {
		case int:
			var got int
			if err := Decode(b, &got); err != nil || got != want {
				t.Fatalf("got %v %v", got, err)
			}
		case string:
			var got string
			if err := Decode(b, &got); err != nil || got != want {
				t.Fatalf("got %v %v", got, err)
			}
		}
	}
}

func TestNestedRefsCollected(t *testing.T) {
	in := withRefs{Name: "x", Refs: []*refHolder{
		{Ref{ID: []byte{1, 2}, OwnerID: []byte{3}, OwnerAddress: "127.0.0.1:5"}},
		{Ref{ID: []byte{4}, OwnerID: []byte{5}, OwnerAddress: "127.0.0.1:6"}},
	}}
	b, refs, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[1].OwnerAddress != "127.0.0.1:6" {
		t.Fatalf("refs = %+v", refs)
	}
	var out withRefs
	if err := Decode(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Name != "x" || len(out.Refs) != 2 || string(out.Refs[0].r.ID) != "\x01\x02" || out.Refs[0].r.OwnerAddress != "127.0.0.1:5" {
		t.Fatalf("out = %+v", out)
	}
}

func TestWrongTypeIsAnError(t *testing.T) {
	b, _, _ := Encode("text")
	var n int
	if err := Decode(b, &n); err == nil {
		t.Fatal("decoding raw string into int succeeded")
	}
	b, _, _ = Encode(map[string]int{"a": 1})
	if err := Decode(b, &n); err == nil {
		t.Fatal("decoding map into int succeeded")
	}
	if err := Decode(nil, &n); err == nil {
		t.Fatal("decoding empty succeeded")
	}
}
