package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/raygo/raygo/internal/proc"
	"github.com/raygo/raygo/internal/session"
)

// Files in a session directory written by the CLI (see package session).
const (
	addressFile = "address"
	tokenFile   = "token"
	// apiAddressFile holds the head's HTTP API and dashboard URL.
	apiAddressFile = "api_address"
	pidsFile       = "pids"
	logsDir        = "logs"
)

// withPIDs runs f on the session's pids (one per line) while holding an
// exclusive flock on the pids file, so that node processes starting and
// stopping at once never lose each other's lines. When f returns a non-nil
// slice the file is rewritten with it.
func withPIDs(d session.Dir, f func(pids []int) []int) error {
	file, err := os.OpenFile(d.Path(pidsFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open pids file: %w", err)
	}
	defer file.Close()
	if err := lockFile(file); err != nil {
		return fmt.Errorf("lock pids file: %w", err)
	}
	// Closing the file releases the lock.
	b, err := io.ReadAll(file)
	if err != nil {
		return fmt.Errorf("read pids file: %w", err)
	}
	out := f(parsePIDs(b))
	if out == nil {
		return nil
	}
	var buf bytes.Buffer
	for _, p := range out {
		fmt.Fprintln(&buf, p)
	}
	if err := file.Truncate(0); err != nil {
		return fmt.Errorf("write pids file: %w", err)
	}
	if _, err := file.WriteAt(buf.Bytes(), 0); err != nil {
		return fmt.Errorf("write pids file: %w", err)
	}
	return nil
}

// parsePIDs reads one positive pid per line, skipping anything else.
func parsePIDs(b []byte) []int {
	var pids []int
	for line := range strings.Lines(string(b)) {
		if p, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && p > 0 {
			pids = append(pids, p)
		}
	}
	return pids
}

// addPID records pid in the session's pids file.
func addPID(d session.Dir, pid int) error {
	return withPIDs(d, func(pids []int) []int {
		if slices.Contains(pids, pid) {
			return nil
		}
		return append(pids, pid)
	})
}

// removePID forgets pid; a missing session directory is not an error.
func removePID(d session.Dir, pid int) error {
	if _, err := os.Stat(string(d)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return withPIDs(d, func(pids []int) []int {
		if !slices.Contains(pids, pid) {
			return nil
		}
		return slices.DeleteFunc(pids, func(p int) bool { return p == pid })
	})
}

// readPIDs returns the pids recorded in the session; none when the file is
// missing.
func readPIDs(d session.Dir) ([]int, error) {
	b, err := os.ReadFile(d.Path(pidsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parsePIDs(b), nil
}

// hasPID reports whether the session's pids file lists pid.
func hasPID(d session.Dir, pid int) bool {
	pids, _ := readPIDs(d)
	return slices.Contains(pids, pid)
}

// processAlive reports whether pid names a running process. A zombie (one
// that exited but was not yet reaped by its parent) counts as gone where
// the platform tells (see proc.Alive).
func processAlive(pid int) bool { return proc.Alive(pid) }

// isNodeProcess guards `raygo stop` against a pid that was reused by an
// unrelated process after a node exited without cleaning up: where the
// process's command line can be read (Linux's /proc, darwin's sysctl), it
// must be a `raygo start --block` process. Elsewhere it trusts the pids
// file.
func isNodeProcess(pid int) bool {
	args, err := proc.Cmdline(pid)
	if err != nil {
		return true
	}
	hasStart, hasBlock := false, false
	for _, a := range args {
		hasStart = hasStart || a == "start"
		hasBlock = hasBlock || a == "--block" || strings.HasPrefix(a, "--block=")
	}
	return hasStart && hasBlock
}

// liveNodes returns the pids recorded in the session that still run a
// node process.
func liveNodes(d session.Dir) []int {
	pids, _ := readPIDs(d)
	var live []int
	for _, p := range pids {
		if processAlive(p) && isNodeProcess(p) {
			live = append(live, p)
		}
	}
	return live
}

// logTail returns up to the last n lines of the file at path, indented for
// inclusion in an error message.
func logTail(path string, n int) string {
	const maxBytes = 16 << 10
	f, err := os.Open(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
		_, _ = f.Seek(st.Size()-maxBytes, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "  (log is empty)"
	}
	return "  " + strings.Join(lines, "\n  ")
}

// liveSessions returns the session directories under session.Root() that
// have a running node process, oldest first (their names start with the
// creation time).
func liveSessions() []session.Dir {
	list, _ := session.List() // only private sessions: their pids files are trusted
	var out []session.Dir
	for _, d := range list {
		if len(liveNodes(d)) > 0 {
			out = append(out, d)
		}
	}
	return out
}
