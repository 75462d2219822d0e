package framed

import "golang.org/x/sys/unix"

func peerCredentials(fd int) (peerCred, error) {
	x, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return peerCred{}, err
	}
	// The pid only names the peer in messages; a kernel without
	// LOCAL_PEERPID leaves it 0.
	pid, _ := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	return peerCred{Uid: x.Uid, Pid: int32(pid)}, nil
}
