package objstore

import (
	"bytes"
	"errors"
	"testing"

	"github.com/raygo/raygo/internal/ids"
)

// TestFill checks the daemon's in-place create: the bytes fill writes
// are the object's once sealed; a failed fill leaves nothing; a second
// Fill of an object that exists does not call fill.
func TestFill(t *testing.T) {
	s, err := New(Config{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, owner := ids.New(), ids.New()
	want := bytes.Repeat([]byte("raygo"), 1000)
	if err := s.Fill(id, int64(len(want)), Info{Owner: "owner:1", OwnerID: owner, Secondary: true}, func(b []byte) error {
		copy(b, want)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	if found, err := s.Read(id, func(b []byte) error { got = append(got, b...); return nil }); !found || err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Read after Fill: found %v, err %v, equal %v", found, err, bytes.Equal(got, want))
	}
	called := false
	if err := s.Fill(id, 10, Info{Secondary: true}, func([]byte) error { called = true; return nil }); err != nil || called {
		t.Fatalf("Fill of an existing object: err %v, fill called %v", err, called)
	}
	boom := errors.New("transfer failed")
	failed := ids.New()
	if err := s.Fill(failed, 100, Info{Secondary: true}, func([]byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed fill: %v", err)
	}
	if s.Contains(failed) {
		t.Fatal("a failed fill left its object")
	}
}

// TestTakeEvicted: secondary copies evicted to make room are reported
// once, with their owners.
func TestTakeEvicted(t *testing.T) {
	s, err := New(Config{Capacity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	copyID := ids.New()
	if err := s.Fill(copyID, 600<<10, Info{Owner: "owner:1", OwnerID: ids.New(), Secondary: true}, func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := s.TakeEvicted(); len(got) != 0 {
		t.Fatalf("evicted %v before any pressure", got)
	}
	// A primary copy that needs the copy's room.
	if err := s.Put(ids.New(), make([]byte, 600<<10), "owner:2", ids.New()); err != nil {
		t.Fatal(err)
	}
	got := s.TakeEvicted()
	if len(got) != 1 || got[0].ID != copyID || got[0].Owner != "owner:1" {
		t.Fatalf("TakeEvicted = %v, want the copy of owner:1", got)
	}
	if again := s.TakeEvicted(); len(again) != 0 {
		t.Fatalf("reported twice: %v", again)
	}
}
