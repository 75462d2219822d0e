//go:build !linux

package objmgr

import (
	"errors"
	"net"
)

// canSendFile: this platform sends chunks with write(2) (see
// sendfile_linux.go).
const canSendFile = false

func sendFile(net.Conn, int, int64, int64) error {
	return errors.New("objmgr: sendfile is not used on this platform")
}
