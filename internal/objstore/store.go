package objstore

import (
	"container/list"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore/alloc"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/units"
)

// Config configures a node's store.
type Config struct {
	// Capacity is the shared region's size in bytes (rounded down to
	// PageSize).
	Capacity int64
	// SpillDir is where primary copies go when the region is full, and
	// where objects larger than the region live. Empty disables both.
	SpillDir string
	// Prefault populates the region's first PrefaultLimit bytes in the
	// background at start, so that first writes run at memory speed.
	Prefault bool
	// PrefaultLimit bounds what Prefault populates (default
	// DefaultPrefaultLimit), so that a large store does not commit its
	// whole size at start; the rest is populated as it is first written.
	PrefaultLimit int64
	// PutTimeout bounds how long a create waits for space to free up
	// when the region is full of objects that cannot be spilled (being
	// written, or mapped by readers). Default 10 s.
	PutTimeout time.Duration
	// NodeID names the node in errors, reports and spill directories.
	NodeID ids.ID
	// Token authenticates socket clients.
	Token string
	// SocketName is the local unix socket the store serves on (see
	// SocketName); empty serves no socket.
	SocketName string
	// FileRegion backs the region with an unlinked file in RegionDir
	// instead of a sealed memfd, as on darwin, which has no memfd (see
	// region). RAYGO_OBJECT_STORE_REGION=file (EnvRegion) sets it too.
	FileRegion bool
	// RegionDir is where a file-backed region's file is made (the
	// session directory); empty means the temporary directory.
	RegionDir string
	Log       *slog.Logger
}

// EnvRegion names the environment variable that chooses the region's
// backing: "memfd" (Linux's default, and only there) or "file" (darwin's
// only choice: an unlinked file in Config.RegionDir). Unset or empty
// means the platform's default.
const EnvRegion = "RAYGO_OBJECT_STORE_REGION"

// fileRegion says whether the region is to be a file: cfg.FileRegion, or
// EnvRegion. A value the platform cannot do, or does not know, is an error
// naming the variable.
func fileRegion(cfg Config) (bool, error) {
	switch v := os.Getenv(EnvRegion); v {
	case "":
		return cfg.FileRegion || !hasAnonRegion, nil
	case "file":
		return true, nil
	case "memfd":
		if !hasAnonRegion {
			return false, errs.Invalidf("objstore: %s=memfd: %v", EnvRegion, errNoAnon)
		}
		return cfg.FileRegion, nil
	default:
		return false, errs.Invalidf("objstore: %s=%q: want \"memfd\" or \"file\"", EnvRegion, v)
	}
}

// DefaultPrefaultLimit is how much of a store Prefault populates when
// Config.PrefaultLimit is unset: 1 GiB.
const DefaultPrefaultLimit = 1 << 30

// Store is a node's object store: sealed, immutable objects in a shared
// memory region that every process on the node maps, with pinning,
// eviction of secondary copies, spilling to disk and back-pressure.
// It is safe for concurrent use.
type Store struct {
	cfg   Config
	reg   *region
	spill *spillDir // nil: spilling disabled
	log   *slog.Logger

	mu       sync.Mutex
	alloc    *alloc.Allocator                            // guarded by mu
	objects  map[ids.ID]*entry                           // guarded by mu
	lru      list.List                                   // guarded by mu; sealed, unpinned, in-memory objects; front = most recently used
	changed  chan struct{}                               // guarded by mu; closed and replaced when space may have freed
	clients  map[*conn]struct{}                          // guarded by mu
	counts   struct{ spills, restores, evictions int64 } // guarded by mu
	evicted  []Evicted                                   // guarded by mu; secondary copies evicted, not yet taken (fill.go)
	spillErr error                                       // guarded by mu; the last spill failure
	closed   bool                                        // guarded by mu
	dead     deadOwners                                  // guarded by mu
	byOwner  ownerIndex                                  // guarded by mu; the objects of each known owner

	srv  *server
	self *conn // the daemon's own use (gRPC puts and reads for remote processes)
}

// entry is one object in the store.
type entry struct {
	id        ids.ID
	size      int64
	owner     string // the owner's address, for reports
	ownerID   ids.ID // the owner's worker id: its death frees the object (Nil: unknown, never)
	callSite  string
	secondary bool

	sealed  bool
	creator *conn         // while being created
	done    chan struct{} // closed when sealed or dropped: gets of an object being created wait on it

	off      int64  // offset in the region, or -1 when not in memory
	file     string // the object's own file (objects larger than the region)
	spilled  string // a copy on disk, written when the region was full
	pins     int    // readers mapping it, plus the store's own (spill, restore)
	deleted  bool   // freed by its owner while pinned: goes when unpinned
	elem     *list.Element
	restored chan struct{} // non-nil while a restore from disk runs
}

