package objmgr

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/stopper"
)

// Limits and defaults.
const (
	// DefaultChunkBytes is the size of one chunk read (Ray: 5 MiB).
	DefaultChunkBytes = 8 << 20
	// MaxChunkBytes is the largest chunk a server sends in one answer.
	MaxChunkBytes = 64 << 20
	// DefaultChunksInFlight is how many chunk reads one pull keeps
	// outstanding, spread over the object's holders.
	DefaultChunksInFlight = 8
	// maxLocationRounds bounds how many times a pull whose holders all
	// failed asks the owner for more before it gives up.
	maxLocationRounds = 3
)

// Config is a Manager's configuration.
type Config struct {
	// Self is this node daemon's address: never a source for itself.
	Self string
	// ChunkBytes is the size of a chunk read (default DefaultChunkBytes,
	// at most MaxChunkBytes).
	ChunkBytes int64
	// ChunksInFlight is the number of chunk reads a pull keeps
	// outstanding (default DefaultChunksInFlight).
	ChunksInFlight int
	// BudgetBytes bounds the bytes of the pulls transferring at once (the
	// admission bound, Ray's "num bytes being pulled"); pulls beyond it
	// wait in order. One pull larger than the budget runs alone. Zero:
	// no bound.
	BudgetBytes int64
	// Log receives warnings (default slog.Default()).
	Log *slog.Logger
}

