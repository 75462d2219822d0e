//go:build unix && !linux && !darwin

package proc

import (
	"fmt"
	"os/exec"
	"syscall"
)

// alive: kill(pid, 0) alone, which does not see zombies.
func alive(pid int) bool { return killAlive(pid) }

func cmdline(pid int) ([]string, error) {
	return nil, fmt.Errorf("proc: command line of pid %d: %w", pid, ErrUnsupported)
}

// child: no Pdeathsig here; the Lifeline does its job.
func child(cmd *exec.Cmd, _ bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
