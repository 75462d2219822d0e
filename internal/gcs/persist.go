package gcs

import (
	"context"
	binenc "encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/faults"
	"github.com/raygo/raygo/internal/gcs/storage"
	"github.com/raygo/raygo/internal/jobbinary"
	"github.com/raygo/raygo/internal/pb"
)

// Persistence (Ray's GCS fault tolerance).
//
// A control store given a persistent storage.Store (Config.Storage: a
// bbolt file or Redis) writes the state a restart must not lose: node
// records (at registration and death, not their heartbeats), jobs, the
// KV, actors (at every change of state: bumpLocked) and placement groups
// (bumpGroupLocked), and job binaries. A new control store started on the
// same storage reads it all back (recover.go) and goes on where the old
// one stopped.
//
// Writes are batched: a change is marked under Server.mu (the record
// marshaled then, so that the latest state of a key wins) and a writer
// goroutine puts everything marked since its last write in one call per
// table (for bbolt, one transaction and one sync for many changes). A
// call whose answer promises durability (RegisterJob, KVPut, CreateActor,
// placement-group creation, binaries) waits for its marks to be written
// before it answers (durable); the rest are written within
// milliseconds, and a change lost to a crash in between is recovered
// from the nodes (a node whose registration was lost registers again; an
// actor or bundle whose placement was lost is placed again and the
// leftover given back: ReleaseUnused).

// Storage tables.
const (
	tableCluster  = "cluster"  // epoch, token, head_node
	tableNodes    = "nodes"    // node id -> StoredNode
	tableJobs     = "jobs"     // job id -> JobInfo
	tableActors   = "actors"   // actor id -> StoredActor
	tableGroups   = "groups"   // group id -> PlacementGroupInfo
	tableKV       = "kv"       // namespace NUL key -> value
	tableBinaries = "binaries" // hash -> size; hash/NNNNNN -> chunk
)

// Keys of tableCluster.
const (
	keyEpoch    = "epoch"
	keyToken    = "token"
	keyHeadNode = "head_node"
)

// durableTimeout bounds how long a call waits for its change to reach
// storage before it fails as unavailable.
const durableTimeout = 10 * time.Second

// binaryPutChunks is how many pieces of a job binary go to storage in
// one write.
const binaryPutChunks = 16

// persister batches marked changes into storage writes.
type persister struct {
	store storage.Store

	mu      sync.Mutex
	dirty   map[string]map[string][]byte // table -> key -> value; nil value: delete
	marked  uint64                       // changes marked so far
	written uint64                       // changes written so far
	lastErr error                        // the last write's error, nil once one succeeds
	wrote   chan struct{}                // closed and replaced when written advances or a write fails
	kick    chan struct{}                // buffered(1)
}

func newPersister(store storage.Store) *persister {
	return &persister{store: store, dirty: map[string]map[string][]byte{}, wrote: make(chan struct{}), kick: make(chan struct{}, 1)}
}

// mark records that key of table is now value (nil: deleted) and returns
// the mark's number, for durable.
func (p *persister) mark(table, key string, value []byte) uint64 {
	p.mu.Lock()
	t := p.dirty[table]
	if t == nil {
		t = map[string][]byte{}
		p.dirty[table] = t
	}
	t[key] = value
	p.marked++
	n := p.marked
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return n
}

// markProto marks a record; a message always marshals.
func (p *persister) markProto(table, key string, m proto.Message) uint64 {
	b, _ := proto.Marshal(m)
	return p.mark(table, key, b)
}

// durable waits until mark n is written, ctx is done, or durableTimeout
// passes with storage failing.
func (p *persister) durable(ctx context.Context, n uint64) error {
	deadline := time.NewTimer(durableTimeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		done, wrote, lastErr := p.written >= n, p.wrote, p.lastErr
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-wrote:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return &errs.Status{Kind: errs.KindUnavailable, Message: fmt.Sprintf("gcs: the change was not written to storage within %s: %v", durableTimeout, lastErr)}
		}
	}
}

