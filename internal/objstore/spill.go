package objstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/proc"
)

// spillDir is one node's directory of spilled objects and of objects too
// large for the region: <root>/node-<node id>-<pid>/<object id>. The pid
// in the name lets a starting node remove the directories of daemons that
// died without cleaning up.
type spillDir struct {
	root string // the configured spill directory
	dir  string // this daemon's subdirectory
}

// Spill limits.
const (
	// spillRetries bounds the attempts to write one spill file before the
	// store reports the disk as full (never an endless loop).
	spillRetries = 3
	// spillReserve is disk space left free when placing objects on disk.
	spillReserve = 64 << 20
)

func newSpillDir(root, nodeID string) (*spillDir, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("objstore: spill directory %s: %w", root, err)
	}
	removeDeadSpills(root)
	dir := filepath.Join(root, fmt.Sprintf("node-%s-%d", nodeID, os.Getpid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("objstore: spill directory %s: %w", dir, err)
	}
	return &spillDir{root: root, dir: dir}, nil
}

// removeDeadSpills deletes the spill directories of daemons that are no
// longer running.
func removeDeadSpills(root string) {
	list, _ := os.ReadDir(root)
	for _, d := range list {
		name := d.Name()
		if !d.IsDir() || !strings.HasPrefix(name, "node-") {
			continue
		}
		pid, err := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
		if err != nil || pid <= 0 || proc.Alive(pid) {
			continue
		}
		os.RemoveAll(filepath.Join(root, name))
	}
}

func (s *spillDir) path(id ids.ID, suffix string) string {
	return filepath.Join(s.dir, id.String()+suffix)
}

// free reports the bytes available on the spill directory's filesystem.
func (s *spillDir) free() int64 { return diskFree(s.dir) }

// fits reports whether size more bytes fit on disk with the reserve left.
func (s *spillDir) fits(size int64) bool { return s.free()-spillReserve >= size }

// write stores data as the spill file of id, retrying a bounded number of
// times (a disk that frees space between tries, such as when other objects
// are deleted, gets another chance).
func (s *spillDir) write(id ids.ID, data []byte) (string, error) {
	p := s.path(id, ".spill")
	var err error
	for attempt := 0; attempt < spillRetries; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
		}
		if err = writeFile(p, data); err == nil {
			return p, nil
		}
		os.Remove(p)
	}
	return "", fmt.Errorf("objstore: spill %d bytes to %s failed %d times: %w", len(data), s.dir, spillRetries, err)
}

func writeFile(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// createFile makes a file of size bytes for an object that lives on disk.
// Its blocks are reserved up front (preallocate: fallocate on Linux,
// F_PREALLOCATE on darwin), so a full disk fails here and not later as a
// fault while the writer copies into its mapping.
func (s *spillDir) createFile(id ids.ID, size int64) (string, error) {
	p := s.path(id, ".obj")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := preallocate(f, size); err != nil {
		os.Remove(p)
		return "", fmt.Errorf("objstore: reserve %d bytes in %s: %w", size, s.dir, err)
	}
	return p, nil
}

// read fills dst from a spill file.
func readFile(p string, dst []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := f.ReadAt(dst, 0)
	if n == len(dst) {
		return nil
	}
	return fmt.Errorf("objstore: restore %s: read %d of %d bytes: %w", p, n, len(dst), err)
}

// remove deletes this daemon's directory and everything in it.
func (s *spillDir) remove() { os.RemoveAll(s.dir) }
