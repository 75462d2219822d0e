package gcs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// sendRecorder is a GetBinary stream that keeps what it is sent.
type sendRecorder struct {
	pb.ControlStore_GetBinaryServer
	ctx  context.Context
	data []byte
}

func (s *sendRecorder) Send(c *pb.BinaryChunk) error {
	s.data = append(s.data, c.GetData()...)
	return nil
}
func (s *sendRecorder) Context() context.Context { return s.ctx }

func TestPackagesAndKVDelete(t *testing.T) {
	s := New(DefaultConfig(), nil)
	defer s.Close()
	ctx := context.Background()
	data := make([]byte, 3<<20+5) // several chunks
	for i := range data {
		data[i] = byte(i * 7)
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if err := s.PutPackage(ctx, digest, append([]byte{}, data[:10]...)); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Fatalf("wrong content: %v", err)
	}
	if s.HasPackage(digest) {
		t.Fatal("stored a mismatched package")
	}
	if err := s.PutPackage(ctx, digest, data); err != nil {
		t.Fatal(err)
	}
	if !s.HasPackage(digest) {
		t.Fatal("package not stored")
	}
	rec := &sendRecorder{ctx: ctx}
	if err := s.GetBinary(&pb.GetBinaryRequest{Hash: digest}, rec); err != nil || string(rec.data) != string(data) {
		t.Fatalf("GetBinary: %d bytes, %v", len(rec.data), err)
	}

	kv := s.KV("raygo/test")
	other := s.KV("raygo/other")
	_ = kv.Put(ctx, "a", []byte("1"))
	_ = kv.Put(ctx, "b", []byte("2"))
	_ = other.Put(ctx, "a", []byte("x"))
	keys := kv.Keys()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"a", "b"}) {
		t.Fatalf("keys %v", keys)
	}
	if err := kv.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "never"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := kv.Get(ctx, "a"); ok {
		t.Fatal("deleted key still there")
	}
	if v, ok, _ := other.Get(ctx, "a"); !ok || string(v) != "x" {
		t.Fatal("delete reached another namespace")
	}
}
