//go:build unix

package session

import (
	"os"
	"syscall"
)

// privateModes: permission bits mean what they say here.
const privateModes = true

// ownerUID returns the uid that owns fi's file.
func ownerUID(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
