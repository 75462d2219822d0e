package framed

import (
	"os"
	"testing"

	"github.com/raygo/raygo/internal/localsock"
)

// shortTempDir is a private temporary directory with a short path, for
// socket files (sun_path holds 104 bytes on darwin; t.TempDir's paths
// carry the test's name).
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rgf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestSocketFiles runs the protocol over socket files, as darwin does
// (RAYGO_LOCAL_SOCKETS=files), with the uid check from the platform's
// peer credentials.
func TestSocketFiles(t *testing.T) {
	if localsock.DefaultMode() != localsock.Files {
		t.Setenv(localsock.EnvMode, string(localsock.Files))
	}
	if m, err := localsock.CurrentMode(); err != nil || m != localsock.Files {
		t.Skipf("no socket files here: %v", err)
	}
	t.Run("round-trip", TestRoundTrip)
	t.Run("bad-token", TestBadTokenRefused)
	t.Run("descriptor", TestDescriptorPassing)
	t.Run("spin", TestSpinRead)
	t.Run("file-removed-on-close", func(t *testing.T) {
		l, name := listen(t)
		if fi, err := os.Stat(name); err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Fatalf("socket file %s: %v, %v", name, fi, err)
		}
		l.Close()
		if _, err := os.Stat(name); !os.IsNotExist(err) {
			t.Fatalf("socket file after Close: %v", err)
		}
	})
	t.Run("peer-pid", func(t *testing.T) {
		l, name := listen(t)
		done := serveOne(l, func(c *Conn, peer Peer, err error) error {
			if err != nil {
				return err
			}
			if peer.PID != os.Getpid() {
				t.Errorf("peer pid %d, want %d", peer.PID, os.Getpid())
			}
			return nil
		})
		c, err := Dial(t.Context(), name, "secret", "test", "me")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestPeerCredentials reads the kernel's word on a connected pair.
func TestPeerCredentials(t *testing.T) {
	if m, _ := localsock.CurrentMode(); m == localsock.Off {
		t.Skip("no local sockets here")
	}
	l, name := listen(t)
	got := make(chan peerCred, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(got)
			return
		}
		defer c.Close()
		raw, _ := c.nc.SyscallConn()
		var pc peerCred
		var perr error
		_ = raw.Control(func(fd uintptr) { pc, perr = peerCredentials(int(fd)) })
		if perr != nil {
			t.Error(perr)
		}
		got <- pc
	}()
	c, err := localsock.Dial(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, ok := <-got
	if !ok {
		t.Fatal("accept failed")
	}
	if int(pc.Uid) != os.Getuid() || int(pc.Pid) != os.Getpid() {
		t.Fatalf("peer credentials %+v, want uid %d pid %d", pc, os.Getuid(), os.Getpid())
	}
}
