//go:build !unix

package raylet

import "github.com/raygo/raygo/internal/proc"

// signalGroup stops pid (no process groups here; a node daemon does not
// run on these platforms, see Supported).
func signalGroup(pid int, s proc.Sig) { _ = proc.Signal(pid, s) }
