package raylet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStderrTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"empty", "", 10, ""},
		{"blank lines only", "\n  \n\t\n", 10, ""},
		{"one line without newline", "boom", 10, "boom"},
		{"keeps order", "a\nb\nc\n", 10, "a\nb\nc"},
		{"last n", "1\n2\n3\n4\n5\n", 2, "4\n5"},
		{"skips blank and trims trailing space", "a  \r\n\n\nb\t\n\n", 10, "a\nb"},
		{"blank lines do not count", "x\ny\n\n\n\nz\n", 2, "y\nz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := stderrTail([]byte(tc.in), tc.n); got != tc.want {
				t.Fatalf("stderrTail(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestTailBufferKeepsTheLastBytes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"under the bound", []string{"ab", "cd"}, "abcd"},
		{"exactly the bound", []string{"abcde", "fgh"}, "abcdefgh"},
		{"drops the oldest", []string{"abcdef", "ghij"}, "cdefghij"},
		{"one write over the bound", []string{"x", "0123456789"}, "23456789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &tailBuffer{max: 8}
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := string(b.bytes()); got != tc.want {
				t.Fatalf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLookCommand(t *testing.T) {
	bin := t.TempDir()
	exe := filepath.Join(bin, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "plain"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, dir string
		want            string // "": not found
	}{
		{"tool", bin, "", exe},
		{"tool", "relative:" + bin, "", exe},
		{"tool", "relative", bin, ""}, // relative PATH entries are skipped
		{"plain", bin, "", ""},        // not executable
		{"missing", bin, "", ""},
		{"./tool", "", bin, exe},
		{exe, "", "", exe},
		{"./tool", bin, t.TempDir(), ""},
	} {
		got, err := lookCommand(tc.name, tc.path, tc.dir)
		if tc.want == "" {
			if err == nil {
				t.Errorf("lookCommand(%q, %q, %q) = %q, want not found", tc.name, tc.path, tc.dir, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("lookCommand(%q, %q, %q) = %q, %v, want %q", tc.name, tc.path, tc.dir, got, err, tc.want)
		}
	}
	if _, err := lookCommand("missing", "/nowhere", ""); err == nil || !strings.Contains(err.Error(), "PATH=/nowhere") {
		t.Errorf("not found error: %v", err)
	}
}
