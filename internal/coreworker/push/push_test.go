package push

import (
	"errors"
	"slices"
	"testing"

	"github.com/raygo/raygo/internal/pb"
)

// fakeStream records what is sent; fail makes Send fail.
type fakeStream struct {
	sent      []*pb.TaskBatch
	fail      bool
	closedOut bool
}

func (f *fakeStream) Send(b *pb.TaskBatch) error {
	if f.fail {
		return errors.New("broken")
	}
	f.sent = append(f.sent, &pb.TaskBatch{Tasks: slices.Clone(b.Tasks), Common: b.Common, Steal: b.Steal})
	return nil
}
func (f *fakeStream) Recv() (*pb.ReplyBatch, error) { return nil, errors.New("unused") }
func (f *fakeStream) CloseSend() error              { f.closedOut = true; return nil }
func (f *fakeStream) Close()                        {}

func spec(name string) *pb.TaskSpec { return &pb.TaskSpec{Function: name} }

func TestSendLoopBatches(t *testing.T) {
	st := &fakeStream{}
	ch := make(chan *pb.TaskSpec, 8)
	common := &pb.TaskSpec{OwnerAddress: "owner"}
	ch <- spec("a")
	ch <- spec("b")
	ch <- nil // a wake-up only: no spec
	steals := []int32{0, 3}
	close(ch)
	SendLoop(st, ch, common, func() int32 { n := steals[0]; steals = steals[1:]; return n })
	if len(st.sent) != 1 || len(st.sent[0].Tasks) != 2 || st.sent[0].Common != common || st.sent[0].Steal != 0 {
		t.Fatalf("sent %v", st.sent)
	}
	if !st.closedOut {
		t.Fatal("CloseSend not called at the end")
	}

	// A wake-up with a steal request sends a batch with no tasks.
	st = &fakeStream{}
	ch = make(chan *pb.TaskSpec, 2)
	ch <- nil
	close(ch)
	SendLoop(st, ch, nil, func() int32 { return 2 })
	if len(st.sent) != 1 || len(st.sent[0].Tasks) != 0 || st.sent[0].Steal != 2 {
		t.Fatalf("steal request sent %v", st.sent)
	}
	// A wake-up with nothing to do sends nothing.
	st = &fakeStream{}
	ch = make(chan *pb.TaskSpec, 2)
	ch <- nil
	close(ch)
	SendLoop(st, ch, nil, nil)
	if len(st.sent) != 0 {
		t.Fatalf("sent %v for an empty wake-up", st.sent)
	}
}

func TestSendLoopCapsBatchesAndDrainsOnFailure(t *testing.T) {
	st := &fakeStream{}
	ch := make(chan *pb.TaskSpec, MaxBatch+10)
	for range MaxBatch + 10 {
		ch <- spec("x")
	}
	close(ch)
	SendLoop(st, ch, nil, nil)
	if len(st.sent) != 2 || len(st.sent[0].Tasks) != MaxBatch || len(st.sent[1].Tasks) != 10 {
		t.Fatalf("batches of %d, want %d and 10", len(st.sent[0].Tasks), MaxBatch)
	}
	st = &fakeStream{fail: true}
	ch = make(chan *pb.TaskSpec, 4)
	for range 4 {
		ch <- spec("y")
	}
	close(ch)
	SendLoop(st, ch, nil, nil) // must drain and return, not block
	if len(ch) != 0 || st.closedOut {
		t.Fatalf("after a failed send: %d left in ch, CloseSend %v", len(ch), st.closedOut)
	}
}

func TestDropFront(t *testing.T) {
	q := []int{1, 2, 3, 4}
	if got := DropFront(q, 0); !slices.Equal(got, q) {
		t.Fatal("DropFront(0) changed the queue")
	}
	got := DropFront(q, 3)
	if !slices.Equal(got, []int{4}) || &got[0] != &q[0] {
		t.Fatalf("DropFront(3) = %v (same array: %v)", got, &got[0] == &q[0])
	}
	if q[1] != 0 || q[3] != 0 {
		t.Fatalf("dropped slots not cleared: %v", q)
	}
}

// TestOutbox: puts never block, however many; the sender takes them in
// order in batches of at most MaxBatch; Close sends what is left, then
// closes the sending side; after a failed send, later puts are dropped.
func TestOutbox(t *testing.T) {
	st := &fakeStream{}
	o := NewOutbox()
	common := &pb.TaskSpec{OwnerAddress: "owner"}
	var want []string
	for i := range MaxBatch + 10 { // more than any channel bound: Put does not wait for the sender
		name := string(rune('a' + i%26))
		want = append(want, name)
		if n := o.Put(spec(name)); n != i+1 {
			t.Fatalf("Put %d: %d waiting, want %d", i, n, i+1)
		}
	}
	if n := o.Put(); n != MaxBatch+10 { // nothing: a no-op
		t.Fatalf("an empty Put: %d waiting", n)
	}
	o.Close()
	if n := o.Put(spec("late")); n != 0 { // after Close: dropped
		t.Fatalf("a Put after Close: %d waiting, want 0", n)
	}
	SendOutbox(st, o, common)
	var got []string
	for _, b := range st.sent {
		if len(b.Tasks) > MaxBatch || b.Common != common {
			t.Fatalf("batch of %d (common %v)", len(b.Tasks), b.Common)
		}
		for _, s := range b.Tasks {
			got = append(got, s.Function)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sent %d specs, want %d in order", len(got), len(want))
	}
	if len(st.sent) != 2 || !st.closedOut {
		t.Fatalf("%d batches, closed %v; want 2 and the sending side closed", len(st.sent), st.closedOut)
	}

	// A sender waits for puts; a failed send ends it, and later puts are
	// dropped (the stream's receiver reports the failure).
	st = &fakeStream{fail: true}
	o = NewOutbox()
	done := make(chan struct{})
	go func() { SendOutbox(st, o, nil); close(done) }()
	o.Put(spec("x"))
	<-done
	o.Put(spec("y"))
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.specs) != 0 || st.closedOut {
		t.Fatalf("after a failed send: %d queued, closed %v", len(o.specs), st.closedOut)
	}
}
