// Package push holds what both submitters share about push streams, the
// streams that carry tasks from an owner (or an actor's caller) to a
// worker and replies back: the Stream they write to and the loop that
// batches specs onto it.
package push

import (
	"github.com/raygo/raygo/internal/pb"
)

// Stream is the owner's end of a push stream to a worker.
type Stream interface {
	Send(*pb.TaskBatch) error
	Recv() (*pb.ReplyBatch, error)
	// CloseSend ends the sending side; the worker finishes what it has
	// and the stream ends.
	CloseSend() error
	// Close breaks the stream now.
	Close()
}

// MaxBatch is the most specs one TaskBatch carries.
const MaxBatch = 1024

// SendLoop sends the specs that arrive on ch onto stream, each batch with
// everything queued behind its first spec (up to MaxBatch) and the shared
// fields common, until ch is closed; then it closes the stream's sending
// side. A nil spec on ch only wakes the loop: steal, if not nil, is asked
// before each send for the number of tasks to ask back (TaskBatch.steal),
// and a batch is sent when it has specs or a steal. When a send fails,
// SendLoop drains ch until it is closed (the stream's receiver reports the
// failure).
func SendLoop(stream Stream, ch <-chan *pb.TaskSpec, common *pb.TaskSpec, steal func() int32) {
	batch := make([]*pb.TaskSpec, 0, 64)
	for spec := range ch {
		batch = batch[:0]
		if spec != nil {
			batch = append(batch, spec)
		}
	drain:
		for len(batch) < MaxBatch {
			select {
			case sp, ok := <-ch:
				if !ok {
					break drain
				}
				if sp != nil {
					batch = append(batch, sp)
				}
			default:
				break drain
			}
		}
		var n int32
		if steal != nil {
			n = steal()
		}
		if len(batch) == 0 && n == 0 {
			continue
		}
		if err := stream.Send(&pb.TaskBatch{Tasks: batch, Common: common, Steal: n}); err != nil {
			for range ch {
			}
			return
		}
	}
	_ = stream.CloseSend()
}

// DropFront removes q's first n elements, moving the rest to the start of
// its array, so that a queue appended at the back and taken from the
// front reuses one array instead of allocating as the front advances.
func DropFront[T any](q []T, n int) []T {
	if n == 0 {
		return q
	}
	rest := copy(q, q[n:])
	clear(q[rest:])
	return q[:rest]
}
