package workerlog

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
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

func TestPrefix(t *testing.T) {
	if got := Prefix("main.square", 12, "1a2b3c4d5e6f"); got != "(main.square pid=12, node=1a2b3c4d5e6f) " {
		t.Fatalf("Prefix = %q", got)
	}
	if got := Prefix("", 12, "1a2b3c4d5e6f"); got != "(pid=12, node=1a2b3c4d5e6f) " {
		t.Fatalf("Prefix without a name = %q", got)
	}
}

func TestCapLine(t *testing.T) {
	short := bytes.Repeat([]byte("a"), MaxLineBytes)
	if got := CapLine(short); got != string(short) {
		t.Fatal("a line at the limit was cut")
	}
	long := append(bytes.Repeat([]byte("a"), MaxLineBytes-1), []byte("éé")...) // a 2-byte rune across the cut
	got := CapLine(long)
	if !strings.HasPrefix(got, string(long[:MaxLineBytes-1])) || !strings.Contains(got, " more bytes in the log file]") {
		t.Fatalf("CapLine = …%q", got[len(got)-60:])
	}
	if !utf8.ValidString(got) {
		t.Fatal("CapLine split a UTF-8 sequence")
	}
}