// loop writes what is marked until ctx is done, then writes what is left
// once more.
func (p *persister) loop(ctx context.Context, log func(string, ...any)) {
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			_ = p.flush(context.Background())
			return
		case <-p.kick:
		}
		for {
			err := p.flush(ctx)
			if err == nil {
				backoff = 50 * time.Millisecond
				break
			}
			log("writing the control store's state to storage failed; retrying", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				_ = p.flush(context.Background())
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
}

// flush writes what is marked now. On failure the changes not marked
// again meanwhile go back to be written by the next try.
func (p *persister) flush(ctx context.Context) error {
	p.mu.Lock()
	batch, upTo := p.dirty, p.marked
	p.dirty = map[string]map[string][]byte{}
	p.mu.Unlock()
	// Fault point: a write that fails (drop), a slow storage (delay), a
	// head that dies before writing (exit).
	err := faults.Eval("gcs/storage/before")
	for table, recs := range batch {
		if err != nil {
			break
		}
		var puts []storage.KV
		var dels []string
		for k, v := range recs {
			if v == nil {
				dels = append(dels, k)
			} else {
				puts = append(puts, storage.KV{Key: k, Value: v})
			}
		}
		if len(puts) > 0 {
			if err = p.store.Put(ctx, table, puts...); err != nil {
				break
			}
		}
		if len(dels) > 0 {
			if err = p.store.Delete(ctx, table, dels...); err != nil {
				break
			}
		}
		delete(batch, table)
	}
	if err == nil {
		// Fault point: a head that dies after writing, before answering
		// the calls waiting for the write (exit), or answers late (delay).
		_ = faults.Eval("gcs/storage/after")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		for table, recs := range batch {
			t := p.dirty[table]
			if t == nil {
				t = map[string][]byte{}
				p.dirty[table] = t
			}
			for k, v := range recs {
				if _, newer := t[k]; !newer {
					t[k] = v
				}
			}
		}
		p.lastErr = err
	} else {
		p.written, p.lastErr = max(p.written, upTo), nil
	}
	close(p.wrote)
	p.wrote = make(chan struct{})
	return err
}

// ---------------------------------------------------------------- marks

// The mark helpers below are called with s.mu held; each returns the
// mark's number (zero without storage), for s.durable.

func (s *Server) markNodeLocked(n *nodeEntry) uint64 {
	if s.persist == nil {
		return 0
	}
	return s.persist.markProto(tableNodes, string(n.info.GetNodeId()), &pb.StoredNode{Info: n.info, Died: n.died})
}

func (s *Server) markJobLocked(id string, j proto.Message) uint64 {
	if s.persist == nil {
		return 0
	}
	return s.persist.markProto(tableJobs, id, j)
}

func (s *Server) markKVLocked(key string, value []byte) uint64 {
	if s.persist == nil {
		return 0
	}
	if value == nil {
		value = []byte{} // an empty value, not a deletion
	}
	return s.persist.mark(tableKV, key, value)
}

func (s *Server) markActorLocked(e *actorEntry) uint64 {
	if s.persist == nil {
		return 0
	}
	rec := &pb.StoredActor{Info: e.info, FailIfInfeasible: e.failIfInfeasible, Killing: e.killing}
	if !e.place.worker.IsNil() {
		rec.LeaseId, rec.Shared = e.place.lease.Bytes(), e.place.shared
	}
	return s.persist.markProto(tableActors, string(e.info.GetActorId()), rec)
}

func (s *Server) forgetActorLocked(id []byte) {
	if s.persist != nil {
		s.persist.mark(tableActors, string(id), nil)
	}
}

func (s *Server) markGroupLocked(e *groupEntry) uint64 {
	if s.persist == nil {
		return 0
	}
	return s.persist.markProto(tableGroups, string(e.info.GetGroupId()), e.info)
}

func (s *Server) forgetGroupLocked(id []byte) {
	if s.persist != nil {
		s.persist.mark(tableGroups, string(id), nil)
	}
}

// durable waits for mark n (see persister.durable); without storage it
// returns at once.
func (s *Server) durable(ctx context.Context, n uint64) error {
	if s.persist == nil || n == 0 {
		return nil
	}
	return s.persist.durable(ctx, n)
}

// lastMark is the number of the last change marked (zero without
// storage): durable(ctx, lastMark()) waits for everything so far.
func (s *Server) lastMark() uint64 {
	if s.persist == nil {
		return 0
	}
	s.persist.mu.Lock()
	defer s.persist.mu.Unlock()
	return s.persist.marked
}

// ---------------------------------------------------------------- binaries

// saveBinary writes a job binary to storage, in pieces of
// jobbinary.ChunkBytes (binaryPutChunks to a write), and then its size
// (the record that says it is whole). read fills buf with the binary's
// next bytes (io.ReadFull semantics).
func (s *Server) saveBinary(ctx context.Context, hash string, size int64, read func(buf []byte) error) error {
	if s.persist == nil {
		return nil
	}
	if _, ok, err := s.persist.store.Get(ctx, tableBinaries, hash); err == nil && ok {
		return nil
	}
	var batch []storage.KV
	put := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.persist.store.Put(ctx, tableBinaries, batch...)
		batch = batch[:0]
		if err != nil {
			return errs.Systemf("gcs: store job binary %s: %v", hash, err)
		}
		return nil
	}
	for i, off := 0, int64(0); off < size; i++ {
		buf := make([]byte, min(size-off, jobbinary.ChunkBytes))
		if err := read(buf); err != nil {
			return errs.Systemf("gcs: store job binary %s: %v", hash, err)
		}
		batch = append(batch, storage.KV{Key: chunkKey(hash, i), Value: buf})
		if len(batch) == binaryPutChunks {
			if err := put(); err != nil {
				return err
			}
		}
		off += int64(len(buf))
	}
	var sz [8]byte
	binenc.BigEndian.PutUint64(sz[:], uint64(size))
	batch = append(batch, storage.KV{Key: hash, Value: sz[:]})
	return put()
}

