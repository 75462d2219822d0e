package runtimeenv

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// PackOptions configures Package.
type PackOptions struct {
	// Excludes are patterns (path.Match syntax) of what to leave out,
	// matched against each entry's slash-separated path relative to the
	// directory and against its base name; a pattern ending in "/"
	// matches directories only (and leaves out all they hold).
	Excludes []string
	// MaxBytes bounds the packed size; 0: DefaultMaxPackageBytes.
	MaxBytes int64
}

// Pkg is a packed working directory.
type Pkg struct {
	Name  string // "sha256:<hex>"
	Hex   string // the hex digest alone (the control store's key)
	Data  []byte // the zip
	Files int    // regular files packed
	Bytes int64  // their size before packing
}

// zipEpoch is every entry's modification time: the zip format's earliest
// (its MS-DOS time starts in 1980), so that content alone makes the bytes.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// sampleBytes is how much of a file Package compresses to decide between
// storing and deflating it: data that does not shrink by a tenth (media,
// archives, random bytes) is stored, which keeps packing fast.
const sampleBytes = 64 << 10

// Package packs dir into a deterministic zip (see the package comment).
// Its error names the directory and, past the limit, its size and the
// limit; it wraps ErrTooLarge then.
func Package(dir string, opts PackOptions) (*Pkg, error) {
	limit := opts.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxPackageBytes
	}
	for _, p := range opts.Excludes {
		if _, err := path.Match(strings.TrimSuffix(p, "/"), ""); err != nil {
			return nil, fmt.Errorf("runtimeenv: exclude pattern %q: %w", p, err)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("runtimeenv: working dir: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("runtimeenv: working dir %s is not a directory", dir)
	}
	entries, total, err := walk(dir, opts.Excludes)
	if err != nil {
		return nil, err
	}
	if len(entries) > MaxEntries {
		return nil, fmt.Errorf("%w: working dir %s has %d files and directories, more than the %d allowed (exclude some)", ErrTooLarge, dir, len(entries), MaxEntries)
	}
	tooBig := func() error {
		return fmt.Errorf("%w: working dir %s (%s in files) packs to more than the %s limit; exclude what workers do not need",
			ErrTooLarge, dir, human(total), human(limit))
	}
	buf := &limitBuffer{max: limit}
	buf.b.Grow(int(min(total+total/64+64<<10, limit)))
	zw := zip.NewWriter(buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, flate.BestSpeed) })
	pkg := &Pkg{}
	for _, e := range entries {
		if err := addEntry(zw, e, pkg); err != nil {
			if buf.over {
				return nil, tooBig()
			}
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		if buf.over {
			return nil, tooBig()
		}
		return nil, fmt.Errorf("runtimeenv: pack %s: %w", dir, err)
	}
	sum := sha256.Sum256(buf.b.Bytes())
	pkg.Hex = hex.EncodeToString(sum[:])
	pkg.Name, pkg.Data = NameOf(pkg.Hex), buf.b.Bytes()
	return pkg, nil
}

// entry is one file or directory to pack.
type entry struct {
	rel  string // slash-separated, relative to the root; directories end in "/"
	abs  string
	mode fs.FileMode
	size int64
}

// walk lists dir's entries in lexical order, less the excluded ones, and
// the total size of its files.
func walk(dir string, excludes []string) ([]entry, int64, error) {
	var (
		out   []entry
		total int64
	)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("runtimeenv: working dir %s: %w", dir, err)
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		isDir := d.IsDir()
		if excluded(rel, isDir, excludes) {
			if isDir {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("runtimeenv: working dir %s: %w", dir, err)
		}
		mode := info.Mode()
		if mode&fs.ModeSymlink != 0 {
			target, err := os.Stat(p)
			if err != nil || !target.Mode().IsRegular() {
				what := "a dangling link"
				if err == nil {
					what = "a link to a " + target.Mode().Type().String() + " (not a regular file)"
				}
				return fmt.Errorf("runtimeenv: working dir %s: %s is %s: links are packed only when they name a regular file; exclude it",
					dir, rel, what)
			}
			info, mode = target, target.Mode()
		}
		switch {
		case isDir:
			out = append(out, entry{rel: rel + "/", abs: p, mode: mode})
		case mode.IsRegular():
			out = append(out, entry{rel: rel, abs: p, mode: mode, size: info.Size()})
			total += info.Size()
		default:
			return fmt.Errorf("runtimeenv: working dir %s: %s is a %s, not a regular file or directory; exclude it", dir, rel, mode.Type())
		}
		return nil
	})
	return out, total, err
}

// excluded reports whether rel matches one of the patterns.
func excluded(rel string, isDir bool, patterns []string) bool {
	base := path.Base(rel)
	for _, p := range patterns {
		dirOnly := strings.HasSuffix(p, "/")
		p = strings.TrimSuffix(p, "/")
		if dirOnly && !isDir {
			continue
		}
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, base); ok {
			return true
		}
	}
	return false
}

func addEntry(zw *zip.Writer, e entry, pkg *Pkg) error {
	h := &zip.FileHeader{Name: e.rel, Modified: zipEpoch}
	h.SetMode(e.mode & (fs.ModeDir | fs.ModePerm))
	if strings.HasSuffix(e.rel, "/") {
		h.Method = zip.Store
		_, err := zw.CreateHeader(h)
		return err
	}
	f, err := os.Open(e.abs)
	if err != nil {
		return fmt.Errorf("runtimeenv: pack %s: %w", e.rel, err)
	}
	defer f.Close()
	sample := make([]byte, min(e.size, sampleBytes))
	n, err := io.ReadFull(f, sample)
	if err != nil && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("runtimeenv: pack %s: %w", e.rel, err)
	}
	sample = sample[:n]
	h.Method = zip.Store
	if compressible(sample) {
		h.Method = zip.Deflate
	}
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := w.Write(sample); err != nil {
		return err
	}
	m, err := io.Copy(w, f)
	if err != nil {
		return fmt.Errorf("runtimeenv: pack %s: %w", e.rel, err)
	}
	pkg.Files++
	pkg.Bytes += int64(n) + m
	return nil
}

// compressible reports whether deflating sample shrinks it by a tenth.
func compressible(sample []byte) bool {
	if len(sample) < 512 {
		return len(sample) > 0
	}
	var c countWriter
	fw, _ := flate.NewWriter(&c, flate.BestSpeed)
	_, _ = fw.Write(sample)
	_ = fw.Close()
	return c.n < int64(len(sample))*9/10
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// limitBuffer is a bytes.Buffer that refuses to grow past max.
type limitBuffer struct {
	b    bytes.Buffer
	max  int64
	over bool
}

func (l *limitBuffer) Write(p []byte) (int, error) {
	if int64(l.b.Len()+len(p)) > l.max {
		l.over = true
		return 0, ErrTooLarge
	}
	return l.b.Write(p)
}

// human writes a byte count for people.
func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
