//go:build unix

package microbench

import "syscall"

// openFileLimit is this process's limit on open files (RLIMIT_NOFILE),
// or false when there is none to speak of.
func openFileLimit() (int, bool) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Cur >= 1<<40 {
		return 0, false
	}
	return int(lim.Cur), true
}
