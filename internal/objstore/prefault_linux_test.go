package objstore

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the region's pages in memory.
func resident(t *testing.T, mem []byte) int {
	t.Helper()
	vec := make([]byte, (len(mem)+PageSize-1)/PageSize)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Skipf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestPrefaultIsBounded: prefaulting populates only the region's first
// PrefaultLimit bytes, not the whole store (a 30%-of-memory store used to
// commit all of its memory at start).
func TestPrefaultIsBounded(t *testing.T) {
	const size, limit = 64 << 20, 8 << 20
	s, err := New(Config{Capacity: size, Prefault: true, PrefaultLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.reg.faultDone
	got := resident(t, s.reg.mem) * PageSize
	if got < limit || got > limit+(4<<20) {
		t.Fatalf("%d MiB of a %d MiB store resident after prefault, want the %d MiB limit", got>>20, size>>20, limit>>20)
	}
}
