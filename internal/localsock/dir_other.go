//go:build !linux && !darwin

package localsock

import "fmt"

func privateDir(string) error { return fmt.Errorf("%w (%s)", ErrUnsupported, offReason()) }

func isRefused(error) bool { return false }
