package objstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/framed"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Client is a process's connection to its node's store. It maps the
// shared region once (for the process's own copies in and out) and maps
// each Buffer handed to user code on its own (see mapView). Safe for
// concurrent use.
type Client struct {
	fc  *framed.Conn
	fd  int    // the region's descriptor
	mem []byte // this process's mapping of the whole region
	// populated marks the region's populateChunk-sized pieces this
	// process has mapped writable (populate), one bit each: they stay
	// mapped, and asking again would walk their pages for nothing.
	populated []atomic.Uint64

	mu       sync.Mutex
	seq      uint64                         // guarded by mu
	pending  map[uint64]chan *pb.StoreReply // guarded by mu
	buffers  map[*bufferState]struct{}      // guarded by mu; live Buffers and Writers
	err      error                          // guarded by mu; set once the connection is gone
	done     chan struct{}
	readerWG sync.WaitGroup
}

// ErrNotFound: the object is not in this node's store.
var ErrNotFound = errors.New("objstore: object not in this node's store")

// ErrConnLost: the client's connection to its node's store broke (the
// node daemon is gone or going); every later call fails with it.
var ErrConnLost = errors.New("objstore: connection to the node's store lost")

// Dial connects to the store serving the local socket name, proving
// the cluster token; client names this process in the store's reports.
// Objects it creates have no known owner (DialAs names one).
func Dial(name, token, client string) (*Client, error) { return DialAs(name, token, Who{Name: client}) }

// Who is a store client: its name in the store's reports, its job and
// its worker id. The worker id owns the objects the client creates,
// unless a create names another owner (Info.OwnerID): they are freed when
// the owner's process is gone (its connection closes, or its node daemon
// is told: objstore.md, "Job end").
type Who struct {
	Name   string
	Job    ids.ID
	Worker ids.ID
}

// DialAs is Dial with the client's job and worker id.
func DialAs(name, token string, who Who) (*Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), framed.HelloTimeout)
	defer cancel()
	hello := &pb.FramedHello{Purpose: storePurpose, Name: who.Name}
	if !who.Job.IsNil() {
		hello.JobId = who.Job.Bytes()
	}
	if !who.Worker.IsNil() {
		hello.WorkerId = who.Worker.Bytes()
	}
	fc, err := framed.DialHello(ctx, name, token, hello)
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	c := &Client{fc: fc, fd: -1, pending: map[uint64]chan *pb.StoreReply{}, buffers: map[*bufferState]struct{}{}, done: make(chan struct{})}
	if err := c.greeting(); err != nil {
		fc.Close()
		closeFD(c.fd)
		return nil, err
	}
	c.readerWG.Add(1)
	go c.readLoop()
	return c, nil
}

// greeting takes the store's first message: its size and the region's fd.
func (c *Client) greeting() error {
	var first pb.StoreReply
	fd, err := c.fc.ReadWithFD(&first)
	if err != nil {
		return fmt.Errorf("objstore: greeting: %w", err)
	}
	c.fd = fd
	if fd < 0 {
		return errors.New("objstore: the store sent no region")
	}
	capacity := first.GetCapacity()
	mem, err := mmapFD(c.fd, 0, capacity, true)
	if err != nil {
		return fmt.Errorf("objstore: map the shared region (%d bytes): %w", capacity, err)
	}
	c.mem = mem
	c.populated = make([]atomic.Uint64, (capacity/populateChunk+63)/64)
	return nil
}

