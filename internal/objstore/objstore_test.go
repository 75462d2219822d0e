package objstore

import (
	"errors"
	"testing"

	"github.com/raygo/raygo/internal/ids"
)

func TestMemoryPutGetDelete(t *testing.T) {
	m := NewMemory(10)
	a, b := ids.New(), ids.New()
	if err := m.Put(a, []byte("hello"), "o"); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(a, []byte("hello"), "o"); err != nil {
		t.Fatal("idempotent put failed:", err)
	}
	var full *ErrFull
	if err := m.Put(b, []byte("toolongvalue"), "o"); !errors.As(err, &full) || full.Capacity != 10 {
		t.Fatalf("want ErrFull, got %v", err)
	}
	if d, ok := m.Get(a); !ok || string(d) != "hello" {
		t.Fatalf("Get = %q %v", d, ok)
	}
	m.Delete(a, b)
	if _, ok := m.Get(a); ok {
		t.Fatal("object survived Delete")
	}
	if s := m.Stats(); s.Objects != 0 || s.Bytes != 0 {
		t.Fatalf("stats after delete: %+v", s)
	}
}
