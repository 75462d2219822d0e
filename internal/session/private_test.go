//go:build unix

package session

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// nobody is the uid the hostile roots belong to.
const nobody = 65534

// TestHostileRoots: a root that another user owns, that others can
// write, or that is a symbolic link is refused with ErrNotPrivate by
// everything that would use it, and nothing in it is read.
func TestHostileRoots(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	cases := map[string]func(root string){
		"owned by another user, world-writable": func(root string) {
			must(t, os.Chmod(root, 0o777))
			must(t, os.Chown(root, nobody, nobody))
		},
		"owned by another user, private to them": func(root string) { must(t, os.Chown(root, nobody, nobody)) },
		"ours but world-writable":                func(root string) { must(t, os.Chmod(root, 0o777)) },
		"ours but group-readable":                func(root string) { must(t, os.Chmod(root, 0o750)) },
		"a symbolic link to a private directory": func(root string) {
			real := root + ".real"
			must(t, os.Rename(root, real))
			must(t, os.Symlink(real, root))
		},
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			t.Setenv("RAYGO_TMPDIR", root)
			// A head's session, as another user would plant it.
			d := newDir(t)
			must(t, d.WriteFile("address", "127.0.0.1:4242"))
			must(t, d.WriteFile("token", "their-token"))
			must(t, d.MarkLatest())
			spoil(root)
			if _, err := New(); !errors.Is(err, ErrNotPrivate) {
				t.Errorf("New: %v, want ErrNotPrivate", err)
			}
			if _, err := Latest(); !errors.Is(err, ErrNotPrivate) {
				t.Errorf("Latest: %v, want ErrNotPrivate", err)
			}
			if _, err := ForAddress("127.0.0.1:4242"); !errors.Is(err, ErrNotPrivate) {
				t.Errorf("ForAddress: %v, want ErrNotPrivate", err)
			}
			if list, err := List(); !errors.Is(err, ErrNotPrivate) || len(list) != 0 {
				t.Errorf("List: %v, %v, want ErrNotPrivate", list, err)
			}
		})
	}
}

// TestHostileSession: in a private root, a session directory another user
// owns or others can enter is not used.
func TestHostileSession(t *testing.T) {
	useTempRoot(t)
	d := newDir(t)
	must(t, d.WriteFile("address", "127.0.0.1:4242"))
	must(t, d.MarkLatest())
	must(t, os.Chmod(string(d), 0o755))
	if _, err := Latest(); !errors.Is(err, ErrNotPrivate) {
		t.Fatalf("Latest of a 0755 session: %v, want ErrNotPrivate", err)
	}
	if _, err := ForAddress("127.0.0.1:4242"); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("ForAddress skips a 0755 session: %v, want ErrNoCluster", err)
	}
	// session_latest pointing out of the root is refused too.
	other := t.TempDir()
	must(t, os.Remove(LatestLink()))
	must(t, os.Symlink(other, LatestLink()))
	if _, err := Latest(); !errors.Is(err, ErrNotPrivate) {
		t.Fatalf("Latest pointing outside the root: %v, want ErrNotPrivate", err)
	}
}

// TestTokenByAddress: with two heads on the machine, each one's token is
// found by its address, not only the latest's.
func TestTokenByAddress(t *testing.T) {
	useTempRoot(t)
	first := newDir(t)
	must(t, first.WriteFile("address", "127.0.0.1:1111"))
	must(t, first.WriteFile("token", "first"))
	must(t, first.MarkLatest())
	second := newDir(t)
	must(t, second.WriteFile("address", "0.0.0.0:2222"))
	must(t, second.WriteFile("token", "second"))
	must(t, second.MarkLatest())
	for addr, want := range map[string]Dir{"127.0.0.1:1111": first, "localhost:1111": first, "127.0.0.1:2222": second} {
		got, err := ForAddress(addr)
		if err != nil || got != want {
			t.Errorf("ForAddress(%s) = %s, %v; want %s", addr, got, err, want)
		}
	}
	if _, err := ForAddress("127.0.0.1:3333"); !errors.Is(err, ErrNoCluster) {
		t.Errorf("ForAddress of no head: %v, want ErrNoCluster", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
