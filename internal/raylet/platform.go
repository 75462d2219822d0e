package raylet

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/raygo/raygo/internal/localsock"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/proc"
)

// Supported reports whether a node daemon can run on this machine: it
// needs local unix sockets with peer credentials and descriptor passing
// (for its object store and its workers' push streams), a shared-memory
// region to pass (memfd, or a file on darwin), and a parent-death pipe
// for its workers. Linux and darwin have them all. Elsewhere (windows)
// the error, wrapping errors.ErrUnsupported, names the platform and what
// is missing; RAYGO_LOCAL_SOCKETS=off makes Linux and darwin answer the
// same way. A process on such a machine can still join a cluster running
// elsewhere as a driver (see docs/architecture.md, Platforms).
func Supported() error {
	var missing []string
	if m, err := localsock.CurrentMode(); err != nil {
		return fmt.Errorf("raylet: %w", err)
	} else if m == localsock.Off {
		why := "local unix sockets with peer credentials and descriptor passing"
		if localsock.TurnedOff() {
			why += " (turned off by " + localsock.EnvMode + "=off)"
		}
		missing = append(missing, why)
	}
	if err := objstore.Supported(); err != nil {
		missing = append(missing, "a shared-memory region it can pass to other processes")
	}
	if !proc.LifelineSupported() {
		missing = append(missing, "a parent-death pipe its workers inherit")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("raylet: a node daemon cannot run on %s/%s: it needs %s: %w",
		runtime.GOOS, runtime.GOARCH, strings.Join(missing, "; "), errors.ErrUnsupported)
}
