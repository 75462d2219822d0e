package localsock

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestNames(t *testing.T) {
	dir := "/tmp/raygo/sock"
	long := strings.Repeat("a", 200)
	for _, c := range []struct {
		mode         Mode
		addr, suffix string
		want         string // "" with wantErr
		wantErr      bool
		hashed       bool
	}{
		{mode: Abstract, addr: "127.0.0.1:41234", want: "@raygo/127.0.0.1:41234"},
		{mode: Abstract, addr: "127.0.0.1:41234", suffix: Tasks, want: "@raygo/127.0.0.1:41234/tasks"},
		{mode: Abstract, addr: "127.0.0.1:41234", suffix: Store, want: "@raygo/127.0.0.1:41234/store"},
		{mode: Files, addr: "127.0.0.1:41234", want: dir + "/127.0.0.1:41234"},
		{mode: Files, addr: "127.0.0.1:41234", suffix: Tasks, want: dir + "/127.0.0.1:41234.tasks"},
		{mode: Files, addr: "[::1]:41234", suffix: Store, want: dir + "/[::1]:41234.store"},
		{mode: Files, addr: long + ":1", suffix: Store, hashed: true},
		{mode: Files, addr: "a/b:1", hashed: true},
		{mode: Files, addr: "", wantErr: true},
		{mode: Files, addr: "x\x00y:1", wantErr: true},
		{mode: Off, addr: "127.0.0.1:1", wantErr: true},
	} {
		got, err := nameIn(c.mode, dir, c.addr, c.suffix)
		switch {
		case c.wantErr:
			if err == nil {
				t.Errorf("%s %q %q: got %q, want an error", c.mode, c.addr, c.suffix, got)
			}
		case err != nil:
			t.Errorf("%s %q %q: %v", c.mode, c.addr, c.suffix, err)
		case c.hashed:
			if !strings.HasPrefix(got, dir+"/h-") || len(got) > maxPath {
				t.Errorf("%s %q: got %q, want a short hashed name", c.mode, c.addr, got)
			}
			again, _ := nameIn(c.mode, dir, c.addr, c.suffix)
			other, _ := nameIn(c.mode, dir, c.addr, "other")
			if again != got || other == got {
				t.Errorf("hashed names are not a function of address and suffix: %q %q %q", got, again, other)
			}
		case got != c.want:
			t.Errorf("%s %q %q: got %q, want %q", c.mode, c.addr, c.suffix, got, c.want)
		}
	}
	if _, err := nameIn(Off, dir, "127.0.0.1:1", ""); !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Off: %v, want ErrUnsupported", err)
	}
	if _, err := nameIn(Files, "/"+strings.Repeat("d", maxPath), "127.0.0.1:1", ""); err == nil || !strings.Contains(err.Error(), "RAYGO_TMPDIR") {
		t.Errorf("a directory too long for sun_path: %v, want an error that says what to do", err)
	}
}

func TestMode(t *testing.T) {
	t.Setenv(EnvMode, "")
	if m, err := CurrentMode(); err != nil || m != DefaultMode() {
		t.Fatalf("unset: %v, %v; want %v", m, err, DefaultMode())
	}
	t.Setenv(EnvMode, "off")
	if m, err := CurrentMode(); err != nil || m != Off {
		t.Fatalf("off: %v, %v", m, err)
	}
	if _, err := Name("127.0.0.1:1", GRPC); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), EnvMode+"=off") {
		t.Fatalf("Name with %s=off: %v", EnvMode, err)
	}
	t.Setenv(EnvMode, "pipes")
	if _, err := CurrentMode(); err == nil || !strings.Contains(err.Error(), EnvMode) {
		t.Fatalf("a bad value: %v, want an error naming %s", err, EnvMode)
	}
	t.Setenv(EnvMode, "abstract")
	_, err := CurrentMode()
	if (runtime.GOOS == "linux") != (err == nil) {
		t.Fatalf("abstract on %s: %v", runtime.GOOS, err)
	}
}

// shortDir is a fresh private directory with a short path (t.TempDir's
// carry the test's name, and sun_path is short).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rgs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "sock")
}

func filesOnly(t *testing.T) {
	t.Helper()
	if !platformHas(Files) {
		t.Skipf("no socket files on %s", runtime.GOOS)
	}
	t.Setenv(EnvMode, string(Files))
}

func TestSocketFileLifecycle(t *testing.T) {
	filesOnly(t)
	dir := shortDir(t)
	name, err := nameIn(Files, dir, "127.0.0.1:5", Tasks)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: os.ModeDir | 0o700, name: os.ModeSocket | 0o600} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode() != want {
			t.Fatalf("%s: %v, %v; want mode %v", p, fi.Mode(), err, want)
		}
	}
	// A second listener on a live socket is refused, and the first still works.
	if l2, err := Listen(name); err == nil {
		l2.Close()
		t.Fatal("Listen took over a live socket")
	}
	c, err := Dial(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	l.Close()
	if _, err := os.Lstat(name); !os.IsNotExist(err) {
		t.Fatalf("socket file after Close: %v", err)
	}
	if _, err := Dial(t.Context(), name); err == nil {
		t.Fatal("dialed a closed socket")
	}
}