func (e *entry) inMemory() bool { return e.off >= 0 }

// New creates the store, its region and spill directory, and serves its
// socket when cfg.SocketName is set.
func New(cfg Config) (*Store, error) {
	cfg.Capacity &^= PageSize - 1
	if cfg.Capacity < PageSize {
		return nil, errs.Invalidf("objstore: capacity %d bytes is below one page (%d)", cfg.Capacity, PageSize)
	}
	if cfg.PutTimeout <= 0 {
		cfg.PutTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a, err := alloc.New(cfg.Capacity, PageSize)
	if err != nil {
		return nil, err
	}
	file, err := fileRegion(cfg)
	if err != nil {
		return nil, err
	}
	reg, err := newRegion(cfg.Capacity, file, cfg.RegionDir)
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, reg: reg, alloc: a, objects: map[ids.ID]*entry{}, changed: make(chan struct{}),
		clients: map[*conn]struct{}{}, log: cfg.Log.With("component", "objstore")}
	s.self = &conn{s: s, client: "node daemon", creating: map[ids.ID]*entry{}, pins: map[ids.ID]int{}}
	if cfg.SpillDir != "" {
		if s.spill, err = newSpillDir(cfg.SpillDir, cfg.NodeID.String()); err != nil {
			reg.close()
			return nil, err
		}
	}
	if cfg.Prefault {
		if cfg.PrefaultLimit <= 0 {
			cfg.PrefaultLimit = DefaultPrefaultLimit
		}
		reg.prefault(cfg.PrefaultLimit)
	}
	if cfg.SocketName != "" {
		if s.srv, err = serve(s, cfg.SocketName); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Capacity is the region's size.
func (s *Store) Capacity() int64 { return s.cfg.Capacity }

// SpillPath is this daemon's spill directory ("" when spilling is off).
func (s *Store) SpillPath() string {
	if s.spill == nil {
		return ""
	}
	return s.spill.dir
}

// RegionKind says what backs the shared region: "memfd" or "file" (see
// Config.FileRegion).
func (s *Store) RegionKind() string { return s.reg.kind }

// Region returns the region's descriptor and the daemon's mapping of it,
// valid until Close. Bytes that Read hands out from the region (not from
// a spilled object's own file) lie at the same offset in both, so a
// sender can hand them to sendfile(2).
func (s *Store) Region() (fd int, mem []byte) { return s.reg.fd, s.reg.mem }

// Close stops the socket, drops every object and deletes the spill
// directory. Processes that still map the region keep their memory until
// they exit (the region lives while any process holds it).
func (s *Store) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.signalLocked() // creates waiting for space give up
	s.mu.Unlock()
	if s.srv != nil {
		s.srv.close()
	}
	s.reg.close()
	if s.spill != nil {
		s.spill.remove()
	}
}

// signalLocked wakes creates waiting for space.
func (s *Store) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// ---------------------------------------------------------------- create

// create reserves space for an object written by c. A create of an object
// that exists answers exists (ids are unique and objects immutable, so a
// retried task writes the same bytes).
func (s *Store) create(c *conn, req *pb.StoreCreate) (*pb.StoreLocation, error) {
	id, ok := ids.FromBytes(req.GetObjectId())
	if !ok {
		return nil, errs.Invalidf("objstore: create needs an object id")
	}
	size := req.GetSize()
	if size < 0 {
		return nil, errs.Invalidf("objstore: create %s with negative size %d", id, size)
	}
	ownerID := c.worker
	if len(req.GetOwnerId()) > 0 {
		if ownerID, ok = ids.FromBytes(req.GetOwnerId()); !ok {
			return nil, errs.Invalidf("objstore: create %s with a malformed owner id", id)
		}
	}
	e := &entry{id: id, size: size, owner: req.GetOwnerAddress(), ownerID: ownerID, callSite: req.GetCallSite(),
		secondary: req.GetSecondary(), creator: c, off: -1, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errs.Systemf("objstore: store is closed")
	}
	if s.dead.has(ownerID) {
		return nil, &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindOwnerDied,
			Detail: fmt.Sprintf("its owner %s is gone (its job ended or its process died)", ownerID.Short())}
	}
	if size > s.cfg.Capacity {
		if _, ok := s.objects[id]; ok {
			return &pb.StoreLocation{Found: true, Exists: true}, nil
		}
		return s.createFileLocked(e)
	}
	deadline := time.Now().Add(s.cfg.PutTimeout)
	for {
		// Checked on every round: makeRoomLocked and waiting unlock s.mu.
		if _, ok := s.objects[id]; ok {
			return &pb.StoreLocation{Found: true, Exists: true}, nil
		}
		if off, ok := s.alloc.Alloc(max(size, 1)); ok {
			e.off = off
			break
		}
		freed, err := s.makeRoomLocked(size)
		if freed {
			continue
		}
		wait := time.Until(deadline)
		if wait <= 0 || err != nil {
			return nil, &errs.ObjectStoreFullError{Kind: errs.KindObjectStoreFull, ObjectID: id.String(), Message: s.fullReportLocked(size, err)}
		}
		ch := s.changed
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		s.mu.Lock()
		if s.closed {
			return nil, errs.Systemf("objstore: store is closed")
		}
	}
	s.objects[id] = e
	s.byOwner.add(e)
	c.creating[id] = e
	return &pb.StoreLocation{Found: true, Offset: e.off, Size: size}, nil
}

