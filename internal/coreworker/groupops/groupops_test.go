package groupops

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/raygo/raygo/internal/errs"
	"github.com/raygo/raygo/internal/ids"
	"github.com/raygo/raygo/internal/pb"
	"github.com/raygo/raygo/internal/wirecheck"
)

// fakeStream is one PlacementGroupOps stream whose other end is the test:
// it reads what the pipe sent from sent and answers through events.
type fakeStream struct {
	ctx    context.Context
	sent   chan *pb.GroupOpsRequest
	events chan *pb.GroupOpsEvent
	broken chan struct{} // closed: Recv fails (the stream broke)
}

func (s *fakeStream) Send(r *pb.GroupOpsRequest) error {
	select {
	case s.sent <- r:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *fakeStream) Recv() (*pb.GroupOpsEvent, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.broken:
		return nil, io.ErrUnexpectedEOF
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	}
}

// server hands the test each stream the pipe opens.
type server struct{ streams chan *fakeStream }

func newPipe(t *testing.T) (*Pipe, *server) {
	t.Helper()
	srv := &server{streams: make(chan *fakeStream, 4)}
	p := New(func(ctx context.Context) (Stream, error) {
		s := &fakeStream{ctx: ctx, sent: make(chan *pb.GroupOpsRequest, 64), events: make(chan *pb.GroupOpsEvent, 64), broken: make(chan struct{})}
		srv.streams <- s
		return s, nil
	})
	t.Cleanup(p.Close)
	return p, srv
}

func (srv *server) next(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case s := <-srv.streams:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no stream opened")
		return nil
	}
}

// ops reads sent messages until n ops came, and returns them.
func (s *fakeStream) ops(t *testing.T, n int) []*pb.GroupOp {
	t.Helper()
	var out []*pb.GroupOp
	for len(out) < n {
		select {
		case r := <-s.sent:
			if err := wirecheck.GroupOps(r); err != nil {
				t.Fatalf("the pipe sent a batch the control store refuses: %v", err)
			}
			out = append(out, r.GetOps()...)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d ops sent", len(out), n)
		}
	}
	return out
}

func (s *fakeStream) answer(ops []*pb.GroupOp, fail map[int]error, changes ...*pb.GroupStateChange) {
	ev := &pb.GroupOpsEvent{Changes: changes}
	for i, op := range ops {
		r := &pb.GroupOpResult{Seq: op.GetSeq()}
		if err := fail[i]; err != nil {
			r.Error = errs.ToInfo(err)
		}
		ev.Results = append(ev.Results, r)
	}
	s.events <- ev
}

func newGroup() *pb.PlacementGroupInfo {
	return &pb.PlacementGroupInfo{GroupId: ids.New().Bytes(), Bundles: []*pb.Bundle{{Resources: &pb.Resources{Amounts: map[string]float64{"CPU": 1}}}}}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func change(g *pb.PlacementGroupInfo, st pb.PlacementGroupState) *pb.GroupStateChange {
	return &pb.GroupStateChange{GroupId: g.GetGroupId(), State: st}
}

// TestOpsAnsweredInOrder: ops go out numbered in the order queued; each
// gets its own answer (an error crosses typed); Flush waits for the last.
func TestOpsAnsweredInOrder(t *testing.T) {
	p, srv := newPipe(t)
	s := srv.next(t)
	a, b := newGroup(), newGroup()
	opA, opB := p.Create(a), p.Create(b)
	opR := p.Remove(ids.MustFromBytes(a.GetGroupId()))
	ops := s.ops(t, 3)
	if ops[0].GetCreate() == nil || ops[1].GetCreate() == nil || ops[2].GetRemove() == nil ||
		!(ops[0].GetSeq() < ops[1].GetSeq() && ops[1].GetSeq() < ops[2].GetSeq()) {
		t.Fatalf("ops sent out of order: %v", ops)
	}
	if _, done := opA.Result(); done {
		t.Fatal("an op is answered before the control store answered it")
	}
	flushed := make(chan error, 1)
	go func() { flushed <- p.Flush(ctx(t)) }()
	select {
	case <-flushed:
		t.Fatal("Flush returned with ops unanswered")
	case <-time.After(50 * time.Millisecond):
	}
	s.answer(ops, map[int]error{1: errs.AlreadyExistsf("named group exists")})
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := opA.Err(ctx(t)); err != nil {
		t.Errorf("create a: %v", err)
	}
	if err := opB.Err(ctx(t)); !errors.Is(err, errs.ErrAlreadyExists) {
		t.Errorf("create b: %v, want ErrAlreadyExists", err)
	}
	if err := opR.Err(ctx(t)); err != nil {
		t.Errorf("remove a: %v", err)
	}
	if _, _, ok := p.Watch(ids.MustFromBytes(b.GetGroupId())); ok {
		t.Error("a group whose create failed is still followed")
	}
}

// TestWatchFollowsStates: the states the control store reports reach
// Watch, each change closing the channel of the one before; REMOVED ends
// the following.
func TestWatchFollowsStates(t *testing.T) {
	p, srv := newPipe(t)
	s := srv.next(t)
	g := newGroup()
	id := ids.MustFromBytes(g.GetGroupId())
	p.Create(g)
	ops := s.ops(t, 1)
	st, changed, ok := p.Watch(id)
	if !ok || st != pb.PlacementGroupState_PLACEMENT_GROUP_STATE_PENDING {
		t.Fatalf("after create: %v %v", st, ok)
	}
	s.answer(ops, nil, change(g, pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED))
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no change seen")
	}
	if st, _, ok := p.Watch(id); !ok || st != pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED {
		t.Fatalf("after CREATED: %v %v", st, ok)
	}
	_, changed, _ = p.Watch(id)
	s.events <- &pb.GroupOpsEvent{Changes: []*pb.GroupStateChange{change(g, pb.PlacementGroupState_PLACEMENT_GROUP_STATE_REMOVED)}}
	<-changed
	if _, _, ok := p.Watch(id); ok {
		t.Error("a removed group is still followed")
	}
	if _, _, ok := p.Watch(ids.New()); ok {
		t.Error("a group never created here is followed")
	}
}

