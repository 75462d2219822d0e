//go:build linux || darwin

package objstore

import "golang.org/x/sys/unix"

func ftruncate(fd int, size int64) error { return unix.Ftruncate(fd, size) }
