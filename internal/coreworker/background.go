package coreworker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
)

// background batches what the process tells others about references:
// store copies to delete (node daemons' FreeObjects), borrows ended and,
// in a driver, borrows begun (owners' Borrow). One goroutine sends them,
// woken by kick; nothing is sent per object.
type background struct {
	cw   *CoreWorker
	wake chan struct{}

	mu       sync.Mutex
	frees    map[string][]ids.ID // guarded by mu; node daemon -> ids
	removals map[string][]ids.ID // guarded by mu; owner -> ids

	// sendMu orders what owners hear about borrows: it is held while
	// borrow-ended messages are checked and sent and while new borrows
	// are sent, so a removal for an earlier entry of an id never
	// reaches the owner after the add for a later one (see flush).
	sendMu sync.Mutex
}

func newBackground(cw *CoreWorker) *background {
	b := &background{cw: cw, wake: make(chan struct{}, 1), frees: map[string][]ids.ID{}, removals: map[string][]ids.ID{}}
	_ = cw.stop.Go("coreworker.background", b.loop)
	return b
}

func (b *background) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *background) freeInStore(daemon string, id ids.ID) {
	b.mu.Lock()
	b.frees[daemon] = append(b.frees[daemon], id)
	b.mu.Unlock()
	b.kick()
}

func (b *background) borrowEnded(owner string, id ids.ID) {
	b.mu.Lock()
	b.removals[owner] = append(b.removals[owner], id)
	b.mu.Unlock()
	b.kick()
}

func (b *background) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.wake:
			b.flush()
		}
	}
}

// flush sends what is batched.
func (b *background) flush() {
	b.mu.Lock()
	frees, removals := b.frees, b.removals
	b.frees, b.removals = map[string][]ids.ID{}, map[string][]ids.ID{}
	b.mu.Unlock()
	cw := b.cw
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for addr, list := range frees {
		if conn, err := cw.pool.Get(addr); err == nil {
			_, _ = pb.NewNodeDaemonClient(conn).FreeObjects(ctx, &pb.FreeObjectsRequest{ObjectIds: idBytes(list)})
		}
	}
	b.sendMu.Lock()
	defer b.sendMu.Unlock()
	if cw.exec == nil { // a worker registers borrows before each reply
		cw.sendBorrows(ctx, cw.refs.TakeBorrows())
	}
	// A removal queued for an entry that has since been freed and
	// decoded again, and registered with the owner again, is dropped:
	// the owner must keep this process as a borrower. One whose new
	// entry is still pending is sent: its add follows, under sendMu.
	for addr, list := range removals {
		list = slices.DeleteFunc(list, cw.refs.RegisteredBorrow)
		if len(list) == 0 {
			continue
		}
		if conn, err := cw.pool.Get(addr); err == nil {
			_, _ = pb.NewCoreWorkerClient(conn).Borrow(ctx, &pb.BorrowRequest{ObjectIds: idBytes(list), BorrowerAddress: cw.address, Remove: true})
		}
	}
}

// close sends what is left; the loop has ended with the core worker's
// stopper.
func (b *background) close() { b.flush() }

// flushBorrows tells owners about refs this process started borrowing. A
// task calls it before replying, while its caller still holds the refs.
func (cw *CoreWorker) flushBorrows(ctx context.Context) {
	if borrows := cw.refs.TakeBorrows(); len(borrows) > 0 {
		cw.bg.sendMu.Lock()
		defer cw.bg.sendMu.Unlock()
		cw.sendBorrows(ctx, borrows)
	}
}

// sendBorrows tells each owner the refs this process started borrowing;
// the caller holds bg.sendMu.
func (cw *CoreWorker) sendBorrows(ctx context.Context, borrows map[string][]ids.ID) {
	for owner, list := range borrows {
		cw.registerBorrower(ctx, owner, list, cw.address)
	}
}

// registerBorrower tells the owner at owner that borrower holds refs to
// list.
func (cw *CoreWorker) registerBorrower(ctx context.Context, owner string, list []ids.ID, borrower string) {
	if owner == cw.address {
		cw.refs.AddBorrower(borrower, list)
		return
	}
	conn, err := cw.pool.Get(owner)
	if err != nil {
		return
	}
	_, _ = pb.NewCoreWorkerClient(conn).Borrow(ctx, &pb.BorrowRequest{ObjectIds: idBytes(list), BorrowerAddress: borrower})
}

func idBytes(list []ids.ID) [][]byte {
	out := make([][]byte, len(list))
	for i, id := range list {
		out[i] = id.Bytes()
	}
	return out
}
