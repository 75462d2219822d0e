package framed

import "golang.org/x/sys/unix"

func peerCredentials(fd int) (peerCred, error) {
	c, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	return peerCred{Uid: c.Uid, Pid: c.Pid}, nil
}