func (c *Config) fill() {
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	c.ChunkBytes = min(c.ChunkBytes, MaxChunkBytes)
	if c.ChunksInFlight <= 0 {
		c.ChunksInFlight = DefaultChunksInFlight
	}
	if c.BudgetBytes <= 0 {
		c.BudgetBytes = 1<<63 - 1
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Request asks for one object to be made local.
type Request struct {
	ID      ids.ID
	Size    int64
	Owner   string   // the owner's address ("": unknown; only the hints are tried)
	OwnerID ids.ID   // the owner's worker id (the copy is freed with it)
	Hints   []string // node daemons known to hold a copy (the primary's, usually)
}

// Store is the node's object store as the manager uses it
// (objstore.Store).
type Store interface {
	Contains(id ids.ID) bool
	Fill(id ids.ID, size int64, info objstore.Info, fill func([]byte) error) error
	Delete(idList ...ids.ID)
}

// Sources reads chunks from other nodes (Client, over the network).
type Sources interface {
	// ReadChunk fills dst with the object's bytes from off, read from the
	// node daemon at node. An error wrapping errs.ErrNotFound means the
	// node does not hold the object.
	ReadChunk(ctx context.Context, node string, id ids.ID, off int64, dst []byte) error
}

// Owners reaches the owners' object directories (the CoreWorker
// service's ObjectLocations and UpdateObjectLocation).
type Owners interface {
	// StartPull tells the owner that node began pulling the object and
	// returns where to read it from: the complete copies, then the nodes
	// that began pulling before node. known is false when the owner no
	// longer has the object.
	StartPull(ctx context.Context, owner string, id ids.ID, node string) (nodes []string, known bool, err error)
	// Locations returns the nodes holding a complete copy.
	Locations(ctx context.Context, owner string, id ids.ID) (nodes []string, known bool, err error)
	// AddLocation tells the owner that node now holds a copy; known is
	// false when the owner no longer has the object (the copy should go).
	AddLocation(ctx context.Context, owner string, id ids.ID, node string) (known bool, err error)
	// RemoveLocation tells the owner that node holds no copy (its pull
	// failed), best effort.
	RemoveLocation(ctx context.Context, owner string, id ids.ID, node string) error
}

// Manager is a node's pull manager. Requests for one object are merged
// into one pull; pulls are admitted under the byte budget in arrival
// order; each pull reads chunks from every holder it knows, several in
// flight, and moves a failed holder's chunks to the others. It is safe
// for concurrent use; Close stops it.
type Manager struct {
	cfg    Config
	store  Store
	src    Sources
	owners Owners
	stop   *stopper.Stopper
	rot    int // where pickHolder starts, from Self: nodes begin on different holders

	mu          sync.Mutex
	pulls       map[ids.ID]*pull    // guarded by mu; queued and running, by object
	partial     map[ids.ID]*partial // guarded by mu; copies being written, served as chunks arrive
	queue       []*pull             // guarded by mu; waiting for the budget, in order
	activeBytes int64               // guarded by mu
	active      int                 // guarded by mu
	closed      bool                // guarded by mu
	noServing   bool                // guarded by mu; StopServing was called
	st          counts              // guarded by mu
}

type counts struct {
	requests, pulls, completed, failed, bytes, chunks, sourceFailures int64
}

type pull struct {
	req     Request
	waiters int           // guarded by Manager.mu
	started bool          // guarded by Manager.mu
	done    chan struct{} // closed when err is set
	err     error
}

// New returns a running Manager.
func New(cfg Config, store Store, src Sources, owners Owners) *Manager {
	cfg.fill()
	h := fnv.New32a()
	h.Write([]byte(cfg.Self))
	return &Manager{cfg: cfg, store: store, src: src, owners: owners, stop: stopper.New(),
		rot: int(h.Sum32() & 0xffff), pulls: map[ids.ID]*pull{}, partial: map[ids.ID]*partial{}}
}

// Pull returns once the object is in the node's store (nil), or with the
// error that stopped its pull: an errs.ObjectError of kind object lost
// naming the nodes tried when no holder answered, of kind object freed
// when its owner no longer has it, ctx's error when ctx ends first. A
// caller leaving does not stop a pull others wait for; a queued pull
// nobody waits for any more is dropped.
func (m *Manager) Pull(ctx context.Context, req Request) error {
	if req.Size < 0 {
		return errs.Invalidf("objmgr: pull of %s with negative size %d", req.ID, req.Size)
	}
	m.mu.Lock()
	m.st.requests++
	m.mu.Unlock()
	if m.store.Contains(req.ID) {
		return nil
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errs.Systemf("objmgr: the node's object manager is stopping")
	}
	p := m.pulls[req.ID]
	if p == nil {
		p = &pull{req: req, done: make(chan struct{})}
		p.req.Hints = slices.Clone(req.Hints)
		m.pulls[req.ID] = p
		m.queue = append(m.queue, p)
		m.st.pulls++
		m.admitLocked()
	} else if !p.started {
		p.req.Hints = append(p.req.Hints, req.Hints...)
	}
	p.waiters++
	m.mu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
	}
	m.mu.Lock()
	p.waiters--
	if p.waiters == 0 && !p.started && m.pulls[req.ID] == p {
		delete(m.pulls, req.ID)
		m.queue = slices.DeleteFunc(m.queue, func(q *pull) bool { return q == p })
		m.finishLocked(p, ctx.Err())
	}
	m.mu.Unlock()
	select {
	case <-p.done: // finished meanwhile: its answer holds
		return p.err
	default:
		return ctx.Err()
	}
}

// finishLocked ends p with err.
func (m *Manager) finishLocked(p *pull, err error) {
	p.err = err
	close(p.done)
}

// admitLocked starts the queued pulls the budget lets through.
func (m *Manager) admitLocked() {
	sizes := make([]int64, len(m.queue))
	for i, p := range m.queue {
		sizes[i] = p.req.Size
	}
	n := admit(sizes, m.activeBytes, m.cfg.BudgetBytes)
	for _, p := range m.queue[:n] {
		p.started = true
		m.activeBytes += p.req.Size
		m.active++
		p := p
		if err := m.stop.Go("objmgr.pull", func(ctx context.Context) { m.run(ctx, p) }); err != nil {
			m.activeBytes -= p.req.Size
			m.active--
			delete(m.pulls, p.req.ID)
			m.finishLocked(p, errs.Systemf("objmgr: the node's object manager is stopping"))
		}
	}
	m.queue = append(m.queue[:0:0], m.queue[n:]...)
}

// run transfers one admitted pull and tells its owner about the copy.
func (m *Manager) run(ctx context.Context, p *pull) {
	pulled, err := m.transfer(ctx, p)
	m.mu.Lock()
	m.activeBytes -= p.req.Size
	m.active--
	delete(m.pulls, p.req.ID)
	if err != nil {
		m.st.failed++
	} else {
		m.st.completed++
	}
	m.finishLocked(p, err)
	if !m.closed {
		m.admitLocked()
	}
	m.mu.Unlock()
	if p.req.Owner == "" {
		return
	}
	if err != nil {
		// The owner listed this node as pulling: no longer.
		_ = m.owners.RemoveLocation(ctx, p.req.Owner, p.req.ID, m.cfg.Self)
		return
	}
	// The owner's directory learns of the copy (Ray: AddObjectLocation),
	// so later pulls can read from it and the owner's free reaches it;
	// when the store had the object already (a pull that started just as
	// an earlier one sealed it), this turns the node's registration as a
	// puller into a copy.
	known, err := m.owners.AddLocation(ctx, p.req.Owner, p.req.ID, m.cfg.Self)
	if err == nil && !known && pulled {
		m.store.Delete(p.req.ID) // freed while it was pulled
	}
}

// transfer pulls the object into the store; pulled is false when the
// store had it already (nothing was read).
func (m *Manager) transfer(ctx context.Context, p *pull) (pulled bool, err error) {
	req := p.req
	hs, _ := mergeHolders(nil, req.Hints, m.cfg.Self)
	if req.Owner != "" {
		nodes, known, err := m.owners.StartPull(ctx, req.Owner, req.ID, m.cfg.Self)
		switch {
		case err == nil && !known:
			return false, &errs.ObjectError{ObjectID: req.ID.String(), Kind: errs.KindObjectFreed,
				Detail: "its owner at " + req.Owner + " no longer has it"}
		case err == nil:
			hs, _ = mergeHolders(hs, nodes, m.cfg.Self)
		}
		// An owner that does not answer leaves the hints.
	}
	if len(hs) == 0 {
		return false, &errs.ObjectError{ObjectID: req.ID.String(), Kind: errs.KindObjectLost,
			Detail: "no node is known to hold a copy"}
	}
	err = m.store.Fill(req.ID, req.Size, objstore.Info{Owner: req.Owner, OwnerID: req.OwnerID, CallSite: "pulled", Secondary: true},
		func(dst []byte) error {
			pulled = true
			part := m.openPartial(req.ID, dst)
			defer m.closePartial(req.ID, part)
			return m.fetch(ctx, req, hs, dst, part)
		})
	return pulled && err == nil, err
}

// fetch fills dst with the object's chunks, read from the holders; when
// all of them have failed it asks the owner for others.
func (m *Manager) fetch(ctx context.Context, req Request, hs []holder, dst []byte, part *partial) error {
	todo := chunks(int64(len(dst)), m.cfg.ChunkBytes)
	for round := 0; ; round++ {
		todo = m.round(ctx, req.ID, hs, todo, dst, part)
		if len(todo) == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if round == maxLocationRounds || req.Owner == "" {
			break
		}
		nodes, known, err := m.owners.Locations(ctx, req.Owner, req.ID)
		if err == nil && !known {
			return &errs.ObjectError{ObjectID: req.ID.String(), Kind: errs.KindObjectFreed,
				Detail: "its owner at " + req.Owner + " freed it during the pull"}
		}
		added := 0
		if err == nil {
			hs, added = mergeHolders(hs, nodes, m.cfg.Self)
		}
		if added == 0 {
			break
		}
	}
	return lostError(req.ID, hs)
}

// round reads todo from the holders that have not failed, up to
// ChunksInFlight reads at once, and returns the chunks left unread (all
// holders failed, or ctx ended). hs is updated in place.
func (m *Manager) round(ctx context.Context, id ids.ID, hs []holder, todo []chunk, dst []byte, part *partial) []chunk {
	var (
		mu   sync.Mutex
		left = todo // guarded by mu; chunks to read, taken from the front
		wg   sync.WaitGroup
	)
	worker := func() {
		defer wg.Done()
		for {
			mu.Lock()
			if len(left) == 0 || ctx.Err() != nil {
				mu.Unlock()
				return
			}
			i := pickHolder(hs, m.rot)
			if i < 0 {
				mu.Unlock()
				return
			}
			c := left[0]
			left = left[1:]
			hs[i].inFlight++
			addr := hs[i].addr
			mu.Unlock()
			err := m.src.ReadChunk(ctx, addr, id, c.off, dst[c.off:c.off+c.n])
			mu.Lock()
			hs[i].inFlight--
			if err != nil {
				left = append(left, c)
				if ctx.Err() == nil && hs[i].err == nil {
					hs[i].err = err
					m.mu.Lock()
					m.st.sourceFailures++
					m.mu.Unlock()
					m.cfg.Log.Warn("objmgr: a holder failed; its chunks go to the others", "object", id.String(), "node", addr, "err", err)
				}
			} else {
				hs[i].served++
				part.arrived(c)
				m.mu.Lock()
				m.st.chunks++
				m.st.bytes += c.n
				m.mu.Unlock()
			}
			mu.Unlock()
		}
	}
	n := min(m.cfg.ChunksInFlight, len(todo))
	wg.Add(n)
	for range n {
		// Joined below; the stopper names them while they run.
		if m.stop.Go("objmgr.chunks", func(context.Context) { worker() }) != nil {
			wg.Done() // stopping: the chunks stay in left
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return left
}

// lostError names the object and every holder tried with its failure.
func lostError(id ids.ID, hs []holder) error {
	tried := make([]string, 0, len(hs))
	for _, h := range hs {
		why := "no answer"
		if h.err != nil {
			why = h.err.Error()
			if errors.Is(h.err, errs.ErrNotFound) {
				why = "does not hold it"
			}
		}
		tried = append(tried, fmt.Sprintf("%s (%s)", h.addr, why))
	}
	return &errs.ObjectError{ObjectID: id.String(), Kind: errs.KindObjectLost,
		Detail: "no node holding a copy answered; tried " + strings.Join(tried, ", ")}
}

// Stats reports what the manager did since it started.
func (m *Manager) Stats() *pb.PullStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &pb.PullStats{Requests: m.st.requests, Pulls: m.st.pulls, Completed: m.st.completed, Failed: m.st.failed,
		BytesPulled: m.st.bytes, ChunksPulled: m.st.chunks, SourceFailures: m.st.sourceFailures,
		Queued: int64(len(m.queue)), Active: int64(m.active), ActiveBytes: m.activeBytes}
}

// Close stops the manager: running pulls end with their transfers'
// errors, queued ones with an error saying the node is stopping; Close
// returns once every pull has ended.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for _, p := range m.queue {
		delete(m.pulls, p.req.ID)
		m.finishLocked(p, errs.Systemf("objmgr: the node's object manager is stopping"))
	}
	m.queue = nil
	m.mu.Unlock()
	m.stop.Stop()
}
