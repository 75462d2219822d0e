package gcs

import (
	"context"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// Job-end cleanup. Objects belong to their owner's process; when it is
// gone, so are they. Node daemons free what local processes owned when
// those exit; the control store tells every node what only it knows: a
// job has finished (its driver called FinishJob, or driverLoop found it
// dead), with its driver and the processes of its detached actors, which
// live on; and a worker died somewhere (WorkerDied), so its objects on
// other nodes (task returns it owned, secondary copies) can go too. The
// notices are batched and sent by one goroutine (cleanupLoop) with
// NodeDaemon.FreeOwned to every alive node, at once: a node frees what
// they name within one round trip.

// cleanupAttempts is how many times a notice is sent to a node that does
// not answer; cleanupTimeout bounds one send.
const (
	cleanupAttempts = 3
	cleanupTimeout  = 5 * time.Second
)

// cleanupQueue holds the notices not yet sent.
type cleanupQueue struct {
	mu       sync.Mutex
	finished []ids.ID // guarded by mu
	dead     []ids.ID // guarded by mu
	keep     []ids.ID // guarded by mu
	kick     chan struct{}
}

// noticeOwners queues a notice for every node: jobs that finished, owners
// that are gone, and owners that live on (a finished job's detached
// actors' processes).
func (s *Server) noticeOwners(finished, dead, keep []ids.ID) {
	q := &s.cleanup
	q.mu.Lock()
	q.finished = append(q.finished, finished...)
	q.dead = append(q.dead, dead...)
	q.keep = append(q.keep, keep...)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// cleanupLoop sends queued notices to every alive node until the server
// closes.
func (s *Server) cleanupLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.cleanup.kick:
		}
		q := &s.cleanup
		q.mu.Lock()
		req := &pb.FreeOwnedRequest{FinishedJobIds: wireIDs(q.finished), DeadOwnerIds: wireIDs(q.dead), KeepOwnerIds: wireIDs(q.keep)}
		q.finished, q.dead, q.keep = nil, nil, nil
		q.mu.Unlock()
		if len(req.FinishedJobIds)+len(req.DeadOwnerIds) == 0 {
			continue
		}
		var addrs []string
		s.mu.Lock()
		for _, n := range s.nodes {
			if n.info.State == pb.NodeState_NODE_STATE_ALIVE {
				addrs = append(addrs, n.info.Address)
			}
		}
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, addr := range addrs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.sendFreeOwned(addr, req)
			}()
		}
		wg.Wait()
	}
}

// sendFreeOwned delivers one notice to the node daemon at addr, trying
// cleanupAttempts times.
func (s *Server) sendFreeOwned(addr string, req *pb.FreeOwnedRequest) {
	for attempt := 0; attempt < cleanupAttempts; attempt++ {
		conn, err := s.pool.Get(addr)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, cleanupTimeout)
		_, err = pb.NewNodeDaemonClient(conn).FreeOwned(ctx, req)
		cancel()
		if err == nil || s.ctx.Err() != nil {
			return
		}
		s.sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

func wireIDs(list []ids.ID) [][]byte {
	if len(list) == 0 {
		return nil
	}
	seen := make(map[ids.ID]bool, len(list))
	out := make([][]byte, 0, len(list))
	for _, id := range list {
		if !id.IsNil() && !seen[id] {
			seen[id] = true
			out = append(out, id.Bytes())
		}
	}
	return out
}