// createFileLocked places an object larger than the whole region in a
// file of its own in the spill directory, or fails at once.
func (s *Store) createFileLocked(e *entry) (*pb.StoreLocation, error) {
	if s.spill == nil || !s.spill.fits(e.size) {
		where := "spilling is disabled"
		if s.spill != nil {
			where = fmt.Sprintf("its spill directory %s has %s free", s.spill.dir, units.Bytes(s.spill.free()))
		}
		return nil, &errs.ObjectStoreFullError{Kind: errs.KindObjectTooLarge, ObjectID: e.id.String(),
			Message: fmt.Sprintf("raygo: object %s of %s is larger than the object store of node %s (%s) and %s",
				e.id, units.Bytes(e.size), s.cfg.NodeID.Short(), units.Bytes(s.cfg.Capacity), where)}
	}
	p, err := s.spill.createFile(e.id, e.size)
	if err != nil {
		return nil, &errs.ObjectStoreFullError{Kind: errs.KindObjectTooLarge, ObjectID: e.id.String(),
			Message: fmt.Sprintf("raygo: object %s of %s does not fit in node %s's store (%s) and could not be placed on disk: %v",
				e.id, units.Bytes(e.size), s.cfg.NodeID.Short(), units.Bytes(s.cfg.Capacity), err)}
	}
	e.file = p
	s.objects[e.id] = e
	s.byOwner.add(e)
	e.creator.creating[e.id] = e
	return &pb.StoreLocation{Found: true, Path: p, Size: e.size}, nil
}

// makeRoomLocked frees memory for an object of size bytes: first secondary
// copies and in-memory copies of spilled objects (least recently used
// first), then by spilling primary copies to disk. It reports whether it
// freed anything. It may unlock s.mu while writing spill files.
func (s *Store) makeRoomLocked(size int64) (bool, error) {
	freed := false
	for el := s.lru.Back(); el != nil && s.alloc.LargestFree() < size; {
		prev := el.Prev()
		e := el.Value.(*entry)
		switch {
		case e.secondary:
			s.destroyLocked(e)
			s.counts.evictions++
			s.noteEvictedLocked(e)
			freed = true
		case e.spilled != "":
			s.dropMemoryLocked(e)
			freed = true
		}
		el = prev
	}
	if s.alloc.LargestFree() >= size {
		return true, nil
	}
	if s.spill == nil {
		return freed, nil
	}
	// Spill least recently used primaries until enough bytes would free.
	var victims []*entry
	var total int64
	for el := s.lru.Back(); el != nil && total < size; el = el.Prev() {
		e := el.Value.(*entry)
		if e.file == "" && e.spilled == "" && !e.secondary {
			victims = append(victims, e)
			total += e.size
		}
	}
	if len(victims) == 0 {
		return freed, nil
	}
	for _, e := range victims {
		s.pinLocked(e)
	}
	s.mu.Unlock()
	paths := make([]string, len(victims))
	var spillErr error
	for i, e := range victims {
		if !s.spill.fits(e.size) {
			spillErr = fmt.Errorf("objstore: spill directory %s is full (%s free)", s.spill.dir, units.Bytes(s.spill.free()))
			break
		}
		p, err := s.spill.write(e.id, s.reg.mem[e.off:e.off+e.size])
		if err != nil {
			spillErr = err
			break
		}
		paths[i] = p
	}
	s.mu.Lock()
	for i, e := range victims {
		if paths[i] != "" {
			e.spilled = paths[i]
			s.counts.spills++
		}
		e.pins--
		switch {
		case e.pins > 0: // a reader mapped it meanwhile: its memory goes later
		case e.deleted:
			s.destroyLocked(e)
			freed = true
		case e.spilled != "":
			s.dropMemoryLocked(e)
			freed = true
		default: // not spilled (the disk failed): evictable again
			e.elem = s.lru.PushFront(e)
		}
	}
	s.signalLocked()
	if spillErr != nil {
		s.spillErr = spillErr
		s.log.Warn("spilling failed", "err", spillErr)
	}
	return freed, spillErr
}

