//go:build !linux && !darwin

package framed

import (
	"fmt"
	"runtime"

	"github.com/raygo/raygo/internal/localsock"
)

func peerCredentials(int) (peerCred, error) {
	return peerCred{}, fmt.Errorf("%w: no peer-credential check on %s", localsock.ErrUnsupported, runtime.GOOS)
}
