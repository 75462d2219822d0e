package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// hasLifeline: windows children do not inherit extra descriptors
// (exec.Cmd.ExtraFiles is unsupported), so there is no Lifeline; raygo
// runs no node daemons, hence no workers, on windows.
const hasLifeline = false

// stillActive is GetExitCodeProcess's code for a running process.
const stillActive = 259

func alive(pid int) bool {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(pid))
	if err != nil {
		return errors.Is(err, windows.ERROR_ACCESS_DENIED) // exists, not ours
	}
	defer windows.CloseHandle(h)
	var code uint32
	if err := windows.GetExitCodeProcess(h, &code); err != nil {
		return true
	}
	return code == stillActive
}

func cmdline(pid int) ([]string, error) {
	return nil, fmt.Errorf("proc: command line of pid %d: %w", pid, ErrUnsupported)
}

// signal: windows has no SIGTERM to send another process; both stop it.
func signal(pid int, _ Sig) error {
	if !alive(pid) {
		return nil
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil // gone meanwhile
	}
	defer p.Release()
	if err := p.Kill(); err != nil && !isGone(err) {
		return err
	}
	return nil
}

func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP
}

func child(cmd *exec.Cmd, _ bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= syscall.CREATE_NEW_PROCESS_GROUP
}

func watchFile(int) (*os.File, error) { return nil, ErrUnsupported }
