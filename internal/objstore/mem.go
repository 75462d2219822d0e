package objstore

import (
	"errors"
	"fmt"
	"runtime"
)

// The store's memory comes from the operating system through a few calls
// that differ by platform; mem_linux.go, mem_darwin.go and mem_other.go
// define them with the same names (mem_unix.go holds what Linux and darwin
// share):
//
//	pageSize                    object alignment: a multiple of the OS page
//	arenaSize                   address space reserved per view arena
//	hasStore                    whether the platform has a store at all
//	hasAnonRegion               whether anonRegionFD can work
//	anonRegionFD(size)          a descriptor of size bytes of anonymous
//	                            shared memory that clients cannot resize
//	                            (Linux: a sealed memfd)
//	fileRegionFD(dir, size)     a descriptor of an unlinked file of size
//	                            bytes in dir (darwin's region; Linux's with
//	                            RAYGO_OBJECT_STORE_REGION=file)
//	mmapFD(fd, off, n, w)       a MAP_SHARED mapping
//	munmap(b), closeFD(fd)
//	reserve(n)                  n bytes of inaccessible address space
//	mapFixed(fd, off, at, n, w, populate)
//	                            a MAP_SHARED mapping at a reserved address
//	retire(at, n)               that range made inaccessible again
//	populateWrite(b)            fault b's pages in writable in one call,
//	                            or errNoPopulate
//	adviseHuge(b)               ask for huge pages where the OS offers them
//	machineMemory()             the machine's memory in bytes, 0 if unknown
//	regionLimit()               what the region's backing can hold, 0 if
//	                            no limit is known
//	diskFree(dir)               free bytes on dir's filesystem
//	preallocate(f, n)           reserve n bytes of disk for f up front
//
// Where the platform has no shared-memory store (windows and the BSDs)
// each of them fails with an error wrapping errNoStore.

// PageSize is the alignment of every object in the shared region, so that
// any object can be mapped on its own (see views): 4 KiB on Linux, 16 KiB
// on darwin (Apple silicon's page).
const PageSize = pageSize

// errNoPopulate: the OS cannot populate a range in one call; touch it.
var errNoPopulate = errors.New("objstore: no populate call")

// errNoAnon: the platform has no anonymous shared memory to pass (see
// hasAnonRegion); the region is a file.
var errNoAnon = fmt.Errorf("objstore: no anonymous shared memory on %s", runtime.GOOS)

// errNoStore is wrapped by every platform call where there is no
// shared-memory store.
var errNoStore = fmt.Errorf("objstore: the shared-memory object store needs linux or darwin, not %s (a process here reaches objects through its node daemon's gRPC endpoint): %w",
	runtime.GOOS, errors.ErrUnsupported)

// ErrUnsupported is wrapped by New and Dial where the platform has no
// shared-memory store (see errNoStore). It wraps errors.ErrUnsupported.
var ErrUnsupported = errNoStore

// Supported reports whether this platform can run a node's store (Linux
// and darwin); elsewhere the error wraps ErrUnsupported and says so.
func Supported() error {
	if !hasStore {
		return errNoStore
	}
	return nil
}
