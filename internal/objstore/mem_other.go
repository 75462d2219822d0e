//go:build !linux && !darwin

package objstore

import (
	"os"
	"unsafe"
)

const (
	pageSize      = 4096
	arenaSize     = 1 << 36
	hasStore      = false
	hasAnonRegion = false
)

func anonRegionFD(int64) (int, error)                { return -1, errNoStore }
func fileRegionFD(string, int64) (int, error)        { return -1, errNoStore }
func mmapFD(int, int64, int64, bool) ([]byte, error) { return nil, errNoStore }
func munmap([]byte)                                  {}
func closeFD(int)                                    {}
func reserve(uintptr) (unsafe.Pointer, error)        { return nil, errNoStore }
func mapFixed(int, int64, unsafe.Pointer, uintptr, bool, bool) (unsafe.Pointer, error) {
	return nil, errNoStore
}
func retire(unsafe.Pointer, uintptr) error     { return errNoStore }
func populateWrite([]byte) error               { return errNoPopulate }
func adviseHuge([]byte)                        {}
func machineMemory() int64                     { return 0 }
func regionLimit() int64                       { return 0 }
func diskFree(string) int64                    { return 0 }
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }
