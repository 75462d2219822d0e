package jobbinary

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/raygo/raygo/internal/pb"
)

func TestHash(t *testing.T) {
	data := bytes.Repeat([]byte("binary"), 100_000)
	sum := sha256.Sum256(data)
	if got, err := Hash(bytes.NewReader(data)); err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("Hash = %s, %v", got, err)
	}
}

// TestSend: chunks in order, none over ChunkBytes, the content whole; an
// empty binary is one empty chunk; a short file and a failed send are
// errors, the send error as it was.
func TestSend(t *testing.T) {
	data := bytes.Repeat([]byte{7, 1, 3}, ChunkBytes) // three chunks
	var got []byte
	err := Send(bytes.NewReader(data), "h", int64(len(data)), func(c *pb.BinaryChunk) error {
		if c.GetOffset() != int64(len(got)) || len(c.GetData()) > ChunkBytes || c.GetTotal() != int64(len(data)) || c.GetHash() != "h" {
			t.Fatalf("chunk at %d of %d bytes, total %d, after %d bytes", c.GetOffset(), len(c.GetData()), c.GetTotal(), len(got))
		}
		got = append(got, c.GetData()...)
		return nil
	})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("sent %d of %d bytes: %v", len(got), len(data), err)
	}

	n := 0
	if err := Send(bytes.NewReader(nil), "e", 0, func(c *pb.BinaryChunk) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("empty binary: %d chunks, %v", n, err)
	}
	if err := Send(bytes.NewReader(data[:10]), "h", 100, func(*pb.BinaryChunk) error { return nil }); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short read: %v", err)
	}
	refused := errors.New("refused")
	if err := Send(bytes.NewReader(data), "h", int64(len(data)), func(*pb.BinaryChunk) error { return refused }); err != refused {
		t.Fatalf("failed send: %v, want it as it was", err)
	}
}