func (c *Client) readLoop() {
	defer c.readerWG.Done()
	var err error
	for {
		reply := &pb.StoreReply{}
		if err = c.fc.Read(reply); err != nil {
			break
		}
		c.mu.Lock()
		ch := c.pending[reply.Seq]
		delete(c.pending, reply.Seq)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %w", ErrConnLost, err)
	c.mu.Unlock()
	close(c.done)
}

// call sends a request and waits for its reply.
func (c *Client) call(req *pb.StoreRequest) (*pb.StoreReply, error) {
	ch := make(chan *pb.StoreReply, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.seq++
	req.Seq = c.seq // 0 means no reply
	c.pending[req.Seq] = ch
	c.mu.Unlock()
	if err := c.send(req); err != nil {
		c.mu.Lock()
		delete(c.pending, req.Seq)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case r := <-ch:
		if e := r.GetError(); e != nil {
			return r, errs.FromInfo(e)
		}
		return r, nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return nil, c.err
	}
}

func (c *Client) send(req *pb.StoreRequest) error {
	if err := c.fc.Write(req); err != nil {
		return fmt.Errorf("objstore: send to the node's store: %w", err)
	}
	return nil
}

func idsMsg(idList ...ids.ID) *pb.StoreObjectIDs {
	m := &pb.StoreObjectIDs{ObjectIds: make([][]byte, len(idList))}
	for i, id := range idList {
		m.ObjectIds[i] = id.Bytes()
	}
	return m
}

// Info describes an object being created.
type Info struct {
	Owner     string // the owner's address
	OwnerID   ids.ID // the owner's worker id when it is not this client's (a task's returns, a secondary copy)
	CallSite  string // the function that created it
	Secondary bool   // a copy of an object whose primary lives on another node
}

func (c *Client) create(id ids.ID, size int64, info Info) (*pb.StoreLocation, error) {
	create := &pb.StoreCreate{ObjectId: id.Bytes(), Size: size, OwnerAddress: info.Owner, CallSite: info.CallSite, Secondary: info.Secondary}
	if !info.OwnerID.IsNil() {
		create.OwnerId = info.OwnerID.Bytes()
	}
	r, err := c.call(&pb.StoreRequest{Op: &pb.StoreRequest_Create{Create: create}})
	if err != nil {
		return nil, err
	}
	if len(r.Locations) != 1 {
		return nil, errs.Systemf("objstore: create reply has %d locations", len(r.Locations))
	}
	return r.Locations[0], nil
}

// Put creates an object from the concatenation of parts and seals it.
// Putting an object that is already in the store is a no-op.
func (c *Client) Put(id ids.ID, parts [][]byte, info Info) error {
	var size int64
	for _, p := range parts {
		size += int64(len(p))
	}
	return c.PutFill(id, size, info, func(dst []byte) error {
		copyParts(dst, parts)
		return nil
	})
}

// withCreated gives fn a created object's memory (this process's own
// writes, through its mapping of the region).
func (c *Client) withCreated(loc *pb.StoreLocation, fn func([]byte) error) error {
	if loc.Path == "" {
		dst := c.mem[loc.Offset : loc.Offset+loc.Size : loc.Offset+loc.Size]
		c.populate(loc.Offset, dst)
		return fn(dst)
	}
	return withFileMap(loc.Path, loc.Size, true, fn)
}

// PutFill creates an object of size bytes, lets fill write it, and seals
// it; a fill error aborts the object. An object already present is left
// as it is and fill is not called. fill writes through this process's own
// mapping: it is for the runtime's copies; user code writes through a
// Writer (Create), whose memory faults once sealed.
func (c *Client) PutFill(id ids.ID, size int64, info Info, fill func([]byte) error) error {
	loc, err := c.create(id, size, info)
	if err != nil || loc.Exists {
		return err
	}
	if err := c.withCreated(loc, fill); err != nil {
		c.abort(id)
		return err
	}
	return c.seal(id)
}

// withFileMap maps an object's own file for the duration of fn.
func withFileMap(path string, size int64, writable bool, fn func([]byte) error) error {
	if size == 0 {
		return fn(nil)
	}
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("objstore: open object file: %w", err)
	}
	defer f.Close()
	m, err := mmapFD(int(f.Fd()), 0, size, writable)
	if err != nil {
		return fmt.Errorf("objstore: map object file %s: %w", path, err)
	}
	defer munmap(m)
	return fn(m)
}

// populateAbove is the size from which a writer populates its mapping of
// an object's pages in one call before writing, instead of taking a page
// fault per 4 KiB.
const populateAbove = 1 << 20

// populateChunk is the granule in which a client remembers what it has
// populated.
const populateChunk = 2 << 20

// populateCall is populateWrite (tests count the calls).
var populateCall = populateWrite

// populate maps dst, at offset off of the region, writable in this
// process (allocating its pages in the region if no process has yet)
// with one call per run of pieces not populated before; without the call
// (Linux before 5.14, darwin) it just takes the faults. Pieces only
// partly covered by dst are left to fault.
func (c *Client) populate(off int64, dst []byte) {
	if len(dst) < populateAbove {
		return
	}
	first := (off + populateChunk - 1) / populateChunk
	end := (off + int64(len(dst))) / populateChunk
	for i := first; i < end; {
		if c.isPopulated(i) {
			i++
			continue
		}
		j := i + 1
		for j < end && !c.isPopulated(j) {
			j++
		}
		lo, hi := i*populateChunk-off, j*populateChunk-off
		if populateCall(dst[lo:hi]) == nil {
			for k := i; k < j; k++ {
				c.populated[k/64].Or(1 << (k % 64))
			}
		}
		i = j
	}
}

func (c *Client) isPopulated(chunk int64) bool {
	return c.populated[chunk/64].Load()&(1<<(chunk%64)) != 0
}

// copyParts copies parts into dst, splitting large copies across CPUs.
func copyParts(dst []byte, parts [][]byte) {
	const parallelAbove = 8 << 20
	for _, p := range parts {
		n := len(p)
		workers := min(runtime.GOMAXPROCS(0), 8)
		if n < parallelAbove || workers < 2 {
			copy(dst, p)
		} else {
			var wg sync.WaitGroup
			chunk := (n/workers + PageSize - 1) &^ (PageSize - 1)
			for lo := 0; lo < n; lo += chunk {
				hi := min(lo+chunk, n)
				wg.Add(1)
				go func() {
					defer wg.Done()
					copy(dst[lo:hi], p[lo:hi])
				}()
			}
			wg.Wait()
		}
		dst = dst[n:]
	}
}

func (c *Client) seal(id ids.ID) error {
	_, err := c.call(&pb.StoreRequest{Op: &pb.StoreRequest_Seal{Seal: idsMsg(id)}})
	return err
}

func (c *Client) abort(id ids.ID) {
	c.send(&pb.StoreRequest{Op: &pb.StoreRequest_Abort{Abort: idsMsg(id)}})
}

// Release drops this process's pins (sent without waiting).
func (c *Client) Release(idList ...ids.ID) {
	c.send(&pb.StoreRequest{Op: &pb.StoreRequest_Release{Release: idsMsg(idList...)}})
}

// pin asks the store for an object, pinning it for this process.
func (c *Client) pin(id ids.ID) (*pb.StoreLocation, error) {
	r, err := c.call(&pb.StoreRequest{Op: &pb.StoreRequest_Get{Get: idsMsg(id)}})
	if err != nil {
		return nil, err
	}
	if len(r.Locations) != 1 || !r.Locations[0].Found {
		return nil, ErrNotFound
	}
	return r.Locations[0], nil
}

// Pin returns an object's bytes, aliasing shared memory, valid until
// release is called. It is for the process's own decoding, which never
// keeps the bytes; user code gets a Buffer (Get).
func (c *Client) Pin(id ids.ID) (data []byte, release func(), err error) {
	loc, err := c.pin(id)
	if err != nil {
		return nil, nil, err
	}
	if loc.Path == "" {
		return c.mem[loc.Offset : loc.Offset+loc.Size : loc.Offset+loc.Size], func() { c.Release(id) }, nil
	}
	if loc.Size == 0 {
		return nil, func() { c.Release(id) }, nil
	}
	f, err := os.Open(loc.Path)
	if err != nil {
		c.Release(id)
		return nil, nil, fmt.Errorf("objstore: open object file: %w", err)
	}
	defer f.Close()
	m, err := mmapFD(int(f.Fd()), 0, loc.Size, false)
	if err != nil {
		c.Release(id)
		return nil, nil, fmt.Errorf("objstore: map object file %s: %w", loc.Path, err)
	}
	return m, func() { munmap(m); c.Release(id) }, nil
}

// ---------------------------------------------------------------- buffers

// bufferState is what a Buffer's cleanup needs (not the Buffer itself).
type bufferState struct {
	c        *Client
	id       ids.ID
	addr     unsafe.Pointer
	span     uintptr
	pinned   bool // a reader pin to release (writers have none)
	released bool // guarded by c.mu
}

// retire unmaps the view and drops the pin, once.
func (st *bufferState) retire() bool {
	st.c.mu.Lock()
	if st.released {
		st.c.mu.Unlock()
		return false
	}
	st.released = true
	delete(st.c.buffers, st)
	st.c.mu.Unlock()
	unmapView(st.addr, st.span)
	if st.pinned {
		st.c.Release(st.id)
	}
	return true
}

// Buffer is a zero-copy view of a sealed object in shared memory.
//
// Lifetime: Bytes stays valid until Release (or until the Buffer is
// garbage collected, or the process's connection to the store closes).
// The view is mapped at an address never reused in this process, and
// Release makes it inaccessible: touching a released Buffer's bytes faults
// at once ("unexpected fault address"), it never reads another object.
type Buffer struct {
	st   *bufferState
	data []byte
}

// Bytes returns the object's bytes. They are read-only: writing faults.
func (b *Buffer) Bytes() []byte { return b.data }

// Release ends the view. It is safe to call more than once.
func (b *Buffer) Release() { b.st.retire() }

// Get returns a zero-copy Buffer of an object, pinned until released.
func (c *Client) Get(id ids.ID) (*Buffer, error) {
	loc, err := c.pin(id)
	if err != nil {
		return nil, err
	}
	data, addr, span, err := c.mapLocation(loc, false)
	if err != nil {
		c.Release(id)
		return nil, err
	}
	return c.newBuffer(id, data, addr, span, true), nil
}

func (c *Client) mapLocation(loc *pb.StoreLocation, writable bool) ([]byte, unsafe.Pointer, uintptr, error) {
	if loc.Path == "" {
		return mapView(c.fd, loc.Offset, loc.Size, writable, writable)
	}
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(loc.Path, flag, 0)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("objstore: open object file: %w", err)
	}
	// The mapping keeps the file open; its pages come as they are used.
	defer f.Close()
	return mapView(int(f.Fd()), 0, loc.Size, writable, false)
}

