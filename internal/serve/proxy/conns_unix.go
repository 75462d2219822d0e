//go:build linux || darwin || freebsd || netbsd || openbsd

package proxy

import (
	"net"
	"syscall"
)

// canCheckConns says connAlive works here, so conns may be used.
const canCheckConns = true

// connAlive reports whether an idle keep-alive connection is still open:
// a non-blocking peek finds no data and no end of stream (a replica that
// closed it, or sent something unasked, makes it unusable). One system
// call, far cheaper than a request lost on a stale connection.
func connAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true // never wait for readability
	})
	return err == nil && alive
}
