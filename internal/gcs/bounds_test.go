package gcs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

func TestBinaryStoreIsBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBinaryBytes, cfg.MaxBinaryStoreBytes = 100, 150
	s := New(cfg, nil)
	defer s.Close()
	s.mu.Lock()
	for i, b := range [][]byte{make([]byte, 100), make([]byte, 100)} {
		h := fmt.Sprint("hash", i)
		s.binaries[h] = &binary{size: int64(len(b)), chunks: [][]byte{b}}
		s.binOrder = append(s.binOrder, h)
		s.binBytes += int64(len(b))
		s.evictBinariesLocked()
	}
	_, first := s.binaries["hash0"]
	_, second := s.binaries["hash1"]
	s.mu.Unlock()
	if first || !second || s.binBytes != 100 {
		t.Fatalf("after overflow: first kept %v, second kept %v, %d bytes", first, second, s.binBytes)
	}
}

// TestBinaryCopiesAreBounded: a binary kept as a file counts toward the
// bound, and its file goes when it is dropped.
func TestBinaryCopiesAreBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBinaryBytes, cfg.MaxBinaryStoreBytes = 100, 150
	s := New(cfg, nil)
	defer s.Close()
	dir := t.TempDir()
	var files []string
	s.mu.Lock()
	for i := range 2 {
		f := filepath.Join(dir, fmt.Sprint("copy", i))
		if err := os.WriteFile(f, make([]byte, 100), 0o700); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		h := fmt.Sprint("hash", i)
		s.binaries[h] = &binary{size: 100, file: f}
		s.binOrder = append(s.binOrder, h)
		s.binBytes += 100
		s.evictBinariesLocked()
	}
	s.mu.Unlock()
	if _, err := os.Stat(files[0]); !os.IsNotExist(err) {
		t.Fatalf("the dropped copy's file: %v, want it removed", err)
	}
	if _, err := os.Stat(files[1]); err != nil {
		t.Fatalf("the kept copy's file: %v", err)
	}
}

func TestDeadActorsAreBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxDeadActors = 2
	s := New(cfg, nil)
	defer s.Close()
	var idsMade []ids.ID
	s.mu.Lock()
	for range 3 {
		id := ids.New()
		idsMade = append(idsMade, id)
		e := &actorEntry{info: &pb.ActorInfo{ActorId: id.Bytes()}, changed: make(chan struct{})}
		s.actors[id] = e
		s.setDeadLocked(e, errors.New("gone"))
	}
	_, oldest := s.actors[idsMade[0]]
	n := len(s.actors)
	s.mu.Unlock()
	if oldest || n != 2 {
		t.Fatalf("kept the oldest dead actor: %v, %d actors", oldest, n)
	}
}