// ---------------------------------------------------------------- seal, abort, delete

func (s *Store) seal(c *conn, id ids.ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := c.creating[id]
	if !ok {
		return errs.Invalidf("objstore: seal of %s, which this client is not creating", id)
	}
	delete(c.creating, id)
	e.creator = nil
	e.sealed = true
	close(e.done)
	if e.deleted {
		s.destroyLocked(e)
	} else if e.pins == 0 && e.inMemory() {
		e.elem = s.lru.PushFront(e)
	}
	s.signalLocked()
	return nil
}

func (s *Store) abort(c *conn, id ids.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := c.creating[id]; ok {
		delete(c.creating, id)
		s.destroyLocked(e)
	}
}

// Delete frees objects (their owner has no more references). An object
// still mapped by readers, or still being written, goes when they finish.
func (s *Store) Delete(idList ...ids.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range idList {
		e, ok := s.objects[id]
		if !ok {
			continue
		}
		if e.pins > 0 || !e.sealed {
			e.deleted = true
			continue
		}
		s.destroyLocked(e)
	}
}

// destroyLocked removes an object and frees its memory and files.
func (s *Store) destroyLocked(e *entry) {
	if s.objects[e.id] == e {
		delete(s.objects, e.id)
		s.byOwner.remove(e)
	}
	if !e.sealed && e.done != nil {
		select {
		case <-e.done:
		default:
			close(e.done) // wakes gets waiting for it; they find it gone
		}
	}
	s.dropMemoryLocked(e)
	if e.file != "" {
		os.Remove(e.file)
		e.file = ""
	}
	if e.spilled != "" {
		os.Remove(e.spilled)
		e.spilled = ""
	}
}

// dropMemoryLocked frees an object's region space (it has another copy,
// or is going away).
func (s *Store) dropMemoryLocked(e *entry) {
	if e.elem != nil {
		s.lru.Remove(e.elem)
		e.elem = nil
	}
	if e.off >= 0 {
		if err := s.alloc.Free(e.off); err != nil {
			s.log.Error("free of object memory failed", "object", e.id, "err", err)
		}
		e.off = -1
		s.signalLocked()
	}
}

func (s *Store) pinLocked(e *entry) {
	e.pins++
	if e.elem != nil {
		s.lru.Remove(e.elem)
		e.elem = nil
	}
}

// unpinLocked drops one pin; an unpinned object is freed if deleted,
// loses its memory if it has a copy on disk and the region is under
// pressure (see makeRoomLocked), and otherwise becomes evictable.
func (s *Store) unpinLocked(e *entry) {
	e.pins--
	if e.pins > 0 {
		return
	}
	switch {
	case e.deleted:
		s.destroyLocked(e)
	case e.inMemory() && e.sealed:
		e.elem = s.lru.PushFront(e)
	}
	s.signalLocked()
}

// ---------------------------------------------------------------- get, release

// get pins sealed objects for c and says where they are; objects only on
// disk are restored into the region first (or, when it has no room, read
// from their file).
func (s *Store) get(c *conn, idList []ids.ID) []*pb.StoreLocation {
	out := make([]*pb.StoreLocation, len(idList))
	for i, id := range idList {
		out[i] = s.getOne(c, id)
	}
	return out
}

