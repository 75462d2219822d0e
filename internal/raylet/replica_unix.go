//go:build unix

package raylet

import "syscall"

// killGroupAfterReap kills what is left of the process group pgid after
// its leader was reaped. It signals the group only, never a process by
// pid: the leader's pid may be another process's by now, while the
// kernel keeps a group's id from reuse as long as a member lives.
func killGroupAfterReap(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