// leaveStale makes a socket file with no listener, as a killed process
// leaves one.
func leaveStale(t *testing.T, name string) {
	t.Helper()
	l, err := Listen(name)
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Lstat(name); err != nil {
		t.Fatal(err)
	}
}

func TestStaleSocketFiles(t *testing.T) {
	filesOnly(t)
	dir := shortDir(t)
	name := filepath.Join(dir, "stale")
	leaveStale(t, name)
	// Listen replaces a file nobody listens on.
	l, err := Listen(name)
	if err != nil {
		t.Fatalf("Listen over a stale file: %v", err)
	}
	defer l.Close()

	// CleanStale removes old dead files only: not live ones, not young
	// ones, not other files.
	dead, young := filepath.Join(dir, "dead"), filepath.Join(dir, "young")
	leaveStale(t, dead)
	leaveStale(t, young)
	other := filepath.Join(dir, "note")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * StaleAge)
	for _, p := range []string{name, dead, other} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if n := cleanStale(dir, StaleAge); n != 1 {
		t.Fatalf("cleanStale removed %d files, want 1", n)
	}
	for p, want := range map[string]bool{name: true, dead: false, young: true, other: true} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	var d net.Dialer
	c, err := d.DialContext(t.Context(), "unix", name)
	if err != nil {
		t.Fatalf("the live socket after cleaning: %v", err)
	}
	c.Close()
}

func TestPrivateDirectory(t *testing.T) {
	filesOnly(t)
	dir := shortDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("an open directory of ours was left %v", fi.Mode().Perm())
	}
	if os.Getuid() != 0 {
		return
	}
	// Root can hand the directory to another user: it is then refused.
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Skipf("chown: %v", err)
	}
	if l, err := Listen(filepath.Join(dir, "s")); err == nil {
		l.Close()
		t.Fatal("Listen used a directory another user owns")
	} else if !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("refusal does not say why: %v", err)
	}
}

// TestLongSessionRoot: a session root too long for socket paths moves the
// socket directory to a short one derived from it.
func TestLongSessionRoot(t *testing.T) {
	short := filepath.Join(os.TempDir(), "r")
	t.Setenv("RAYGO_TMPDIR", short)
	if got := Dir(); got != filepath.Join(short, "sock") {
		t.Fatalf("Dir() = %q under a short root", got)
	}
	long := filepath.Join(os.TempDir(), strings.Repeat("x", 90))
	t.Setenv("RAYGO_TMPDIR", long)
	d := Dir()
	if strings.HasPrefix(d, long) || len(d)+len("/h-")+2*hashBytes > maxPath {
		t.Fatalf("Dir() = %q under a %d-byte root", d, len(long))
	}
	t.Setenv("RAYGO_TMPDIR", long+"y")
	if other := Dir(); other == d {
		t.Fatalf("two session roots share the socket directory %q", d)
	}
	t.Setenv("RAYGO_TMPDIR", long)
	if again := Dir(); again != d {
		t.Fatalf("Dir() is not stable: %q then %q", d, again)
	}
}

func TestForget(t *testing.T) {
	filesOnly(t)
	t.Setenv("RAYGO_TMPDIR", filepath.Dir(shortDir(t)))
	dead, _ := Name("127.0.0.1:7", Tasks)
	deadRPC, _ := Name("127.0.0.1:7", GRPC)
	live, _ := Name("127.0.0.1:8", Tasks)
	leaveStale(t, dead)
	leaveStale(t, deadRPC)
	l, err := Listen(live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	Forget("127.0.0.1:7", GRPC, Tasks)
	Forget("127.0.0.1:8", Tasks)
	for p, want := range map[string]bool{dead: false, deadRPC: false, live: true} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", p, err == nil, want)
		}
	}
}

// forgetSince (a daemon's cleanup for a worker killed before it told its
// address) removes dead files made since the worker started: not older
// ones, not live ones.
func TestForgetSince(t *testing.T) {
	filesOnly(t)
	dir := shortDir(t)
	before, dead, live := filepath.Join(dir, "before"), filepath.Join(dir, "dead"), filepath.Join(dir, "live")
	leaveStale(t, before)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(before, old, old); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	leaveStale(t, dead)
	l, err := Listen(live)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := forgetSince(dir, started); n != 1 {
		t.Fatalf("forgetSince removed %d files, want 1", n)
	}
	for p, want := range map[string]bool{before: true, dead: false, live: true} {
		if _, err := os.Lstat(p); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
