package proc

import (
	"fmt"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// sZomb is p_stat of a zombie (sys/proc.h SZOMB).
const sZomb = 5

// alive: kill(pid, 0), then the process's state from sysctl
// kern.proc.pid.
func alive(pid int) bool {
	if !killAlive(pid) {
		return false
	}
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil {
		return true // unreadable: trust kill
	}
	return kp.Proc.P_pid != int32(pid) || kp.Proc.P_stat != sZomb
}

// cmdline parses sysctl kern.procargs2: argc (int32), the executable's
// path, NUL padding, then argc NUL-terminated arguments (the environment
// follows).
func cmdline(pid int) ([]string, error) {
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil {
		return nil, fmt.Errorf("proc: command line of pid %d: %w", pid, err)
	}
	return parseProcargs2(b)
}

// child: darwin has no Pdeathsig; the Lifeline does its job.
func child(cmd *exec.Cmd, _ bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
