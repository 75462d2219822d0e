package objstore

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"
)

// region is the node's shared memory, mapped read-write into the node
// daemon; other processes receive its descriptor over the store socket and
// map it themselves. On Linux it is an anonymous memfd whose size is
// sealed (no file to leak; it is freed when the last process holding it
// exits). On darwin, which has no memfd, and on Linux with
// RAYGO_OBJECT_STORE_REGION=file, it is a file created in the session
// directory and unlinked at once: it leaves nothing behind either, but
// its size cannot be sealed (a client could truncate it, and every
// process would fault on the lost pages), and its dirty pages may be
// written back to the file's disk.
type region struct {
	fd   int
	mem  []byte // the daemon's mapping of the whole region
	size int64
	kind string // "memfd" or "file"

	stopFault chan struct{}
	faultDone chan struct{}
}

// newRegion creates a region of size bytes (a multiple of PageSize):
// anonymous shared memory where the platform has it and file is false, or
// an unlinked file in dir ("" is the temporary directory).
func newRegion(size int64, file bool, dir string) (*region, error) {
	if size <= 0 || size%PageSize != 0 {
		return nil, fmt.Errorf("objstore: region size %d is not a positive multiple of %d", size, PageSize)
	}
	kind, fd, err := "memfd", -1, error(nil)
	if file || !hasAnonRegion {
		kind = "file"
		fd, err = fileRegionFD(dir, size)
	} else {
		fd, err = anonRegionFD(size)
	}
	if err != nil {
		return nil, err
	}
	mem, err := mmapFD(fd, 0, size, true)
	if err != nil {
		closeFD(fd)
		return nil, fmt.Errorf("objstore: map the shared region (%d bytes): %w", size, err)
	}
	adviseHuge(mem)
	return &region{fd: fd, mem: mem, size: size, kind: kind}, nil
}

// prefault populates the region's first limit bytes (all of it when limit
// is 0 or more than its size) in the background, 64 MiB at a time, so that
// first writes into it run at memory speed instead of taking a page fault
// (and a page zeroing) per 4 KiB. The allocator hands out the region from
// its start, so the front is what gets used first. It stops early on close.
func (r *region) prefault(limit int64) {
	if limit <= 0 || limit > r.size {
		limit = r.size
	}
	r.stopFault = make(chan struct{})
	r.faultDone = make(chan struct{})
	go func() {
		defer close(r.faultDone)
		const chunk = 64 << 20
		for off := int64(0); off < limit; off += chunk {
			select {
			case <-r.stopFault:
				return
			default:
			}
			end := min(off+chunk, limit)
			if err := populateWrite(r.mem[off:end]); err != nil {
				// No populate call (Linux before 5.14, darwin): touch one
				// byte per page instead.
				if errors.Is(err, errNoPopulate) {
					step := int64(os.Getpagesize()) // PageSize may span several
					for p := off; p < end; p += step {
						r.mem[p] = 0
					}
					continue
				}
				return
			}
		}
	}()
}

func (r *region) close() {
	if r.stopFault != nil {
		close(r.stopFault)
		<-r.faultDone
	}
	munmap(r.mem)
	closeFD(r.fd)
}

// ---------------------------------------------------------------- views

// Views give user code zero-copy slices whose misuse is loud. Each view is
// mapped at a fresh virtual address inside a reserved arena, and address
// ranges are never handed out twice: when a view is released its range is
// remapped PROT_NONE (not unmapped, so nothing else can be mapped there),
// and a later access through a stale slice faults at once instead of
// reading another object's bytes.
const (
	// MaxViews bounds the views one process holds at once (each is one
	// kernel memory map; the kernel's default limit is 65,530 per process).
	MaxViews = 16384
)

type viewArena struct {
	mu     sync.Mutex
	base   unsafe.Pointer // current arena (memory outside the Go heap)
	next   uintptr        // offset of the next free address in it
	end    uintptr        // the arena's size
	live   int
	arenas int
}

