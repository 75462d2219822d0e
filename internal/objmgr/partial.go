package objmgr

import (
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
)

// A copy being pulled serves the chunks it has received to nodes that
// began pulling after it (the owner's directory tells each puller which
// nodes began before it, so no two pulls wait on each other). A request
// for a chunk not received yet waits for it, up to partialWait: pullers
// read chunks in order, so a later puller follows an earlier one chunk
// by chunk, and a broadcast spreads over the receivers instead of reading
// every copy from the primary.

// partialWait bounds how long a request for a chunk of a copy being
// pulled waits for the chunk (within ChunkTimeout, so the requester hears
// an answer before it gives up).
const partialWait = ChunkTimeout * 2 / 3

// partial is a copy being written by a pull, readable chunk by chunk.
type partial struct {
	dst []byte

	mu      sync.Mutex
	cond    *sync.Cond
	have    []chunk // guarded by mu; chunks received, in the order they arrived
	closing bool    // guarded by mu; the pull ended: no more chunks arrive
	done    bool    // guarded by mu; dst is no longer valid: nothing is served
	waiting int     // guarded by mu; requests waiting for chunks
	readers int     // guarded by mu; serves writing from dst now
}

// openPartial publishes a pull's copy for serving.
func (m *Manager) openPartial(id ids.ID, dst []byte) *partial {
	p := &partial{dst: dst}
	p.cond = sync.NewCond(&p.mu)
	m.mu.Lock()
	if m.noServing {
		p.closing = true
	} else {
		m.partial[id] = p
	}
	m.mu.Unlock()
	return p
}

// StopServing ends serving copies being pulled: requests waiting for a
// chunk are answered "not here" at once, and no new ones are taken. The
// node daemon calls it before closing the transfer server, so that
// closing does not wait for chunks that would arrive later.
func (m *Manager) StopServing() {
	m.mu.Lock()
	m.noServing = true
	open := make([]*partial, 0, len(m.partial))
	for _, p := range m.partial {
		open = append(open, p)
	}
	m.mu.Unlock()
	for _, p := range open {
		p.mu.Lock()
		p.closing = true
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// closePartial withdraws it: requests waiting for chunks that will not
// come leave, those whose chunks are there are served, and once no
// request reads dst any more it is done (the store then seals or drops
// the copy).
func (m *Manager) closePartial(id ids.ID, p *partial) {
	m.mu.Lock()
	if m.partial[id] == p {
		delete(m.partial, id)
	}
	m.mu.Unlock()
	p.mu.Lock()
	p.closing = true
	p.cond.Broadcast()
	for p.readers > 0 || p.waiting > 0 {
		p.cond.Wait()
	}
	p.done = true
	p.mu.Unlock()
}

// arrived records a chunk written into dst.
func (p *partial) arrived(c chunk) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.have = append(p.have, c)
	p.cond.Broadcast()
	p.mu.Unlock()
}

// coversLocked reports whether the received chunks cover [off, off+n).
func (p *partial) coversLocked(off, n int64) bool {
	for n > 0 {
		found := false
		for _, c := range p.have {
			if c.off <= off && off < c.off+c.n {
				k := min(c.off+c.n-off, n)
				off, n = off+k, n-k
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// ServePartial calls fn with [off, off+n) of a copy of id this node is
// pulling, once those bytes have arrived (waiting up to partialWait);
// found is false when no pull of id runs here, it ended, or the bytes did
// not arrive in time. The transfer server calls it for objects its store
// does not hold yet.
func (m *Manager) ServePartial(id ids.ID, off, n int64, fn func([]byte) error) (found bool, err error) {
	m.mu.Lock()
	p := m.partial[id]
	m.mu.Unlock()
	if p == nil || off < 0 || n < 0 || off+n > int64(len(p.dst)) {
		return false, nil
	}
	timer := time.AfterFunc(partialWait, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(partialWait)
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return false, nil
	}
	p.waiting++
	for !p.coversLocked(off, n) {
		if p.closing || !time.Now().Before(deadline) {
			p.waiting--
			p.cond.Broadcast()
			p.mu.Unlock()
			return false, nil
		}
		p.cond.Wait()
	}
	p.waiting--
	p.readers++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.readers--
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	return true, fn(p.dst[off : off+n : off+n])
}
