package framed

// peerCred is what the kernel says about the process at the other end of
// a unix socket: its user and, where the platform tells, its pid (0 when
// it does not).
//
// peerCredentials(fd) reads it for the connected socket fd: SO_PEERCRED on
// Linux; LOCAL_PEERCRED (the effective uid, as getpeereid returns) and
// LOCAL_PEERPID on darwin. Elsewhere it fails, naming the platform, and
// Hello refuses the peer: without a kernel's word on the peer's user,
// framed sockets are not offered (see package localsock).
type peerCred struct {
	Uid uint32
	Pid int32
}
