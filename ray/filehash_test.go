//go:build !windows

package ray

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestFileHash: the executable's hash is computed once while the file
// stays as it was, and again when it is rewritten.
func TestFileHash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exe")
	want := func(data []byte) string {
		sum := sha256.Sum256(data)
		return hex.EncodeToString(sum[:])
	}
	write := func(data []byte, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	var h fileHash
	first := time.Now().Add(-time.Hour)
	write([]byte("version one"), first)
	if got, size, err := h.of(path); err != nil || got != want([]byte("version one")) || size != 11 {
		t.Fatalf("first hash: %s, %d, %v", got, size, err)
	}
	// Same size and time: the cached hash, without reading the file.
	write([]byte("version 1!!"), first)
	if got, _, _ := h.of(path); got != want([]byte("version one")) {
		t.Fatalf("a file unchanged by size and time was hashed again: %s", got)
	}
	write([]byte("version two, longer"), first.Add(time.Minute))
	if got, size, err := h.of(path); err != nil || got != want([]byte("version two, longer")) || size != 19 {
		t.Fatalf("after a rewrite: %s, %d, %v", got, size, err)
	}
	if _, _, err := h.of(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("hash of a missing file: no error")
	}
}
