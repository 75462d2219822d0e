//go:build linux || darwin

package objstore

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

func fileRegionFD(dir string, size int64) (int, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "raygo-object-store-*")
	if err != nil {
		return -1, fmt.Errorf("objstore: create the region's file: %w", err)
	}
	// Unlinked at once: the region lives while a process holds it, and
	// nothing is left on disk however the daemon ends.
	os.Remove(f.Name())
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return -1, fmt.Errorf("objstore: region file: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.Fchmod(fd, 0o600); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("objstore: region file: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("objstore: size the region's file in %s to %d bytes: %w", dir, size, err)
	}
	return fd, nil
}

func mmapFD(fd int, off, length int64, writable bool) ([]byte, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	return unix.Mmap(fd, off, int(length), prot, unix.MAP_SHARED)
}

func munmap(b []byte) { _ = unix.Munmap(b) }

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

func reserve(size uintptr) (unsafe.Pointer, error) {
	return unix.MmapPtr(-1, 0, nil, size, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
}

func mapFixed(fd int, off int64, addr unsafe.Pointer, span uintptr, writable, populate bool) (unsafe.Pointer, error) {
	prot := unix.PROT_READ
	if writable {
		prot |= unix.PROT_WRITE
	}
	flags := unix.MAP_SHARED | unix.MAP_FIXED
	if populate {
		flags |= mapPopulate
	}
	return unix.MmapPtr(fd, off, addr, span, prot, flags)
}

func retire(addr unsafe.Pointer, span uintptr) error {
	_, err := unix.MmapPtr(-1, 0, addr, span, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE|unix.MAP_FIXED)
	return err
}

func diskFree(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
