// Package session manages a cluster's session directory: where the head
// writes its address and cluster token for the CLI and local drivers, and
// where node daemons keep logs and cached job binaries.
//
// Layout under Root() (default /tmp/raygo-<uid>, or $RAYGO_TMPDIR):
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
//
// Whoever controls these directories controls which cluster a local
// driver joins, which token it sends, and which processes `raygo stop`
// kills. So, as tmux and ssh-agent do with their socket directories, the
// root and every session directory must be private: a directory (not a
// symbolic link) owned by the current user, with no access for group or
// others (0700). Anything else is refused with ErrNotPrivate, never used.
package session

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/proc"
)

// Root is the directory holding all sessions: $RAYGO_TMPDIR, else
// raygo-<uid> in the system's temporary directory (one per user, as
// tmux's are).
func Root() string {
	if d := os.Getenv("RAYGO_TMPDIR"); d != "" {
		return d
	}
	if uid := os.Getuid(); uid >= 0 {
		return filepath.Join(os.TempDir(), "raygo-"+strconv.Itoa(uid))
	}
	return filepath.Join(os.TempDir(), "raygo")
}

// ErrNotPrivate means a session root or session directory is not the
// current user's alone (see the package comment); the error names the
// directory and what is wrong with it.
var ErrNotPrivate = errors.New("session: directory is not private")

// checkPrivate returns nil if dir is a directory owned by the current
// user with no access for group or others, else an error wrapping
// ErrNotPrivate that says what is wrong and what to do.
func checkPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%w: %s is a symbolic link; raygo uses only a real directory there (remove it, or set RAYGO_TMPDIR)", ErrNotPrivate, dir)
	case !fi.IsDir():
		return fmt.Errorf("%w: %s is not a directory (remove it, or set RAYGO_TMPDIR)", ErrNotPrivate, dir)
	}
	if uid, ok := ownerUID(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d): another user could choose the cluster you join and the processes `raygo stop` kills; remove it or set RAYGO_TMPDIR to a directory of your own", ErrNotPrivate, dir, uid, os.Getuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && privateModes {
		return fmt.Errorf("%w: %s has mode %04o: others can reach it; make it private (chmod 700 %s) or set RAYGO_TMPDIR", ErrNotPrivate, dir, perm, dir)
	}
	return nil
}

// CheckRoot makes sure Root() exists and is private, creating it (mode
// 0700) if it does not exist.
func CheckRoot() (string, error) {
	root := Root()
	if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		if err := os.MkdirAll(filepath.Dir(root), 0o700); err != nil {
			return "", fmt.Errorf("session: %w", err)
		}
		if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", fmt.Errorf("session: %w", err)
		}
	}
	return root, checkPrivate(root)
}

// Dir is one session's directory.
type Dir string

// New creates a fresh session directory (mode 0700) in a private root.
func New() (Dir, error) {
	if _, err := CheckRoot(); err != nil {
		return "", err
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

// Latest returns the session of the last head started here. The root and
// the session must be private (ErrNotPrivate otherwise), and the session
// must be in the root.
func Latest() (Dir, error) {
	root, err := existingRoot()
	if err != nil {
		return "", err
	}
	p, err := os.Readlink(LatestLink())
	if err != nil {
		return "", ErrNoCluster
	}
	if filepath.Dir(p) != root {
		return "", fmt.Errorf("%w: %s points outside %s, to %s", ErrNotPrivate, LatestLink(), root, p)
	}
	if _, err := os.Lstat(p); err != nil {
		return "", ErrNoCluster
	}
	if err := checkPrivate(p); err != nil {
		return "", err
	}
	return Dir(p), nil
}

// existingRoot checks the root when it exists: ErrNoCluster when it does
// not, ErrNotPrivate when it is not private.
func existingRoot() (string, error) {
	root := Root()
	if _, err := os.Lstat(root); errors.Is(err, os.ErrNotExist) {
		return "", ErrNoCluster
	}
	return root, checkPrivate(root)
}

// List returns the session directories in the root, oldest first (their
// names start with the creation time), skipping any that is not private.
// It fails when the root itself is not private.
func List() ([]Dir, error) {
	root, err := existingRoot()
	if errors.Is(err, ErrNoCluster) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	var out []Dir
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "session_") {
			continue
		}
		p := filepath.Join(root, e.Name())
		if checkPrivate(p) == nil {
			out = append(out, Dir(p))
		}
	}
	return out, nil
}

// ForAddress returns the newest session on this machine whose head
// listens at addr (the same host:port, or the same port on hosts that
// both mean this machine: see SameAddress), so that the token of each of
// several heads is found by the address asked for, not only the latest's.
func ForAddress(addr string) (Dir, error) {
	list, err := List()
	if err != nil {
		return "", err
	}
	for i := len(list) - 1; i >= 0; i-- {
		if a, err := list[i].ReadFile("address"); err == nil && SameAddress(a, addr) {
			return list[i], nil
		}
	}
	return "", fmt.Errorf("%w (none listens at %s)", ErrNoCluster, addr)
}

// SameAddress reports whether a and b name the same control store on this
// machine: equal strings, or the same port on hosts that both mean this
// machine (loopback names, or the unspecified address a head listening on
// every interface reports).
func SameAddress(a, b string) bool {
	if a == b {
		return true
	}
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	return errA == nil && errB == nil && pa == pb && localHost(ha) && localHost(hb)
}

func localHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
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
// Only a private root is cleaned.
func CleanStale() int {
	list, err := List()
	if err != nil {
		return 0
	}
	n := 0
	for _, d := range list {
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
