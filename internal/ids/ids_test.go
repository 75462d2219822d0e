package ids

import (
	"strings"
	"sync"
	"testing"
)

func TestNewIsUnique(t *testing.T) {
	const goroutines, perG = 8, 5000
	got := make(chan ID, goroutines*perG)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				got <- New()
			}
		}()
	}
	wg.Wait()
	close(got)
	seen := make(map[ID]bool, goroutines*perG)
	for id := range got {
		if id.IsNil() {
			t.Fatal("New returned Nil")
		}
		if seen[id] {
			t.Fatalf("New returned %s twice", id)
		}
		seen[id] = true
	}
}

func TestForReturnDistinctPerIndexAndFromTask(t *testing.T) {
	task := New()
	seen := map[ID]int{task: -1}
	// A task has at most MaxReturns returns.
	for i := range MaxReturns {
		r := ForReturn(task, i)
		if prev, dup := seen[r]; dup {
			t.Fatalf("ForReturn(task, %d) = %s, same as index %d (-1 is the task id)", i, r, prev)
		}
		seen[r] = i
		if again := ForReturn(task, i); again != r {
			t.Fatalf("ForReturn(task, %d) not deterministic: %s then %s", i, r, again)
		}
	}
}

func TestParseStringRoundTrip(t *testing.T) {
	for _, id := range []ID{Nil, New(), ForReturn(New(), 3)} {
		s := id.String()
		if len(s) != 2*Size {
			t.Fatalf("String() = %q, want %d hex digits", s, 2*Size)
		}
		back, ok := Parse(s)
		if !ok || back != id {
			t.Fatalf("Parse(%q) = %s, %v; want %s", s, back, ok, id)
		}
		if upper, ok := Parse(strings.ToUpper(s)); !ok || upper != id {
			t.Fatalf("Parse(upper %q) = %s, %v", s, upper, ok)
		}
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	good := New().String()
	for _, s := range []string{"", "abc", good[:30], good + "00", "zz" + good[2:]} {
		if id, ok := Parse(s); ok {
			t.Errorf("Parse(%q) = %s, ok; want failure", s, id)
		}
	}
}

func TestFromBytes(t *testing.T) {
	id := New()
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"nil", nil, false},
		{"empty", []byte{}, false},
		{"short", id.Bytes()[:Size-1], false},
		{"long", append(id.Bytes(), 0), false},
		{"exact", id.Bytes(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := FromBytes(tt.in)
			if ok != tt.ok {
				t.Fatalf("FromBytes ok = %v, want %v", ok, tt.ok)
			}
			if tt.ok && got != id {
				t.Fatalf("FromBytes = %s, want %s", got, id)
			}
			if !tt.ok && (!got.IsNil() || !MustFromBytes(tt.in).IsNil()) {
				t.Fatalf("malformed input gave non-Nil id %s", got)
			}
		})
	}
}

func TestBytesIsACopy(t *testing.T) {
	id := New()
	b := id.Bytes()
	b[0] ^= 0xff
	if again := id.Bytes(); again[0] == b[0] {
		t.Fatal("Bytes shares memory with the id")
	}
}

// TestShortIsOneRule: the short form is a substring of the full id (so
// grepping for it finds the full id), differs between consecutive ids and
// between the returns of one task, and is the same whether made from the
// id or from its printed form.
func TestShortIsOneRule(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := New()
		s := id.Short()
		if len(s) != ShortLen || !strings.Contains(id.String(), s) || ShortString(id.String()) != s {
			t.Fatalf("Short(%s) = %q", id, s)
		}
		if seen[s] {
			t.Fatalf("two ids of one process share the short form %s", s)
		}
		seen[s] = true
	}
	task := New()
	if ForReturn(task, 0).Short() == ForReturn(task, 1).Short() || ForReturn(task, 0).Short() == task.Short() {
		t.Fatal("returns of one task share a short form")
	}
	if ShortString("") != "?" || ShortString("abc") != "abc" {
		t.Fatal("ShortString of short input")
	}
}
