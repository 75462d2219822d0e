package raylet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/pb"
)

// Limits of the node's log files and of reading them (docs/logs.md).
const (
	// DefaultLogRotateBytes is the size at which a worker's .out or .err
	// file is rotated (Config.LogRotateBytes).
	DefaultLogRotateBytes = 64 << 20
	// DefaultLogRotateBackups is how many rotated files of each are kept
	// (Config.LogRotateBackups).
	DefaultLogRotateBackups = 5
	// MaxListedLogs bounds the files ListLogs answers with (the first by
	// name).
	MaxListedLogs = 10000
	// LogChunkBytes is the most a ReadLog chunk carries.
	LogChunkBytes = 256 << 10
	// LogFollowPoll is how often a followed file is checked for new data
	// and for rotation.
	LogFollowPoll = 200 * time.Millisecond
)

// LogsDir is where a node keeps its log files in a session directory.
func LogsDir(sessionDir string) string { return filepath.Join(sessionDir, "logs") }

func (r *Raylet) logsDir() string { return LogsDir(r.cfg.SessionDir) }

// ListLogs lists the files in the node's logs directory (and below it),
// by name relative to it, "/"-separated, sorted; req.glob filters names
// with path.Match. At most MaxListedLogs files are answered.
func (r *Raylet) ListLogs(_ context.Context, req *pb.ListLogsRequest) (*pb.ListLogsReply, error) {
	glob := req.GetGlob()
	if glob != "" {
		if _, err := path.Match(glob, ""); err != nil {
			return nil, errs.Invalidf("raylet: log file glob %q: %v", glob, err)
		}
	}
	files, err := listLogFiles(r.logsDir(), glob, MaxListedLogs)
	if err != nil {
		return nil, errs.Systemf("raylet: list log files: %v", err)
	}
	return &pb.ListLogsReply{Files: files}, nil
}

// listLogFiles walks dir for regular files whose relative name matches
// glob (empty: all), at most limit of them. A missing dir has no files.
func listLogFiles(dir, glob string, limit int) ([]*pb.LogFile, error) {
	var out []*pb.LogFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			if d != nil && d.IsDir() && p != dir {
				return fs.SkipDir // unreadable subdirectory: skip it
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil
		}
		name := filepath.ToSlash(rel)
		if glob != "" {
			if ok, _ := path.Match(glob, name); !ok {
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile (rotated)
		}
		out = append(out, &pb.LogFile{Name: name, Size: info.Size(), ModUnixMs: info.ModTime().UnixMilli()})
		if len(out) >= limit {
			return fs.SkipAll
		}
		return nil
	})
	return out, err
}

