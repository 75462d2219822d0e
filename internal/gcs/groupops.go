package gcs

import (
	"errors"
	"io"
	"sync"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// maxChangesPerEvent bounds the changes of state sent in one event.
const maxChangesPerEvent = 4096

// PlacementGroupOps serves one process's stream of placement-group
// creates and removals: it applies each message's ops in order, answers
// them, and tells the stream every change of state of the groups created
// on it (groupWatcher). A group created again on a stream (the client
// resends ops it did not see answered) is not an error.
func (s *Server) PlacementGroupOps(stream pb.ControlStore_PlacementGroupOpsServer) error {
	w := &groupWatcher{wake: make(chan struct{}, 1)}
	defer w.close()
	recvDone := make(chan error, 1)
	go func() { // ends when the stream does (Recv fails once this handler returns)
		for {
			req, err := stream.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			results := s.applyGroupOps(req.GetOps(), w)
			// With storage, answered once written (a storage that fails
			// for durableTimeout is logged by its writer; the ops stand).
			_ = s.durable(stream.Context(), s.lastMark())
			w.answer(results)
		}
	}()
	for {
		for ev := w.take(); ev != nil; ev = w.take() {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
		select {
		case <-w.wake:
		case err := <-recvDone:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		case <-s.ctx.Done():
			return errs.Systemf("gcs: stopping")
		}
	}
}

// applyGroupOps applies ops in order and answers each.
func (s *Server) applyGroupOps(ops []*pb.GroupOp, w *groupWatcher) []*pb.GroupOpResult {
	out := make([]*pb.GroupOpResult, len(ops))
	created := false
	for i, op := range ops {
		var err error
		if g := op.GetCreate(); g != nil {
			s.mu.Lock()
			_, err = s.createGroupLocked(g, w)
			s.mu.Unlock()
			created = created || err == nil
		} else {
			err = s.removeGroup(ids.MustFromBytes(op.GetRemove()))
		}
		out[i] = &pb.GroupOpResult{Seq: op.GetSeq()}
		if err != nil {
			out[i].Error = errs.ToInfo(err)
		}
	}
	if created {
		s.kickGroups()
	}
	return out
}

// groupWatcher collects what one ops stream is to be told: answers to
// its ops and changes of state of its groups. Pushes never block (they
// happen under Server.mu); the stream's handler sends what collected.
type groupWatcher struct {
	mu      sync.Mutex
	results []*pb.GroupOpResult
	changes []*pb.GroupStateChange
	closed  bool
	wake    chan struct{} // buffered(1)
}

func (w *groupWatcher) answer(rs []*pb.GroupOpResult) {
	w.mu.Lock()
	if !w.closed {
		w.results = append(w.results, rs...)
	}
	w.mu.Unlock()
	w.signal()
}

// push records a change of state of group id; called with Server.mu held.
func (w *groupWatcher) push(id []byte, state pb.PlacementGroupState) {
	w.mu.Lock()
	if !w.closed {
		w.changes = append(w.changes, &pb.GroupStateChange{GroupId: id, State: state})
	}
	w.mu.Unlock()
	w.signal()
}

func (w *groupWatcher) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take returns the next event to send, or nil when nothing waits.
func (w *groupWatcher) take() *pb.GroupOpsEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.results) == 0 && len(w.changes) == 0 {
		return nil
	}
	ev := &pb.GroupOpsEvent{Results: w.results}
	w.results = nil
	n := min(len(w.changes), maxChangesPerEvent)
	ev.Changes = w.changes[:n:n]
	w.changes = w.changes[n:]
	if len(w.changes) == 0 {
		w.changes = nil
	}
	return ev
}

// close drops what is collected and ignores later pushes (the groups
// keep a pointer to the watcher until they are forgotten).
func (w *groupWatcher) close() {
	w.mu.Lock()
	w.closed, w.results, w.changes = true, nil, nil
	w.mu.Unlock()
}