func (s *Store) getOne(c *conn, id ids.ID) *pb.StoreLocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		e, ok := s.objects[id]
		if !ok || e.deleted {
			return &pb.StoreLocation{}
		}
		if !e.sealed && e.creator == c {
			return &pb.StoreLocation{} // its own unsealed object: never visible to itself
		}
		if !e.sealed {
			// Another process is writing it (say, two readers fetched the
			// same remote object at once): wait for its seal or abort.
			ch := e.done
			s.mu.Unlock()
			<-ch
			s.mu.Lock()
			continue
		}
		if e.restored != nil { // a restore is running
			ch := e.restored
			s.mu.Unlock()
			<-ch
			s.mu.Lock()
			continue
		}
		switch {
		case e.inMemory():
			s.pinLocked(e)
			c.pins[id]++
			return &pb.StoreLocation{Found: true, Offset: e.off, Size: e.size}
		case e.file != "":
			s.pinLocked(e)
			c.pins[id]++
			return &pb.StoreLocation{Found: true, Path: e.file, Size: e.size}
		case e.spilled == "":
			return &pb.StoreLocation{}
		}
		s.restoreLocked(e)
	}
}

// restoreLocked brings a spilled object back into the region if room can
// be made without waiting; otherwise readers map its spill file. It may
// unlock s.mu.
func (s *Store) restoreLocked(e *entry) {
	e.restored = make(chan struct{})
	s.pinLocked(e)
	defer func() {
		close(e.restored)
		e.restored = nil
		s.unpinLocked(e)
	}()
	off, ok := s.alloc.Alloc(max(e.size, 1))
	for !ok {
		freed, _ := s.makeRoomLocked(e.size)
		if !freed {
			break
		}
		off, ok = s.alloc.Alloc(max(e.size, 1))
	}
	if !ok {
		// Serve it from disk: readers map the spill file.
		e.file, e.spilled = e.spilled, ""
		return
	}
	path := e.spilled
	s.mu.Unlock()
	err := readFile(path, s.reg.mem[off:off+e.size])
	s.mu.Lock()
	if err != nil {
		s.alloc.Free(off)
		s.log.Error("restore from spill file failed; serving the file", "object", e.id, "err", err)
		e.file, e.spilled = e.spilled, ""
		return
	}
	e.off = off
	s.counts.restores++
}

func (s *Store) release(c *conn, idList []ids.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range idList {
		if c.pins[id] == 0 {
			continue
		}
		if c.pins[id]--; c.pins[id] == 0 {
			delete(c.pins, id)
		}
		if e, ok := s.objects[id]; ok { // pinned objects stay in the table
			s.unpinLocked(e)
		}
	}
}

// disconnect undoes what a client left behind: objects it was creating are
// dropped (a crashed writer leaves no half-written object), its pins are
// released.
func (s *Store) disconnect(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, c)
	for id, e := range c.creating {
		delete(c.creating, id)
		s.destroyLocked(e)
	}
	for id, n := range c.pins {
		e := s.objects[id]
		for ; e != nil && n > 0; n-- {
			s.unpinLocked(e)
		}
		delete(c.pins, id)
	}
	// The process is gone (or done with the store): what it owned goes.
	if !c.worker.IsNil() {
		s.freeOwnersLocked([]ids.ID{c.worker})
	}
}

// Put stores an object on behalf of a process without a local store
// (one on another machine, through the daemon's gRPC endpoint); ownerID
// is its owner's worker id (Nil: unknown).
func (s *Store) Put(id ids.ID, data []byte, owner string, ownerID ids.ID) error {
	var wire []byte
	if !ownerID.IsNil() {
		wire = ownerID.Bytes()
	}
	loc, err := s.create(s.self, &pb.StoreCreate{ObjectId: id.Bytes(), Size: int64(len(data)), OwnerAddress: owner, OwnerId: wire, CallSite: "remote put"})
	if err != nil || loc.Exists {
		return err
	}
	if loc.Path == "" {
		copy(s.reg.mem[loc.Offset:], data)
	} else if err := withFileMap(loc.Path, loc.Size, true, func(dst []byte) error { copy(dst, data); return nil }); err != nil {
		s.abort(s.self, id)
		return err
	}
	return s.seal(s.self, id)
}

// Read pins an object for the duration of fn (which must not keep the
// bytes); found is false when the store does not hold it.
func (s *Store) Read(id ids.ID, fn func([]byte) error) (found bool, err error) {
	loc := s.getOne(s.self, id)
	if !loc.Found {
		return false, nil
	}
	defer s.release(s.self, []ids.ID{id})
	if loc.Path != "" {
		return true, withFileMap(loc.Path, loc.Size, false, fn)
	}
	return true, fn(s.reg.mem[loc.Offset : loc.Offset+loc.Size : loc.Offset+loc.Size])
}

// Contains reports whether a sealed object is in the store.
func (s *Store) Contains(id ids.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.objects[id]
	return ok && e.sealed && !e.deleted
}

