package objstore

import (
	"os"

	"golang.org/x/sys/unix"
)

const (
	pageSize      = 16384   // Apple silicon's page (a multiple of Intel's 4 KiB)
	arenaSize     = 1 << 36 // 64 GiB of address space per arena
	hasStore      = true
	hasAnonRegion = false // no memfd: the region is an unlinked file
	mapPopulate   = 0
)

func anonRegionFD(int64) (int, error) { return -1, errNoAnon }

func populateWrite([]byte) error { return errNoPopulate }

func adviseHuge([]byte) {}

func machineMemory() int64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return int64(n)
}

// regionLimit: the region is a file in the temporary directory.
func regionLimit() int64 { return diskFree(os.TempDir()) }

// preallocate reserves the blocks (F_PREALLOCATE) so a full disk fails
// here, then sets the size.
func preallocate(f *os.File, size int64) error {
	st := unix.Fstore_t{Flags: unix.F_ALLOCATEALL, Posmode: unix.F_PEOFPOSMODE, Length: size}
	if err := unix.FcntlFstore(f.Fd(), unix.F_PREALLOCATE, &st); err != nil {
		st.Flags = unix.F_ALLOCATECONTIG // some filesystems want this
		if err := unix.FcntlFstore(f.Fd(), unix.F_PREALLOCATE, &st); err != nil && err != unix.ENOTSUP {
			return err
		}
	}
	return f.Truncate(size)
}
