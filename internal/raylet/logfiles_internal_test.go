package raylet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRotatingFileKeepsBackups(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "worker-x-1.out")
	rf := openRotating(p, 100, 2)
	var all []string
	for i := range 21 { // 7 files of 3 lines
		line := fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", 20)) // 29 bytes
		all = append(all, line)
		rf.write([]byte(line))
	}
	rf.close()
	if _, err := os.Stat(p + ".3"); !os.IsNotExist(err) {
		t.Fatalf("a third backup exists (want at most 2): %v", err)
	}
	var got string
	for _, name := range []string{p + ".2", p + ".1", p} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 100 {
			t.Fatalf("%s has %d bytes, over the 100-byte cap", name, len(b))
		}
		got += string(b)
	}
	// Three files of three lines each hold the last 9 lines, in order.
	want := strings.Join(all[len(all)-9:], "")
	if got != want {
		t.Fatalf("rotated files hold\n%s\nwant\n%s", got, want)
	}
}

func TestRotatingFileNoBackups(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.err")
	rf := openRotating(p, 10, 0)
	rf.write([]byte("12345678\n"))
	rf.write([]byte("abcdefgh\n"))
	rf.close()
	b, _ := os.ReadFile(p)
	if string(b) != "abcdefgh\n" {
		t.Fatalf("file holds %q", b)
	}
	if _, err := os.Stat(p + ".1"); !os.IsNotExist(err) {
		t.Fatal("a backup was kept with 0 backups")
	}
}

func TestTailOffset(t *testing.T) {
	for _, tc := range []struct {
		data string
		n    int64
		want string
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"}, // no final newline
		{"a\nb\nc", 2, "b\nc"},
		{"\n\n\n", 2, "\n\n"},
		{strings.Repeat("x", 200000) + "\nlast\n", 1, "last\n"},
		{"y\n" + strings.Repeat("x", 200000) + "\n", 1, strings.Repeat("x", 200000) + "\n"},
	} {
		off, err := tailOffset(strings.NewReader(tc.data), int64(len(tc.data)), tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if got := tc.data[off:]; got != tc.want {
			t.Errorf("tail %d of %.20q: got %.20q, want %.20q", tc.n, tc.data, got, tc.want)
		}
	}
}

func TestCheckLogName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"worker-1a2b3c4d5e6f-123.out", true},
		{"sub/dir.log", true},
		{"job-driver-raysubmit_abc.log", true},
		{"", false},
		{"../session/token", false},
		{"a/../../x", false},
		{"/etc/passwd", false},
		{"..", false},
		{"a\x00b", false},
		{`..\x`, false},
		{strings.Repeat("a", 2000), false},
	} {
		_, err := checkLogName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("checkLogName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// collector gathers what followLog sends.
type collector struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *collector) send(b []byte) error {
	if len(b) > LogChunkBytes {
		return fmt.Errorf("chunk of %d bytes", len(b))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(b)
	return nil
}

func (c *collector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFollowLogAcrossRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "worker-a-1.out")
	rf := openRotating(p, 64, 1)
	rf.write([]byte("old 1\nold 2\nold 3\n"))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var c collector
	done := make(chan error, 1)
	go func() { done <- followLog(ctx, f, p, 2, true, c.send) }()
	eventually(t, "the tail", func() bool { return c.String() == "old 2\nold 3\n" })
	want := "old 2\nold 3\n"
	for i := range 12 { // 12 lines of 20 bytes: several rotations
		line := fmt.Sprintf("new line number %03d\n", i)
		rf.write([]byte(line))
		want += line
		// Each line seen before the next: a follower polls, and misses a
		// file only when it is rotated twice within one poll.
		eventually(t, "line "+line, func() bool { return c.String() == want })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rf.close()
	if got := c.String(); got != want {
		t.Fatalf("followed\n%s\nwant\n%s", got, want)
	}
}

func TestFollowLogWholeFileInChunks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.log")
	data := bytes.Repeat([]byte("0123456789abcdef\n"), 40000) // 680 KB: three chunks
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	var c collector
	if err := followLog(context.Background(), f, p, 0, false, c.send); err != nil {
		t.Fatal(err)
	}
	if c.String() != string(data) {
		t.Fatalf("read %d bytes, want %d", len(c.String()), len(data))
	}
}
