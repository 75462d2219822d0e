//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package proxy

import "net"

// canCheckConns is false where connAlive cannot peek at a socket: every
// request then goes through http.Transport.
const canCheckConns = false

func connAlive(net.Conn) bool { return false }