// ---------------------------------------------------------------- reports

// Stats reports the store's use and its largest objects (up to largest).
func (s *Store) Stats(largest int) *pb.StoreStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &pb.StoreStats{Capacity: s.cfg.Capacity, Used: s.alloc.Stats().Used, Objects: int64(len(s.objects)),
		SpillsTotal: s.counts.spills, RestoresTotal: s.counts.restores, EvictionsTotal: s.counts.evictions}
	if s.spill != nil {
		st.SpillDir = s.spill.dir
	}
	all := make([]*entry, 0, len(s.objects))
	for _, e := range s.objects {
		all = append(all, e)
		switch {
		case !e.sealed:
			st.CreatingBytes += e.size
			st.CreatingCount++
		case e.file != "":
			st.FileBytes += e.size
			st.FileCount++
		case !e.inMemory():
			st.SpilledBytes += e.size
			st.SpilledCount++
		case e.secondary:
			st.SecondaryBytes += e.size
			st.SecondaryCount++
		default:
			st.PrimaryBytes += e.size
			st.PrimaryCount++
		}
		if e.pins > 0 {
			st.InUseBytes += e.size
			st.InUseCount++
		}
	}
	if largest <= 0 {
		return st
	}
	sort.Slice(all, func(i, j int) bool { return all[i].size > all[j].size })
	for _, e := range all[:min(largest, len(all))] {
		st.Largest = append(st.Largest, &pb.StoreObjectInfo{ObjectId: e.id.Bytes(), Size: e.size, OwnerAddress: e.owner,
			CallSite: e.callSite, State: e.state(), Readers: int32(e.pins), Secondary: e.secondary})
	}
	return st
}

func (e *entry) state() pb.StoreObjectState {
	switch {
	case !e.sealed:
		return pb.StoreObjectState_STORE_OBJECT_STATE_CREATING
	case e.file != "":
		return pb.StoreObjectState_STORE_OBJECT_STATE_FILE
	case !e.inMemory():
		return pb.StoreObjectState_STORE_OBJECT_STATE_SPILLED
	}
	return pb.StoreObjectState_STORE_OBJECT_STATE_IN_MEMORY
}

// fullReportLocked explains why an object of size bytes does not fit:
// the store's size, and what holds its memory, by whom.
func (s *Store) fullReportLocked(size int64, spillErr error) string {
	var pinned, creating []*entry
	var primaryBytes int64
	for _, e := range s.objects {
		if !e.inMemory() {
			continue
		}
		switch {
		case !e.sealed:
			creating = append(creating, e)
		case e.pins > 0:
			pinned = append(pinned, e)
		default:
			primaryBytes += e.size
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "raygo: object store of node %s is full: an object of %s does not fit in %s (%s in use, largest free block %s) after waiting %s",
		s.cfg.NodeID.Short(), units.Bytes(size), units.Bytes(s.cfg.Capacity), units.Bytes(s.alloc.Stats().Used), units.Bytes(s.alloc.LargestFree()), s.cfg.PutTimeout)
	sort.Slice(pinned, func(i, j int) bool { return pinned[i].size > pinned[j].size })
	fmt.Fprintf(&b, "; %d objects are mapped by readers", len(pinned))
	for i, e := range pinned[:min(5, len(pinned))] {
		if i == 0 {
			b.WriteString(":")
		}
		fmt.Fprintf(&b, " %s (%s, created by %s, owner %s, read by %s)", e.id.Short(), units.Bytes(e.size), orUnknown(e.callSite), orUnknown(e.owner), s.readersLocked(e.id))
	}
	fmt.Fprintf(&b, "; %d objects are being written", len(creating))
	for i, e := range creating[:min(5, len(creating))] {
		if i == 0 {
			b.WriteString(":")
		}
		fmt.Fprintf(&b, " %s (%s by %s)", e.id.Short(), units.Bytes(e.size), e.creator.name())
	}
	switch {
	case s.spill == nil:
		fmt.Fprintf(&b, "; spilling is disabled (%s of unpinned primary copies cannot move)", units.Bytes(primaryBytes))
	case spillErr != nil:
		fmt.Fprintf(&b, "; spilling failed: %v", spillErr)
	}
	return b.String()
}

func (s *Store) readersLocked(id ids.ID) string {
	var names []string
	for c := range s.clients {
		if c.pins[id] > 0 {
			names = append(names, c.name())
		}
	}
	if len(names) == 0 {
		return "the store (spill or restore)"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
