package objstore

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
)

func dialAs(t *testing.T, s *Store, worker ids.ID) *Client {
	t.Helper()
	c, err := DialAs(s.cfg.SocketName, testToken, Who{Name: "test", Job: ids.New(), Worker: worker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func spillFiles(t *testing.T, s *Store) int {
	t.Helper()
	files, err := os.ReadDir(s.SpillPath())
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// TestFreeOwners: every copy an owner had goes when it is gone, whoever
// wrote it: its own puts (in memory, spilled, in a file of their own), a
// task's return another process wrote for it, a secondary copy; an
// object a reader maps goes at its release, one being written at its
// seal. Another owner's objects stay, and later creates for the gone
// owner are refused.
func TestFreeOwners(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20, SpillDir: t.TempDir()})
	owner, other := ids.New(), ids.New()
	mine := dialAs(t, s, owner)
	theirs := dialAs(t, s, other)
	reader := dial(t, s)

	var owned []ids.ID
	put := func(c *Client, size int, info Info) ids.ID {
		t.Helper()
		id := ids.New()
		if err := c.Put(id, [][]byte{randomBytes(size, uint64(len(owned)))}, info); err != nil {
			t.Fatal(err)
		}
		return id
	}
	for range 4 { // 12 MiB in an 8 MiB store: some spill
		owned = append(owned, put(mine, 3<<20, Info{}))
	}
	owned = append(owned, put(mine, 10<<20, Info{}))                                   // larger than the store: a file
	owned = append(owned, put(theirs, 100<<10, Info{OwnerID: owner}))                  // a return written for the owner
	owned = append(owned, put(theirs, 100<<10, Info{OwnerID: owner, Secondary: true})) // a fetched copy
	kept := put(theirs, 100<<10, Info{})
	pinned := owned[len(owned)-1]
	view, err := reader.Get(pinned)
	if err != nil {
		t.Fatal(err)
	}
	writing := ids.New()
	w, err := theirs.Create(writing, 4096, Info{OwnerID: owner})
	if err != nil {
		t.Fatal(err)
	}
	if spillFiles(t, s) == 0 {
		t.Fatal("nothing spilled or in a file: the test does not exercise files")
	}

	if n := s.FreeOwners(owner); n != len(owned)+1 {
		t.Fatalf("FreeOwners freed %d objects, want %d", n, len(owned)+1)
	}
	for i, id := range owned {
		if s.Contains(id) {
			t.Fatalf("owned object %d still in the store", i)
		}
	}
	if !s.Contains(kept) {
		t.Fatal("another owner's object was freed")
	}
	view.Release()
	if err := w.Seal(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { st := s.Stats(0); return st.Objects == 1 && spillFiles(t, s) == 0 })

	_, err = theirs.Create(ids.New(), 4096, Info{OwnerID: owner})
	var oe *errs.ObjectError
	if !errors.As(err, &oe) || oe.Kind != errs.KindOwnerDied {
		t.Fatalf("create for a gone owner: %v, want OwnerDied", err)
	}
	if err := mine.Put(ids.New(), [][]byte{{1}}, Info{}); !errors.As(err, &oe) {
		t.Fatalf("put by the gone owner's connection: %v, want OwnerDied", err)
	}
}

// TestDisconnectFreesOwned: a process's objects go when its connection
// closes (it exited or was killed); a connection that named no worker id
// owns nothing, and its objects stay.
func TestDisconnectFreesOwned(t *testing.T) {
	s := newTestStore(t, Config{Capacity: 8 << 20, SpillDir: t.TempDir()})
	anonymous := dial(t, s)
	stays := ids.New()
	if err := anonymous.Put(stays, [][]byte{make([]byte, 1<<20)}, Info{}); err != nil {
		t.Fatal(err)
	}
	c, err := DialAs(s.cfg.SocketName, testToken, Who{Name: "driver", Worker: ids.New()})
	if err != nil {
		t.Fatal(err)
	}
	var goes []ids.ID
	for range 4 {
		id := ids.New()
		if err := c.Put(id, [][]byte{make([]byte, 3<<20)}, Info{}); err != nil {
			t.Fatal(err)
		}
		goes = append(goes, id)
	}
	c.Close()
	waitFor(t, func() bool {
		for _, id := range goes {
			if s.Contains(id) {
				return false
			}
		}
		files, _ := os.ReadDir(s.SpillPath())
		for _, f := range files {
			for _, id := range goes {
				if strings.HasPrefix(f.Name(), id.String()) {
					return false
				}
			}
		}
		return true
	})
	if !s.Contains(stays) {
		t.Fatal("an object of a connection without a worker id was freed")
	}
}

// TestDeadOwnersBounded: the store remembers at most MaxDeadOwners.
func TestDeadOwnersBounded(t *testing.T) {
	var d deadOwners
	first := ids.New()
	d.add(first)
	for range MaxDeadOwners {
		d.add(ids.New())
	}
	if d.has(first) || len(d.set) != MaxDeadOwners || len(d.ring) != MaxDeadOwners {
		t.Fatalf("remembers %d (first: %v)", len(d.set), d.has(first))
	}
}
