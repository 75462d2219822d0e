package ids

import (
	"slices"
	"testing"
)

func TestAbbrev(t *testing.T) {
	const a, b = "0123456789abcdef0123456789abcdef", "0123456789abcdef0000000000000000"
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{a, a, true}, {" ABCDEF ", "abcdef", true}, {"abcde", "", false},
		{a + "0", "", false}, {"abcdeg", "", false},
	} {
		got, err := NormalizeAbbrev(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("NormalizeAbbrev(%q) = %q, %v; want %q, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
	for _, c := range []struct {
		q    string
		id   string
		many []string
	}{
		{a, a, nil},          // exact wins over prefix matches
		{"89abcdef", a, nil}, // the end of one
		{"012345", "", []string{a, b}},
		{"ffffff", "", nil},
	} {
		id, many := PickAbbrev([]string{a, b}, c.q)
		if id != c.id || !slices.Equal(many, c.many) {
			t.Errorf("PickAbbrev(%q) = %q, %v; want %q, %v", c.q, id, many, c.id, c.many)
		}
	}
}
