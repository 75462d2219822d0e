package objmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/objstore"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStore is a node's store in memory.
type fakeStore struct {
	mu      sync.Mutex
	objects map[ids.ID][]byte
	fills   int
	deleted []ids.ID
}

func newFakeStore() *fakeStore { return &fakeStore{objects: map[ids.ID][]byte{}} }

func (s *fakeStore) Contains(id ids.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.objects[id]
	return ok
}

func (s *fakeStore) Fill(id ids.ID, size int64, info objstore.Info, fill func([]byte) error) error {
	s.mu.Lock()
	s.fills++
	s.mu.Unlock()
	if !info.Secondary {
		return errors.New("fakeStore: pulled copies must be secondary")
	}
	buf := make([]byte, size)
	if err := fill(buf); err != nil {
		return err
	}
	s.mu.Lock()
	s.objects[id] = buf
	s.mu.Unlock()
	return nil
}

func (s *fakeStore) Delete(list ...ids.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range list {
		delete(s.objects, id)
		s.deleted = append(s.deleted, id)
	}
}

func (s *fakeStore) get(id ids.ID) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objects[id]
}

// fakeNet plays the other nodes (holders of objects) and the owners.
type fakeNet struct {
	mu      sync.Mutex
	data    map[ids.ID][]byte
	down    map[string]error // node -> the error every read from it gets
	reads   map[string]int   // node -> chunk reads answered
	gate    chan struct{}    // when set, reads wait for it to close
	started chan string      // when set, each read reports its node here first
	delay   time.Duration    // each read takes this long (a transfer's time)
	// owner's directory
	locs      map[ids.ID][][]string // successive answers to Locations (the last repeats)
	asked     map[ids.ID]int
	freed     map[ids.ID]bool     // the owner no longer has these
	added     []string            // "id@node" reported by AddLocation
	removed   []string            // "id@node" reported by RemoveLocation
	pullers   map[ids.ID][]string // nodes that began pulling, in order
	ownerDown bool
	// peers are other nodes' managers: a read from one of them is served
	// from its store, else from its copy being pulled (ServePartial).
	peers      map[string]*Manager
	peerStores map[string]*fakeStore
}

func newFakeNet() *fakeNet {
	return &fakeNet{data: map[ids.ID][]byte{}, down: map[string]error{}, reads: map[string]int{},
		locs: map[ids.ID][][]string{}, asked: map[ids.ID]int{}, freed: map[ids.ID]bool{},
		pullers: map[ids.ID][]string{}, peers: map[string]*Manager{}, peerStores: map[string]*fakeStore{}}
}

func (n *fakeNet) object(size int, holders ...string) ids.ID {
	id := ids.New()
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	n.mu.Lock()
	n.data[id] = b
	n.locs[id] = [][]string{holders}
	n.mu.Unlock()
	return id
}

