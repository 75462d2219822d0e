// Package session manages a cluster's session directory: where the head
// writes its address and cluster token for the CLI and local drivers, and
// where node daemons keep logs and cached job binaries.
//
// Layout under Root() (default /tmp/raygo, or $RAYGO_TMPDIR):
//
//	session_<time>_<pid>/      one per head (or embedded cluster)
//	    address                the control store's host:port
//	    token                  the cluster token (mode 0600)
//	    pids                   processes `raygo stop` should stop
//	    logs/                  worker stdout/stderr
//	    binaries/              job binaries fetched by hash
//	session_latest -> session_<...>   the last head started by `raygo start`
//	sock/                      local socket files where there are no
//	                           abstract sockets (darwin; see localsock)
package session

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/proc"
)

// Root is the directory holding all sessions.
func Root() string {
	if d := os.Getenv("RAYGO_TMPDIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "raygo")
}

// Dir is one session's directory.
type Dir string

// New creates a fresh session directory.
func New() (Dir, error) {
	if err := os.MkdirAll(Root(), 0o700); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	prefix := fmt.Sprintf("session_%s_%d_", time.Now().Format("2006-01-02_15-04-05.000000"), os.Getpid())
	d, err := os.MkdirTemp(Root(), prefix) // unique even for concurrent calls
	if err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	return Dir(d), nil
}

// NewToken returns a random 256-bit cluster token.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("session: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// Path joins name onto the session directory.
func (d Dir) Path(name ...string) string {
	return filepath.Join(append([]string{string(d)}, name...)...)
}

// WriteFile writes a small file in the session with mode 0600.
func (d Dir) WriteFile(name, content string) error {
	return os.WriteFile(d.Path(name), []byte(content), 0o600)
}

// ReadFile reads a small file from the session, trimmed.
func (d Dir) ReadFile(name string) (string, error) {
	b, err := os.ReadFile(d.Path(name))
	return strings.TrimSpace(string(b)), err
}

// Remove deletes the session directory and everything in it.
func (d Dir) Remove() error {
	if d == "" {
		return nil
	}
	if latest, err := os.Readlink(LatestLink()); err == nil && latest == string(d) {
		_ = os.Remove(LatestLink())
	}
	return os.RemoveAll(string(d))
}

// LatestLink is the symlink to the session of the last `raygo start --head`.
func LatestLink() string { return filepath.Join(Root(), "session_latest") }

// MarkLatest points session_latest at d.
func (d Dir) MarkLatest() error {
	tmp := LatestLink() + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(string(d), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, LatestLink())
}

// ErrNoCluster means no head was started on this machine.
var ErrNoCluster = errors.New("session: no running cluster found on this machine (start one with `raygo start --head`)")

// Latest returns the session of the last head started here.
func Latest() (Dir, error) {
	p, err := os.Readlink(LatestLink())
	if err != nil {
		return "", ErrNoCluster
	}
	if _, err := os.Stat(p); err != nil {
		return "", ErrNoCluster
	}
	return Dir(p), nil
}

// embeddedMark names the file that marks a session as an embedded
// cluster's and holds the pid of the driver that owns it.
const embeddedMark = "embedded_pid"

// MarkEmbedded records that the session belongs to the embedded cluster of
// this process, so a later CleanStale can remove it if the process dies
// without Shutdown.
func (d Dir) MarkEmbedded() error {
	return d.WriteFile(embeddedMark, strconv.Itoa(os.Getpid()))
}

// CleanStale removes the sessions of embedded clusters whose driver
// process is gone (killed before it could Shutdown). Sessions started by
// `raygo start` are left alone. It returns how many it removed.
func CleanStale() int {
	entries, err := os.ReadDir(Root())
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "session_") {
			continue
		}
		d := Dir(filepath.Join(Root(), e.Name()))
		s, err := d.ReadFile(embeddedMark)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 || proc.Alive(pid) {
			continue
		}
		if os.RemoveAll(string(d)) == nil {
			n++
		}
	}
	return n
}
