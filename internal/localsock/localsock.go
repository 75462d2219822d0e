// Package localsock names, serves and dials the unix sockets that
// processes on one machine use to reach each other: the twin of every
// gRPC endpoint (package rpc), a worker's framed push stream and a node's
// object store (package framed). Every such socket is named after the TCP
// address of the endpoint it belongs to, so a client that knows a peer's
// address knows its local socket too, and nobody has to be told about it.
//
// How a name is spelled depends on the platform (Mode):
//
//   - Linux: an abstract socket, "@raygo/127.0.0.1:41234/tasks". It lives
//     in the kernel only: no file is created, none is left behind by a
//     killed process, and only processes in the same network namespace see
//     it.
//   - darwin (and Linux with RAYGO_LOCAL_SOCKETS=files): a socket file in
//     Dir, "<root>/sock/127.0.0.1:41234.tasks", created 0600 in a 0700
//     directory owned by the user. A name that would not fit in sun_path
//     (104 bytes on darwin, 108 on Linux) becomes a hash of itself.
//     Listeners remove their file on close; Listen replaces a file no
//     process listens on any more, and CleanStale sweeps the ones killed
//     processes left.
//   - Elsewhere (windows, the BSDs) and with RAYGO_LOCAL_SOCKETS=off: no
//     local sockets. Name, Listen and Dial fail with an error wrapping
//     errors.ErrUnsupported; gRPC then runs over TCP alone, and what needs a
//     local socket (the object store) says what is missing.
//
// Socket files live in one directory per user for the whole machine, not
// in a session's directory, so that processes of different sessions (a
// node joined with a session of its own, a driver given an address) find
// each other by address alone, as they do with abstract names.
package localsock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/raygo/raygo/internal/session"
)

// EnvMode names the environment variable that chooses how local sockets
// are made: "abstract" (Linux only), "files", or "off". Unset or empty
// means the platform's default (DefaultMode). Every process of a cluster
// on one machine must agree; workers inherit it from their node daemon.
const EnvMode = "RAYGO_LOCAL_SOCKETS"

// Mode is how local sockets are made.
type Mode string

// Modes.
const (
	Abstract Mode = "abstract" // Linux abstract sockets: no files
	Files    Mode = "files"    // socket files in Dir
	Off      Mode = "off"      // no local sockets: TCP only
)

// ErrUnsupported is wrapped by the errors of Name, Listen and Dial where
// there are no local sockets (see Mode). It wraps errors.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("localsock: no local sockets: %w", errors.ErrUnsupported)

// DefaultMode is the platform's mode: Abstract on Linux, Files on darwin,
// Off elsewhere.
func DefaultMode() Mode { return defaultMode }

// CurrentMode is the mode in force: EnvMode when it is set, else
// DefaultMode. A value the platform cannot do (abstract off Linux, files
// where there is no peer-credential check) or does not know is an error
// naming the variable.
func CurrentMode() (Mode, error) {
	v := os.Getenv(EnvMode)
	switch Mode(v) {
	case "":
		return defaultMode, nil
	case Off:
		return Off, nil
	case Abstract, Files:
		if !platformHas(Mode(v)) {
			return "", fmt.Errorf("localsock: %s=%s: %s sockets are not available on %s", EnvMode, v, v, runtime.GOOS)
		}
		return Mode(v), nil
	}
	return "", fmt.Errorf("localsock: %s=%q: want %q, %q or %q", EnvMode, v, Abstract, Files, Off)
}

// Dir is the directory of socket files: <session root>/sock (see
// session.Root; $RAYGO_TMPDIR moves it). Where that path is too long for
// the sockets in it to fit in sun_path, it is
// <temporary directory>/raygo-sock-<hash of the session root> instead:
// the same for every process that shares the session root.
func Dir() string {
	root := session.Root()
	d := filepath.Join(root, "sock")
	if len(d)+len("/h-")+2*hashBytes <= maxPath {
		return d
	}
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(os.TempDir(), "raygo-sock-"+hex.EncodeToString(sum[:6]))
}

// hashBytes is how much of a SHA-256 names a hashed socket file.
const hashBytes = 10

// Suffixes name the sockets that share one endpoint's address.
const (
	GRPC  = ""      // the gRPC endpoint's own twin
	Tasks = "tasks" // a worker's framed push stream
	Store = "store" // a node daemon's object store
)

// maxPath is the longest socket path the platform takes: sun_path less
// its terminating NUL.
const maxPath = sunPathLen - 1

// Name returns the local socket of the endpoint whose TCP address is addr;
// suffix tells its sockets apart (GRPC, Tasks, Store). Its error wraps
// ErrUnsupported when there are no local sockets (Mode Off).
func Name(addr, suffix string) (string, error) {
	m, err := CurrentMode()
	if err != nil {
		return "", err
	}
	return nameIn(m, Dir(), addr, suffix)
}

