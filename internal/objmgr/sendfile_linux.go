package objmgr

import (
	"errors"
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// canSendFile: this platform sends a region's pages to a socket with
// sendfile(2).
const canSendFile = true

// sendFile writes n bytes of file fd from offset off to c with
// sendfile(2): the kernel hands the pages to the socket without copying
// them through this process.
func sendFile(c net.Conn, fd int, off, n int64) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("objmgr: sendfile needs a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Write(func(s uintptr) bool {
		for n > 0 {
			w, err := unix.Sendfile(int(s), fd, &off, int(min(n, 1<<30)))
			if w > 0 {
				n -= int64(w)
			}
			switch {
			case errors.Is(err, unix.EAGAIN):
				return false // wait until the socket can take more
			case errors.Is(err, unix.EINTR):
				continue
			case err != nil:
				werr = err
				return true
			case w == 0:
				werr = io.ErrUnexpectedEOF
				return true
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	return werr
}
