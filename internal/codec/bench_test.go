package codec

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// benchRef is an object ref type as the ray package writes one.
type benchRef struct{ r Ref }

func (b *benchRef) EncodeMsgpack(enc *msgpack.Encoder) error { return EncodeRef(enc, b.r) }
func (b *benchRef) DecodeMsgpack(dec *msgpack.Decoder) error {
	r, err := DecodeRef(dec)
	b.r = r
	return err
}

// BenchmarkDecode10kRefs decodes a value holding 10,000 refs, as a driver
// does on each Get in single_client_get_object_containing_10k_refs: the
// limit check, the guarded reader and each ref's parse.
func BenchmarkDecode10kRefs(b *testing.B) {
	in := make([]benchRef, 10000)
	for i := range in {
		in[i].r = Ref{ID: make([]byte, 16), OwnerID: make([]byte, 16), OwnerAddress: "/tmp/raygo-0/session/worker-abcdef.sock"}
		in[i].r.ID[0] = byte(i)
	}
	data, _, err := Encode(in)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var out []benchRef
		if err := Decode(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}
