//go:build unix

package objmgr

import (
	"bytes"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/raygo/raygo/internal/ids"
)

// TestTransferFromRegion: objects that lie in a region file are sent
// from the file (sendfile on Linux) and arrive whole; the holder's read
// (the object's pin) lasts until the puller has the bytes, so memory
// reused the moment the read ends does not reach the puller. An object
// outside the region is written as before.
func TestTransferFromRegion(t *testing.T) {
	const size = 24 << 20 // beyond the sockets' buffers: sendfile waits on the puller
	f, err := os.CreateTemp(t.TempDir(), "region")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	want := pattern(size / 2)
	copy(mem[size/4:], want)
	inRegion, outside := ids.New(), ids.New()
	other := pattern(1 << 20)
	reused := bytes.Repeat([]byte{0xEE}, len(want))
	var reads atomic.Int64
	read := func(id ids.ID, fn func([]byte) error) (bool, error) {
		switch id {
		case inRegion:
			b := mem[size/4 : size/4+len(want)]
			err := fn(b)
			reads.Add(1)
			// Unpinned: the store may reuse the memory at once.
			copy(b, reused)
			copy(b, want) // for the next chunk's read
			return true, err
		case outside:
			return true, fn(other)
		}
		return false, nil
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Serve(lis, token, read, nil, &Region{FD: int(f.Fd()), Mem: mem}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := clientFor(t, s, token)
	for range 3 {
		got := make([]byte, len(want))
		for _, ch := range chunks(int64(len(want)), 8<<20) {
			if err := c.ReadChunk(t.Context(), "node", inRegion, ch.off, got[ch.off:ch.off+ch.n]); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && got[i] == want[i] {
				i++
			}
			t.Fatalf("the object arrived changed from byte %d of %d (%#x): memory reused before the puller read it", i, len(want), got[i])
		}
	}
	got := make([]byte, len(other))
	if err := c.ReadChunk(t.Context(), "node", outside, 0, got); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("an object outside the region: %v, equal %v", err, bytes.Equal(got, other))
	}
	if canSendFile && s.SentFromFile() != 6 {
		t.Errorf("%d chunks sent from the file, want the region object's 6", s.SentFromFile())
	}
	if reads.Load() != 6 {
		t.Fatalf("%d reads of the region object, want 6 (2 chunks, 3 times)", reads.Load())
	}
}