// TestReconnectResendsUnanswered: when the stream breaks, the ops not
// answered go out again on the next one, in order, before new ones; what
// was followed is dropped, except the groups whose creates are resent.
func TestReconnectResendsUnanswered(t *testing.T) {
	p, srv := newPipe(t)
	s := srv.next(t)
	old, a, b := newGroup(), newGroup(), newGroup()
	p.Create(old)
	first := s.ops(t, 1)
	s.answer(first, nil, change(old, pb.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED))
	if err := p.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	opA := p.Create(a)
	opR := p.Remove(ids.MustFromBytes(old.GetGroupId()))
	sent := s.ops(t, 2)
	close(s.broken)
	s2 := srv.next(t)
	opB := p.Create(b)
	again := s2.ops(t, 3)
	for i, want := range []uint64{sent[0].GetSeq(), sent[1].GetSeq()} {
		if again[i].GetSeq() != want {
			t.Fatalf("resent op %d has seq %d, want %d", i, again[i].GetSeq(), want)
		}
	}
	if again[2].GetCreate() == nil || ids.MustFromBytes(again[2].GetCreate().GetGroupId()) != ids.MustFromBytes(b.GetGroupId()) {
		t.Fatalf("the new op after the resent ones: %v", again[2])
	}
	if _, _, ok := p.Watch(ids.MustFromBytes(old.GetGroupId())); ok {
		t.Error("a state learnt on the broken stream is still followed")
	}
	if _, _, ok := p.Watch(ids.MustFromBytes(a.GetGroupId())); !ok {
		t.Error("a group whose create was resent is not followed")
	}
	s2.answer(again, nil)
	for _, op := range []*Op{opA, opR, opB} {
		if err := op.Err(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlushRemovals waits only for removals: free with none queued,
// holding while one is unanswered.
func TestFlushRemovals(t *testing.T) {
	p, srv := newPipe(t)
	s := srv.next(t)
	p.Create(newGroup())
	if err := p.FlushRemovals(ctx(t)); err != nil {
		t.Fatalf("FlushRemovals with only a create queued: %v", err)
	}
	p.Remove(ids.New())
	ops := s.ops(t, 2)
	short, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := p.FlushRemovals(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FlushRemovals with a removal unanswered: %v", err)
	}
	s.answer(ops, map[int]error{1: errs.NotFoundf("no such group")})
	if err := p.FlushRemovals(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if n := p.removals.Load(); n != 0 {
		t.Fatalf("%d removals counted after all were answered", n)
	}
}

// TestBatchesAreBounded: a burst larger than one message's limit goes out
// in messages of at most MaxGroupOps ops.
func TestBatchesAreBounded(t *testing.T) {
	p, srv := newPipe(t)
	s := srv.next(t)
	n := 2*wirecheck.MaxGroupOps + 5
	for range n {
		p.Remove(ids.New())
	}
	got := 0
	for got < n {
		select {
		case r := <-s.sent:
			if len(r.GetOps()) > wirecheck.MaxGroupOps {
				t.Fatalf("a message of %d ops", len(r.GetOps()))
			}
			got += len(r.GetOps())
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d ops sent", got, n)
		}
	}
}

// TestCloseFailsPending: ops unanswered at Close, and ops queued after
// it, fail with ErrClosed.
func TestCloseFailsPending(t *testing.T) {
	p, srv := newPipe(t)
	s := srv.next(t)
	op := p.Create(newGroup())
	s.ops(t, 1)
	p.Close()
	if err := op.Err(ctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("pending op after Close: %v", err)
	}
	if err := p.Remove(ids.New()).Err(ctx(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("op queued after Close: %v", err)
	}
	if n := p.removals.Load(); n != 0 {
		t.Fatalf("%d removals counted after Close", n)
	}
}