func (c *Client) newBuffer(id ids.ID, data []byte, addr unsafe.Pointer, span uintptr, pinned bool) *Buffer {
	st := &bufferState{c: c, id: id, addr: addr, span: span, pinned: pinned}
	c.mu.Lock()
	c.buffers[st] = struct{}{}
	c.mu.Unlock()
	b := &Buffer{st: st, data: data}
	runtime.AddCleanup(b, func(st *bufferState) { st.retire() }, st)
	return b
}

// Writer is an object being created: fill Bytes, then Seal (or Abort).
// Bytes is valid until Seal or Abort; after either, touching it faults.
type Writer struct {
	c    *Client
	id   ids.ID
	buf  *Buffer
	done bool
}

// Create reserves size bytes for a new object. When the object already
// exists the Writer's Exists reports it and Bytes is nil.
func (c *Client) Create(id ids.ID, size int64, info Info) (*Writer, error) {
	loc, err := c.create(id, size, info)
	if err != nil {
		return nil, err
	}
	w := &Writer{c: c, id: id}
	if loc.Exists {
		w.done = true
		return w, nil
	}
	data, addr, span, err := c.mapLocation(loc, true)
	if err != nil {
		c.abort(id)
		return nil, err
	}
	w.buf = c.newBuffer(id, data, addr, span, false)
	return w, nil
}

// Exists reports that the object was already in the store (nothing to write).
func (w *Writer) Exists() bool { return w.buf == nil }

// Bytes is the object's memory to fill.
func (w *Writer) Bytes() []byte {
	if w.buf == nil {
		return nil
	}
	return w.buf.data
}

// Seal makes the object immutable and visible.
func (w *Writer) Seal() error {
	if w.done {
		return nil
	}
	w.done = true
	w.buf.Release()
	return w.c.seal(w.id)
}

// Abort drops the object.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.buf.Release()
	w.c.abort(w.id)
}

// Close ends the connection: the store releases this process's pins and
// drops objects it was still creating. Live Buffers are retired first, so
// touching them afterwards faults.
func (c *Client) Close() {
	c.mu.Lock()
	live := make([]*bufferState, 0, len(c.buffers))
	for st := range c.buffers {
		live = append(live, st)
	}
	c.mu.Unlock()
	for _, st := range live {
		st.retire()
	}
	c.fc.Close()
	c.readerWG.Wait()
	munmap(c.mem)
	closeFD(c.fd)
}
