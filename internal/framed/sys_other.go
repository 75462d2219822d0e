//go:build !unix

package framed

import (
	"fmt"
	"runtime"
	"time"

	"github.com/raygo/raygo/internal/localsock"
)

// Without local sockets (see package localsock) no framed connection is
// ever made here; these keep the package building.

func (s *source) poll([]byte, time.Time) (int, error, bool) { return 0, nil, false }

func unixRights(int) []byte { return nil }

func rightsSpace(int) int { return 0 }

func parseUnixRights([]byte) ([]int, error) {
	return nil, fmt.Errorf("%w: no descriptor passing on %s", localsock.ErrUnsupported, runtime.GOOS)
}

func closeFD(int) {}