var views viewArena

// ErrTooManyViews is returned when a process holds MaxViews views.
var ErrTooManyViews = fmt.Errorf("objstore: more than %d buffers held at once; release some", MaxViews)

// mapView maps length bytes of fd at offset (page aligned) at a fresh
// address and returns the bytes and the mapped range. populate maps the
// pages at once (for a writer into the region, which would otherwise take
// a fault per page).
func mapView(fd int, offset, length int64, writable, populate bool) ([]byte, unsafe.Pointer, uintptr, error) {
	if length == 0 {
		return []byte{}, nil, 0, nil
	}
	span := uintptr((length + PageSize - 1) &^ (PageSize - 1))
	views.mu.Lock()
	if views.live >= MaxViews {
		views.mu.Unlock()
		return nil, nil, 0, ErrTooManyViews
	}
	if views.base == nil || views.next+span > views.end {
		size := uintptr(arenaSize)
		if span > size {
			size = span
		}
		p, err := reserve(size)
		if err != nil {
			views.mu.Unlock()
			return nil, nil, 0, fmt.Errorf("objstore: reserve view address space: %w", err)
		}
		views.base, views.next, views.end = p, 0, size
		views.arenas++
	}
	addr := unsafe.Add(views.base, views.next)
	views.next += span
	views.live++
	views.mu.Unlock()

	p, err := mapFixed(fd, offset, addr, span, writable, populate)
	if err != nil {
		views.mu.Lock()
		views.live--
		views.mu.Unlock()
		return nil, nil, 0, fmt.Errorf("objstore: map object view (%d bytes at %d): %w", length, offset, err)
	}
	return unsafe.Slice((*byte)(p), length), addr, span, nil
}

// unmapView turns a view's range into inaccessible reserved space.
func unmapView(addr unsafe.Pointer, span uintptr) {
	if span == 0 {
		return
	}
	if err := retire(addr, span); err != nil {
		// Leave it mapped rather than unmapped-and-reusable.
		fmt.Fprintf(os.Stderr, "objstore: could not retire a view at %#x: %v\n", addr, err)
	}
	views.mu.Lock()
	views.live--
	views.mu.Unlock()
}

// LiveViews reports how many views this process holds (for tests and leak
// checks).
func LiveViews() int {
	views.mu.Lock()
	defer views.mu.Unlock()
	return views.live
}

// InView reports whether p lies inside the view address space (tests
// assert zero copy with it).
func InView(p unsafe.Pointer) bool {
	views.mu.Lock()
	defer views.mu.Unlock()
	if views.base == nil {
		return false
	}
	a, base := uintptr(p), uintptr(views.base)
	return a >= base && a < base+views.end
}

// EnvCapacity names the environment variable that, when set, gives the
// default store size in bytes (for nodes started without a size).
const EnvCapacity = "RAYGO_OBJECT_STORE_MEMORY"

// DefaultCapacity is the default store size: $RAYGO_OBJECT_STORE_MEMORY
// when set, else 30% of the node's memory (its cgroup's limit when it
// has one on Linux, else the machine's; 8 GiB assumed where it is
// unknown), capped by what the region's backing can hold (/dev/shm on
// Linux, the temporary directory's disk on darwin), and never below
// 64 MiB.
func DefaultCapacity() (int64, error) {
	if v := os.Getenv(EnvCapacity); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < PageSize {
			return 0, fmt.Errorf("objstore: %s=%q: want a size in bytes of at least %d", EnvCapacity, v, PageSize)
		}
		return n &^ (PageSize - 1), nil
	}
	total := machineMemory()
	if total <= 0 {
		total = 8 << 30
	}
	c := total * 3 / 10
	if free := regionLimit(); free > 0 && free < c {
		c = free
	}
	return max(c, 64<<20) &^ (PageSize - 1), nil
}
