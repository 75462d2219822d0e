//go:build unix

package mcptest

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd as the leader of a new process group and makes
// a cancelled context kill the whole group: node and the MCP servers it
// started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
}

// killGroup kills cmd's process group with SIGKILL. After cmd has been
// waited for, it reaches what node left behind; the group's id stays
// taken while any member lives, so it cannot name someone else's group
// then (only once the group is empty, for the microseconds until the
// kernel hands the id out again, could it: a risk accepted in tests).
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
