package workerlog

import (
	"bytes"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b bytes.Buffer
	WriteName(&b, "pkg.Square")
	line := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if name, ok := ParseName(line); !ok || name != "pkg.Square" {
		t.Fatalf("ParseName(%q) = %q, %v", line, name, ok)
	}
	for _, l := range []string{"", "hello", "raygo:name x", "\x1braygo:nam"} {
		if _, ok := ParseName([]byte(l)); ok {
			t.Fatalf("ParseName(%q) took an ordinary line for a marker", l)
		}
	}
}