// checkLogName checks a log file name given by a caller: relative to the
// logs directory, "/"-separated, and staying inside it. It returns the
// name in the platform's form.
func checkLogName(name string) (string, error) {
	switch {
	case name == "":
		return "", errs.Invalidf("raylet: no log file name given")
	case len(name) > 1024:
		return "", errs.Invalidf("raylet: log file name of %d bytes (at most 1024)", len(name))
	case strings.ContainsRune(name, 0):
		return "", errs.Invalidf("raylet: log file name %q holds a NUL byte", name)
	case strings.Contains(name, `\`):
		return "", errs.Invalidf("raylet: log file name %q: use / to separate directories", name)
	}
	local := filepath.FromSlash(name)
	if !filepath.IsLocal(local) {
		return "", errs.Invalidf("raylet: log file name %q is outside the node's logs directory (give a name as ListLogs lists it)", name)
	}
	return local, nil
}

// openLog opens name in dir after checking that it, symbolic links
// resolved, is a regular file inside dir.
func openLog(dir, name string) (*os.File, string, error) {
	local, err := checkLogName(name)
	if err != nil {
		return nil, "", err
	}
	full := filepath.Join(dir, local)
	real, err := filepath.EvalSymlinks(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", errs.NotFoundf("raylet: no log file %q on this node", name)
	}
	if err != nil {
		return nil, "", errs.Systemf("raylet: log file %q: %v", name, err)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, "", errs.Systemf("raylet: logs directory: %v", err)
	}
	if rel, err := filepath.Rel(realDir, real); err != nil || !filepath.IsLocal(rel) {
		return nil, "", errs.Invalidf("raylet: log file name %q is outside the node's logs directory", name)
	}
	f, err := os.Open(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", errs.NotFoundf("raylet: no log file %q on this node", name)
	}
	if err != nil {
		return nil, "", errs.Systemf("raylet: open log file %q: %v", name, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, "", errs.Invalidf("raylet: %q is not a log file", name)
	}
	return f, full, nil
}

// ReadLog streams a log file of this node: the whole file, or its last
// tail_lines lines; with follow it then sends what is appended (checked
// every LogFollowPoll) until the caller cancels, reopening the file when
// it was rotated (renamed away and created again) or truncated. Chunks
// carry at most LogChunkBytes.
func (r *Raylet) ReadLog(req *pb.ReadLogRequest, stream pb.NodeDaemon_ReadLogServer) error {
	f, full, err := openLog(r.logsDir(), req.GetName())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel) // the daemon stops: end follows
	defer stop()
	return followLog(ctx, f, full, req.GetTailLines(), req.GetFollow(), func(b []byte) error {
		return stream.Send(&pb.LogChunk{Data: b})
	})
}

// followLog sends f (opened at path) from the start of its last tail
// lines (tail <= 0: from its start) to send, in chunks of at most
// LogChunkBytes; with follow it keeps sending what is appended until ctx
// ends, reopening path when it names another file (rotated) and starting
// over when the file shrank (truncated). It closes f.
func followLog(ctx context.Context, f *os.File, path string, tail int64, follow bool, send func([]byte) error) error {
	defer func() { f.Close() }()
	if tail > 0 {
		st, err := f.Stat()
		if err != nil {
			return errs.Systemf("raylet: log file: %v", err)
		}
		off, err := tailOffset(f, st.Size(), tail)
		if err != nil {
			return errs.Systemf("raylet: log file: %v", err)
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return errs.Systemf("raylet: log file: %v", err)
		}
	}
	buf := make([]byte, LogChunkBytes)
	drain := func() error { // send from f until its end
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if err := send(bytes.Clone(buf[:n])); err != nil {
					return err
				}
			}
			if err == io.EOF || n == 0 && err == nil {
				return nil
			}
			if err != nil {
				return errs.Systemf("raylet: read log file: %v", err)
			}
		}
	}
	if err := drain(); err != nil || !follow {
		return err
	}
	t := time.NewTicker(LogFollowPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := drain(); err != nil {
			return err
		}
		cur, err := f.Stat()
		if err != nil {
			return errs.Systemf("raylet: log file: %v", err)
		}
		st, err := os.Stat(path)
		switch {
		case err != nil:
			// Renamed away and not created again yet: wait for it.
		case !os.SameFile(cur, st):
			// Rotated: what was written to the old file before the
			// rename has been sent (drain); go on with the new one.
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			if err := drain(); err != nil { // written between the drain and the rename
				nf.Close()
				return err
			}
			f.Close()
			f = nf
			if err := drain(); err != nil {
				return err
			}
		default:
			off, err := f.Seek(0, io.SeekCurrent)
			if err == nil && st.Size() < off { // truncated
				_, _ = f.Seek(0, io.SeekStart)
			}
		}
	}
}

// tailOffset is where the last n lines of f (size bytes) begin. A final
// newline ends the last line; it does not start another.
func tailOffset(f io.ReaderAt, size, n int64) (int64, error) {
	const block = 64 << 10
	buf := make([]byte, block)
	end := size
	if end > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], end-1); err != nil {
			return 0, err
		}
		if last[0] == '\n' {
			end--
		}
	}
	for end > 0 {
		start := max(end-block, 0)
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] == '\n' {
				n--
				if n == 0 {
					return start + int64(i) + 1, nil
				}
			}
		}
		end = start
	}
	return 0, nil
}

// rotatingFile is a log file rotated by size, as Python's
// RotatingFileHandler (and so Ray) does: before a write would take it
// past max bytes, path.N-1 is renamed to path.N, …, path to path.1, and
// path is created again; path.backups is the oldest kept. It is used by
// one goroutine (a pump) at a time.
type rotatingFile struct {
	path    string
	max     int64 // <= 0: never rotated
	backups int
	f       *os.File
	size    int64
	failed  bool // the file could not be opened: writes are dropped
}

func openRotating(path string, max int64, backups int) *rotatingFile {
	rf := &rotatingFile{path: path, max: max, backups: backups}
	rf.open()
	return rf
}

func (rf *rotatingFile) open() {
	if err := os.MkdirAll(filepath.Dir(rf.path), 0o700); err != nil {
		rf.failed = true
		return
	}
	f, err := os.OpenFile(rf.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		rf.failed = true
		return
	}
	rf.f, rf.failed = f, false
	if st, err := f.Stat(); err == nil {
		rf.size = st.Size()
	}
}

// write appends b (one or more whole lines), rotating first when b would
// take the file past its cap. A line longer than the cap goes alone into
// a file of its own.
func (rf *rotatingFile) write(b []byte) {
	if rf.failed {
		return
	}
	if rf.max > 0 && rf.size > 0 && rf.size+int64(len(b)) > rf.max {
		rf.rotate()
		if rf.failed {
			return
		}
	}
	n, _ := rf.f.Write(b)
	rf.size += int64(n)
}

func (rf *rotatingFile) rotate() {
	rf.f.Close()
	rf.f = nil
	if rf.backups <= 0 {
		_ = os.Remove(rf.path)
	} else {
		_ = os.Remove(rf.path + "." + strconv.Itoa(rf.backups))
		for i := rf.backups - 1; i >= 1; i-- {
			_ = os.Rename(rf.path+"."+strconv.Itoa(i), rf.path+"."+strconv.Itoa(i+1))
		}
		_ = os.Rename(rf.path, rf.path+".1")
	}
	rf.size = 0
	rf.open()
}

func (rf *rotatingFile) close() {
	if rf.f != nil {
		rf.f.Close()
		rf.f = nil
	}
}

// logRotation is the node's rotation settings, defaults applied.
func (r *Raylet) logRotation() (int64, int) {
	max, backups := r.cfg.LogRotateBytes, r.cfg.LogRotateBackups
	if max == 0 {
		max = DefaultLogRotateBytes
	}
	if backups == 0 {
		backups = DefaultLogRotateBackups
	}
	return max, max0(backups)
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}