func (n *fakeNet) ReadChunk(ctx context.Context, node string, id ids.ID, off int64, dst []byte) error {
	if n.started != nil {
		n.started <- node
	}
	if n.delay > 0 {
		time.Sleep(n.delay)
	}
	if n.gate != nil {
		select {
		case <-n.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n.mu.Lock()
	peer, peerStore := n.peers[node], n.peerStores[node]
	n.mu.Unlock()
	if peer != nil {
		if b := peerStore.get(id); b != nil {
			copy(dst, b[off:])
		} else if found, err := peer.ServePartial(id, off, int64(len(dst)), func(b []byte) error { copy(dst, b); return nil }); err != nil || !found {
			return errs.NotFoundf("fake: %s has no part of %s", node, id)
		}
		n.mu.Lock()
		n.reads[node]++
		n.mu.Unlock()
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.down[node]; err != nil {
		return err
	}
	b, ok := n.data[id]
	if !ok {
		return errs.NotFoundf("fake: %s lacks %s", node, id)
	}
	copy(dst, b[off:])
	n.reads[node]++
	return nil
}

func (n *fakeNet) Locations(_ context.Context, _ string, id ids.ID) ([]string, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ownerDown {
		return nil, false, fmt.Errorf("%w: fake owner down", errs.ErrUnavailable)
	}
	if n.freed[id] {
		return nil, false, nil
	}
	answers := n.locs[id]
	k := min(n.asked[id], len(answers)-1)
	n.asked[id]++
	if k < 0 {
		return nil, true, nil
	}
	return answers[k], true, nil
}

func (n *fakeNet) StartPull(ctx context.Context, owner string, id ids.ID, node string) ([]string, bool, error) {
	nodes, known, err := n.Locations(ctx, owner, id)
	if err != nil || !known {
		return nil, known, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	before := slices.Clone(n.pullers[id])
	n.pullers[id] = append(n.pullers[id], node)
	return append(slices.Clone(nodes), before...), true, nil
}

func (n *fakeNet) RemoveLocation(_ context.Context, _ string, id ids.ID, node string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.removed = append(n.removed, id.Short()+"@"+node)
	return nil
}

func (n *fakeNet) AddLocation(_ context.Context, _ string, id ids.ID, node string) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.added = append(n.added, id.Short()+"@"+node)
	return !n.freed[id], nil
}

func (n *fakeNet) readsOf(node string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reads[node]
}

const self = "self:1"

func newManager(t *testing.T, cfg Config, st *fakeStore, n *fakeNet) *Manager {
	cfg.Self = self
	if cfg.ChunkBytes == 0 {
		cfg.ChunkBytes = 1024
	}
	m := New(cfg, st, n, n)
	t.Cleanup(m.Close)
	return m
}

func req(id ids.ID, size int, hints ...string) Request {
	return Request{ID: id, Size: int64(size), Owner: "owner:1", OwnerID: ids.New(), Hints: hints}
}

func TestPullCopiesTheObject(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	m := newManager(t, Config{}, st, n)
	id := n.object(10_000, "a:1")
	if err := m.Pull(t.Context(), req(id, 10_000, "a:1")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.get(id), n.data[id]) {
		t.Fatal("pulled bytes differ from the holder's")
	}
	waitFor(t, "the owner to learn of the copy", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.added) == 1
	})
	if got := n.added[0]; got != id.Short()+"@"+self {
		t.Fatalf("owner told %v, want the new copy on %s", got, self)
	}
	s := m.Stats()
	if s.Pulls != 1 || s.Completed != 1 || s.ChunksPulled != 10 || s.BytesPulled != 10_000 {
		t.Fatalf("stats %v", s)
	}
	// A second request finds it local: no new pull.
	if err := m.Pull(t.Context(), req(id, 10_000, "a:1")); err != nil || m.Stats().Pulls != 1 {
		t.Fatalf("second pull: %v, stats %v", err, m.Stats())
	}
}

func TestConcurrentRequestsMergeIntoOnePull(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.gate = make(chan struct{})
	m := newManager(t, Config{}, st, n)
	id := n.object(4096, "a:1")
	const callers = 8
	errc := make(chan error, callers)
	for range callers {
		go func() { errc <- m.Pull(t.Context(), req(id, 4096, "a:1")) }()
	}
	waitFor(t, "every request to arrive", func() bool { return m.Stats().Requests == callers })
	close(n.gate)
	for range callers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if st.fills != 1 || n.readsOf("a:1") != 4 || m.Stats().Pulls != 1 {
		t.Fatalf("%d store fills, %d chunk reads, stats %v: want one pull of 4 chunks", st.fills, n.readsOf("a:1"), m.Stats())
	}
}

func TestChunksSpreadOverHolders(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.delay = 2 * time.Millisecond
	m := newManager(t, Config{ChunksInFlight: 6}, st, n)
	holders := []string{"a:1", "b:1", "c:1"}
	id := n.object(96*1024, holders...)
	if err := m.Pull(t.Context(), req(id, 96*1024, "a:1")); err != nil {
		t.Fatal(err)
	}
	for _, h := range holders {
		// 96 chunks over 3 holders of equal speed: each carries a share
		// (about a third; reads from one holder only would leave 0).
		if r := n.readsOf(h); r < 10 {
			t.Fatalf("holder %s served %d of 96 chunks (a: %d, b: %d, c: %d)", h, r, n.readsOf("a:1"), n.readsOf("b:1"), n.readsOf("c:1"))
		}
	}
	if !bytes.Equal(st.get(id), n.data[id]) {
		t.Fatal("pulled bytes differ")
	}
}

func TestFailedHolderRetriedOnAnother(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.down["a:1"] = fmt.Errorf("%w: fake link cut", errs.ErrUnavailable)
	m := newManager(t, Config{}, st, n)
	id := n.object(20_000, "a:1", "b:1")
	if err := m.Pull(t.Context(), req(id, 20_000, "a:1")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.get(id), n.data[id]) || n.readsOf("b:1") != 20 {
		t.Fatalf("b served %d of 20 chunks", n.readsOf("b:1"))
	}
	if m.Stats().SourceFailures != 1 {
		t.Fatalf("stats %v: want one failed source", m.Stats())
	}
}

func TestNoHolderAnswersNamesNodesTried(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.down["a:1"] = fmt.Errorf("%w: fake link cut", errs.ErrUnavailable)
	m := newManager(t, Config{}, st, n)
	id := n.object(5000, "a:1", "b:1")
	n.mu.Lock()
	delete(n.data, id) // b answers "not found"
	n.mu.Unlock()
	err := m.Pull(t.Context(), req(id, 5000, "a:1"))
	var oe *errs.ObjectError
	if !errors.As(err, &oe) || oe.Kind != errs.KindObjectLost || !errors.Is(err, errs.ErrObjectLost) {
		t.Fatalf("err = %v, want an object lost error", err)
	}
	for _, want := range []string{id.String()[:8], "a:1 (", "fake link cut", "b:1 (does not hold it)"} {
		if !strings.Contains(err.Error(), want) && !strings.Contains(oe.ObjectID, want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
	if st.Contains(id) || m.Stats().Failed != 1 {
		t.Fatalf("a failed pull left a copy or was not counted: %v", m.Stats())
	}
	waitFor(t, "the owner to hear the pull failed", func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		return len(n.removed) == 1 && n.removed[0] == id.Short()+"@"+self
	})
}

func TestOwnerAskedAgainWhenHoldersFail(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.down["a:1"] = fmt.Errorf("%w: fake node died", errs.ErrUnavailable)
	m := newManager(t, Config{}, st, n)
	id := n.object(3000, "a:1")
	n.locs[id] = [][]string{{"a:1"}, {"a:1", "c:1"}} // c pulled a copy meanwhile
	if err := m.Pull(t.Context(), req(id, 3000, "a:1")); err != nil {
		t.Fatal(err)
	}
	if n.readsOf("c:1") != 3 || n.asked[id] != 2 {
		t.Fatalf("c served %d chunks, owner asked %d times", n.readsOf("c:1"), n.asked[id])
	}
}

func TestOwnerUnreachableUsesHints(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.ownerDown = true
	m := newManager(t, Config{}, st, n)
	id := n.object(3000, "a:1")
	if err := m.Pull(t.Context(), req(id, 3000, "a:1")); err != nil {
		t.Fatal(err)
	}
}

func TestSelfIsNeverASource(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	m := newManager(t, Config{}, st, n)
	id := n.object(3000, self)
	err := m.Pull(t.Context(), req(id, 3000, self))
	if !errors.Is(err, errs.ErrObjectLost) || n.readsOf(self) != 0 {
		t.Fatalf("err = %v, %d reads from itself", err, n.readsOf(self))
	}
}

func TestObjectFreedByOwner(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	m := newManager(t, Config{}, st, n)
	id := n.object(3000, "a:1")
	n.freed[id] = true
	err := m.Pull(t.Context(), req(id, 3000, "a:1"))
	if !errors.Is(err, errs.ErrObjectFreed) {
		t.Fatalf("err = %v, want object freed", err)
	}
}

// TestCopyOfFreedObjectDropped: the owner freed the object while it was
// pulled; its answer to the new location makes the node drop the copy.
func TestCopyOfFreedObjectDropped(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.gate = make(chan struct{})
	m := newManager(t, Config{}, st, n)
	id := n.object(1000, "a:1")
	errc := make(chan error, 1)
	go func() { errc <- m.Pull(t.Context(), req(id, 1000, "a:1")) }()
	waitFor(t, "the pull to start", func() bool { return m.Stats().Active == 1 })
	n.mu.Lock()
	n.freed[id] = true
	n.mu.Unlock()
	close(n.gate)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the copy to be dropped", func() bool { return !st.Contains(id) })
}

func TestAdmissionUnderBudget(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.gate = make(chan struct{})
	m := newManager(t, Config{BudgetBytes: 10_000}, st, n)
	big1, big2, small := n.object(6000, "a:1"), n.object(6000, "a:1"), n.object(3000, "a:1")
	errc := make(chan error, 3)
	go func() { errc <- m.Pull(t.Context(), req(big1, 6000, "a:1")) }()
	waitFor(t, "the first pull to start", func() bool { return m.Stats().Active == 1 })
	go func() { errc <- m.Pull(t.Context(), req(big2, 6000, "a:1")) }()
	waitFor(t, "the second to queue", func() bool { return m.Stats().Queued == 1 })
	go func() { errc <- m.Pull(t.Context(), req(small, 3000, "a:1")) }()
	// small would fit beside big1, but it waits behind big2: in order.
	waitFor(t, "the third to queue", func() bool { return m.Stats().Queued == 2 })
	if s := m.Stats(); s.Active != 1 || s.ActiveBytes != 6000 {
		t.Fatalf("stats %v: want one pull of 6000 bytes running", s)
	}
	close(n.gate)
	for range 3 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if s := m.Stats(); s.Completed != 3 || s.Queued != 0 || s.ActiveBytes != 0 {
		t.Fatalf("stats %v", s)
	}
}

// TestBudgetBoundsBytesInFlight runs many pulls at once and checks, at
// every chunk read, that the running pulls' bytes stay under the budget.
func TestBudgetBoundsBytesInFlight(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.started = make(chan string, 1024)
	m := newManager(t, Config{BudgetBytes: 8192}, st, n)
	var wg sync.WaitGroup
	errc := make(chan error, 20)
	for range 20 {
		id := n.object(4096, "a:1")
		wg.Add(1)
		go func() { defer wg.Done(); errc <- m.Pull(t.Context(), req(id, 4096, "a:1")) }()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-n.started:
			if b := m.Stats().ActiveBytes; b > 8192 {
				t.Fatalf("%d bytes being pulled, budget 8192", b)
			}
			continue
		case <-done:
		}
		break
	}
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueuedPullDroppedWhenCallerLeaves(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.gate = make(chan struct{})
	m := newManager(t, Config{BudgetBytes: 1000}, st, n)
	first, second := n.object(1000, "a:1"), n.object(1000, "a:1")
	errc := make(chan error, 1)
	go func() { errc <- m.Pull(t.Context(), req(first, 1000, "a:1")) }()
	waitFor(t, "the first pull to start", func() bool { return m.Stats().Active == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	left := make(chan error, 1)
	go func() { left <- m.Pull(ctx, req(second, 1000, "a:1")) }()
	waitFor(t, "the second to queue", func() bool { return m.Stats().Queued == 1 })
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if m.Stats().Queued != 0 {
		t.Fatalf("stats %v: the abandoned pull is still queued", m.Stats())
	}
	close(n.gate)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if st.Contains(second) {
		t.Fatal("the abandoned pull ran")
	}
}

func TestCloseFailsQueuedAndRunningPulls(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.gate = make(chan struct{}) // never opened: reads wait for ctx
	m := New(Config{Self: self, ChunkBytes: 1024, BudgetBytes: 1000}, st, n, n)
	a, b := n.object(1000, "a:1"), n.object(1000, "a:1")
	errc := make(chan error, 2)
	go func() { errc <- m.Pull(context.Background(), req(a, 1000, "a:1")) }()
	waitFor(t, "the first pull to start", func() bool { return m.Stats().Active == 1 })
	go func() { errc <- m.Pull(context.Background(), req(b, 1000, "a:1")) }()
	waitFor(t, "the second to queue", func() bool { return m.Stats().Queued == 1 })
	m.Close()
	for range 2 {
		if err := <-errc; err == nil {
			t.Fatal("a pull succeeded after Close")
		}
	}
	if err := m.Pull(context.Background(), req(ids.New(), 10, "a:1")); err == nil {
		t.Fatal("Pull after Close succeeded")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestServePartial: chunks of a copy being pulled are served once they
// arrive (a request waits for them), and not after the pull ends.
func TestServePartial(t *testing.T) {
	st, n := newFakeStore(), newFakeNet()
	n.gate = make(chan struct{})
	m := newManager(t, Config{}, st, n)
	id := n.object(4096, "a:1")
	errc := make(chan error, 1)
	go func() { errc <- m.Pull(t.Context(), req(id, 4096, "a:1")) }()
	waitFor(t, "the pull to start", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.partial[id] != nil
	})
	got := make(chan []byte, 1)
	go func() {
		found, err := m.ServePartial(id, 1024, 2048, func(b []byte) error { got <- append([]byte(nil), b...); return nil })
		if !found || err != nil {
			got <- nil
		}
	}()
	select {
	case <-got:
		t.Fatal("served chunks that had not arrived")
	case <-time.After(20 * time.Millisecond):
	}
	close(n.gate)
	if b := <-got; !bytes.Equal(b, n.data[id][1024:3072]) {
		t.Fatal("served bytes differ from the object's")
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if found, _ := m.ServePartial(id, 0, 10, func([]byte) error { return nil }); found {
		t.Fatal("served a part after the pull ended")
	}
	if found, _ := m.ServePartial(ids.New(), 0, 10, func([]byte) error { return nil }); found {
		t.Fatal("served a part of an object not being pulled")
	}
}

// TestBroadcastSpreadsOverReceivers: three nodes pull one object at once;
// each reads from the primary and from the nodes that began before it
// (copies still being written), so the primary serves far fewer than
// three copies' worth of chunks.
func TestBroadcastSpreadsOverReceivers(t *testing.T) {
	n := newFakeNet()
	n.delay = time.Millisecond
	const size, chunk = 64 * 1024, 1024 // 64 chunks a copy
	id := n.object(size, "a:1")
	names := []string{"b:1", "c:1", "d:1"}
	stores := map[string]*fakeStore{}
	for _, name := range names {
		stores[name] = newFakeStore()
		m := New(Config{Self: name, ChunkBytes: chunk, ChunksInFlight: 4}, stores[name], n, n)
		t.Cleanup(m.Close)
		n.peers[name], n.peerStores[name] = m, stores[name]
	}
	// The pulls start one after another, each once those going have read
	// a quarter of the object more (as copies of a broadcast go out in
	// waves): which copies are ahead is then the test's doing, not the
	// goroutine scheduler's, and each later receiver can read what the
	// earlier ones hold.
	reads := func() int { return n.readsOf("a:1") + n.readsOf("b:1") + n.readsOf("c:1") + n.readsOf("d:1") }
	errc := make(chan error, len(names))
	for i, name := range names {
		if i > 0 { // wait for 16 more chunks read by the pulls already going
			base, deadline := reads(), time.Now().Add(10*time.Second)
			for reads()-base < 16 && time.Now().Before(deadline) {
				time.Sleep(100 * time.Microsecond)
			}
		}
		go func() { errc <- n.peers[name].Pull(t.Context(), req(id, size, "a:1")) }()
	}
	for range names {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		if !bytes.Equal(stores[name].get(id), n.data[id]) {
			t.Fatalf("%s's copy differs", name)
		}
	}
	fromPrimary := n.readsOf("a:1")
	fromPeers := n.readsOf("b:1") + n.readsOf("c:1") + n.readsOf("d:1")
	t.Logf("chunks read: %d from the primary, %d from receivers (b %d, c %d, d %d)", fromPrimary, fromPeers,
		n.readsOf("b:1"), n.readsOf("c:1"), n.readsOf("d:1"))
	// Without spreading the primary serves all 192; here receivers must
	// carry at least half a copy. (Which receivers serve depends on the
	// order the pulls start in, which the scheduler decides.)
	if fromPrimary+fromPeers != 3*64 || fromPeers < 32 {
		t.Fatalf("%d chunks from the primary, %d from receivers: want 32 or more from receivers", fromPrimary, fromPeers)
	}
}
