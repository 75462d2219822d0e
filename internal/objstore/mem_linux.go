package objstore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/raygo/raygo/internal/memmonitor"
)

const (
	pageSize      = 4096
	arenaSize     = 1 << 40 // virtual address space; costs no memory
	hasStore      = true
	hasAnonRegion = true
	mapPopulate   = unix.MAP_POPULATE
)

// anonRegionFD makes a memfd (no file in /dev/shm to leak; freed when the
// last process holding it exits) and seals its size: clients receive the
// descriptor read-write, and a client that could shrink it would make
// every other process fault on the lost pages.
func anonRegionFD(size int64) (int, error) {
	fd, err := unix.MemfdCreate("raygo-object-store", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("objstore: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("objstore: size the shared region to %d bytes: %w", size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("objstore: seal the shared region's size: %w", err)
	}
	return fd, nil
}

// populateWrite uses MADV_POPULATE_WRITE (Linux 5.14); older kernels
// answer EINVAL.
func populateWrite(b []byte) error {
	err := unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	if errors.Is(err, unix.EINVAL) {
		return errNoPopulate
	}
	return err
}

// adviseHuge: where the machine allows transparent huge pages for shared
// memory (/sys/kernel/mm/transparent_hugepage/shmem_enabled: advise),
// 2 MiB pages cut page faults 512-fold; elsewhere this is a no-op.
func adviseHuge(b []byte) { _ = unix.Madvise(b, unix.MADV_HUGEPAGE) }

// machineMemory is the memory this node may use: its cgroup's limit when
// it has one (memmonitor.NodeLimit; the store's pages are charged to the
// cgroup of the processes that touch them, all of them in the node
// daemon's), else the machine's total.
func machineMemory() int64 {
	if l, err := memmonitor.NodeLimit(); err == nil && l.Bytes > 0 {
		return l.Bytes
	}
	var info unix.Sysinfo_t
	if unix.Sysinfo(&info) != nil {
		return 0
	}
	return int64(info.Totalram) * int64(info.Unit)
}

// regionLimit: a memfd is charged to shared memory, which /dev/shm's size
// bounds.
func regionLimit() int64 { return diskFree("/dev/shm") }

// preallocate reserves the blocks (fallocate), so a full disk fails here
// and not later as a fault while a writer copies into its mapping.
func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return f.Truncate(size)
	}
	return err
}
