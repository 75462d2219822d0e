//go:build unix

package raylet

import (
	"syscall"

	"github.com/raygo/raygo/internal/proc"
)

// signalGroup sends s to the process group led by pid (an entrypoint's
// shell: proc.Child made it a group leader).
func signalGroup(pid int, s proc.Sig) {
	sig := syscall.SIGTERM
	if s == proc.Kill {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = proc.Signal(pid, s) // no group (gone, or not a leader): the process alone
	}
}
