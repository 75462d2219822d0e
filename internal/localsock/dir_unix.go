//go:build linux || darwin

package localsock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// privateDir makes dir (0700) if it is missing and checks that it is a
// directory of this user's that nobody else can enter, tightening its mode
// if this user owns it.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("localsock: socket directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("localsock: socket directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok {
		return fmt.Errorf("localsock: socket directory %s is not a directory", dir)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("localsock: socket directory %s belongs to uid %d, not to this user (uid %d)", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("localsock: socket directory %s is open to others (mode %o) and cannot be closed: %w", dir, fi.Mode().Perm(), err)
		}
	}
	return nil
}

// isRefused reports whether a dial found a socket file with no listener.
func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
