package runtimeenv

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Fetch writes a package's bytes to w (from the control store, say).
type Fetch func(ctx context.Context, w io.Writer) error

// Cache is a node's directory of unpacked packages,
// <session>/runtime_resources/working_dir_files: one directory per
// package, named by its hex digest. Safe for concurrent use; concurrent
// Unpacks of one package fetch and unpack it once, the others wait.
type Cache struct {
	dir string
	// MaxBytes bounds a fetched package (0: DefaultMaxPackageBytes).
	MaxBytes int64

	mu       sync.Mutex
	inflight map[string]*unpackCall // guarded by mu; by hex digest
}

type unpackCall struct {
	done chan struct{}
	path string
	err  error
}

// NewCache makes a cache in dir (created when first needed).
func NewCache(dir string) *Cache { return &Cache{dir: dir, inflight: map[string]*unpackCall{}} }

// CacheDir is the package cache of the session directory session.
func CacheDir(session string) string {
	return filepath.Join(session, "runtime_resources", "working_dir_files")
}

// Dir is the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// Unpack returns the directory holding package name unpacked, fetching
// and unpacking it first if no earlier call did: the bytes fetch writes
// are checked against the name's digest, unpacked into a temporary
// directory beside the final one and renamed into place, so a directory
// under its final name is always whole. A caller whose ctx ends while
// another call unpacks stops waiting; the unpack goes on.
func (c *Cache) Unpack(ctx context.Context, name string, fetch Fetch) (string, error) {
	digest, err := ParseName(name)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(c.dir, digest)
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return dst, nil
	}
	c.mu.Lock()
	call := c.inflight[digest]
	if call == nil {
		call = &unpackCall{done: make(chan struct{})}
		c.inflight[digest] = call
		c.mu.Unlock()
		// Detached from this caller's ctx: other callers may wait on it.
		call.path, call.err = c.unpack(context.WithoutCancel(ctx), digest, fetch)
		c.mu.Lock()
		delete(c.inflight, digest)
		c.mu.Unlock()
		close(call.done)
		return call.path, call.err
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.path, call.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (c *Cache) unpack(ctx context.Context, digest string, fetch Fetch) (string, error) {
	dst := filepath.Join(c.dir, digest)
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return dst, nil // another process of this node did it meanwhile
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return "", fmt.Errorf("runtimeenv: package cache: %w", err)
	}
	zf, err := os.CreateTemp(c.dir, "."+digest+".zip-*")
	if err != nil {
		return "", fmt.Errorf("runtimeenv: package cache: %w", err)
	}
	defer os.Remove(zf.Name())
	defer zf.Close()
	limit := c.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxPackageBytes
	}
	h := sha256.New()
	lw := &limitWriter{w: io.MultiWriter(zf, h), max: limit}
	if err := fetch(ctx, lw); err != nil {
		if lw.over {
			return "", fmt.Errorf("%w: package %s is over the %s limit", ErrTooLarge, NameOf(digest), human(limit))
		}
		return "", fmt.Errorf("runtimeenv: fetch package %s: %w", NameOf(digest), err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return "", fmt.Errorf("runtimeenv: package %s arrived with content hash sha256:%s", NameOf(digest), got)
	}
	tmp := filepath.Join(c.dir, "."+digest+".tmp-"+randSuffix())
	if err := extract(zf, lw.n, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("runtimeenv: unpack package %s: %w", NameOf(digest), err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		if st, serr := os.Stat(dst); serr == nil && st.IsDir() {
			return dst, nil // another process renamed its copy first
		}
		return "", fmt.Errorf("runtimeenv: unpack package %s: %w", NameOf(digest), err)
	}
	return dst, nil
}

// ErrUnsafeEntry is wrapped by errors about a package entry that would
// land outside its directory or is not a file or directory.
var ErrUnsafeEntry = errors.New("runtimeenv: unsafe package entry")

// extract unpacks the zip in r (size bytes) into dir, refusing entries
// whose names leave dir (zip slip), entries that are not regular files or
// directories, and more than MaxEntries entries or MaxUnpackedBytes.
func extract(r io.ReaderAt, size int64, dir string) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return err
	}
	if len(zr.File) > MaxEntries {
		return fmt.Errorf("%w: %d entries, more than the %d allowed", ErrTooLarge, len(zr.File), MaxEntries)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var total int64
	for _, f := range zr.File {
		rel, err := entryPath(f.Name)
		if err != nil {
			return err
		}
		mode := f.Mode()
		target := filepath.Join(dir, rel)
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o700|mode.Perm()); err != nil {
				return err
			}
			continue
		case !mode.IsRegular():
			return fmt.Errorf("%w: %q is a %s", ErrUnsafeEntry, f.Name, mode.Type())
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		n, err := writeEntry(f, target, mode.Perm()|0o400, MaxUnpackedBytes-total)
		if err != nil {
			return err
		}
		total += n
	}
	return nil
}

// entryPath checks a zip entry's name and returns it as a local path.
func entryPath(name string) (string, error) {
	clean := strings.TrimSuffix(name, "/")
	if clean == "" || strings.Contains(clean, "\\") || !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", fmt.Errorf("%w: %q would land outside the working directory", ErrUnsafeEntry, name)
	}
	return filepath.FromSlash(clean), nil
}

func writeEntry(f *zip.File, target string, perm fs.FileMode, room int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rc, room+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("%s: %w", f.Name, err)
	}
	if n > room {
		return n, fmt.Errorf("%w: unpacks to more than %s", ErrTooLarge, human(MaxUnpackedBytes))
	}
	return n, nil
}

// limitWriter passes at most max bytes to w.
type limitWriter struct {
	w    io.Writer
	max  int64
	n    int64
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n+int64(len(p)) > l.max {
		l.over = true
		return 0, ErrTooLarge
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

func randSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