// saveBinaryFile writes a binary kept as a file to storage.
func (s *Server) saveBinaryFile(ctx context.Context, hash string, b *binary) error {
	if s.persist == nil {
		return nil
	}
	f, err := os.Open(b.file)
	if err != nil {
		return errs.Systemf("gcs: store job binary %s: %v", hash, err)
	}
	defer f.Close()
	return s.saveBinary(ctx, hash, b.size, func(buf []byte) error { _, err := io.ReadFull(f, buf); return err })
}

// reader reads a binary's chunks in order, for saveBinary.
func (b *binary) reader() func([]byte) error {
	i, off := 0, 0
	return func(buf []byte) error {
		for n := 0; n < len(buf); {
			if i >= len(b.chunks) {
				return io.ErrUnexpectedEOF
			}
			c := copy(buf[n:], b.chunks[i][off:])
			n, off = n+c, off+c
			if off == len(b.chunks[i]) {
				i, off = i+1, 0
			}
		}
		return nil
	}
}

// sendStoredBinary streams a binary kept only in storage.
func (s *Server) sendStoredBinary(ctx context.Context, hash string, size int64, send func(*pb.BinaryChunk) error) error {
	if size == 0 {
		return send(&pb.BinaryChunk{Hash: hash})
	}
	for i, off := 0, int64(0); off < size; i++ {
		v, ok, err := s.persist.store.Get(ctx, tableBinaries, chunkKey(hash, i))
		if err == nil && !ok {
			err = fmt.Errorf("piece %d is missing", i)
		}
		if err != nil {
			return errs.Systemf("gcs: read job binary %s from storage: %v", hash, err)
		}
		if err := send(&pb.BinaryChunk{Hash: hash, Offset: off, Data: v, Total: size}); err != nil {
			return err
		}
		off += int64(len(v))
	}
	return nil
}

// dropBinary removes a stored binary (evicted).
func (s *Server) dropBinary(hash string, size int64) {
	if s.persist == nil {
		return
	}
	keys := []string{hash}
	for i := 0; int64(i)*jobbinary.ChunkBytes < size; i++ {
		keys = append(keys, chunkKey(hash, i))
	}
	ctx, cancel := context.WithTimeout(s.ctx, durableTimeout)
	defer cancel()
	if err := s.persist.store.Delete(ctx, tableBinaries, keys...); err != nil {
		s.log.Warn("could not delete an evicted job binary from storage", "hash", hash, "err", err)
	}
}

func chunkKey(hash string, i int) string { return fmt.Sprintf("%s/%06d", hash, i) }
