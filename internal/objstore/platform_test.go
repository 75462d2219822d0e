package objstore

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/localsock"
)

// shortTempDir is a private temporary directory with a short path, for
// socket files (sun_path holds 104 bytes on darwin; t.TempDir's paths
// carry the test's name).
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rgo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestFileBackedRegion runs the store as on darwin: its socket a file,
// its region an unlinked file rather than a memfd. Helper processes
// (killed writers and readers) inherit the setting.
func TestFileBackedRegion(t *testing.T) {
	if runtime.GOOS != "darwin" && runtime.GOOS != "linux" {
		t.Skip("no shared-memory store here")
	}
	t.Setenv(localsock.EnvMode, string(localsock.Files))
	t.Setenv(EnvRegion, "file")
	t.Run("kind", func(t *testing.T) {
		s := newTestStore(t, Config{Capacity: 1 << 20})
		if s.RegionKind() != "file" {
			t.Fatalf("region kind %q with %s=file", s.RegionKind(), EnvRegion)
		}
		if !localsock.IsFile(s.cfg.SocketName) {
			t.Fatalf("socket %q is not a file", s.cfg.SocketName)
		}
	})
	t.Run("zero-copy", TestPutGetZeroCopy)
	t.Run("released-faults", TestReleasedBufferFaults)
	t.Run("spill", TestSpillAndRestore)
	t.Run("larger-than-store", TestObjectLargerThanStore)
	t.Run("concurrent-readers", TestConcurrentReaders)
	t.Run("writer-killed", TestWriterKilledMidCreate)
	t.Run("reader-killed", TestReaderKilledWhileMapping)
}

// TestRegionSizeSealed: on Linux a client receives the memfd read-write
// but cannot resize it (F_SEAL_GROW, F_SEAL_SHRINK), so no process can
// make the others fault on lost pages. A file-backed region (darwin) has
// no seals; see region.
func TestRegionSizeSealed(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 1 << 20})
	if s.RegionKind() != "memfd" {
		t.Skipf("a %s region has no seals", s.RegionKind())
	}
	c := dial(t, s)
	for _, size := range []int64{0, 2 << 20} {
		if err := ftruncate(c.fd, size); err == nil {
			t.Fatalf("a client resized the region to %d bytes", size)
		}
	}
	if err := c.Put(ids.New(), [][]byte{make([]byte, 512<<10)}, Info{}); err != nil {
		t.Fatalf("the store after a client tried to resize it: %v", err)
	}
}

func TestRegionSetting(t *testing.T) {
	t.Setenv(EnvRegion, "tmpfs")
	if _, err := New(Config{Capacity: 1 << 20}); err == nil || !strings.Contains(err.Error(), EnvRegion) {
		t.Fatalf("%s=tmpfs: %v, want an error naming the variable", EnvRegion, err)
	}
	t.Setenv(EnvRegion, "memfd")
	s, err := New(Config{Capacity: 1 << 20})
	switch runtime.GOOS {
	case "linux":
		if err != nil || s.RegionKind() != "memfd" {
			t.Fatalf("memfd on linux: %v", err)
		}
		s.Close()
	default:
		if err == nil {
			s.Close()
			t.Fatalf("%s=memfd accepted on %s", EnvRegion, runtime.GOOS)
		}
	}
}

// TestNoStoreSaysWhy: where local sockets are off (as on windows) the
// store's socket cannot be named, and a client learns why.
func TestNoStoreSaysWhy(t *testing.T) {
	t.Setenv(localsock.EnvMode, string(localsock.Off))
	_, err := SocketName("127.0.0.1:5")
	if !errors.Is(err, localsock.ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("SocketName with local sockets off: %v", err)
	}
	if _, err := Dial("/nonexistent/store", testToken, "test"); !errors.Is(err, localsock.ErrUnsupported) {
		t.Fatalf("Dial with local sockets off: %v", err)
	}
}
