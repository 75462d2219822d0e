package session

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// useTempRoot points Root at a fresh directory for the test.
func useTempRoot(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "sessions") // made private by New
	t.Setenv("RAYGO_TMPDIR", root)
	return root
}

func newDir(t *testing.T) Dir {
	t.Helper()
	d, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRootFollowsEnv(t *testing.T) {
	root := useTempRoot(t)
	if Root() != root {
		t.Fatalf("Root() = %q, want %q", Root(), root)
	}
	t.Setenv("RAYGO_TMPDIR", "")
	if want := filepath.Join(os.TempDir(), "raygo-"+strconv.Itoa(os.Getuid())); Root() != want {
		t.Fatalf("default Root() = %q, want %q", Root(), want)
	}
}

func TestNewCreatesPrivateDir(t *testing.T) {
	root := useTempRoot(t)
	d := newDir(t)
	if filepath.Dir(string(d)) != root || !strings.HasPrefix(filepath.Base(string(d)), "session_") {
		t.Fatalf("New() = %q, want session_* under %q", d, root)
	}
	fi, err := os.Stat(string(d))
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("session dir: %v, %v", fi, err)
	}
	if got := d.Path("logs", "w.err"); got != filepath.Join(string(d), "logs", "w.err") {
		t.Fatalf("Path = %q", got)
	}
}

func TestWriteReadFile(t *testing.T) {
	useTempRoot(t)
	d := newDir(t)
	if err := d.WriteFile("token", "  secret\n"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d.Path("token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v, %v; want 0600", fi, err)
	}
	got, err := d.ReadFile("token")
	if err != nil || got != "secret" {
		t.Fatalf("ReadFile = %q, %v; want trimmed %q", got, err, "secret")
	}
	if _, err := d.ReadFile("missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadFile(missing) err = %v", err)
	}
}

func TestLatest(t *testing.T) {
	useTempRoot(t)
	if _, err := Latest(); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("Latest with nothing started: err = %v, want ErrNoCluster", err)
	}

	a, b := newDir(t), newDir(t)
	for _, d := range []Dir{a, b} {
		if err := d.MarkLatest(); err != nil {
			t.Fatal(err)
		}
		if got, err := Latest(); err != nil || got != d {
			t.Fatalf("Latest = %q, %v; want %q", got, err, d)
		}
	}

	// Removing a session the link does not point at keeps the link.
	if err := a.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(string(a)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left %q behind: %v", a, err)
	}
	if got, err := Latest(); err != nil || got != b {
		t.Fatalf("after removing another session Latest = %q, %v", got, err)
	}

	if err := b.WriteFile("address", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(string(b)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left %q behind: %v", b, err)
	}
	if _, err := os.Lstat(LatestLink()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Remove left the latest link: %v", err)
	}
	if _, err := Latest(); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("Latest after Remove: err = %v, want ErrNoCluster", err)
	}
	if err := Dir("").Remove(); err != nil {
		t.Fatalf("Remove of the zero Dir: %v", err)
	}
}

func TestLatestWithDanglingLink(t *testing.T) {
	useTempRoot(t)
	d := newDir(t)
	if err := d.MarkLatest(); err != nil {
		t.Fatal(err)
	}
	// The session vanished without Remove (a crashed head, a tmp cleaner).
	if err := os.RemoveAll(string(d)); err != nil {
		t.Fatal(err)
	}
	if _, err := Latest(); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("Latest with a dangling link: err = %v, want ErrNoCluster", err)
	}
}

func TestNewToken(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	seen := map[string]bool{}
	for range 100 {
		tok := NewToken()
		if !hex64.MatchString(tok) {
			t.Fatalf("NewToken() = %q, want 64 hex digits", tok)
		}
		if seen[tok] {
			t.Fatalf("NewToken repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestCleanStaleRemovesOnlyDeadEmbeddedSessions(t *testing.T) {
	useTempRoot(t)
	mine, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := mine.MarkEmbedded(); err != nil {
		t.Fatal(err)
	}
	dead, _ := New()
	if err := dead.WriteFile("embedded_pid", "999999999"); err != nil { // no such process
		t.Fatal(err)
	}
	cli, _ := New() // a `raygo start` session: no mark
	if n := CleanStale(); n != 1 {
		t.Fatalf("CleanStale removed %d sessions, want 1", n)
	}
	for d, want := range map[Dir]bool{mine: true, dead: false, cli: true} {
		if _, err := os.Stat(string(d)); (err == nil) != want {
			t.Fatalf("%s exists=%v, want %v", d, err == nil, want)
		}
	}
}
