//go:build unix

package proc

import (
	"os"
	"os/exec"
	"syscall"
)

// hasLifeline: unix children inherit extra descriptors.
const hasLifeline = true

// killAlive asks kill(pid, 0) whether pid exists; EPERM means it does,
// owned by another user.
func killAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

func signal(pid int, s Sig) error {
	sig := syscall.SIGTERM
	if s == Kill {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(pid, sig); err != nil && !isGone(err) {
		return &os.SyscallError{Syscall: "kill", Err: err}
	}
	return nil
}

func detach(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
}

// watchFile turns an inherited pipe descriptor into a file read through
// the runtime's poller, closed on exec.
func watchFile(fd int) (*os.File, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		return nil, syscall.EBADF // not a pipe: not ours
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "parent-death pipe"), nil
}
