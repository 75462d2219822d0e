//go:build unix

package framed

import (
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// poll reads p without sleeping in the kernel until bytes come or the
// deadline passes (ok=false: nothing came; read normally). Between tries
// it yields to the process's other goroutines.
func (s *source) poll(p []byte, deadline time.Time) (n int, err error, ok bool) {
	rerr := s.rc.Read(func(fd uintptr) bool {
		for {
			n, err = unix.Read(int(fd), p)
			if err == unix.EINTR {
				continue
			}
			if err != unix.EAGAIN {
				break
			}
			if time.Now().After(deadline) {
				return true
			}
			runtime.Gosched()
		}
		ok = true
		switch {
		case err != nil:
			n = 0
			err = os.NewSyscallError("read", err)
		case n == 0 && len(p) > 0:
			err = io.EOF
		}
		return true
	})
	if !ok && rerr != nil {
		return 0, rerr, true // closed
	}
	return n, err, ok
}

// unixRights is the control message that passes fd (SCM_RIGHTS).
func unixRights(fd int) []byte { return unix.UnixRights(fd) }

// rightsSpace is the room a control message with n descriptors takes.
func rightsSpace(n int) int { return unix.CmsgSpace(4 * n) }

// parseUnixRights returns the descriptors passed in oob, the control
// messages of one read.
func parseUnixRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	var fds []int
	for _, cm := range msgs {
		if got, err := unix.ParseUnixRights(&cm); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds, err
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