func nameIn(m Mode, dir, addr, suffix string) (string, error) {
	if addr == "" || strings.ContainsRune(addr, 0) || strings.ContainsRune(suffix, 0) {
		return "", fmt.Errorf("localsock: bad address %q", addr)
	}
	switch m {
	case Abstract:
		name := "@raygo/" + addr
		if suffix != "" {
			name += "/" + suffix
		}
		return name, nil
	case Files:
		base := addr
		if suffix != "" {
			base += "." + suffix
		}
		p := filepath.Join(dir, base)
		if strings.ContainsAny(base, `/\`) || len(p) > maxPath {
			sum := sha256.Sum256([]byte(base))
			p = filepath.Join(dir, "h-"+hex.EncodeToString(sum[:hashBytes]))
			if len(p) > maxPath {
				return "", fmt.Errorf("localsock: socket directory %s is too long for a unix socket path (%d bytes at most on %s); set RAYGO_TMPDIR to a shorter directory", dir, maxPath, runtime.GOOS)
			}
		}
		return p, nil
	}
	return "", fmt.Errorf("%w (%s)", ErrUnsupported, offReason())
}

// TurnedOff reports whether local sockets were turned off by
// RAYGO_LOCAL_SOCKETS=off (rather than missing on the platform).
func TurnedOff() bool { return os.Getenv(EnvMode) == string(Off) }

// offReason says why there are no local sockets.
func offReason() string {
	if TurnedOff() {
		return EnvMode + "=off"
	}
	return runtime.GOOS + " has no unix sockets with peer credentials and descriptor passing that raygo uses"
}

// IsFile reports whether name is a socket file rather than an abstract
// name.
func IsFile(name string) bool { return !strings.HasPrefix(name, "@") }

// Listen serves the socket name (from Name). A socket file is created
// 0600 in a private directory (made 0700 if missing; one that others can
// enter or that another user owns is refused); a file left by a process
// that no longer listens on it is replaced. Closing the listener removes
// the file.
func Listen(name string) (*net.UnixListener, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !IsFile(name) {
		return net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	}
	if err := privateDir(filepath.Dir(name)); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil && stale(name) {
		// A killed process left its file behind: nobody answers on it.
		if rerr := os.Remove(name); rerr == nil || errors.Is(rerr, os.ErrNotExist) {
			l, err = net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
		}
	}
	if err != nil {
		return nil, err
	}
	// The directory already keeps others out; the mode says so too.
	if err := os.Chmod(name, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("localsock: %w", err)
	}
	return l, nil
}

// Dial connects to the socket name (from Name).
func Dial(ctx context.Context, name string) (*net.UnixConn, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", name)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// checkName refuses names the platform cannot serve, and every name when
// local sockets are turned off.
func checkName(name string) error {
	if name == "" {
		return errors.New("localsock: empty socket name")
	}
	if TurnedOff() {
		return fmt.Errorf("%w (%s)", ErrUnsupported, offReason())
	}
	if !IsFile(name) && !platformHas(Abstract) {
		return fmt.Errorf("%w: abstract socket %s on %s", ErrUnsupported, name, runtime.GOOS)
	}
	if IsFile(name) && !platformHas(Files) {
		return fmt.Errorf("%w (%s)", ErrUnsupported, offReason())
	}
	return nil
}

// staleProbe bounds the dial that tells a live socket file from a dead one.
const staleProbe = time.Second

// stale reports whether name is a socket file that nobody listens on.
func stale(name string) bool {
	fi, err := os.Lstat(name)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), staleProbe)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", name)
	if err == nil {
		c.Close()
		return false
	}
	return isRefused(err)
}

// Forget removes the socket files of the endpoint at addr, one per
// suffix, that no process listens on any more: a node daemon calls it for
// a worker it reaped, whose files a SIGKILL left behind. Without socket
// files it does nothing.
func Forget(addr string, suffixes ...string) {
	if m, err := CurrentMode(); err != nil || m != Files {
		return
	}
	for _, sfx := range suffixes {
		if name, err := Name(addr, sfx); err == nil && stale(name) {
			os.Remove(name)
		}
	}
}

// ForgetSince removes the socket files in Dir made at or after t on which
// no process listens: a node daemon calls it for a worker that died
// before telling its address (so its file names are unknown), with the
// time the worker started. Without socket files it does nothing.
func ForgetSince(t time.Time) int {
	if m, err := CurrentMode(); err != nil || m != Files {
		return 0
	}
	return forgetSince(Dir(), t)
}

// forgetSince is ForgetSince in dir. A second of slack covers file
// systems that keep modification times in whole seconds.
func forgetSince(dir string, t time.Time) int {
	return removeStale(dir, func(mod time.Time) bool { return !mod.Before(t.Add(-time.Second)) })
}

// StaleAge is how old a socket file must be before CleanStale looks at
// it: a listener binds its file a moment before it listens, and a file
// that young may be one.
const StaleAge = time.Minute

// CleanStale removes the socket files in Dir, older than StaleAge, on
// which no process listens any more (left by killed processes), and
// reports how many it removed. Without socket files it does nothing.
func CleanStale() int {
	if m, err := CurrentMode(); err != nil || m != Files {
		return 0
	}
	return cleanStale(Dir(), StaleAge)
}

func cleanStale(dir string, minAge time.Duration) int {
	return removeStale(dir, func(mod time.Time) bool { return time.Since(mod) >= minAge })
}

// removeStale removes the socket files in dir whose modification time
// pick accepts and on which no process listens, and reports how many.
func removeStale(dir string, pick func(mod time.Time) bool) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if e.Type() != os.ModeSocket {
			continue
		}
		fi, err := e.Info()
		if err != nil || !pick(fi.ModTime()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if stale(p) && os.Remove(p) == nil {
			n++
		}
	}
	return n
}
